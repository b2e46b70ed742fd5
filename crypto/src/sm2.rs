//! SM2 (GB/T 32918, GM/T 0003): keys, signatures with a typed distinguishing ID, public-key encryption and
//! the curveSM2 key agreement TLS 1.3 uses (RFC 8998 §3.1).
//!
//! Signatures leave this module only as DER `SEQUENCE { r, s }` ([`Sm2Signature`]): X.509, CSRs, CRLs, OCSP
//! and TLS all carry that form, and raw `r || s` yields certificates other implementations reject.

mod distid;
mod fast;
mod key;
mod kx;
mod pke;
mod sign;

pub use distid::{CertId, CustomId, DistinguishingId, Tls13Id};
pub use key::{Sm2PublicKey, Sm2SecretKey};
pub use kx::{EphemeralSecret, SHARED_SECRET_LEN, UNCOMPRESSED_POINT_LEN};
pub use pke::{MAX_PLAINTEXT, decrypt_c1c3c2, decrypt_der, encrypt_c1c3c2, encrypt_der};
pub use sign::{Sm2Signature, Sm2Signer, Sm2SigningKey, Sm2VerifyingKey};

/// Operations that are needed for interoperability but weaken a guarantee. Reviewers grep for `danger`.
pub mod danger {
    pub use super::sign::danger::verify_with_empty_id;
}

/// Entry points for fuzz targets.
#[doc(hidden)]
pub mod fuzzing {
    /// Parse a DER signature strictly (must never panic).
    pub fn parse_signature(data: &[u8]) -> Result<super::Sm2Signature, crate::Error> {
        super::Sm2Signature::from_der(data)
    }

    /// Parse a DER signature; one that parses must re-encode to exactly the input, and survive the raw form.
    pub fn signature_round_trip(data: &[u8]) {
        if let Ok(sig) = super::Sm2Signature::from_der(data) {
            assert_eq!(sig.as_der(), data, "accepted a non-canonical signature");
            let raw = super::Sm2Signature::from_raw(&sig.to_raw());
            assert_eq!(raw.as_ref(), Ok(&sig), "raw round trip");
        }
    }

    /// Parse an SM2 ciphertext in both forms with a fixed key (must never panic).
    pub fn decrypt_any(data: &[u8]) {
        let sk = super::Sm2SecretKey::from_bytes(&[0x11; 32]).ok();
        if let Some(sk) = sk {
            let _ = super::decrypt_der(&sk, data);
            let _ = super::decrypt_c1c3c2(&sk, data);
        }
    }

    /// Parse an uncompressed or compressed SEC1 point (must never panic).
    pub fn parse_point(data: &[u8]) {
        let _ = super::Sm2PublicKey::from_sec1_bytes(data);
    }
}

#[cfg(test)]
#[path = "sm2/tests.rs"]
mod tests;
