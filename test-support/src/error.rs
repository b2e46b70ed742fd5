use std::path::PathBuf;
use std::time::Duration;

/// Why a helper could not do its job (the peer's own verdicts are values, not errors).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The program ran but exited unsuccessfully where success was required.
    #[error("{program} {args} exited with {code:?}; stderr: {stderr}")]
    Failed {
        /// The program.
        program: PathBuf,
        /// Its arguments, space-joined.
        args: String,
        /// Its exit code (None when killed by a signal).
        code: Option<i32>,
        /// Its standard error, lossily decoded.
        stderr: String,
    },
    /// The program did not finish in time and was killed.
    #[error("{program} did not finish within {limit:?}")]
    Timeout {
        /// The program.
        program: PathBuf,
        /// The limit that passed.
        limit: Duration,
    },
    /// A file or pipe operation failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The object handed to `sm2sigcheck` is not the DER it should be.
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    /// PEM input could not be decoded.
    #[error("PEM: {0}")]
    Pem(#[from] der::pem::Error),
    /// The signed object is not signed with SM2-with-SM3.
    #[error("signature algorithm is {found}, not SM2-with-SM3 (1.2.156.10197.1.501)")]
    NotSm2 {
        /// The algorithm OID found.
        found: der::asn1::ObjectIdentifier,
    },
    /// An OCSPResponse carries no BasicOCSPResponse (status not successful, or another type).
    #[error("OCSP response carries no BasicOCSPResponse")]
    NoBasicOcspResponse,
    /// A server child process ended before it was ready.
    #[error("{program} exited before it was ready; output: {output}")]
    NotReady {
        /// The program.
        program: PathBuf,
        /// What it printed.
        output: String,
    },
}
