//! Enrollment over Secure Transport (RFC 7030): an axum router served over TLS 1.3-SM by
//! [`smtrust_tls::serve`], which hands each request the verified client as a [`Peer`] extension.
//!
//! Routes, under `/.well-known/est/` (the default issuing CA) and `/.well-known/est/<label>/`:
//!
//! | operation | method | request | response |
//! |---|---|---|---|
//! | `cacerts` | GET | — | `application/pkcs7-mime; smime-type=certs-only`, base64 (issuing CA and its ancestors) |
//! | `simpleenroll` | POST | `application/pkcs10`, base64 | certs-only with the new certificate |
//! | `simplereenroll` | POST | `application/pkcs10`, base64 | certs-only with the new certificate |
//! | `serverkeygen` | POST | `application/pkcs10`, base64 | `multipart/mixed`: encrypted PKCS#8 key, then certs-only |
//! | `csrattrs` | GET | — | `application/csrattrs`, base64 |
//!
//! Who may ask:
//! - `simpleenroll`: a one-time enrollment token bound to the device ID and the issuing CA
//!   ([`EstState::mint_token`], [`mint_token`]; kept in the CA database, see [`TokenStore`]), sent as
//!   HTTP Basic credentials `device-id:token` (RFC 7030 §3.2.3), or a TLS client certificate issued with the
//!   EST bootstrap profile (active in the store, same DER). A bootstrap certificate is single use: it is
//!   revoked (superseded) when the device certificate is issued.
//! - `simplereenroll`: the device's current certificate as TLS client certificate (active in the store, the
//!   device profile, same DER). The new certificate names the same device ID (the CA writes the subject from
//!   the device ID, so "same subject" of RFC 7030 §4.2.2 holds by construction). The store keeps one active
//!   certificate per device and CA: the new certificate is signed first, then recorded and the current one
//!   superseded in one store transaction ([`crate::CaService::renew`]), so a failed renewal leaves the
//!   current certificate active. RFC 7030 §4.2.2 allows renewal "shortly after expiry": with
//!   [`EstConfig::reenroll_grace`] (default 7 days, zero disables) the server's TLS verifier accepts a
//!   certificate up to that long past its notAfter ([`smtrust_tls::Sm2ChainVerifier::with_expiry_grace`]:
//!   chain, signatures and revocation still checked) and marks the peer [`Peer::expired_in_grace`]; such a
//!   peer may call `simplereenroll` and nothing else ([`expired_peer_guard`] for the rest of the listener).
//!   Past the grace, the device enrolls again with a fresh token.
//! - `serverkeygen`: an enrollment token only. The key is returned as PKCS#8 `EncryptedPrivateKeyInfo`
//!   (PBES2, PBKDF2-HMAC-SM3, SM4-CBC) under the token itself: the device already holds the token, and the key
//!   stays encrypted at rest until the device imports it. (RFC 7030 §4.4.2 returns a plain `application/pkcs8`
//!   part when only TLS protects it; ours is encrypted in addition, under the same content type.)
//!
//! Every decision is logged (`tracing`, `debug` for refusals, `info` for issuance) and counted against a
//! per-device [`RateLimit`]. A second request for a device while one runs gets `202 Accepted` with
//! `Retry-After` (RFC 7030 §4.2.3).

mod body;
mod certs;
mod csrattrs;
mod enroll;
mod multipart;
mod rate;
mod refusal;
mod token;
mod token_store;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use smtrust_tls::serve::Peer;

pub use body::{MAX_BODY, decode_base64, encode_base64, pkcs10};
pub use certs::certs_only;
pub use csrattrs::device_csr_attrs;
pub use multipart::KEY_PART;
pub use rate::RateLimit;
pub use refusal::Refusal;
pub use token::{EnrollmentToken, TokenRefusal};
#[cfg(feature = "sql")]
pub use token_store::mint_in_data_dir;
pub use token_store::{TokenRecord, TokenStore, mint_token};

use crate::profile::Profiles;
use crate::service::CaService;
use crate::{DeviceId, Error};

/// The `Content-Type` of certs-only responses.
pub const CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";
/// The `Content-Type` of `/csrattrs`.
pub const CSRATTRS: &str = "application/csrattrs";

/// What the EST service serves and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EstConfig {
    /// The issuing CA served at `/.well-known/est/`.
    pub default_issuer: String,
    /// More issuing CAs, each served at `/.well-known/est/<label>/` (the default one is served there too).
    pub issuers: Vec<String>,
    /// Profile of the certificates issued (a device-identity profile).
    pub device_profile: String,
    /// Profile whose certificates authenticate `simpleenroll` (an EST-bootstrap profile).
    pub bootstrap_profile: String,
    /// The profiles the [`CaService`] was built with (used to check a CSR before superseding a certificate).
    pub profiles: Profiles,
    /// Per-device rate limit.
    pub rate_limit: RateLimit,
    /// `Retry-After` of a deferred (202) answer.
    pub retry_after: Duration,
    /// PBKDF2 PRF of server-generated keys.
    pub keygen_prf: smtrust_crypto::pkcs8::KdfPrf,
    /// How long after its notAfter a device certificate may still `simplereenroll` (zero: not at all). The
    /// TLS verifier of the listener must be given the same grace.
    pub reenroll_grace: Duration,
}

/// Default [`EstConfig::reenroll_grace`]: a device that was off for up to a week renews without a new token.
pub const DEFAULT_REENROLL_GRACE: Duration = Duration::from_secs(7 * 86_400);

impl EstConfig {
    /// Serve `default_issuer` with the built-in `device` and `est-bootstrap` profiles.
    pub fn new(default_issuer: &str) -> Self {
        Self {
            default_issuer: default_issuer.to_owned(),
            issuers: Vec::new(),
            device_profile: "device".into(),
            bootstrap_profile: "est-bootstrap".into(),
            profiles: Profiles::default(),
            rate_limit: RateLimit::default(),
            retry_after: Duration::from_secs(2),
            keygen_prf: smtrust_crypto::pkcs8::KdfPrf::HmacSm3Gmssl,
            reenroll_grace: DEFAULT_REENROLL_GRACE,
        }
    }
}

/// The EST service state: the CA (whose store keeps the enrollment tokens), the rate limiter. Cheap to clone.
pub struct EstState<S: TokenStore> {
    svc: CaService<S>,
    cfg: Arc<EstConfig>,
    limiter: Arc<rate::Limiter>,
    in_flight: Arc<Mutex<HashSet<DeviceId>>>,
}

impl<S: TokenStore> std::fmt::Debug for EstState<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EstState")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl<S: TokenStore> Clone for EstState<S> {
    fn clone(&self) -> Self {
        Self {
            svc: self.svc.clone(),
            cfg: Arc::clone(&self.cfg),
            limiter: Arc::clone(&self.limiter),
            in_flight: Arc::clone(&self.in_flight),
        }
    }
}

#[allow(clippy::disallowed_methods)] // the HTTP edge reads the clock
fn now() -> SystemTime {
    SystemTime::now()
}

impl<S: TokenStore> EstState<S> {
    /// EST over `svc` with `cfg`. Fails if a configured issuer or profile is unknown.
    pub fn new(svc: CaService<S>, cfg: EstConfig) -> Result<Self, Error> {
        svc.issuer(&cfg.default_issuer)?;
        for l in &cfg.issuers {
            svc.issuer(l)?;
        }
        for p in [&cfg.device_profile, &cfg.bootstrap_profile] {
            if cfg.profiles.get(p).is_none() {
                return Err(crate::RequestError::UnknownProfile(p.clone()).into());
            }
        }
        Ok(Self {
            svc,
            limiter: Arc::new(rate::Limiter::new(cfg.rate_limit)),
            cfg: Arc::new(cfg),
            in_flight: Arc::new(Mutex::new(HashSet::new())),
        })
    }

    /// Mint a one-time enrollment token for `device_id` at the issuing CA `label` (default: the default
    /// issuer), valid for `ttl`; it replaces an unused earlier token of the device there. Only its hash is
    /// stored; give the returned token to the device out of band.
    pub async fn mint_token(
        &self,
        label: Option<&str>,
        device_id: &DeviceId,
        ttl: Duration,
    ) -> Result<EnrollmentToken, Error> {
        let issuer = self.label(label).map_err(|_| {
            crate::ConfigError::UnknownIssuer(label.unwrap_or_default().chars().take(64).collect())
        })?;
        mint_token(self.svc.store(), &issuer, device_id, ttl, now()).await
    }

    /// The re-enrollment grace ([`EstConfig::reenroll_grace`]).
    pub fn reenroll_grace(&self) -> Duration {
        self.cfg.reenroll_grace
    }

    /// The issuing CA labels served (the default first).
    pub fn labels(&self) -> Vec<String> {
        let mut v = vec![self.cfg.default_issuer.clone()];
        v.extend(self.cfg.issuers.iter().cloned());
        v
    }

    /// The CA service.
    pub fn service(&self) -> &CaService<S> {
        &self.svc
    }

    /// The issuer label a request path names.
    fn label(&self, label: Option<&str>) -> Result<String, Refusal> {
        match label {
            None => Ok(self.cfg.default_issuer.clone()),
            Some(l) if l == self.cfg.default_issuer || self.cfg.issuers.iter().any(|i| i == l) => {
                Ok(l.to_owned())
            }
            Some(l) => Err(Refusal::UnknownLabel(l.chars().take(64).collect())),
        }
    }

    /// Mark `device` busy for the life of the guard, or defer.
    fn begin(&self, device: &DeviceId) -> Result<InFlight, Refusal> {
        let mut set = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !set.insert(device.clone()) {
            return Err(Refusal::Deferred {
                retry_after: self.cfg.retry_after,
            });
        }
        Ok(InFlight {
            set: Arc::clone(&self.in_flight),
            device: device.clone(),
        })
    }

    fn rate(&self, device: &DeviceId) -> Result<(), Refusal> {
        self.limiter
            .take(device.as_str(), std::time::Instant::now())
            .map_err(|retry_after| Refusal::RateLimited { retry_after })
    }
}

struct InFlight {
    set: Arc<Mutex<HashSet<DeviceId>>>,
    device: DeviceId,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.device);
    }
}

/// The EST routes (see the module documentation).
pub fn router<S: TokenStore>(state: EstState<S>) -> Router {
    Router::new()
        .route("/.well-known/est/{op}", any(default_label::<S>))
        .route("/.well-known/est/{label}/{op}", any(with_label::<S>))
        .with_state(state)
}

/// One request, as the handlers see it.
struct Request {
    method: Method,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
}

async fn default_label<S: TokenStore>(
    State(st): State<EstState<S>>,
    Path(op): Path<String>,
    method: Method,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Response {
    dispatch(st, None, op, request(method, headers, req)).await
}

async fn with_label<S: TokenStore>(
    State(st): State<EstState<S>>,
    Path((label, op)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Response {
    dispatch(st, Some(label), op, request(method, headers, req)).await
}

fn request(method: Method, headers: HeaderMap, req: axum::extract::Request) -> Request {
    let peer = req
        .extensions()
        .get::<Peer>()
        .cloned()
        .unwrap_or_else(Peer::anonymous);
    Request {
        method,
        peer,
        headers,
        body: req.into_body(),
    }
}

async fn dispatch<S: TokenStore>(
    st: EstState<S>,
    label: Option<String>,
    op: String,
    req: Request,
) -> Response {
    let r = async {
        if req.peer.expired_in_grace && !(op == "simplereenroll" && req.method == Method::POST) {
            return Err(Refusal::Forbidden(EXPIRED_ONLY_RENEW));
        }
        let issuer = st.label(label.as_deref())?;
        let (get, post) = (req.method == Method::GET, req.method == Method::POST);
        match op.as_str() {
            "cacerts" if get => cacerts(&st, &issuer),
            "csrattrs" if get => Ok(base64_response(CSRATTRS, &device_csr_attrs()?)),
            "simpleenroll" if post => enroll::enroll(&st, &issuer, enroll::Mode::Enroll, req).await,
            "simplereenroll" if post => {
                enroll::enroll(&st, &issuer, enroll::Mode::Reenroll, req).await
            }
            "serverkeygen" if post => enroll::serverkeygen(&st, &issuer, req).await,
            "cacerts" | "csrattrs" => Err(Refusal::Method { allow: "GET" }),
            "simpleenroll" | "simplereenroll" | "serverkeygen" => {
                Err(Refusal::Method { allow: "POST" })
            }
            other => Err(Refusal::UnknownOperation(other.chars().take(64).collect())),
        }
    };
    r.await.unwrap_or_else(IntoResponse::into_response)
}

/// What a peer whose certificate expired (accepted within the grace) is told elsewhere than `simplereenroll`.
const EXPIRED_ONLY_RENEW: &str =
    "the client certificate has expired: only simplereenroll is allowed until it is renewed";

/// Middleware for a whole listener: a peer accepted through the verifier's expiry grace
/// ([`Peer::expired_in_grace`]) may only `POST …/simplereenroll`; every other route answers 403.
pub async fn expired_peer_guard(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let expired = req
        .extensions()
        .get::<Peer>()
        .is_some_and(|p| p.expired_in_grace);
    let renewal = req.method() == Method::POST
        && req.uri().path().starts_with("/.well-known/est/")
        && req.uri().path().ends_with("/simplereenroll");
    if expired && !renewal {
        tracing::debug!(
            path = req.uri().path(),
            "expired client certificate refused"
        );
        return Refusal::Forbidden(EXPIRED_ONLY_RENEW).into_response();
    }
    next.run(req).await
}

/// The issuing CA and its ancestors, certs-only.
fn cacerts<S: TokenStore>(st: &EstState<S>, issuer: &str) -> Result<Response, Refusal> {
    let pem = st.svc.export_chain(issuer)?;
    let blocks = smtrust_crypto::pem::blocks(pem.as_bytes()).map_err(Error::from)?;
    let ders: Vec<&[u8]> = blocks.iter().map(|(_, d)| d.as_ref()).collect();
    Ok(base64_response(CERTS_ONLY, &certs_only(&ders)?))
}

/// `200` with a base64 body (`Content-Transfer-Encoding: base64`, RFC 7030 §4.1.3).
fn base64_response(content_type: &'static str, der: &[u8]) -> Response {
    let mut resp = (StatusCode::OK, encode_base64(der)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        "content-transfer-encoding",
        HeaderValue::from_static("base64"),
    );
    resp
}
