//! SM2 public-key encryption (GB/T 32918.4), for key envelopes.
//!
//! Two ciphertext forms: GM/T 0009 DER `SEQUENCE { x, y, hash, ciphertext }` (what OpenSSL's `pkeyutl` reads
//! and writes) and raw `C1 || C3 || C2` with an uncompressed `C1`. Decryption checks that C1 is on the curve
//! and checks C3 before returning anything.

use sm2::pke::{DecryptingKey, EncryptingKey, Mode};

use super::key::{Sm2PublicKey, Sm2SecretKey};
use crate::Error;

/// Largest plaintext accepted: envelopes carry keys, not bulk data.
pub const MAX_PLAINTEXT: usize = 64 * 1024;

fn check_len(len: usize) -> Result<(), Error> {
    if len == 0 || len > MAX_PLAINTEXT {
        return Err(Error::InvalidLength {
            what: "SM2 plaintext",
            len,
        });
    }
    Ok(())
}

/// Encrypt to `pk` in GM/T 0009 DER form.
pub fn encrypt_der(pk: &Sm2PublicKey, msg: &[u8]) -> Result<Vec<u8>, Error> {
    check_len(msg.len())?;
    EncryptingKey::new_with_mode(*pk.inner(), Mode::C1C3C2)
        .encrypt_der(&mut crate::rng::os(), msg)
        .map_err(|_| Error::Random)
}

/// Encrypt to `pk` in raw `C1 || C3 || C2` form (C1 uncompressed, 65 bytes).
pub fn encrypt_c1c3c2(pk: &Sm2PublicKey, msg: &[u8]) -> Result<Vec<u8>, Error> {
    check_len(msg.len())?;
    EncryptingKey::new_with_mode(*pk.inner(), Mode::C1C3C2)
        .encrypt(&mut crate::rng::os(), msg)
        .map_err(|_| Error::Random)
}

fn with_decrypting_key<T>(sk: &Sm2SecretKey, f: impl FnOnce(&DecryptingKey) -> T) -> T {
    let mut key = Box::new(DecryptingKey::new_with_mode(
        sk.inner().to_nonzero_scalar(),
        Mode::C1C3C2,
    ));
    let out = f(&key);
    // `DecryptingKey` does not zeroize: overwrite the heap copy with a key of scalar 1 (best effort).
    if let Some(one) = Option::<sm2::NonZeroScalar>::from(sm2::NonZeroScalar::new(sm2::Scalar::ONE))
    {
        *key = DecryptingKey::new_with_mode(one, Mode::C1C3C2);
    }
    core::hint::black_box(&key);
    out
}

/// Decrypt a GM/T 0009 DER ciphertext.
pub fn decrypt_der(sk: &Sm2SecretKey, ct: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    if ct.len() > MAX_PLAINTEXT + 200 {
        return Err(Error::DecryptFailed);
    }
    with_decrypting_key(sk, |k| k.decrypt_der(ct))
        .map(zeroize::Zeroizing::new)
        .map_err(|_| Error::DecryptFailed)
}

/// Decrypt a raw `C1 || C3 || C2` ciphertext.
pub fn decrypt_c1c3c2(sk: &Sm2SecretKey, ct: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    if ct.len() <= 65 + 32 || ct.len() > MAX_PLAINTEXT + 97 {
        return Err(Error::DecryptFailed);
    }
    with_decrypting_key(sk, |k| k.decrypt(ct))
        .map(zeroize::Zeroizing::new)
        .map_err(|_| Error::DecryptFailed)
}
