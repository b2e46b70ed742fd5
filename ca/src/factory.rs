//! Factory provisioning: bulk device identities that survive crashes (issue 7).
//!
//! A batch reads a manifest (CSRs, or device ids for key generation), records every device in a journal
//! (SQLite), then issues in chunks on every core. Each chunk's outputs are made durable (temporary name,
//! `syncfs`/fsync, rename) before the chunk is committed to the journal, so after `kill -9` at any moment
//! [`Factory::resume`] finishes the batch: outputs already renamed are adopted, serials that may have been
//! signed but not committed are burned and replaced, nothing is issued twice. The batch id is derived from the
//! SM3 hash of the manifest and the issuer, so re-running the same manifest resumes or re-reports.
//!
//! Issuance here is a self-contained device profile (subject CN and serialNumber = device id, SAN URI
//! `urn:smtrust:device:<id>`, clientAuth). It should move onto `ca::authority` once that API lands.

mod issuer;
mod journal;
mod keys;
mod manifest;
mod output;
mod run;
mod timing;
mod worker;

pub use issuer::{DevCsr, Issuer, make_csr, self_signed_issuer};
pub use journal::{DumpItem, JournalDump, dump};
pub use keys::{BATCH_KDF_ITERATIONS, BUNDLE_KDF_SCHEME, BatchKdf, KeyProtection, Secret};
pub use manifest::{Entry, InputFormat, Refusal};
pub use run::{BatchReport, BatchSpec, Factory, Mode, Progress, RefusedItem, SERIAL_LEN};
pub use timing::{Stage, StageTime, Timings};

/// Why a factory operation failed as a whole (per-device refusals are [`Refusal`]s in the report).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FactoryError {
    /// A manifest or input file could not be read at all.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The issuer certificate or key is unusable.
    #[error("issuer: {0}")]
    Issuer(String),
    /// SM2, PEM or DER failure in our own material.
    #[error(transparent)]
    Crypto(#[from] smtrust_crypto::Error),
    /// DER encoding of something we built.
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    /// The journal database failed.
    #[error("journal: {0}")]
    Journal(#[from] sqlx::Error),
    /// No batch with this id in the journal.
    #[error("no batch {0} in the journal")]
    UnknownBatch(String),
    /// The batch was started with other parameters (issuer, output, mode) than now given.
    #[error("batch {batch} was started with a different {what}")]
    Mismatch {
        /// The batch id.
        batch: String,
        /// What differs.
        what: &'static str,
    },
    /// An output file exists but does not match the journal (edited or foreign).
    #[error("output {path} does not match the journal: {why}")]
    Output {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        why: &'static str,
    },
    /// The whole manifest is unusable (empty, unknown format).
    #[error("manifest: {0}")]
    Manifest(String),
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> FactoryError + '_ {
    move |source| FactoryError::Io {
        path: path.to_path_buf(),
        source,
    }
}
