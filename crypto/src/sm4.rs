//! SM4 (GB/T 32907) and the modes smtrust uses: GCM and CCM with 12-byte nonces and 16-byte tags as RFC 8998
//! uses them, and CBC with PKCS#7 padding (TLCP records, encrypted PKCS#8).
//!
//! **The seam.** Every SM4 use in smtrust goes through [`Sm4Block`], the one block-cipher type named here. The
//! current implementation is RustCrypto `sm4` 0.6, which uses a table S-box: its timing can depend on key and
//! data through cache behaviour (it is not constant-time). A faster, table-free implementation (an AES-NI
//! affine-transform S-box, or a bitsliced one) replaces this one alias, and every mode, the TLS suites and the
//! keystore follow. See `docs/architecture.md`, "SM4 timing".

use aes_gcm::aead::{Aead, KeyInit, Payload, consts::U12, consts::U16};
use cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyIvInit,
    block_padding::Pkcs7,
};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;

/// The SM4 block cipher implementation every mode uses (the seam).
pub type Sm4Block = ::sm4::Sm4;

/// SM4-GCM with a 96-bit nonce and a 128-bit tag (RFC 8998 `TLS_SM4_GCM_SM3`).
pub type Sm4Gcm = aes_gcm::AesGcm<Sm4Block, U12>;

/// SM4-CCM with a 128-bit tag and a 96-bit nonce (RFC 8998 `TLS_SM4_CCM_SM3`).
pub type Sm4Ccm = ccm::Ccm<Sm4Block, U16, U12>;

/// Key length of SM4.
pub const KEY_LEN: usize = 16;
/// Block length of SM4.
pub const BLOCK_LEN: usize = 16;
/// Nonce length of the AEAD modes.
pub const NONCE_LEN: usize = 12;
/// Tag length of the AEAD modes.
pub const TAG_LEN: usize = 16;

/// An SM4 key: zeroized on drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Sm4Key([u8; KEY_LEN]);

impl Sm4Key {
    /// A key from 16 bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A key from a slice, which must be 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| Error::InvalidLength {
            what: "SM4 key",
            len: bytes.len(),
        })?;
        Ok(Self(arr))
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, Error> {
        crate::rng::bytes::<KEY_LEN>().map(Self)
    }

    /// The key bytes, for wrapping under another key. Callers must not keep copies.
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl core::fmt::Debug for Sm4Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Sm4Key(..)")
    }
}

/// Which AEAD mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AeadMode {
    /// SM4-GCM.
    Gcm,
    /// SM4-CCM.
    Ccm,
}

fn nonce_array(nonce: &[u8]) -> Result<[u8; NONCE_LEN], Error> {
    nonce.try_into().map_err(|_| Error::InvalidLength {
        what: "AEAD nonce",
        len: nonce.len(),
    })
}

/// Encrypt and authenticate: returns ciphertext followed by the 16-byte tag.
pub fn seal(
    mode: AeadMode,
    key: &Sm4Key,
    nonce: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let n = nonce_array(nonce)?;
    let payload = Payload {
        msg: plaintext,
        aad,
    };
    let out = match mode {
        AeadMode::Gcm => Sm4Gcm::new(&key.0.into()).encrypt(&n.into(), payload),
        AeadMode::Ccm => Sm4Ccm::new(&key.0.into()).encrypt(&n.into(), payload),
    };
    out.map_err(|_| Error::InvalidLength {
        what: "AEAD plaintext",
        len: plaintext.len(),
    })
}

/// Check and decrypt `ciphertext || tag`. Any tampering gives [`Error::DecryptFailed`] and no plaintext.
pub fn open(
    mode: AeadMode,
    key: &Sm4Key,
    nonce: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, Error> {
    let n = nonce_array(nonce)?;
    if ciphertext.len() < TAG_LEN {
        return Err(Error::DecryptFailed);
    }
    let payload = Payload {
        msg: ciphertext,
        aad,
    };
    let out = match mode {
        AeadMode::Gcm => Sm4Gcm::new(&key.0.into()).decrypt(&n.into(), payload),
        AeadMode::Ccm => Sm4Ccm::new(&key.0.into()).decrypt(&n.into(), payload),
    };
    out.map_err(|_| Error::DecryptFailed)
}

/// SM4-CBC with PKCS#7 padding.
pub fn cbc_encrypt(key: &Sm4Key, iv: &[u8; BLOCK_LEN], plaintext: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<Sm4Block>::new(&key.0.into(), &(*iv).into())
        .encrypt_padded_vec::<Pkcs7>(plaintext)
}

/// SM4-CBC decryption; a wrong length or bad padding is [`Error::DecryptFailed`].
///
/// CBC is unauthenticated: callers must authenticate the ciphertext (TLCP's MAC, PBES2's key check) before
/// acting on the result, and must not reveal padding errors separately from MAC errors.
pub fn cbc_decrypt(
    key: &Sm4Key,
    iv: &[u8; BLOCK_LEN],
    ciphertext: &[u8],
) -> Result<Vec<u8>, Error> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(BLOCK_LEN) {
        return Err(Error::DecryptFailed);
    }
    cbc::Decryptor::<Sm4Block>::new(&key.0.into(), &(*iv).into())
        .decrypt_padded_vec::<Pkcs7>(ciphertext)
        .map_err(|_| Error::DecryptFailed)
}

/// SM4-CBC decryption without removing padding (the caller checks it, e.g. in constant time).
pub fn cbc_decrypt_unpadded(
    key: &Sm4Key,
    iv: &[u8; BLOCK_LEN],
    ciphertext: &[u8],
) -> Result<Vec<u8>, Error> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(BLOCK_LEN) {
        return Err(Error::DecryptFailed);
    }
    cbc::Decryptor::<Sm4Block>::new(&key.0.into(), &(*iv).into())
        .decrypt_padded_vec::<cipher::block_padding::NoPadding>(ciphertext)
        .map_err(|_| Error::DecryptFailed)
}

/// Encrypt one block in place (for known-answer tests and raw-block interop checks).
pub fn encrypt_block(key: &Sm4Key, block: &mut [u8; BLOCK_LEN]) {
    let c = Sm4Block::new(&key.0.into());
    let mut b = (*block).into();
    c.encrypt_block(&mut b);
    *block = b.into();
}

/// Decrypt one block in place.
pub fn decrypt_block(key: &Sm4Key, block: &mut [u8; BLOCK_LEN]) {
    let c = Sm4Block::new(&key.0.into());
    let mut b = (*block).into();
    c.decrypt_block(&mut b);
    *block = b.into();
}

#[cfg(test)]
#[path = "sm4/tests.rs"]
mod tests;
