//! Encrypted PKCS#8 (`EncryptedPrivateKeyInfo`, RFC 5958 §3) with PBES2 (RFC 8018 §6.2): PBKDF2 with
//! HMAC-SHA256 and SM4-CBC, the form OpenSSL 3 reads (`openssl pkey -passin`).
//!
//! Written here because `smtrust_crypto::pkcs8::encrypt_pkcs8` is not implemented yet; when it is, this
//! module becomes a call to it.
//!
//! ```text
//! EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm AlgorithmIdentifier, encryptedData OCTET STRING }
//! PBES2-params ::= SEQUENCE { keyDerivationFunc AlgorithmIdentifier, encryptionScheme AlgorithmIdentifier }
//! PBKDF2-params ::= SEQUENCE { salt OCTET STRING, iterationCount INTEGER, keyLength INTEGER OPTIONAL,
//!                              prf AlgorithmIdentifier DEFAULT algid-hmacWithSHA1 }
//! ```

use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, OctetStringRef};
use der::{Decode, Encode, Sequence};
use smtrust_crypto::sm2::Sm2SecretKey;
use smtrust_crypto::sm4::{BLOCK_LEN, KEY_LEN, Sm4Key};
use spki::AlgorithmIdentifierRef;
use zeroize::Zeroizing;

const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
const PBKDF2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.12");
const HMAC_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.9");
/// PBKDF2 iterations: about 0.1 s here; an exported device key is decrypted once, at the factory.
pub(crate) const ITERATIONS: u32 = 200_000;

#[derive(Sequence)]
struct Pbkdf2Params<'a> {
    salt: &'a OctetStringRef,
    iteration_count: u32,
    prf: AlgorithmIdentifierRef<'a>,
}

#[derive(Sequence)]
struct Pbes2Params<'a> {
    key_derivation_func: AlgorithmIdentifierRef<'a>,
    encryption_scheme: AlgorithmIdentifierRef<'a>,
}

#[derive(Sequence)]
struct EncryptedPrivateKeyInfo<'a> {
    encryption_algorithm: AlgorithmIdentifierRef<'a>,
    encrypted_data: &'a OctetStringRef,
}

/// `secret` as encrypted PKCS#8 DER under `passphrase`.
pub(crate) fn encrypt_pkcs8(
    secret: &Sm2SecretKey,
    passphrase: &[u8],
) -> Result<Zeroizing<Vec<u8>>, crate::Error> {
    let salt = smtrust_crypto::rng::bytes::<16>()?;
    let iv = smtrust_crypto::rng::bytes::<BLOCK_LEN>()?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(passphrase, &salt, ITERATIONS, key.as_mut_slice());
    let plain = smtrust_crypto::pkcs8::encode_der(secret)?;
    let ct = smtrust_crypto::sm4::cbc_encrypt(&Sm4Key::from_bytes(*key), &iv, &plain);

    let kdf_params = Pbkdf2Params {
        salt: OctetStringRef::new(&salt).map_err(smtrust_crypto::Error::from)?,
        iteration_count: ITERATIONS,
        prf: AlgorithmIdentifierRef {
            oid: HMAC_SHA256,
            parameters: Some(AnyRef::NULL),
        },
    }
    .to_der()
    .map_err(smtrust_crypto::Error::from)?;
    let iv_der = OctetStringRef::new(&iv)
        .and_then(|o| o.to_der())
        .map_err(smtrust_crypto::Error::from)?;
    let pbes2 = Pbes2Params {
        key_derivation_func: AlgorithmIdentifierRef {
            oid: PBKDF2,
            parameters: Some(AnyRef::from_der(&kdf_params).map_err(smtrust_crypto::Error::from)?),
        },
        encryption_scheme: AlgorithmIdentifierRef {
            oid: smtrust_crypto::x509::oid::SM4_CBC,
            parameters: Some(AnyRef::from_der(&iv_der).map_err(smtrust_crypto::Error::from)?),
        },
    }
    .to_der()
    .map_err(smtrust_crypto::Error::from)?;
    let epki = EncryptedPrivateKeyInfo {
        encryption_algorithm: AlgorithmIdentifierRef {
            oid: PBES2,
            parameters: Some(AnyRef::from_der(&pbes2).map_err(smtrust_crypto::Error::from)?),
        },
        encrypted_data: OctetStringRef::new(&ct).map_err(smtrust_crypto::Error::from)?,
    };
    Ok(Zeroizing::new(
        epki.to_der().map_err(smtrust_crypto::Error::from)?,
    ))
}
