#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod appraisal;
mod chain;
mod challenge;
pub mod device;
mod ear;
mod error;
mod evidence;
#[cfg(feature = "http")]
pub mod http;
mod identity;
mod jws;
pub mod reference;
mod service;
#[cfg(feature = "sql")]
pub mod sql;

// The public interface is:
pub use appraisal::{
    Appraisal, AppraisalConfig, Appraiser, CertRef, CertStatus, CertificateStatus, Checked,
};
pub use chain::{ChainFailure, TrustAnchors, VerifiedLeaf};
pub use challenge::{Challenge, MemoryNonceStore, Nonce, NonceOutcome, NonceStore};
pub use ear::{
    ATTESTATION_SERVICE_URI, AttestationResult, EAR_PROFILE, EAR_TYP, Reason, SUBMOD, Status,
    TrustVector, claim, verify_result, verify_result_with,
};
pub use error::Error;
pub use evidence::{
    Claims, DebugState, EVIDENCE_PROFILE, EVIDENCE_TYP, Evidence, MAX_CERT, MAX_CHAIN,
    MAX_MEASUREMENTS, MAX_TEXT, Measurement, MeasurementKind, decode_evidence,
};
pub use identity::{DeviceId, SAN_URI_PREFIX};
pub use jws::{ALG_SM2_SM3, DecodeError, MAX_TOKEN, Part};
pub use reference::{MemoryReferenceStore, ReferenceStore, ReferenceValues};
pub use service::{
    AttestationDowngrade, AttestationService, MemoryResultStore, ResultStore, ServiceConfig,
    StoredResult, Submitted,
};

/// Entry points for fuzz targets; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Decode evidence (must never panic).
    pub fn decode_evidence(data: &[u8]) {
        let _ = crate::evidence::decode_evidence(data);
    }

    /// Import reference values (must never panic).
    pub fn import_reference(data: &[u8]) {
        let _ = crate::reference::import(data);
    }
}
