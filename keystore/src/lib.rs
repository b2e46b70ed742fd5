#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
mod backend;
mod error;
mod export;
mod key;
mod keystore;
mod master;
mod reader;
mod record;
mod sealed;
mod share;

pub use backend::{Backend, InitMethod, Status, Unlock, UnsealMethod};
pub use error::{Error, UnsealError};
pub use key::{
    Algorithm, KeyId, KeyInfo, KeyPurpose, KeyUse, MAX_LABEL, ParseKeyIdError, ParsePurposeError,
};
pub use keystore::{HandleId, KeyHandle, Keystore};
pub use master::Argon2Params;
pub use sealed::{AUDIT_TARGET, SealedDir};

/// Entry points for fuzz targets and property tests; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Decode a sealed record file (must never panic); `Some(encoded)` re-encodes what was decoded.
    pub fn decode_record(data: &[u8]) -> Option<Vec<u8>> {
        crate::record::SealedRecord::decode(data)
            .ok()
            .map(|r| r.encode())
    }

    /// Decode a sealed master file (must never panic); `Some(encoded)` re-encodes what was decoded.
    pub fn decode_master(data: &[u8]) -> Option<Vec<u8>> {
        crate::master::SealedMaster::decode(data)
            .ok()
            .map(|m| m.encode())
    }

    /// Parse a share text (must never panic); `Some(index)` for a well-formed, checksummed share.
    pub fn parse_share(text: &str) -> Option<u8> {
        crate::share::parse_index(text)
    }
}
