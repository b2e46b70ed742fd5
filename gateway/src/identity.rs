//! How revocation names a certificate. The device identity itself is `smtrust_tls::DeviceIdentity`,
//! parsed once by the `tls` crate from the certificate its verifier accepted.

use der::{Decode, Encode};
use smtrust_tls::DeviceIdentity;
use x509_cert::Certificate;

/// A certificate as revocation names it: issuer DN (DER) and serial number.
///
/// The serial is kept without the INTEGER's sign byte (a leading 0x00 before a byte with the top
/// bit set), so keys built from a certificate, a CA event and the TLS verifier's `CertRef` agree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CertKey {
    /// The issuer's distinguished name, full DER (SEQUENCE included).
    pub issuer: Vec<u8>,
    /// The serial number's magnitude, big-endian.
    pub serial: Vec<u8>,
}

impl CertKey {
    /// Builds a key from an issuer DN (DER) and serial bytes (with or without the sign byte).
    pub fn new(issuer: Vec<u8>, serial: &[u8]) -> Self {
        Self {
            issuer,
            serial: strip_sign_byte(serial).to_vec(),
        }
    }

    /// The key of a DER certificate.
    pub fn of_certificate(der: &[u8]) -> Option<Self> {
        let cert = Certificate::from_der(der).ok()?;
        let tbs = cert.tbs_certificate();
        Some(Self::new(
            tbs.issuer().to_der().ok()?,
            tbs.serial_number().as_bytes(),
        ))
    }

    /// The key of a verified device identity.
    pub fn of_identity(identity: &DeviceIdentity) -> Self {
        Self::new(identity.issuer_der.clone(), &identity.serial)
    }
}

/// Serials are positive INTEGERs: a leading 0x00 only keeps the sign bit clear.
fn strip_sign_byte(serial: &[u8]) -> &[u8] {
    match serial {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => serial,
    }
}

#[cfg(test)]
mod tests {
    use super::CertKey;

    #[test]
    fn sign_byte_does_not_change_the_key() {
        let a = CertKey::new(vec![0x30, 0], &[0x00, 0x80, 0x01]);
        let b = CertKey::new(vec![0x30, 0], &[0x80, 0x01]);
        assert_eq!(a, b);
        assert_eq!(CertKey::new(vec![], &[0]).serial, vec![0]);
    }
}
