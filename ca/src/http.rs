//! axum routers that serve CRLs, CA certificates and OCSP; the server mounts them.
//!
//! Routes (for each issuer label `L`):
//! - `GET /crl/L.crl` full CRL, `GET /crl/L-delta.crl` delta CRL (DER, `application/pkix-crl`)
//! - `GET /ca/L.crt` the CA certificate (DER, `application/pkix-cert`, for AIA caIssuers)
//! - `POST /ocsp/L` (body: DER `OCSPRequest`) and `GET /ocsp/L/<base64>` (RFC 6960 Appendix A)

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::ocsp::{self, asn1::OcspResponseStatus};
use crate::service::CaService;
use crate::store::Store;

fn der(content_type: &'static str, body: impl Into<Bytes>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=60, public"),
        ],
        body.into(),
    )
        .into_response()
}

fn ocsp_body(body: Vec<u8>) -> Response {
    der("application/ocsp-response", body)
}

/// A shared (cached) response as a body without copying it.
struct Shared(std::sync::Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

fn ocsp_shared(body: std::sync::Arc<Vec<u8>>) -> Response {
    der("application/ocsp-response", Bytes::from_owner(Shared(body)))
}

fn error(e: &crate::Error) -> Response {
    // Library errors say nothing of HTTP; this is the one mapping.
    let status = match e {
        crate::Error::Config(crate::ConfigError::UnknownIssuer(_)) => StatusCode::NOT_FOUND,
        crate::Error::Request(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e, "CA HTTP request failed");
    }
    (status, status.canonical_reason().unwrap_or("error")).into_response()
}

/// CRL and CA-certificate routes.
pub fn crl_router<S: Store>(svc: CaService<S>) -> Router {
    Router::new()
        .route("/crl/{file}", get(crl::<S>))
        .route("/ca/{file}", get(ca_cert::<S>))
        .with_state(svc)
}

/// OCSP routes.
pub fn ocsp_router<S: Store>(svc: CaService<S>) -> Router {
    Router::new()
        .route("/ocsp/{issuer}", post(ocsp_post::<S>))
        .route("/ocsp/{issuer}/{*req}", get(ocsp_get::<S>))
        .with_state(svc)
}

async fn crl<S: Store>(State(svc): State<CaService<S>>, Path(file): Path<String>) -> Response {
    let Some(stem) = file.strip_suffix(".crl") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (label, delta) = match stem.strip_suffix("-delta") {
        Some(l) => (l, true),
        None => (stem, false),
    };
    match svc.latest_crl(label, delta).await {
        Ok(c) => der("application/pkix-crl", c.der),
        Err(e) => error(&e),
    }
}

async fn ca_cert<S: Store>(State(svc): State<CaService<S>>, Path(file): Path<String>) -> Response {
    let Some(label) = file.strip_suffix(".crt") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match svc.issuer(label) {
        Ok(i) => der("application/pkix-cert", i.certificate_der().to_vec()),
        Err(e) => error(&e),
    }
}

async fn ocsp_post<S: Store>(
    State(svc): State<CaService<S>>,
    Path(issuer): Path<String>,
    body: Bytes,
) -> Response {
    if body.len() > ocsp::MAX_REQUEST_LEN {
        return ocsp_body(ocsp::error_response(OcspResponseStatus::MalformedRequest));
    }
    match svc.ocsp(&issuer, &body).await {
        Ok(r) => ocsp_shared(r),
        Err(e) => ocsp_error(&e),
    }
}

async fn ocsp_get<S: Store>(
    State(svc): State<CaService<S>>,
    Path((issuer, req)): Path<(String, String)>,
) -> Response {
    match ocsp::parse_get_path(&req) {
        Ok(p) => match svc.ocsp_parsed(&issuer, p).await {
            Ok(r) => ocsp_shared(r),
            Err(e) => ocsp_error(&e),
        },
        Err(_) => ocsp_body(ocsp::error_response(OcspResponseStatus::MalformedRequest)),
    }
}

fn ocsp_error(e: &crate::Error) -> Response {
    match e {
        crate::Error::Config(_) => {
            ocsp_body(ocsp::error_response(OcspResponseStatus::Unauthorized))
        }
        _ => {
            tracing::error!(error = %e, "OCSP failed");
            ocsp_body(ocsp::error_response(OcspResponseStatus::InternalError))
        }
    }
}
