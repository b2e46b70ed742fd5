#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod pem;
pub mod pkcs8;
pub mod rng;
pub mod sm2;
pub mod sm3;
pub mod sm4;
pub mod x509;

pub use error::{Error, KeyError};

/// Entry points for fuzz targets; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::pkcs8::fuzzing::*;
    pub use crate::sm2::fuzzing::*;
    pub use crate::x509::fuzzing::*;
}
