//! The one error type of the keystore.

use std::path::PathBuf;

use crate::key::{KeyId, KeyPurpose, KeyUse};

/// What went wrong, grouped by who must act: the operator (sealed, unseal), the caller (policy refusals,
/// unknown keys), the storage (corrupt or tampered files, I/O), or a bug.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The keystore is sealed: an operator must unseal it (passphrase or shares) first.
    #[error("keystore is sealed: unseal it with the operator passphrase or the key shares")]
    Sealed,
    /// `unseal` was called on an unsealed keystore.
    #[error("keystore is already unsealed")]
    AlreadyUnsealed,
    /// Unsealing failed; the inner error says why.
    #[error("unseal failed: {0}")]
    Unseal(#[from] UnsealError),
    /// No key with this id.
    #[error("no key {id}")]
    NotFound {
        /// The id asked for.
        id: KeyId,
    },
    /// The key's purpose does not permit this use (for example a TLS key asked to sign a certificate).
    #[error("key {id} has purpose {purpose}, which does not permit {requested}")]
    PurposeForbids {
        /// The key.
        id: KeyId,
        /// Its purpose.
        purpose: KeyPurpose,
        /// What was asked.
        requested: KeyUse,
    },
    /// A label is empty, too long or has control characters.
    #[error("invalid key label ({len} bytes): 1 to {max} printable characters", max = crate::key::MAX_LABEL)]
    InvalidLabel {
        /// Its length in bytes.
        len: usize,
    },
    /// A certificate whose public key is not the key's.
    #[error("certificate does not hold the public key of key {id}")]
    CertificateMismatch {
        /// The key.
        id: KeyId,
    },
    /// A certificate that does not parse as X.509.
    #[error("certificate is not X.509 DER: {0}")]
    InvalidCertificate(#[source] der::Error),
    /// Share parameters outside 2 ≤ threshold ≤ count ≤ 255.
    #[error(
        "invalid share parameters: threshold {threshold} of {count} (need 2 <= threshold <= count <= 255)"
    )]
    InvalidShareParams {
        /// m.
        threshold: u8,
        /// n.
        count: u8,
    },
    /// A stored file does not parse: it is truncated, has trailing bytes or a value out of range.
    #[error("{path}: malformed {what} at byte {offset}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What was being read.
        what: &'static str,
        /// Byte offset where reading stopped.
        offset: usize,
    },
    /// A stored record or master failed authentication, or sits under another id or generation:
    /// tampering or corruption. Nothing from it was used.
    #[error("{path}: {what} failed authentication (tampered, swapped or corrupted)")]
    Tampered {
        /// The file.
        path: PathBuf,
        /// What failed.
        what: &'static str,
    },
    /// The directory already holds a keystore.
    #[error("{path} already holds a keystore")]
    AlreadyInitialized {
        /// The directory.
        path: PathBuf,
    },
    /// Another process (or another `SealedDir` in this one) has the keystore open.
    #[error("{path} is in use by another process")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A certificate larger than a record may hold.
    #[error("certificate of {len} bytes is larger than the {max} bytes a record holds", max = crate::record::MAX_CERT)]
    CertificateTooLarge {
        /// Its length.
        len: usize,
    },
    /// The directory holds no keystore (no `current` file).
    #[error("{path} holds no keystore (run `smtrust keystore init`)")]
    NotInitialized {
        /// The directory.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A cryptographic operation or key decoding failed.
    #[error("crypto: {0}")]
    Crypto(#[from] smtrust_crypto::Error),
    /// A test stopped a master rotation after this step (fault injection; never in production paths).
    #[error("rotation stopped by fault injection after step {step}")]
    FaultInjected {
        /// The last completed step.
        step: usize,
    },
    /// An internal invariant failed (a bug in smtrust).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Why an unseal attempt failed. None of these says which byte was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnsealError {
    /// The passphrase does not open the sealed master.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// Fewer distinct shares than the threshold.
    #[error("too few shares: {got} given, {need} needed")]
    TooFewShares {
        /// Distinct shares given.
        got: usize,
        /// The threshold.
        need: usize,
    },
    /// The same share index was given twice.
    #[error("share {index} was given more than once")]
    DuplicateShare {
        /// The repeated index.
        index: u8,
    },
    /// A share's text is malformed or its checksum does not match (a typo or damage).
    #[error("share number {position} in the input is corrupted (bad format or checksum)")]
    CorruptedShare {
        /// 1-based position in the list given.
        position: usize,
    },
    /// A share made for another keystore (or another threshold).
    #[error("share number {position} in the input belongs to another keystore")]
    ForeignShare {
        /// 1-based position in the list given.
        position: usize,
    },
    /// Well-formed shares that do not reconstruct the key (one was forged or altered consistently).
    #[error("the shares do not reconstruct the master key")]
    SharesDoNotMatch,
    /// Shares given to a passphrase keystore, or a passphrase to a shares keystore.
    #[error("this keystore is unsealed with {expected}")]
    WrongMethod {
        /// The method the keystore uses.
        expected: &'static str,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
