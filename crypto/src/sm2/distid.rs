//! The SM2 distinguishing ID as a type.
//!
//! `Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A)` (GB/T 32918.2 §5.5) binds every signature to an
//! ID. Certificates, CSRs, CRLs, OCSP and attestation use `1234567812345678` (GM/T 0009); TLS 1.3
//! CertificateVerify uses `TLSv1.3+GM+Cipher+Suite` (RFC 8998 §3.2). Mixing them up is the most common SM2
//! interoperability bug, so the ID is a type parameter of every key object and cannot be swapped silently.
//!
//! This is the only module that constructs `sm2::dsa` key objects (clippy `disallowed-methods` enforces it).

use crate::Error;

mod sealed {
    pub trait Sealed {}
}

/// A distinguishing ID. Implemented by [`CertId`], [`Tls13Id`] and [`CustomId`] only.
pub trait DistinguishingId:
    sealed::Sealed + Clone + core::fmt::Debug + Send + Sync + 'static
{
    /// The ID's bytes (as text: the `sm2` crate takes IDs as UTF-8).
    fn as_str(&self) -> &str;
}

/// The GM/T 0009 default ID `1234567812345678`, used for certificates, CSRs, CRLs, OCSP, evidence and results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CertId;

/// The RFC 8998 TLS 1.3 ID `TLSv1.3+GM+Cipher+Suite`, used for CertificateVerify.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tls13Id;

/// An explicit custom ID, for peers that agreed on one out of band.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomId(String);

impl CertId {
    /// The ID's value.
    pub const VALUE: &'static str = "1234567812345678";
}

impl Tls13Id {
    /// The ID's value.
    pub const VALUE: &'static str = "TLSv1.3+GM+Cipher+Suite";
}

impl CustomId {
    /// A custom ID; at most 8191 bytes, since ENTL is the ID's length in bits as 16 bits.
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        if id.len() > 8191 {
            return Err(Error::DistIdTooLong { len: id.len() });
        }
        Ok(Self(id))
    }
}

impl sealed::Sealed for CertId {}
impl sealed::Sealed for Tls13Id {}
impl sealed::Sealed for CustomId {}

impl DistinguishingId for CertId {
    fn as_str(&self) -> &str {
        Self::VALUE
    }
}
impl DistinguishingId for Tls13Id {
    fn as_str(&self) -> &str {
        Self::VALUE
    }
}
impl DistinguishingId for CustomId {
    fn as_str(&self) -> &str {
        &self.0
    }
}

/// Build the `sm2` signing key object for an ID: the reference signer of the tests and of the differential fuzz
/// target, never used to sign for real.
#[allow(clippy::disallowed_methods)] // the one permitted call site
pub(super) fn signing_key(
    id: &str,
    secret: &sm2::SecretKey,
) -> Result<sm2::dsa::SigningKey, Error> {
    sm2::dsa::SigningKey::new(id, secret)
        .map_err(|_| Error::Internal("SM2 signing key from a valid secret"))
}

/// `Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A)` (GB/T 32918.2 §5.5).
pub(super) fn za(id: &str, public: &sm2::PublicKey) -> Result<[u8; 32], Error> {
    use elliptic_curve::sec1::ToSec1Point;
    let entl = u16::try_from(id.len().saturating_mul(8))
        .map_err(|_| Error::DistIdTooLong { len: id.len() })?;
    let point = public.to_sec1_point(false);
    let xy = point
        .as_bytes()
        .get(1..65)
        .ok_or(Error::Internal("uncompressed SEC1 point is 65 bytes"))?;
    Ok(crate::sm3::digest_parts(&[
        &entl.to_be_bytes(),
        id.as_bytes(),
        &super::fast::A_BE,
        &super::fast::B_BE,
        &super::fast::GX_BE,
        &super::fast::GY_BE,
        xy,
    ]))
}

/// Build the `sm2` verifying key object for an ID (computes and caches `Z_A`): the reference verifier of the
/// tests and of the differential fuzz target (`fuzzing::verify_differential`), never used to verify for real.
#[allow(clippy::disallowed_methods)] // the one permitted call site
pub(super) fn verifying_key(
    id: &str,
    public: sm2::PublicKey,
) -> Result<sm2::dsa::VerifyingKey, Error> {
    sm2::dsa::VerifyingKey::new(id, public)
        .map_err(|_| Error::Internal("SM2 verifying key from a valid point"))
}
