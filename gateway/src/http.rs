//! `http` mode: HTTP/1.1 keep-alive or, when the device chose ALPN `h2`, HTTP/2 (hyper) after
//! admission. Every request (every HTTP/2 stream) is decided by policy on method and path.
//! Incoming `X-Smtrust-*` headers are stripped; the platform gets `X-Smtrust-Device-Id` and
//! `X-Smtrust-Passport` (a signed [`crate::passport::Passport`]), always over HTTP/1.1
//! ([`upstream`]): platforms speak it, and an HTTP/2 request maps onto it losslessly here.

mod h2;
mod upstream;

use crate::Refusal;
use crate::config::ListenerConfig;
use crate::gateway::Shared;
use crate::passport::Passport;
use crate::registry::CloseReason;
use crate::tcp::closed_refusal;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Bytes, Incoming};
use hyper::header::{
    CONNECTION, COOKIE, HOST, HeaderMap, HeaderName, HeaderValue, TE, TRAILER, TRANSFER_ENCODING,
    UPGRADE,
};
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use smtrust_policy::{AttestationStatus, Principal};
use smtrust_tls::DeviceIdentity;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;
use upstream::Upstream;

/// Header prefix the gateway owns: anything a device sends under it is removed.
pub const HEADER_PREFIX: &str = "x-smtrust-";
/// The device ID header.
pub const DEVICE_ID_HEADER: &str = "x-smtrust-device-id";
/// The passport header.
pub const PASSPORT_HEADER: &str = "x-smtrust-passport";
/// ALPN of `http` listeners, in preference order; no ALPN means HTTP/1.1.
pub(crate) const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

type Body = BoxBody<Bytes, hyper::Error>;

/// The admitted device of a connection.
pub(crate) struct Device<'a> {
    pub(crate) identity: &'a DeviceIdentity,
    pub(crate) principal: Principal,
    pub(crate) attestation: AttestationStatus,
}

struct State<'a> {
    shared: &'a Shared,
    listener: &'a ListenerConfig,
    device: Device<'a>,
    upstream: Upstream,
    /// The last passport: reused while its policy version holds and half its life remains.
    passport: std::sync::Mutex<Option<(u64, u64, HeaderValue)>>,
}

pub(crate) async fn serve<D>(
    shared: &Shared,
    listener: &ListenerConfig,
    io: TlsStream<D>,
    device: Device<'_>,
    mut closed: watch::Receiver<Option<CloseReason>>,
) -> Result<(), Refusal>
where
    D: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let h2 = io.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let state = &State {
        shared,
        listener,
        device,
        upstream: Upstream::new(!h2),
        passport: std::sync::Mutex::new(None),
    };
    let svc = hyper::service::service_fn(move |req| handle(state, req));
    let limits = shared.config.limits;
    if h2 {
        return h2::serve(TokioIo::new(io), svc, &limits, &mut closed).await;
    }
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(limits.max_packet_size.max(8192))
        .serve_connection(TokioIo::new(io), svc);
    tokio::select! {
        r = conn => r.map_err(|e| if e.is_timeout() { Refusal::Idle } else { Refusal::Malformed }),
        _ = closed.changed() => Err(closed_refusal(*closed.borrow())),
    }
}

async fn handle(state: &State<'_>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let m = &state.shared.metrics;
    m.http_requests.fetch_add(1, Ordering::Relaxed);
    let decision = state.shared.policy.decide_http(
        &state.device.principal,
        req.method().as_str(),
        req.uri().path(),
    );
    let response = if decision.allowed {
        forward(state, req, decision.bundle_version).await
    } else {
        m.http_denied.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(device_id = %state.device.identity.device_id, method = %req.method(), path = req.uri().path(), "request denied by policy");
        plain(StatusCode::FORBIDDEN, "forbidden by policy\n")
    };
    m.http_request_seconds.observe(started.elapsed());
    Ok(response)
}

async fn forward(
    state: &State<'_>,
    mut req: Request<Incoming>,
    policy_version: u64,
) -> Response<Body> {
    if req.version() == Version::HTTP_2 && to_http11(&mut req).is_none() {
        return plain(StatusCode::BAD_REQUEST, "request cannot be forwarded\n");
    }
    let headers = req.headers_mut();
    strip_hop_by_hop(headers);
    let owned: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with(HEADER_PREFIX))
        .cloned()
        .collect();
    for k in owned {
        headers.remove(&k);
    }
    let Ok(id) = HeaderValue::from_str(state.device.identity.device_id.as_str()) else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "device id\n");
    };
    let Some(passport) = passport(state, policy_version) else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "passport\n");
    };
    headers.insert(HeaderName::from_static(DEVICE_ID_HEADER), id);
    headers.insert(HeaderName::from_static(PASSPORT_HEADER), passport);
    let mut sender = match state.upstream.take(state.listener).await {
        Ok(s) => s,
        Err(r) => {
            tracing::debug!(refusal = %r, "platform unreachable");
            return plain(StatusCode::BAD_GATEWAY, "platform unreachable\n");
        }
    };
    if sender.ready().await.is_err() {
        return plain(StatusCode::BAD_GATEWAY, "platform connection closed\n");
    }
    match sender.send_request(req).await {
        Ok(mut resp) => {
            state.upstream.give_back(sender);
            strip_hop_by_hop(resp.headers_mut());
            resp.map(BodyExt::boxed)
        }
        Err(e) => {
            tracing::debug!(error = %e, "platform request failed");
            plain(StatusCode::BAD_GATEWAY, "platform request failed\n")
        }
    }
}

/// Removes the hop-by-hop fields (RFC 9110 §7.6.1) and those `Connection` names: they are about
/// one connection (device or platform side), so they never cross the proxy. A platform's
/// `Connection: close` must not close the device's connection.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    for name in ["keep-alive", "proxy-connection"] {
        headers.remove(name);
    }
}

/// An HTTP/2 request as HTTP/1.1 for the platform: origin-form target, `Host` from the
/// `:authority`, `cookie` fields joined into one (RFC 9113 §8.2.3, §8.3.1). hyper's HTTP/2
/// server already refused connection-specific header fields (§8.2.2).
fn to_http11(req: &mut Request<Incoming>) -> Option<()> {
    let uri = req.uri().clone();
    if !req.headers().contains_key(HOST)
        && let Some(authority) = uri.authority()
    {
        let host = HeaderValue::from_str(authority.as_str()).ok()?;
        req.headers_mut().insert(HOST, host);
    }
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    *req.uri_mut() = target.parse().ok()?;
    let cookies: Vec<&[u8]> = req
        .headers()
        .get_all(COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if cookies.len() > 1 {
        let joined = HeaderValue::from_bytes(&cookies.join(b"; ".as_slice())).ok()?;
        req.headers_mut().insert(COOKIE, joined);
    }
    *req.version_mut() = Version::HTTP_11;
    Some(())
}

/// The connection's passport for `policy_version`, signed anew when the version changed or
/// less than half its lifetime is left.
fn passport(state: &State<'_>, policy_version: u64) -> Option<HeaderValue> {
    let signer = state.shared.passport.as_ref()?;
    let now = unix_now();
    let ttl = signer.lifetime().as_secs().max(2);
    let mut cached = state.passport.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((pv, exp, value)) = cached.as_ref()
        && *pv == policy_version
        && *exp > now + ttl / 2
    {
        return Some(value.clone());
    }
    let claims = Passport {
        sub: state.device.identity.device_id.as_str().to_owned(),
        serial: state.device.identity.serial_hex(),
        attestation: state.device.attestation.as_str().to_owned(),
        policy_version,
        iat: now,
        exp: now + ttl,
    };
    let token = signer
        .sign(&claims)
        .inspect_err(|e| tracing::warn!(error = %e, "passport signing failed"))
        .ok()?;
    let value = HeaderValue::from_str(&token).ok()?;
    *cached = Some((policy_version, claims.exp, value.clone()));
    Some(value)
}

#[allow(clippy::disallowed_methods)] // the gateway is an edge: it reads the clock
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}
