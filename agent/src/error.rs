//! The one error type of the agent, grouped by who must act.

use std::path::PathBuf;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file of the agent directory could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The agent directory lacks something this step needs (run the step that makes it first).
    #[error("{what} missing in {dir}: {hint}")]
    Missing {
        /// What is missing.
        what: &'static str,
        /// The agent directory.
        dir: PathBuf,
        /// What to do.
        hint: &'static str,
    },
    /// A key file already exists and would be overwritten.
    #[error("{0} exists; refusing to overwrite a device key")]
    KeyExists(PathBuf),
    /// The server (EST or attestation) answered with an error status; `message` is its text.
    #[error("server refused ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's message (truncated).
        message: String,
        /// Retry-After, seconds, when given.
        retry_after: Option<u64>,
    },
    /// The server's answer could not be parsed.
    #[error("bad server response: {0}")]
    Response(String),
    /// Network or HTTP failure talking to the EST server.
    #[error("EST transport: {0}")]
    Transport(String),
    /// The device ID is not acceptable.
    #[error("invalid device ID: {0}")]
    DeviceId(#[from] smtrust_tls::IdentityError),
    /// The certificate received or stored does not fit the device key.
    #[error("certificate does not match the device key")]
    KeyMismatch,
    /// TLS configuration failed.
    #[error("TLS: {0}")]
    Tls(#[from] smtrust_tls::Error),
    /// An SM primitive or key encoding failed.
    #[error("crypto: {0}")]
    Crypto(#[from] smtrust_crypto::Error),
    /// Building the CSR failed.
    #[error("CSR builder: {0}")]
    Builder(#[from] x509_cert::builder::Error),
    /// Attestation: a measurement could not be taken, evidence not built, or the result not verified.
    #[error("attestation: {0}")]
    Attest(#[from] smtrust_attest::Error),
    /// The attestation configuration (`attest.json`) is malformed.
    #[error("{path}: {message}")]
    AttestConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// DER encoding or decoding failed.
    #[error("DER: {0}")]
    Der(#[from] der::Error),
}

impl Error {
    pub(crate) fn file(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::File { path, source }
    }
}
