//! The one error type of the crypto crate.

/// What went wrong, grouped by who must act.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A key in a file or message could not be used (peer or operator input).
    #[error("key: {0}")]
    Key(#[from] KeyError),
    /// A signature did not verify, or was not a canonical DER `SEQUENCE { r, s }`.
    #[error("SM2 signature verification failed")]
    BadSignature,
    /// A signature's encoding is malformed (not canonical DER, r or s out of [1, n-1]).
    #[error("malformed SM2 signature: {0}")]
    MalformedSignature(&'static str),
    /// Authenticated decryption failed: wrong key, tampered data or associated data.
    #[error("decryption failed: wrong key or tampered data")]
    DecryptFailed,
    /// An input length is outside what the algorithm accepts.
    #[error("invalid length for {what}: {len} bytes")]
    InvalidLength {
        /// What had the wrong length.
        what: &'static str,
        /// The length given.
        len: usize,
    },
    /// A distinguishing ID longer than SM2 can encode (ENTL is 16 bits of bit length).
    #[error("distinguishing ID too long: {len} bytes (at most 8191)")]
    DistIdTooLong {
        /// The length given.
        len: usize,
    },
    /// PEM framing is wrong.
    #[error("PEM: {0}")]
    Pem(String),
    /// DER structure is wrong; `position` is the byte offset where decoding stopped, if known.
    #[error("DER: {kind} at byte {position:?}")]
    Der {
        /// What the decoder found.
        kind: String,
        /// Byte offset into the input.
        position: Option<usize>,
    },
    /// The operating system's random source failed.
    #[error("random source failed")]
    Random,
    /// An internal invariant failed (a bug in smtrust).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Why a key could not be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is for another algorithm (RSA, Ed25519, ...).
    #[error("not an SM2 key: algorithm {oid}")]
    NotSm2 {
        /// The algorithm OID found.
        oid: String,
    },
    /// An elliptic-curve key on another curve (e.g. P-256).
    #[error("EC key on curve {oid}, expected SM2 (1.2.156.10197.1.301)")]
    WrongCurve {
        /// The curve OID found.
        oid: String,
    },
    /// The scalar is zero or not below the group order, or the point is not on the curve.
    #[error("invalid SM2 key value")]
    InvalidValue,
    /// The private key's embedded public key does not match the private scalar.
    #[error("embedded public key does not match the private key")]
    PublicKeyMismatch,
    /// A PEM label that names no supported key format.
    #[error("unsupported PEM label {0:?}")]
    UnsupportedLabel(String),
    /// An encrypted key needs a passphrase.
    #[error("key is encrypted: a passphrase is required")]
    Encrypted,
    /// The passphrase was wrong or the encrypted key is corrupted.
    #[error("wrong passphrase or corrupted encrypted key")]
    WrongPassphrase,
    /// A PBKDF2 iteration count outside the accepted range (too weak, or too costly to try).
    #[error("PBKDF2 iteration count {count} outside [{min}, {max}]")]
    IterationCount {
        /// The count found or asked for (`u64::MAX` if it does not fit).
        count: u64,
        /// The fewest accepted.
        min: u32,
        /// The most accepted.
        max: u32,
    },
    /// An encryption scheme, PRF or cipher this crate does not read.
    #[error("unsupported key encryption: {0}")]
    UnsupportedEncryption(String),
}

impl From<der::Error> for Error {
    fn from(e: der::Error) -> Self {
        Error::Der {
            kind: e.kind().to_string(),
            position: e
                .position()
                .map(|p| usize::try_from(u32::from(p)).unwrap_or(usize::MAX)),
        }
    }
}
