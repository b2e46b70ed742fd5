//! SM2-with-SM3 signature verification for webpki and rustls, and the revocation hook.
//!
//! webpki picks an algorithm by byte-comparing AlgorithmIdentifier *contents* (no outer SEQUENCE) and hands the
//! SPKI BIT STRING (the SEC1 point) to it, with no context. Certificates are signed under the GM/T 0009 ID and
//! TLS 1.3 CertificateVerify under the RFC 8998 ID, so two objects with identical identifiers exist: the
//! certificate one goes in [`WebPkiSupportedAlgorithms::all`] (chains), the TLS one in `mapping` (handshake).

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

use rustls::SignatureScheme;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::{
    AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm, UnixTime,
};
use smtrust_crypto::sm2::{CertId, DistinguishingId, Sm2PublicKey, Tls13Id};

use crate::sign::SM2SIG_SM3;

mod chain;
mod peer;

#[cfg(feature = "axum")]
pub(crate) use chain::not_after as not_after_of;
pub use chain::{Purpose, Sm2ChainVerifier, TrustRoots};
pub use peer::{SmClientVerifier, SmServerVerifier};

/// SPKI AlgorithmIdentifier contents: id-ecPublicKey, namedCurve sm2p256v1 (1.2.156.10197.1.301).
const SPKI_SM2: &[u8] = &[
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, // 1.2.840.10045.2.1
    0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d, // 1.2.156.10197.1.301
];
/// Signature AlgorithmIdentifier contents: SM2-with-SM3 (1.2.156.10197.1.501), parameters absent.
const SIG_SM2_SM3: &[u8] = &[0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x75];
/// The same with NULL parameters, which some CAs write.
const SIG_SM2_SM3_NULL: &[u8] = &[
    0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x75, 0x05, 0x00,
];

/// SM2-with-SM3 under a distinguishing ID, as webpki sees it.
struct Sm2Sm3<I> {
    id: I,
    sig_alg: &'static [u8],
}

impl<I: DistinguishingId> fmt::Debug for Sm2Sm3<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SM2-with-SM3 (ID {:?})", self.id.as_str())
    }
}

impl<I: DistinguishingId> SignatureVerificationAlgorithm for Sm2Sm3<I> {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let pk = Sm2PublicKey::from_sec1_bytes(public_key).map_err(|_| InvalidSignature)?;
        let vk = pk
            .verifying_key(self.id.clone())
            .map_err(|_| InvalidSignature)?;
        vk.verify_der(message, signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        AlgorithmIdentifier::from_slice(SPKI_SM2)
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        AlgorithmIdentifier::from_slice(self.sig_alg)
    }
}

static SM2_SM3_CERT: Sm2Sm3<CertId> = Sm2Sm3 {
    id: CertId,
    sig_alg: SIG_SM2_SM3,
};
static SM2_SM3_CERT_NULL: Sm2Sm3<CertId> = Sm2Sm3 {
    id: CertId,
    sig_alg: SIG_SM2_SM3_NULL,
};
static SM2_SM3_TLS13: Sm2Sm3<Tls13Id> = Sm2Sm3 {
    id: Tls13Id,
    sig_alg: SIG_SM2_SM3,
};

/// Algorithms for certificate chains (GM/T 0009 ID).
pub(crate) static CHAIN_ALGS: &[&dyn SignatureVerificationAlgorithm] =
    &[&SM2_SM3_CERT, &SM2_SM3_CERT_NULL];

/// What the provider advertises: chains under the certificate ID, sm2sig_sm3 under the TLS 1.3 ID.
pub static SM_ALGORITHMS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: CHAIN_ALGS,
    mapping: &[(SM2SIG_SM3, &[&SM2_SM3_TLS13])],
};

/// A certificate whose revocation status the hook is asked about.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CertRef<'a> {
    /// Serial number, big-endian two's complement as in the certificate (no INTEGER header).
    pub serial: &'a [u8],
    /// The issuer Name, full DER (SEQUENCE included).
    pub issuer: &'a [u8],
    /// 0 for the end-entity certificate, 1 for its issuer, and so on (anchors are never asked).
    pub depth: usize,
}

/// What the hook says about a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationStatus {
    /// Not revoked nor suspended.
    Good,
    /// Revoked for good.
    Revoked,
    /// Suspended (certificateHold): refused now, may come back.
    Suspended,
    /// The hook cannot tell (no fresh CRL, OCSP down); [`UnknownStatus`] decides.
    Unknown,
}

/// What to do when the hook answers [`RevocationStatus::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnknownStatus {
    /// Refuse the peer (fail closed). The default.
    #[default]
    Refuse,
    /// Accept the peer (fail open).
    Allow,
}

/// The caller's answer to "is this serial of this issuer revoked or suspended now?". Called on every handshake
/// for the end-entity certificate and each intermediate of the verified path, so it must be fast (an in-memory
/// set fed by revocation events, not a network fetch).
pub trait RevocationCheck: Send + Sync + fmt::Debug {
    /// The status of `cert` at `now`.
    fn status(&self, cert: &CertRef<'_>, now: UnixTime) -> RevocationStatus;
}

/// (issuer Name DER, serial without sign byte).
type IssuerSerial = (Vec<u8>, Vec<u8>);

/// A simple in-memory revocation set keyed by (issuer Name DER, serial): what a gateway keeps, fed by events.
#[derive(Debug, Default)]
pub struct RevokedSet {
    entries: RwLock<HashMap<IssuerSerial, RevocationStatus>>,
}

impl RevokedSet {
    /// An empty set: every certificate is [`RevocationStatus::Good`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Record `serial` of `issuer` (full Name DER) as revoked or suspended; `Good` removes it (unsuspend).
    pub fn set(&self, issuer: &[u8], serial: &[u8], status: RevocationStatus) {
        let mut map = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (issuer.to_vec(), strip_sign_byte(serial).to_vec());
        if status == RevocationStatus::Good {
            map.remove(&key);
        } else {
            map.insert(key, status);
        }
    }
}

impl RevocationCheck for RevokedSet {
    fn status(&self, cert: &CertRef<'_>, _now: UnixTime) -> RevocationStatus {
        let map = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (cert.issuer.to_vec(), strip_sign_byte(cert.serial).to_vec());
        map.get(&key).copied().unwrap_or(RevocationStatus::Good)
    }
}

/// Serials are positive INTEGERs: a leading 0x00 only keeps the sign bit clear, so compare without it.
fn strip_sign_byte(serial: &[u8]) -> &[u8] {
    match serial {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => serial,
    }
}

/// The one signature scheme the SM verifiers accept.
pub(crate) fn sm_schemes() -> Vec<SignatureScheme> {
    vec![SM2SIG_SM3]
}
