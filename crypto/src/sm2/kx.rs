//! Ephemeral ECDH on curveSM2 for TLS 1.3 (RFC 8998 §3.1: "the shared secret is the x-coordinate").
//!
//! This is plain ECDHE on the SM2 curve, not the GM/T 0003.3 SM2 key exchange protocol (TLCP uses that).

use zeroize::Zeroizing;

use super::key::{Sm2PublicKey, Sm2SecretKey};
use crate::Error;

/// Length of an uncompressed point on the wire.
pub const UNCOMPRESSED_POINT_LEN: usize = 65;
/// Length of the shared secret (the x-coordinate).
pub const SHARED_SECRET_LEN: usize = 32;

/// An ephemeral key pair for one handshake. Zeroized on drop.
#[derive(Debug)]
pub struct EphemeralSecret {
    key: Sm2SecretKey,
}

impl EphemeralSecret {
    /// A fresh ephemeral key.
    pub fn generate() -> Result<Self, Error> {
        Ok(Self {
            key: Sm2SecretKey::generate()?,
        })
    }

    /// Our share: the uncompressed point.
    pub fn public_bytes(&self) -> [u8; UNCOMPRESSED_POINT_LEN] {
        self.key.public_key().to_sec1_uncompressed()
    }

    /// Agree with the peer's share. The peer's point must be an uncompressed, on-curve, non-identity point.
    pub fn agree(&self, peer: &[u8]) -> Result<Zeroizing<[u8; SHARED_SECRET_LEN]>, Error> {
        if peer.len() != UNCOMPRESSED_POINT_LEN || peer.first() != Some(&0x04) {
            return Err(Error::InvalidLength {
                what: "curveSM2 key share",
                len: peer.len(),
            });
        }
        let peer = Sm2PublicKey::from_sec1_bytes(peer)?;
        let shared = elliptic_curve::ecdh::diffie_hellman(
            self.key.inner().to_nonzero_scalar(),
            peer.inner().as_affine(),
        );
        let mut out = Zeroizing::new([0u8; SHARED_SECRET_LEN]);
        out.copy_from_slice(shared.raw_secret_bytes());
        Ok(out)
    }
}
