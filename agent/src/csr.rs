//! PKCS#10 requests (RFC 2986) signed with the device key under the GM/T 0009 ID, the form the CA verifies.

use base64::Engine;
use der::Encode;
use smtrust_crypto::sm2::{CertId, Sm2SecretKey};
use smtrust_crypto::x509::{DerSignature, X509Signer};
use x509_cert::builder::{Builder, RequestBuilder};

use crate::Error;

/// A DER CSR for `device_id` (already validated: `[A-Za-z0-9._-]`), subject `CN=<device_id>`; the CA writes
/// the full subject (serialNumber, CN, O) and the SAN URI from the device ID.
pub(crate) fn build(key: &Sm2SecretKey, device_id: &str) -> Result<Vec<u8>, Error> {
    let signing = key.signing_key(CertId)?;
    let signer = X509Signer::new(&signing);
    let subject = format!("CN={device_id}").parse()?;
    let req = RequestBuilder::new(subject)?.build::<_, DerSignature>(&signer)?;
    Ok(req.to_der()?)
}

/// Base64 in 64-character lines (what EST bodies carry).
pub(crate) fn base64_lines(der: &[u8]) -> Vec<u8> {
    let flat = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = Vec::with_capacity(flat.len() + flat.len() / 32 + 2);
    for chunk in flat.as_bytes().chunks(64) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out
}
