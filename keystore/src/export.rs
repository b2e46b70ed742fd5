//! Export of factory device keys as encrypted PKCS#8 (PBES2 with PBKDF2-HMAC-SHA256 and SM4-CBC, the form
//! OpenSSL 3 reads with `openssl pkey -passin`), through the crypto crate's one PBES2 implementation.

use smtrust_crypto::pkcs8::{KdfPrf, encrypt_pkcs8_with_iterations};
use smtrust_crypto::sm2::Sm2SecretKey;
use zeroize::Zeroizing;

/// PBKDF2 iterations: about 0.1 s here; an exported device key is decrypted once, at the factory.
pub(crate) const ITERATIONS: u32 = 200_000;

/// `secret` as encrypted PKCS#8 DER under `passphrase`.
pub(crate) fn encrypt_pkcs8(
    secret: &Sm2SecretKey,
    passphrase: &[u8],
) -> Result<Zeroizing<Vec<u8>>, crate::Error> {
    Ok(encrypt_pkcs8_with_iterations(
        secret,
        passphrase,
        KdfPrf::HmacSha256,
        ITERATIONS,
    )?)
}
