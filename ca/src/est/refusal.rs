//! Why an EST request was not served, and the one mapping to HTTP (status, headers, a plain-text message).
//! Internal causes are logged, never sent.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::token::TokenRefusal;
use crate::{Error, RequestError};

/// An EST refusal. Nothing was issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Wrong `Content-Type`.
    #[error("Content-Type must be {expected}, got {found:?}")]
    MediaType {
        /// What the operation takes.
        expected: &'static str,
        /// What was sent (media type only).
        found: String,
    },
    /// `Content-Transfer-Encoding` other than base64.
    #[error("Content-Transfer-Encoding must be base64, got {found:?}")]
    TransferEncoding {
        /// What was sent.
        found: String,
    },
    /// The body is not base64.
    #[error("body is not base64: {detail}")]
    Base64 {
        /// The decoder's finding.
        detail: String,
    },
    /// The body is larger than accepted.
    #[error("body is {len} bytes or more, at most {max} accepted")]
    BodyTooLarge {
        /// Bytes seen.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// No credentials: neither an enrollment token nor a client certificate the CA recognises.
    #[error(
        "authentication required: send the device ID and enrollment token with HTTP Basic auth, or connect with a bootstrap certificate"
    )]
    NoAuth,
    /// Malformed `Authorization` header.
    #[error("malformed Authorization header: {0}")]
    BadAuthorization(&'static str),
    /// The enrollment token was refused.
    #[error("{0}")]
    Token(TokenRefusal),
    /// Authenticated, but not allowed to do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The client certificate is not an active certificate of this CA for the purpose.
    #[error("client certificate refused: {0}")]
    Certificate(&'static str),
    /// No issuing CA under this label.
    #[error("no EST service for CA label {0:?}")]
    UnknownLabel(String),
    /// Unknown EST operation.
    #[error("unknown EST operation {0:?}")]
    UnknownOperation(String),
    /// The operation exists but not with this method.
    #[error("method not allowed; use {allow}")]
    Method {
        /// The method to use.
        allow: &'static str,
    },
    /// Too many requests for this device.
    #[error("too many EST requests for this device; retry in {} s", .retry_after.as_secs())]
    RateLimited {
        /// When to retry.
        retry_after: Duration,
    },
    /// Another request for this device is being processed (RFC 7030 §4.2.3: 202 with Retry-After).
    #[error("a request for this device is in progress; retry in {} s", .retry_after.as_secs())]
    Deferred {
        /// When to retry.
        retry_after: Duration,
    },
    /// The CSR or device was refused by the CA.
    #[error("{0}")]
    Request(RequestError),
    /// Something on our side failed (logged).
    #[error("internal error")]
    Internal(#[source] Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        match e {
            Error::Request(r) => Refusal::Request(r),
            other => Refusal::Internal(other),
        }
    }
}

impl From<RequestError> for Refusal {
    fn from(e: RequestError) -> Self {
        Refusal::Request(e)
    }
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::MediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::TransferEncoding { .. }
            | Refusal::Base64 { .. }
            | Refusal::BadAuthorization(_) => StatusCode::BAD_REQUEST,
            Refusal::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::NoAuth | Refusal::Token(_) => StatusCode::UNAUTHORIZED,
            Refusal::Forbidden(_) | Refusal::Certificate(_) => StatusCode::FORBIDDEN,
            Refusal::UnknownLabel(_) | Refusal::UnknownOperation(_) => StatusCode::NOT_FOUND,
            Refusal::Method { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Deferred { .. } => StatusCode::ACCEPTED,
            Refusal::Request(r) => match r {
                RequestError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                RequestError::DeviceIdMismatch { .. } | RequestError::OutsideNamespace { .. } => {
                    StatusCode::FORBIDDEN
                }
                RequestError::DuplicateDevice { .. } => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            },
            Refusal::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Refusal::Internal(e) => tracing::error!(error = %e, "EST request failed"),
            other => tracing::debug!(refusal = %other, "EST request refused"),
        }
        let mut resp = (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{self}\n"),
        )
            .into_response();
        let h = resp.headers_mut();
        match &self {
            Refusal::RateLimited { retry_after } | Refusal::Deferred { retry_after } => {
                h.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs()),
                );
            }
            Refusal::NoAuth | Refusal::Token(_) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"smtrust EST\""),
                );
            }
            Refusal::Method { allow } => {
                h.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            _ => {}
        }
        resp
    }
}
