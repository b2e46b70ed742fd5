//! The `serverkeygen` response (RFC 7030 §4.4.2): `multipart/mixed` with the private key part first, then the
//! certificate part, each base64.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{CERTS_ONLY, encode_base64};
use crate::Error;

/// Content type of the key part: PKCS#8 (here an `EncryptedPrivateKeyInfo`, RFC 5958 §3).
pub const KEY_PART: &str = "application/pkcs8";

/// Build the response from the key DER and the certs-only DER.
pub(super) fn serverkeygen(key_der: &[u8], certs_der: &[u8]) -> Result<Response, Error> {
    let boundary = format!(
        "smtrust-est-{}",
        hex::encode(smtrust_crypto::rng::bytes::<12>()?)
    );
    let mut body = String::new();
    for (ct, der) in [(KEY_PART, key_der), (CERTS_ONLY, certs_der)] {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Type: {ct}\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
            encode_base64(der)
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let mut resp = (StatusCode::OK, body).into_response();
    let ct = HeaderValue::from_str(&format!("multipart/mixed; boundary={boundary}"))
        .map_err(|_| crate::StoreError::Corrupt("multipart boundary"))?;
    resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    Ok(resp)
}
