//! The one error type of the CA crate, grouped by who must act.

use crate::serial::Serial;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request (CSR, OCSP request, device ID) is malformed or unacceptable: the requester must fix it.
    #[error("request refused: {0}")]
    Request(#[from] RequestError),
    /// Our configuration (profiles, CA settings) is wrong: the operator must fix it.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The store failed or holds an inconsistent state.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A certificate or CRL the CA was asked to act on is unknown or in the wrong state.
    #[error("state: {0}")]
    State(#[from] StateError),
    /// The crypto layer failed (signing, key encoding).
    #[error("crypto: {0}")]
    Crypto(#[from] smtrust_crypto::Error),
    /// DER encoding of something we built failed (a bug or an out-of-range value).
    #[error("DER encoding: {0}")]
    Der(#[from] der::Error),
    /// x509-cert's builder failed.
    #[error("certificate builder: {0}")]
    Builder(#[from] x509_cert::builder::Error),
    /// The keystore refused (sealed, unknown key, wrong purpose) or failed.
    #[error("keystore: {0}")]
    Keystore(#[from] smtrust_keystore::Error),
    /// A file of the CA's data directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Why a request (CSR, OCSP request, device ID, import) was refused. Nothing was stored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The input is larger than accepted.
    #[error("{what} is {len} bytes, at most {max} accepted")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// DER or PEM structure is wrong; `position` is the byte offset where decoding stopped, if known.
    #[error("malformed {what}: {detail} (at byte {position:?})")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// The decoder's finding.
        detail: String,
        /// Byte offset.
        position: Option<usize>,
    },
    /// The key is not an SM2 key (RSA, P-256, ...).
    #[error("not an SM2 key: {0}")]
    NotSm2(smtrust_crypto::KeyError),
    /// The CSR is signed with something other than SM2-with-SM3.
    #[error("CSR signature algorithm {oid} is not SM2-with-SM3 (1.2.156.10197.1.501)")]
    SignatureAlgorithm {
        /// The OID found.
        oid: String,
    },
    /// The CSR signature does not verify with the GM/T 0009 ID nor (where allowed) the empty ID.
    #[error("CSR signature does not verify with the SM2 ID 1234567812345678")]
    BadCsrSignature,
    /// The CSR was signed with the empty SM2 ID (OpenSSL without `distid`) and the profile refuses those.
    #[error(
        "CSR was signed with an empty SM2 distinguishing ID; make it with the GM/T 0009 ID: \
         openssl req -new -key KEY.pem -sm3 -sigopt distid:1234567812345678 -subj \"/CN=DEVICE-ID\" -out req.csr"
    )]
    EmptyIdCsr,
    /// The CSR asks for an extension this profile does not allow.
    #[error("profile {profile:?} does not allow the requested extension {oid}")]
    ExtensionNotAllowed {
        /// The profile.
        profile: String,
        /// The extension OID requested.
        oid: String,
    },
    /// The device ID is not syntactically valid.
    #[error("invalid device ID {id:?}: {why}")]
    InvalidDeviceId {
        /// The offending value (already length-limited).
        id: String,
        /// What rule it broke.
        why: &'static str,
    },
    /// The device ID is outside the issuing CA's namespace.
    #[error("device ID {id:?} is outside namespace prefix {prefix:?} of CA {issuer:?}")]
    OutsideNamespace {
        /// The device ID.
        id: String,
        /// The CA's prefix.
        prefix: String,
        /// The CA's label.
        issuer: String,
    },
    /// The device ID named by the caller and the one in the CSR subject disagree.
    #[error("device ID mismatch: request says {requested:?}, CSR subject says {in_csr:?}")]
    DeviceIdMismatch {
        /// From the caller.
        requested: String,
        /// From the CSR.
        in_csr: String,
    },
    /// The profile needs a device ID and none was given or found in the CSR.
    #[error("profile {0:?} needs a device ID (CSR subject serialNumber or CN)")]
    MissingDeviceId(String),
    /// The device already has an active (or suspended) certificate from this CA.
    #[error("device {id:?} already has an active certificate (serial {serial})")]
    DuplicateDevice {
        /// The device ID.
        id: String,
        /// The serial of its active certificate.
        serial: Serial,
    },
    /// A profile name the CA does not know.
    #[error("unknown profile {0:?}")]
    UnknownProfile(String),
    /// A certificate to import is not a CA certificate, or does not match the signer's key.
    #[error("cannot import CA certificate: {0}")]
    Import(&'static str),
    /// A DNS name in the request is not acceptable.
    #[error("invalid DNS name {0:?}")]
    InvalidDnsName(String),
}

/// Our configuration is inconsistent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML did not parse or had unknown fields.
    #[error("TOML: {0}")]
    Toml(String),
    /// A value is out of range.
    #[error("{field}: {why}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        why: &'static str,
    },
    /// No issuing CA with this label.
    #[error("unknown issuer {0:?}")]
    UnknownIssuer(String),
    /// No OCSP signer configured for this issuer.
    #[error("no OCSP signer for issuer {0:?}")]
    NoOcspSigner(String),
    /// `ca init` found a CA already in this directory.
    #[error("a CA already exists in {0} (remove it first, or use another --data-dir)")]
    AlreadyInitialised(std::path::PathBuf),
    /// No CA in this directory.
    #[error("no CA in {0}: run `smtrust ca init` first")]
    NotInitialised(std::path::PathBuf),
}

/// The certificate store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A database error.
    #[cfg(feature = "sql")]
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A freshly drawn serial collided (astronomically unlikely; the caller retries with a new one).
    #[error("serial {0} already exists")]
    SerialConflict(Serial),
    /// A row holds a value this code cannot read (written by a newer version, or corrupted).
    #[error("corrupt row: {0}")]
    Corrupt(&'static str),
    /// An event payload could not be decoded.
    #[error("event payload: {0}")]
    Event(String),
}

/// The CA was asked to act on something in the wrong state.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateError {
    /// No certificate with this serial from this issuer.
    #[error("no certificate with serial {0}")]
    UnknownSerial(Serial),
    /// Already revoked (permanently); revocation cannot change.
    #[error("certificate {0} is already revoked")]
    AlreadyRevoked(Serial),
    /// Resume asked for a certificate that is not on hold.
    #[error("certificate {0} is not suspended")]
    NotSuspended(Serial),
}

impl Error {
    /// Whether the requester (not the operator or the CA) must act: maps to 4xx / EST 400 / OCSP malformed.
    pub fn is_request_error(&self) -> bool {
        matches!(self, Error::Request(_))
    }
}

impl RequestError {
    pub(crate) fn malformed(what: &'static str, e: &der::Error) -> Self {
        RequestError::Malformed {
            what,
            detail: e.kind().to_string(),
            position: e
                .position()
                .map(|p| usize::try_from(u32::from(p)).unwrap_or(usize::MAX)),
        }
    }
}
