//! Encrypted PKCS#8 (`EncryptedPrivateKeyInfo`, PBES2 with PBKDF2 and SM4-CBC).
//!
//! Not yet implemented: both functions return an error naming that. Owned by issue 3's follow-up work.

use zeroize::Zeroizing;

use crate::sm2::Sm2SecretKey;
use crate::{Error, KeyError};

/// The PBKDF2 pseudorandom function written or found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KdfPrf {
    /// HMAC-SHA256: what OpenSSL 3.0 writes and reads by default.
    HmacSha256,
}

/// Decrypt an `EncryptedPrivateKeyInfo` DER.
pub fn decrypt(_der: &[u8], _passphrase: &[u8]) -> Result<Sm2SecretKey, Error> {
    Err(
        KeyError::UnsupportedEncryption("encrypted PKCS#8 reading is not implemented yet".into())
            .into(),
    )
}

/// Encrypt as an `EncryptedPrivateKeyInfo` DER.
pub fn encrypt(
    _sk: &Sm2SecretKey,
    _passphrase: &[u8],
    _prf: KdfPrf,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    Err(
        KeyError::UnsupportedEncryption("encrypted PKCS#8 writing is not implemented yet".into())
            .into(),
    )
}
