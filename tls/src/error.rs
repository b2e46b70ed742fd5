//! The one error type of the tls crate, and the typed refusals a handshake can end with.
//!
//! Refusals are mapped to `rustls::Error` (and so to a TLS alert) in one place, [`From<Refusal> for
//! rustls::Error`]. Where rustls has a matching `CertificateError` the standard variant is used so the peer gets
//! the right alert (certificate_revoked, certificate_expired, unknown_ca, ...); the refusal itself is always
//! recoverable with [`Refusal::from_rustls`].

use std::sync::Arc;

use rustls::{CertificateError, OtherError};

/// What went wrong, grouped by who must act.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A peer or its certificate was refused.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    /// Our configuration is wrong (no SM suite, a key that does not match its certificate, ...).
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// rustls reported an error.
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
    /// An SM primitive failed.
    #[error("crypto: {0}")]
    Crypto(#[from] smtrust_crypto::Error),
    /// A certificate could not be parsed for its identity.
    #[error("certificate identity: {0}")]
    Identity(#[from] IdentityError),
}

/// Why a configuration cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// RFC 8998 couples the SM suites to curveSM2 and sm2sig_sm3; this provider breaks the coupling.
    #[error("provider mixes SM suites with non-SM groups or lacks curveSM2: {found}")]
    SmCouplingBroken {
        /// What was found instead.
        found: String,
    },
    /// No trust anchor was given or one could not be parsed.
    #[error("trust anchor {index}: {reason}")]
    TrustAnchor {
        /// Position in the list given.
        index: usize,
        /// webpki's reason.
        reason: String,
    },
    /// The certificate chain is empty.
    #[error("empty certificate chain")]
    EmptyChain,
    /// The signer's public key is not the one in the end-entity certificate.
    #[error("signer key does not match the end-entity certificate")]
    KeyMismatch,
    /// The end-entity certificate does not hold an SM2 key.
    #[error("end-entity certificate is not SM2")]
    NotSm2,
}

/// Why a peer, its certificate or its ClientHello was refused. Each variant is one refusal a test can name.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The chain does not lead to one of our trust anchors.
    #[error("unknown certificate authority")]
    UnknownCa,
    /// The revocation hook says the certificate is revoked.
    #[error("certificate serial {serial} revoked")]
    Revoked {
        /// Serial number, hex.
        serial: String,
    },
    /// The revocation hook says the certificate is suspended (certificateHold).
    #[error("certificate serial {serial} suspended")]
    Suspended {
        /// Serial number, hex.
        serial: String,
    },
    /// The revocation hook could not tell, and the policy refuses unknown status.
    #[error("revocation status of serial {serial} unknown")]
    RevocationUnknown {
        /// Serial number, hex.
        serial: String,
    },
    /// A certificate in the chain has expired.
    #[error("certificate expired at {not_after} (now {now})")]
    Expired {
        /// notAfter, seconds since the epoch.
        not_after: u64,
        /// The verification time, seconds since the epoch.
        now: u64,
    },
    /// A certificate in the chain is not valid yet.
    #[error("certificate not valid yet")]
    NotYetValid,
    /// KeyUsage lacks digitalSignature, or ExtendedKeyUsage lacks the purpose (serverAuth / clientAuth).
    #[error("wrong key usage: {0}")]
    WrongKeyUsage(&'static str),
    /// A signature verifies only under another SM2 distinguishing ID (empty or the certificate ID where the TLS
    /// 1.3 ID belongs, or the other way round).
    #[error("SM2 signature made with the wrong distinguishing ID ({0})")]
    WrongDistinguishingId(&'static str),
    /// A signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The server certificate does not name the server we asked for.
    #[error("certificate not valid for the requested name")]
    NameMismatch,
    /// A CA's name constraints exclude a name in the chain.
    #[error("name constraint violated")]
    NameConstraint,
    /// A CA's pathLenConstraint is exceeded.
    #[error("path length constraint violated")]
    PathLength,
    /// The certificate is malformed or uses an algorithm we do not accept (not SM2-with-SM3).
    #[error("bad certificate: {0}")]
    BadCertificate(String),
    /// The client offered no SM suite with curveSM2 and sm2sig_sm3 while this listener requires SM.
    #[error("client offers no RFC 8998 SM suite (downgrade refused)")]
    SmRequired,
}

impl Refusal {
    /// Recover the refusal from the error a rustls connection ended with (ours or the peer's alert is not
    /// included: only refusals our verifiers or listener made).
    pub fn from_rustls(err: &rustls::Error) -> Option<Refusal> {
        let rustls::Error::InvalidCertificate(ce) = err else {
            return match err {
                rustls::Error::Other(o) => o.0.downcast_ref::<Refusal>().cloned(),
                _ => None,
            };
        };
        Some(match ce {
            CertificateError::UnknownIssuer => Refusal::UnknownCa,
            CertificateError::Revoked => Refusal::Revoked {
                serial: String::new(),
            },
            CertificateError::Expired => Refusal::Expired {
                not_after: 0,
                now: 0,
            },
            CertificateError::ExpiredContext { time, not_after } => Refusal::Expired {
                not_after: not_after.as_secs(),
                now: time.as_secs(),
            },
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                Refusal::NotYetValid
            }
            CertificateError::BadSignature => Refusal::BadSignature,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Refusal::NameMismatch
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                Refusal::WrongKeyUsage("extended key usage")
            }
            CertificateError::Other(o) => o.0.downcast_ref::<Refusal>().cloned()?,
            _ => return None,
        })
    }
}

/// The one mapping from our refusals to rustls (and so to alerts).
impl From<Refusal> for rustls::Error {
    fn from(r: Refusal) -> Self {
        let ce = match &r {
            Refusal::UnknownCa => CertificateError::UnknownIssuer,
            Refusal::Revoked { .. } => CertificateError::Revoked,
            Refusal::Expired { not_after, now } => CertificateError::ExpiredContext {
                time: rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                    *now,
                )),
                not_after: rustls_pki_types::UnixTime::since_unix_epoch(
                    std::time::Duration::from_secs(*not_after),
                ),
            },
            Refusal::NotYetValid => CertificateError::NotValidYet,
            Refusal::BadSignature => CertificateError::BadSignature,
            Refusal::NameMismatch => CertificateError::NotValidForName,
            Refusal::SmRequired => {
                return rustls::Error::PeerIncompatible(
                    rustls::PeerIncompatible::NoCipherSuitesInCommon,
                );
            }
            // No standard variant: the alert is bad_certificate and the refusal rides along typed.
            _ => CertificateError::Other(OtherError(Arc::new(r))),
        };
        rustls::Error::InvalidCertificate(ce)
    }
}

/// Why a certificate yields no [`crate::DeviceIdentity`].
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    /// The connection has no verified peer certificate.
    #[error("no peer certificate")]
    NoPeerCertificate,
    /// The certificate could not be parsed.
    #[error("certificate DER: {0}")]
    Der(String),
    /// No `urn:smtrust:device:` URI, serialNumber or CN names a device.
    #[error("certificate names no device")]
    NoDeviceId,
    /// Two places in the certificate name different devices.
    #[error("certificate names two devices: {first:?} and {second:?}")]
    Conflicting {
        /// One name.
        first: String,
        /// The other.
        second: String,
    },
    /// A device id with characters outside `[A-Za-z0-9._-]` or longer than 128 bytes.
    #[error("invalid device id {0:?}")]
    InvalidDeviceId(String),
}
