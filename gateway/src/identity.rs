//! The device identity read once from the verified client certificate.
//!
//! The certificate has already passed the TLS verifier (chain, expiry, signature); this module
//! only reads the facts admission needs. The device ID is the SAN URI `urn:smtrust:device:<id>`
//! (design: "Identities").

use crate::Refusal;
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// The SAN URI prefix carrying the device ID.
pub const DEVICE_URI_PREFIX: &str = "urn:smtrust:device:";

/// A certificate as revocation names it: issuer DN (DER) and serial number (DER content bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CertKey {
    /// The issuer's distinguished name, DER.
    pub issuer: Vec<u8>,
    /// The serial number's content octets, as in the certificate.
    pub serial: Vec<u8>,
}

impl CertKey {
    /// Builds a key from an issuer DN (DER) and serial bytes.
    pub fn new(issuer: Vec<u8>, serial: Vec<u8>) -> Self {
        Self { issuer, serial }
    }

    /// The key of a DER certificate.
    pub fn of_certificate(der: &[u8]) -> Option<Self> {
        let cert = Certificate::from_der(der).ok()?;
        let tbs = cert.tbs_certificate();
        Some(Self {
            issuer: tbs.issuer().to_der().ok()?,
            serial: tbs.serial_number().as_bytes().to_vec(),
        })
    }
}

/// Who is connected: from the verified end-entity certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceIdentity {
    /// The device ID.
    pub device_id: String,
    /// The certificate's revocation key.
    pub cert: CertKey,
}

impl DeviceIdentity {
    /// Reads the identity from a verified end-entity certificate (DER).
    pub fn from_certificate(der: &[u8]) -> Result<Self, Refusal> {
        let cert = Certificate::from_der(der).map_err(|_| Refusal::NoDeviceId)?;
        let tbs = cert.tbs_certificate();
        let san = tbs
            .get_extension::<SubjectAltName>()
            .map_err(|_| Refusal::NoDeviceId)?;
        let device_id = san
            .into_iter()
            .flat_map(|(_, san)| san.0)
            .find_map(|name| match name {
                GeneralName::UniformResourceIdentifier(uri) => uri
                    .as_str()
                    .strip_prefix(DEVICE_URI_PREFIX)
                    .filter(|id| valid_device_id(id))
                    .map(str::to_owned),
                _ => None,
            })
            .ok_or(Refusal::NoDeviceId)?;
        Ok(Self {
            device_id,
            cert: CertKey {
                issuer: tbs.issuer().to_der().map_err(|_| Refusal::NoDeviceId)?,
                serial: tbs.serial_number().as_bytes().to_vec(),
            },
        })
    }
}

/// A device ID is 1..=128 of `[A-Za-z0-9._-]`: it ends up in topics, headers and logs.
fn valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
