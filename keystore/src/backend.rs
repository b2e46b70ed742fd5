//! The seam between callers and where keys live. The software sealed store ([`crate::SealedDir`]) is the
//! first implementation; a PKCS#11 token or a GM/T 0018 SDF device implements the same trait, keeping keys
//! inside the device, and callers (who hold a [`crate::Keystore`]) do not change.

use smtrust_crypto::sm2::{Sm2SecretKey, Sm2Signature};
use zeroize::Zeroizing;

use crate::Error;
use crate::key::{KeyId, KeyInfo, KeyPurpose, KeyUse};
use crate::master::Argon2Params;

/// What unseals a keystore.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Unlock<'a> {
    /// The operator passphrase.
    Passphrase(&'a [u8]),
    /// At least `threshold` share texts (`smtrust-share-…`), in any order.
    Shares(&'a [String]),
}

impl core::fmt::Debug for Unlock<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Passphrase(_) => f.write_str("Unlock::Passphrase(..)"),
            Self::Shares(s) => write!(f, "Unlock::Shares({} shares)", s.len()),
        }
    }
}

/// How a new keystore will be unsealed.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum InitMethod<'a> {
    /// An operator passphrase stretched with Argon2id.
    Passphrase {
        /// The passphrase.
        passphrase: &'a [u8],
        /// Argon2id costs ([`Argon2Params::DEFAULT`] in production).
        params: Argon2Params,
    },
    /// `threshold` of `count` Shamir shares, printed once at init.
    Shares {
        /// m: shares needed.
        threshold: u8,
        /// n: shares made.
        count: u8,
    },
}

impl core::fmt::Debug for InitMethod<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Passphrase { params, .. } => write!(f, "InitMethod::Passphrase({params:?})"),
            Self::Shares { threshold, count } => {
                write!(f, "InitMethod::Shares({threshold} of {count})")
            }
        }
    }
}

/// How a keystore is unsealed (public facts only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnsealMethod {
    /// Passphrase with these Argon2id costs.
    Passphrase(Argon2Params),
    /// m of n shares.
    Shares {
        /// m.
        threshold: u8,
        /// n.
        count: u8,
    },
}

/// What `status` reports. Works while sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// Whether the keystore is sealed.
    pub sealed: bool,
    /// The master key generation (1 at init, +1 per rotation).
    pub generation: u64,
    /// How it unseals.
    pub method: UnsealMethod,
    /// Number of keys, known only while unsealed.
    pub keys: Option<usize>,
}

/// Where keys live. Every method except `status` and `seal` fails with [`Error::Sealed`] while sealed.
/// Implementations are shared across threads; all methods take `&self`.
pub trait Backend: Send + Sync {
    /// Sealed or not, master generation, unseal method.
    fn status(&self) -> Result<Status, Error>;
    /// Unseal: derive or rebuild the key-encryption key, open the master, decrypt and cache every key.
    fn unseal(&self, unlock: Unlock<'_>) -> Result<(), Error>;
    /// Forget the master and every decrypted key (zeroized). Idempotent.
    fn seal(&self);
    /// Make a new key pair and store it sealed.
    fn generate(&self, purpose: KeyPurpose, label: &str) -> Result<KeyInfo, Error>;
    /// Store an existing private key sealed.
    fn import(
        &self,
        purpose: KeyPurpose,
        label: &str,
        secret: Sm2SecretKey,
    ) -> Result<KeyInfo, Error>;
    /// One key's public metadata.
    fn info(&self, id: &KeyId) -> Result<KeyInfo, Error>;
    /// Every key's public metadata, ordered by id.
    fn list(&self) -> Result<Vec<KeyInfo>, Error>;
    /// Associate a certificate (DER) whose public key must be the key's.
    fn set_certificate(&self, id: &KeyId, der: &[u8]) -> Result<KeyInfo, Error>;
    /// Sign `msg` with the key as `use_` requires; refuses uses the key's purpose does not permit.
    fn sign(&self, id: &KeyId, use_: KeyUse, msg: &[u8]) -> Result<Sm2Signature, Error>;
    /// The private key as encrypted PKCS#8 DER; only for [`KeyPurpose::DeviceExport`] keys. Audited.
    fn export_device_key(&self, id: &KeyId, passphrase: &[u8])
    -> Result<Zeroizing<Vec<u8>>, Error>;
    /// Delete a key for good.
    fn destroy(&self, id: &KeyId) -> Result<(), Error>;
    /// Replace the master key and re-wrap every data key; returns the new generation.
    fn rotate_master(&self) -> Result<u64, Error>;
}
