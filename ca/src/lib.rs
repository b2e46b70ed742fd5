#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod authority;
pub mod crl;
pub mod csr;
pub mod device;
mod error;
#[cfg(feature = "http")]
pub mod est;
pub mod factory;
#[cfg(feature = "sql")]
pub mod home;
#[cfg(feature = "http")]
pub mod http;
pub mod ocsp;
pub mod profile;
pub mod revocation;
pub mod serial;
pub mod service;
pub mod store;

pub use authority::{CaLimits, IssuedCert, Issuer, IssuerConfig, PreparedCert};
pub use crl::{CrlEntry, CrlKind};
pub use csr::{CsrDistId, VerifiedCsr};
pub use device::{DeviceId, Namespace};
pub use error::{ConfigError, Error, RequestError, StateError, StoreError};
pub use ocsp::{OcspStatus, Responder};
pub use profile::{Profile, ProfileKind, Profiles};
pub use revocation::{CertStatus, RevocationEvent, RevocationKind, RevocationReason};
pub use serial::Serial;
pub use service::{CaService, IssueRequest, KeygenOutput};
pub use store::{CertRecord, Store, StoredCrl};
#[cfg(feature = "sql")]
pub use store::{RevocationListener, SqlStore};

/// Entry points for fuzz targets; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Parse and verify a CSR (must never panic).
    pub fn csr(data: &[u8]) {
        let _ = crate::csr::parse_and_verify(data);
    }

    /// Parse an OCSP request, DER and GET forms (must never panic).
    pub fn ocsp_request(data: &[u8]) {
        let _ = crate::ocsp::parse_request(data);
        if let Ok(s) = core::str::from_utf8(data) {
            let _ = crate::ocsp::parse_get_path(s);
        }
    }
}
