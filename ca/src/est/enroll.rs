//! `simpleenroll`, `simplereenroll` and `serverkeygen`: authenticate, read the CSR, check it, issue through
//! the [`crate::CaService`] (superseding a bootstrap or current certificate in the same store transaction).

use axum::body::Body;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use base64::Engine;
use smtrust_tls::serve::Peer;
use zeroize::Zeroizing;

use super::token_store::{self, Claim, TokenStore};
use super::{CERTS_ONLY, EstState, MAX_BODY, Refusal, Request, base64_response, certs_only, now};
use crate::revocation::CertStatus;
use crate::service::IssueRequest;
use crate::store::CertRecord;
use crate::{DeviceId, Error, Serial};

/// Which enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Enroll,
    Reenroll,
}

/// How the device proved who it is.
enum Auth<S: TokenStore> {
    Token(Claim<S>),
    /// Its bootstrap certificate's record.
    Bootstrap(CertRecord),
    /// Its current device certificate's record.
    Current(CertRecord),
}

pub(super) async fn enroll<S: TokenStore>(
    st: &EstState<S>,
    issuer: &str,
    mode: Mode,
    req: Request,
) -> Result<Response, Refusal> {
    let Request {
        peer,
        headers,
        body,
        ..
    } = req;
    let (device, auth) = authenticate(st, issuer, mode, &peer, &headers).await?;
    let issued = issue(st, issuer, mode, &device, &auth, &headers, body).await;
    let ok = issued.is_ok();
    match auth {
        Auth::Token(claim) if ok => claim.spend(),
        // A refused CSR or a store failure does not burn the token: the device may retry.
        Auth::Token(claim) => claim.release().await,
        _ => {}
    }
    issued
}

/// Everything after authentication: read and check the CSR, issue (replacing the certificate it renews).
async fn issue<S: TokenStore>(
    st: &EstState<S>,
    issuer: &str,
    mode: Mode,
    device: &DeviceId,
    auth: &Auth<S>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let der = read_pkcs10(headers, body).await?;
    let _busy = st.begin(device)?;
    precheck(st, issuer, &der, device)?;
    let req = IssueRequest::new(der, Some(device.clone()));
    let profile = &st.cfg.device_profile;
    // A bootstrap or current certificate is superseded in the transaction that records the new one, so a
    // failed issuance leaves the device the certificate it has.
    let issued = match auth {
        Auth::Current(rec) | Auth::Bootstrap(rec) => {
            st.svc.renew(issuer, profile, req, &rec.serial).await?
        }
        Auth::Token(_) => st.svc.issue(issuer, profile, req).await?,
    };
    tracing::info!(device = %device, serial = %issued.serial, ?mode, "EST issued");
    Ok(base64_response(CERTS_ONLY, &certs_only(&[&issued.der])?))
}

pub(super) async fn serverkeygen<S: TokenStore>(
    st: &EstState<S>,
    issuer: &str,
    req: Request,
) -> Result<Response, Refusal> {
    let Some((device, token)) = basic(&req.headers)? else {
        return Err(if req.peer.leaf.is_some() {
            Refusal::Forbidden(
                "serverkeygen needs an enrollment token (the key is encrypted under it)",
            )
        } else {
            Refusal::NoAuth
        });
    };
    st.rate(&device)?;
    let claim = token_store::claim(st.svc.store(), issuer, &device, &token, now()).await?;
    let out = async {
        let der = read_pkcs10(&req.headers, req.body).await?;
        let _busy = st.begin(&device)?;
        precheck(st, issuer, &der, &device)?;
        Ok::<_, Refusal>(
            st.svc
                .keygen(
                    issuer,
                    &st.cfg.device_profile,
                    device.clone(),
                    token,
                    st.cfg.keygen_prf,
                )
                .await?,
        )
    }
    .await;
    let out = match out {
        Ok(o) => {
            claim.spend();
            o
        }
        Err(e) => {
            claim.release().await;
            return Err(e);
        }
    };
    tracing::info!(device = %device, serial = %out.cert.serial, "EST server-generated key issued");
    let blocks =
        smtrust_crypto::pem::blocks(out.encrypted_key_pem.as_bytes()).map_err(Error::from)?;
    let key = blocks
        .first()
        .map(|(_, d)| d)
        .ok_or(crate::StoreError::Corrupt("keygen PEM"))
        .map_err(Error::from)?;
    Ok(super::multipart::serverkeygen(
        key,
        &certs_only(&[&out.cert.der])?,
    )?)
}

async fn authenticate<S: TokenStore>(
    st: &EstState<S>,
    issuer: &str,
    mode: Mode,
    peer: &Peer,
    headers: &HeaderMap,
) -> Result<(DeviceId, Auth<S>), Refusal> {
    if mode == Mode::Enroll
        && let Some((device, token)) = basic(headers)?
    {
        st.rate(&device)?;
        let claim = token_store::claim(st.svc.store(), issuer, &device, &token, now()).await?;
        return Ok((device, Auth::Token(claim)));
    }
    let (Some(leaf), identity) = (&peer.leaf, &peer.identity) else {
        return Err(match mode {
            Mode::Enroll => Refusal::NoAuth,
            Mode::Reenroll => Refusal::Forbidden(
                "re-enrollment needs the current device certificate as TLS client certificate",
            ),
        });
    };
    let identity = identity
        .as_ref()
        .ok_or(Refusal::Certificate("it carries no device ID"))?;
    let device = DeviceId::new(identity.device_id.as_str())?;
    st.rate(&device)?;
    let serial = Serial::from_slice(strip_sign(&identity.serial))
        .ok_or(Refusal::Certificate("not issued by this CA"))?;
    let rec = st
        .svc
        .show(&serial)
        .await?
        .filter(|r| r.der.as_deref() == Some(leaf.as_slice()))
        .ok_or(Refusal::Certificate("not issued by this CA"))?;
    if rec.status != CertStatus::Active {
        return Err(Refusal::Certificate("it is revoked or suspended"));
    }
    // The TLS verifier let an expired certificate through only within its grace; hold to ours as well.
    if peer.expired_in_grace {
        let at = token_store::unix(now());
        let grace = st.cfg.reenroll_grace.as_secs();
        let within =
            mode == Mode::Reenroll && rec.not_after.is_some_and(|na| na < at && at - na <= grace);
        if !within {
            return Err(Refusal::Certificate(
                "it has expired (beyond the re-enrollment grace): enroll again with a token",
            ));
        }
    }
    if rec.device_id.as_deref() != Some(device.as_str()) {
        return Err(Refusal::Certificate(
            "its device ID differs from the CA's record",
        ));
    }
    let profile = rec.profile.as_deref().unwrap_or_default();
    match mode {
        Mode::Enroll if profile == st.cfg.bootstrap_profile => Ok((device, Auth::Bootstrap(rec))),
        Mode::Enroll if profile == st.cfg.device_profile => Err(Refusal::Forbidden(
            "this device already has a certificate: renew with simplereenroll",
        )),
        Mode::Enroll => Err(Refusal::Certificate(
            "it is not an EST bootstrap certificate",
        )),
        Mode::Reenroll if profile == st.cfg.device_profile => Ok((device, Auth::Current(rec))),
        Mode::Reenroll => Err(Refusal::Certificate(
            "re-enrollment needs the current device certificate",
        )),
    }
}

/// HTTP Basic credentials `device-id:token` (RFC 7617), if an Authorization header is present.
/// A device ID and the token presented for it.
type Credentials = (DeviceId, Zeroizing<Vec<u8>>);

fn basic(headers: &HeaderMap) -> Result<Option<Credentials>, Refusal> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| Refusal::BadAuthorization("not ASCII"))?;
    let (scheme, creds) = v.trim().split_once(' ').ok_or(Refusal::BadAuthorization(
        "expected: Basic <base64 device-id:token>",
    ))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Refusal::BadAuthorization(
            "only the Basic scheme is supported",
        ));
    }
    let raw = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(creds.trim())
            .map_err(|_| Refusal::BadAuthorization("credentials are not base64"))?,
    );
    let colon = raw
        .iter()
        .position(|b| *b == b':')
        .ok_or(Refusal::BadAuthorization("credentials lack ':'"))?;
    let (user, pass) = raw.split_at(colon);
    let user = std::str::from_utf8(user)
        .map_err(|_| Refusal::BadAuthorization("device ID is not UTF-8"))?;
    let device = DeviceId::new(user)?;
    let token = Zeroizing::new(pass.get(1..).unwrap_or_default().to_vec());
    Ok(Some((device, token)))
}

/// Read a CSR body (headers checked, size bounded, base64 decoded).
async fn read_pkcs10(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Refusal> {
    let text = |h| {
        headers
            .get(h)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
    };
    let declared = text(header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<usize>().ok());
    if let Some(len) = declared.filter(|l| *l > MAX_BODY) {
        return Err(Refusal::BodyTooLarge { len, max: MAX_BODY });
    }
    // Check the headers before reading the body.
    super::pkcs10(
        text(header::CONTENT_TYPE.as_str()),
        text("content-transfer-encoding"),
        b"",
    )
    .or_else(|e| match e {
        Refusal::Base64 { .. } => Ok(Vec::new()),
        other => Err(other),
    })?;
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| Refusal::BodyTooLarge {
            len: MAX_BODY + 1,
            max: MAX_BODY,
        })?;
    super::pkcs10(
        text(header::CONTENT_TYPE.as_str()),
        text("content-transfer-encoding"),
        &bytes,
    )
}

/// Verify the CSR and check it against the profile and the authenticated device, issuing nothing.
fn precheck<S: TokenStore>(
    st: &EstState<S>,
    issuer: &str,
    der: &[u8],
    device: &DeviceId,
) -> Result<(), Refusal> {
    let csr = crate::csr::parse_and_verify(der)?;
    let profile = st
        .cfg
        .profiles
        .get(&st.cfg.device_profile)
        .ok_or_else(|| crate::RequestError::UnknownProfile(st.cfg.device_profile.clone()))?;
    st.svc
        .issuer(issuer)?
        .prepare(profile, &csr, Some(device), &[])?;
    Ok(())
}

fn strip_sign(serial: &[u8]) -> &[u8] {
    match serial {
        [0, rest @ ..] if rest.len() == crate::serial::SERIAL_LEN => rest,
        _ => serial,
    }
}
