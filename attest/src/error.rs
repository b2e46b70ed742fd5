//! The one error type of the attestation crate.
//!
//! Appraisal findings (a bad nonce, a revoked certificate, a changed measurement) are not errors: they become
//! reasons in a signed result. `Error` is for what stops us from producing or reading a result at all.

use crate::jws::DecodeError;

/// What went wrong, grouped by who must act.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Peer input: evidence or a result could not be decoded.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// Peer input: the authenticated client (its TLS certificate) submitted evidence claiming another device.
    #[error("evidence claims device {claimed}, but the client authenticated as {authenticated}")]
    EvidenceFromOtherDevice {
        /// The device the TLS layer authenticated.
        authenticated: crate::DeviceId,
        /// The device ID in the evidence.
        claimed: crate::DeviceId,
    },
    /// Peer input: a signed result did not verify (`verify_result`).
    #[error("result rejected: {0}")]
    ResultRejected(&'static str),
    /// Peer input: a device ID outside the allowed alphabet or length.
    #[error("invalid device ID ({len} bytes): 1-64 of [A-Za-z0-9._-]")]
    InvalidDeviceId {
        /// Length of the rejected value.
        len: usize,
    },
    /// Administrator input: reference values that are not valid.
    #[error("reference values: {0}")]
    InvalidReference(String),
    /// Administrator input: a version that is not the next one (someone else registered in between).
    #[error("reference values for {model} {firmware}: expected version {expected}, got {given}")]
    VersionConflict {
        /// Product model.
        model: String,
        /// Firmware version.
        firmware: String,
        /// The version the store would accept.
        expected: u32,
        /// The version given.
        given: u32,
    },
    /// Our config: a trust anchor that is not an SM2 CA certificate.
    #[error("trust anchor {index}: {why}")]
    InvalidAnchor {
        /// Position in the list given.
        index: usize,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A device file to measure could not be read (device side).
    #[error("measuring {path}: {source}")]
    Measure {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// SM2, SM3 or DER failed.
    #[error("crypto: {0}")]
    Crypto(#[from] smtrust_crypto::Error),
    /// JSON encoding failed (a bug: our own types always encode).
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Our storage.
    #[cfg(feature = "sql")]
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    /// Our storage: the SQLite group commit holding this write failed (every write in it failed).
    #[cfg(feature = "sql")]
    #[error("storage: the batch this write was in did not commit: {0}")]
    BatchCommit(std::sync::Arc<sqlx::Error>),
    /// Our storage: the SQLite writer task is gone (its runtime shut down).
    #[cfg(feature = "sql")]
    #[error("storage: the SQLite writer task has stopped")]
    WriterStopped,
    /// Our storage returned a row we cannot read.
    #[error("storage row: {0}")]
    CorruptRow(&'static str),
    /// A time outside what we represent (before 1970 or past year 9999).
    #[error("time out of range")]
    TimeOutOfRange,
}
