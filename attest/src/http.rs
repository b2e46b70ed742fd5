//! The attestation HTTP API (feature `http`), JSON and JWS over the server's TLS listener:
//!
//! | route                              | body in                     | answer                                        |
//! |------------------------------------|-----------------------------|-----------------------------------------------|
//! | `POST /attest/v1/challenge`        | —                           | `{"nonce": "<b64url>", "expires_at": <secs>}` |
//! | `POST /attest/v1/evidence`         | evidence JWS (`application/jose`) | 200 result JWS (`application/jose`), whatever its status |
//! | `GET /attest/v1/result/{device_id}`| —                           | 200 latest result JWS, or 404; own ID only (403) |
//!
//! The device is the one its TLS client certificate names. This crate does not depend on the TLS crate
//! (layering), so the server puts a [`VerifiedDevice`] into each request's extensions (from
//! `smtrust_tls::serve::Peer`); a request without one gets 401. A challenge is minted for that device only,
//! and evidence claiming any other device is refused with 403 before its nonce is touched. Errors are
//! `{"error": "<code>", "message": "<safe text>"}`; the full cause goes to the log.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::challenge::NonceStore;
use crate::jws::b64url;
use crate::reference::ReferenceStore;
use crate::service::{AttestationService, ResultStore};
use crate::{DeviceId, Error};

/// The device authenticated by the TLS layer (its client certificate's device ID). The server inserts it
/// as a request extension; handlers trust it and nothing in the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::exhaustive_structs)] // exactly the authenticated device ID, by design
pub struct VerifiedDevice(pub DeviceId);

/// The JOSE compact serialization media type (RFC 7515 §9.2.1).
pub const APPLICATION_JOSE: &str = "application/jose";

/// Where the handlers read the time; tests pass a fixed clock.
pub type Clock = fn() -> SystemTime;

#[allow(clippy::disallowed_methods)] // the HTTP edge is where the clock is read
fn system_clock() -> SystemTime {
    SystemTime::now()
}

struct Shared<N, R, S> {
    service: Arc<AttestationService<N, R, S>>,
    clock: Clock,
}

impl<N, R, S> Clone for Shared<N, R, S> {
    fn clone(&self) -> Self {
        Self {
            service: Arc::clone(&self.service),
            clock: self.clock,
        }
    }
}

/// The attestation routes, reading the system clock. Nest or merge it into the server's router, behind the
/// layer that inserts [`VerifiedDevice`].
pub fn router<N, R, S>(service: Arc<AttestationService<N, R, S>>) -> Router
where
    N: NonceStore + 'static,
    R: ReferenceStore + 'static,
    S: ResultStore + 'static,
{
    router_with_clock(service, system_clock)
}

/// [`router`] with an explicit clock.
pub fn router_with_clock<N, R, S>(service: Arc<AttestationService<N, R, S>>, clock: Clock) -> Router
where
    N: NonceStore + 'static,
    R: ReferenceStore + 'static,
    S: ResultStore + 'static,
{
    Router::new()
        .route("/attest/v1/challenge", post(challenge::<N, R, S>))
        .route("/attest/v1/evidence", post(evidence::<N, R, S>))
        .route("/attest/v1/result/{device_id}", get(result::<N, R, S>))
        .with_state(Shared { service, clock })
}

/// A refusal: stable code and safe message to the client.
fn refuse(status: StatusCode, code: &'static str, message: &str) -> Response {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn unauthenticated() -> Response {
    refuse(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "a device client certificate is required",
    )
}

/// Our own failure (storage, signing): logged in full, a generic 500 to the client.
fn internal(e: &Error) -> Response {
    tracing::error!(error = %e, "attestation request failed");
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the attestation service failed; see the server log",
    )
}

fn jose(token: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, APPLICATION_JOSE)],
        token,
    )
        .into_response()
}

async fn challenge<N, R, S>(
    State(shared): State<Shared<N, R, S>>,
    device: Option<axum::Extension<VerifiedDevice>>,
) -> Response
where
    N: NonceStore + 'static,
    R: ReferenceStore + 'static,
    S: ResultStore + 'static,
{
    let Some(axum::Extension(VerifiedDevice(device))) = device else {
        return unauthenticated();
    };
    match shared.service.challenge(&device, (shared.clock)()).await {
        Ok(c) => {
            let body = serde_json::json!({
                "nonce": b64url(c.nonce.as_bytes()),
                "expires_at": c.expires_at,
            })
            .to_string();
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
        Err(e) => internal(&e),
    }
}

async fn evidence<N, R, S>(
    State(shared): State<Shared<N, R, S>>,
    device: Option<axum::Extension<VerifiedDevice>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response
where
    N: NonceStore + 'static,
    R: ReferenceStore + 'static,
    S: ResultStore + 'static,
{
    let Some(axum::Extension(VerifiedDevice(device))) = device else {
        return unauthenticated();
    };
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim());
    if media.is_some_and(|m| !m.eq_ignore_ascii_case(APPLICATION_JOSE)) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media_type",
            "evidence must be sent as application/jose",
        );
    }
    match shared
        .service
        .submit_from(&device, &body, (shared.clock)())
        .await
    {
        Ok(submitted) => jose(submitted.token),
        Err(Error::Decode(e)) => {
            tracing::info!(device_id = %device, error = %e, "undecodable evidence");
            refuse(
                StatusCode::BAD_REQUEST,
                "malformed_evidence",
                &e.to_string(),
            )
        }
        Err(e @ Error::EvidenceFromOtherDevice { .. }) => {
            tracing::warn!(error = %e, "evidence for another device refused");
            refuse(StatusCode::FORBIDDEN, "other_device", &e.to_string())
        }
        Err(e) => internal(&e),
    }
}

async fn result<N, R, S>(
    State(shared): State<Shared<N, R, S>>,
    device: Option<axum::Extension<VerifiedDevice>>,
    Path(device_id): Path<String>,
) -> Response
where
    N: NonceStore + 'static,
    R: ReferenceStore + 'static,
    S: ResultStore + 'static,
{
    let Some(axum::Extension(VerifiedDevice(device))) = device else {
        return unauthenticated();
    };
    let Ok(id) = DeviceId::new(device_id) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "device_id",
            "invalid device ID: 1-64 of [A-Za-z0-9._-]",
        );
    };
    // A device reads its own state only; gateways get results from the service and its events.
    if id != device {
        return refuse(
            StatusCode::FORBIDDEN,
            "other_device",
            "a device may read only its own result",
        );
    }
    match shared.service.latest(&id).await {
        Ok(Some(stored)) => jose(stored.token),
        Ok(None) => refuse(
            StatusCode::NOT_FOUND,
            "no_result",
            "no result for this device",
        ),
        Err(e) => internal(&e),
    }
}
