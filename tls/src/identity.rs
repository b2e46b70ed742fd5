//! The device identity of a verified client certificate, parsed once (see design.md "Identities").
//!
//! The device id is carried in the SAN URI `urn:smtrust:device:<id>`, the subject `serialNumber` and the CN.
//! The SAN URI wins; a subject serialNumber that names another device makes the certificate ambiguous and is
//! refused; the CN is used only when neither of the other two is present.

use std::fmt;

use const_oid::db::rfc4519;
use der::{Decode, Encode};
use rustls::pki_types::{CertificateDer, UnixTime};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::error::IdentityError;

/// The URI prefix of device ids in SANs.
pub const DEVICE_URN_PREFIX: &str = "urn:smtrust:device:";
/// Longest device id accepted.
pub const MAX_DEVICE_ID_LEN: usize = 128;

/// A device id: 1..=128 characters of `[A-Za-z0-9._-]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

impl DeviceId {
    /// Check and wrap a device id.
    pub fn new(id: &str) -> Result<Self, IdentityError> {
        let ok = !id.is_empty()
            && id.len() <= MAX_DEVICE_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(id.to_owned()))
        } else {
            Err(IdentityError::InvalidDeviceId(
                id.chars().take(MAX_DEVICE_ID_LEN).collect(),
            ))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.0)
    }
}

/// SM3 of a certificate's DER: the key sessions and audit records use for "this exact certificate".
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sm3Fingerprint(pub [u8; 32]);

impl fmt::Display for Sm3Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sm3Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sm3Fingerprint({self})")
    }
}

/// Who a verified client certificate says the device is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceIdentity {
    /// The device id.
    pub device_id: DeviceId,
    /// Certificate serial number (big-endian, as encoded).
    pub serial: Vec<u8>,
    /// Issuer Name, full DER (what a revocation set is keyed by, with the serial).
    pub issuer_der: Vec<u8>,
    /// Issuer Name as RFC 4514 text, for logs.
    pub issuer: String,
    /// SM3 of the certificate DER.
    pub fingerprint: Sm3Fingerprint,
    /// notAfter.
    pub not_after: UnixTime,
}

impl DeviceIdentity {
    /// Parse the identity of an (already verified) end-entity certificate.
    pub fn from_certificate(cert: &CertificateDer<'_>) -> Result<Self, IdentityError> {
        let der_err = |e: der::Error| IdentityError::Der(e.to_string());
        let c = x509_cert::Certificate::from_der(cert.as_ref()).map_err(der_err)?;
        let tbs = c.tbs_certificate();
        let mut uri_id = None;
        if let Some((_, san)) = tbs.get_extension::<SubjectAltName>().map_err(der_err)? {
            for name in &san.0 {
                let GeneralName::UniformResourceIdentifier(uri) = name else {
                    continue;
                };
                let Some(id) = uri.as_str().strip_prefix(DEVICE_URN_PREFIX) else {
                    continue;
                };
                if let Some(first) = uri_id {
                    return Err(IdentityError::Conflicting {
                        first,
                        second: id.to_owned(),
                    });
                }
                uri_id = Some(id.to_owned());
            }
        }
        let serial_attr = directory_string(tbs.subject(), rfc4519::SERIAL_NUMBER);
        let cn = directory_string(tbs.subject(), rfc4519::COMMON_NAME);
        let id = match (uri_id, serial_attr) {
            (Some(u), Some(s)) if u != s => {
                return Err(IdentityError::Conflicting {
                    first: u,
                    second: s,
                });
            }
            (Some(u), _) => u,
            (None, Some(s)) => s,
            (None, None) => cn.ok_or(IdentityError::NoDeviceId)?,
        };
        let issuer_der = tbs.issuer().to_der().map_err(der_err)?;
        Ok(Self {
            device_id: DeviceId::new(&id)?,
            serial: tbs.serial_number().as_bytes().to_vec(),
            issuer_der,
            issuer: tbs.issuer().to_string(),
            fingerprint: Sm3Fingerprint(smtrust_crypto::sm3::digest(cert.as_ref())),
            not_after: UnixTime::since_unix_epoch(tbs.validity().not_after.to_unix_duration()),
        })
    }

    /// The identity of the client of a server connection whose handshake finished: our verifier accepted its
    /// chain, so the first peer certificate is the verified end entity.
    pub fn from_connection(conn: &rustls::ServerConnection) -> Result<Self, IdentityError> {
        if conn.is_handshaking() {
            return Err(IdentityError::NoPeerCertificate);
        }
        let cert = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or(IdentityError::NoPeerCertificate)?;
        Self::from_certificate(cert)
    }

    /// The serial number as lowercase hex.
    pub fn serial_hex(&self) -> String {
        hex::encode(&self.serial)
    }
}

/// The first attribute `oid` of `name` as text, if it is a string type.
fn directory_string(
    name: &x509_cert::name::Name,
    oid: der::asn1::ObjectIdentifier,
) -> Option<String> {
    let atv = name.iter().find(|a| a.oid == oid)?;
    use der::{Tag, Tagged};
    match atv.value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
            std::str::from_utf8(atv.value.value())
                .ok()
                .map(str::to_owned)
        }
        _ => None,
    }
}
