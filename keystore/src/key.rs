//! What a stored key is: its id, purpose, algorithm and public metadata.

use core::fmt;
use core::str::FromStr;

use smtrust_crypto::sm2::Sm2PublicKey;

use crate::Error;

/// Longest label accepted, in bytes.
pub const MAX_LABEL: usize = 200;

/// A key's identifier: 16 random bytes, shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 16]);

impl KeyId {
    pub(crate) fn random() -> Result<Self, Error> {
        Ok(Self(smtrust_crypto::rng::bytes::<16>()?))
    }

    pub(crate) fn from_bytes(b: [u8; 16]) -> Self {
        Self(b)
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A key id that is not 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a key id is 32 hex digits")]
pub struct ParseKeyIdError;

impl FromStr for KeyId {
    type Err = ParseKeyIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut b = [0u8; 16];
        hex::decode_to_slice(s, &mut b).map_err(|_| ParseKeyIdError)?;
        Ok(Self(b))
    }
}

/// What a key is for. Fixed at generation or import, bound into the sealed record, and checked on every use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyPurpose {
    /// A root or issuing CA: certificates and CRLs (certificate ID).
    CaSigning,
    /// An OCSP responder (certificate ID).
    OcspSigning,
    /// Signed attestation results (certificate ID).
    AttestationResult,
    /// Audit log checkpoints (certificate ID).
    AuditCheckpoint,
    /// A TLS 1.3 server's CertificateVerify (RFC 8998 TLS ID).
    TlsServer,
    /// A device key made for a factory bundle: never signs here, may be exported once encrypted.
    DeviceExport,
    /// The gateway's signed device passports (certificate ID).
    PassportSigning,
}

/// A use a caller asks for; [`KeyPurpose::permits`] decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyUse {
    /// Sign with the certificate ID `1234567812345678`.
    SignCertId,
    /// Sign with the TLS 1.3 ID `TLSv1.3+GM+Cipher+Suite`.
    SignTls13Id,
    /// Export the private key, encrypted.
    Export,
}

impl fmt::Display for KeyUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SignCertId => "signing with the certificate ID",
            Self::SignTls13Id => "signing with the TLS 1.3 ID",
            Self::Export => "export",
        })
    }
}

impl KeyPurpose {
    /// Every purpose, in code order.
    pub const ALL: [KeyPurpose; 7] = [
        Self::CaSigning,
        Self::OcspSigning,
        Self::AttestationResult,
        Self::AuditCheckpoint,
        Self::TlsServer,
        Self::DeviceExport,
        Self::PassportSigning,
    ];

    /// Whether this purpose permits `use_`.
    pub fn permits(self, use_: KeyUse) -> bool {
        match use_ {
            KeyUse::SignCertId => matches!(
                self,
                Self::CaSigning
                    | Self::OcspSigning
                    | Self::AttestationResult
                    | Self::AuditCheckpoint
                    | Self::PassportSigning
            ),
            KeyUse::SignTls13Id => self == Self::TlsServer,
            KeyUse::Export => self == Self::DeviceExport,
        }
    }

    /// The stable name used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CaSigning => "ca-signing",
            Self::OcspSigning => "ocsp-signing",
            Self::AttestationResult => "attestation-result",
            Self::AuditCheckpoint => "audit-checkpoint",
            Self::TlsServer => "tls-server",
            Self::DeviceExport => "device-export",
            Self::PassportSigning => "passport-signing",
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Self::CaSigning => 1,
            Self::OcspSigning => 2,
            Self::AttestationResult => 3,
            Self::AuditCheckpoint => 4,
            Self::TlsServer => 5,
            Self::DeviceExport => 6,
            Self::PassportSigning => 7,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == c)
    }
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyPurpose {
    type Err = ParsePurposeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(ParsePurposeError)
    }
}

/// A purpose name that is not one of [`KeyPurpose::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown key purpose (expected ca-signing, ocsp-signing, attestation-result, audit-checkpoint, tls-server, device-export or passport-signing)"
)]
pub struct ParsePurposeError;

/// The key algorithm. Only SM2 today; the code is stored so a record can never be read as another algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// SM2 (GB/T 32918) on curveSM2.
    Sm2,
}

impl Algorithm {
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Sm2 => 1,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<Self> {
        (c == 1).then_some(Self::Sm2)
    }
}

/// A key's public metadata, as `list` and `info` return it. Holds nothing secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The id.
    pub id: KeyId,
    /// What it is for.
    pub purpose: KeyPurpose,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// The operator's label.
    pub label: String,
    /// Creation (or import) time, seconds since the Unix epoch.
    pub created: u64,
    /// The public key.
    pub public_key: Sm2PublicKey,
    /// The associated certificate (DER), if one was stored.
    pub certificate: Option<Vec<u8>>,
}

pub(crate) fn check_label(label: &str) -> Result<(), Error> {
    if label.is_empty() || label.len() > MAX_LABEL || label.chars().any(char::is_control) {
        return Err(Error::InvalidLabel { len: label.len() });
    }
    Ok(())
}
