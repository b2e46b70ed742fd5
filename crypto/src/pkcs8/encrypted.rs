//! Encrypted PKCS#8 (RFC 5958 `EncryptedPrivateKeyInfo`) with PBES2 (RFC 8018 §6.2): PBKDF2 and SM4-CBC.
//!
//! Three PBKDF2 PRFs are read and can be written ([`KdfPrf`]): HMAC-SHA256, what OpenSSL 3.0 writes with
//! `openssl pkcs8 -topk8 -v2 sm4-cbc` and the only one it reads; HMAC-SM3 under Tongsuo's OID
//! `hmacWithSM3` 1.2.156.10197.1.401.3.1; and HMAC-SM3 under the OID GmSSL 3.1 writes, 1.2.156.10197.1.401.2.
//!
//! The `pkcs5` crate (0.8) cannot carry these: its `Pbkdf2Prf` and `EncryptionScheme` are closed enums (AES,
//! DES and SHA only), so the few structures are derived here with `der`.
//!
//! A wrong passphrase and a corrupted file give the same [`KeyError::WrongPassphrase`]: the CBC padding is
//! checked in constant time and a bad pad is not told apart from a bad inner structure.

use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef, UintRef};
use der::{Decode, Encode, Sequence, Tag, Tagged};
use spki::AlgorithmIdentifierRef;
use subtle::{ConditionallySelectable, ConstantTimeEq, ConstantTimeLess};
use zeroize::Zeroizing;

use crate::sm2::Sm2SecretKey;
use crate::sm4::{self, BLOCK_LEN, KEY_LEN, Sm4Key};
use crate::x509::oid as sm_oid;
use crate::{Error, KeyError};

/// OIDs of RFC 8018 and of the SM PRFs.
pub mod oid {
    use der::asn1::ObjectIdentifier;

    /// PBES2 (RFC 8018 Appendix A.4).
    pub const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
    /// PBES1 with MD5 / SHA-1 and DES or RC2 share this arc: named only in errors.
    pub const PKCS5: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5");
    /// PBKDF2 (RFC 8018 Appendix A.2).
    pub const PBKDF2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.12");
    /// hmacWithSHA1, PBKDF2's DEFAULT PRF (RFC 8018 Appendix B.1.1); not read.
    pub const HMAC_WITH_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.7");
    /// hmacWithSHA256 (RFC 8018 Appendix B.1.2).
    pub const HMAC_WITH_SHA256: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.2.9");
    /// hmacWithSM3 as Tongsuo writes it.
    pub const HMAC_WITH_SM3_TONGSUO: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.156.10197.1.401.3.1");
    /// HMAC-SM3 as GmSSL 3.1 writes it (the arc of SM3 itself plus `.2`).
    pub const HMAC_WITH_SM3_GMSSL: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.156.10197.1.401.2");
}

/// Fewest PBKDF2 iterations read or written: fewer makes guessing the passphrase cheap.
pub const MIN_ITERATIONS: u32 = 1_000;
/// Most PBKDF2 iterations read: bounds the work a hostile file can ask of us.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// Iterations [`encrypt`] writes (GmSSL's default; ~0.1 s with HMAC-SHA256 or HMAC-SM3 on one core).
pub const DEFAULT_ITERATIONS: u32 = 65_536;

const SALT_LEN: usize = 16;
const MIN_SALT: usize = 8;
const MAX_SALT: usize = 64;

/// The PBKDF2 pseudorandom function written or found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KdfPrf {
    /// HMAC-SHA256: what OpenSSL 3.0 writes and reads by default.
    HmacSha256,
    /// HMAC-SM3 under Tongsuo's `hmacWithSM3` OID 1.2.156.10197.1.401.3.1 (Tongsuo `-v2prf hmacWithSM3`).
    HmacSm3Tongsuo,
    /// HMAC-SM3 under GmSSL's OID 1.2.156.10197.1.401.2, written as GmSSL does (keyLength 16, no NULL).
    HmacSm3Gmssl,
}

impl KdfPrf {
    /// The PRF's algorithm OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::HmacSha256 => oid::HMAC_WITH_SHA256,
            Self::HmacSm3Tongsuo => oid::HMAC_WITH_SM3_TONGSUO,
            Self::HmacSm3Gmssl => oid::HMAC_WITH_SM3_GMSSL,
        }
    }

    fn from_oid(o: ObjectIdentifier) -> Result<Self, Error> {
        match o {
            oid::HMAC_WITH_SHA256 => Ok(Self::HmacSha256),
            oid::HMAC_WITH_SM3_TONGSUO => Ok(Self::HmacSm3Tongsuo),
            oid::HMAC_WITH_SM3_GMSSL => Ok(Self::HmacSm3Gmssl),
            other => Err(unsupported(format!("PBKDF2 PRF {other}"))),
        }
    }

    fn derive(self, passphrase: &[u8], salt: &[u8], iterations: u32) -> Sm4Key {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        match self {
            Self::HmacSha256 => {
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(passphrase, salt, iterations, key.as_mut());
            }
            Self::HmacSm3Tongsuo | Self::HmacSm3Gmssl => {
                pbkdf2::pbkdf2_hmac::<crate::sm3::Sm3>(passphrase, salt, iterations, key.as_mut());
            }
        }
        Sm4Key::from_bytes(*key)
    }
}

/// What an `EncryptedPrivateKeyInfo` says about how it was made (no passphrase needed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pbes2Info {
    /// The PBKDF2 PRF.
    pub prf: KdfPrf,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
}

/// RFC 5958 §3:
/// ```text
/// EncryptedPrivateKeyInfo ::= SEQUENCE {
///   encryptionAlgorithm  EncryptionAlgorithmIdentifier,
///   encryptedData        EncryptedData }       -- OCTET STRING
/// ```
#[derive(Sequence)]
struct EncryptedPrivateKeyInfo<'a> {
    encryption_algorithm: AlgorithmIdentifierRef<'a>,
    encrypted_data: &'a OctetStringRef,
}

/// RFC 8018 Appendix A.4:
/// ```text
/// PBES2-params ::= SEQUENCE {
///   keyDerivationFunc AlgorithmIdentifier {{PBES2-KDFs}},
///   encryptionScheme  AlgorithmIdentifier {{PBES2-Encs}} }
/// ```
#[derive(Sequence)]
struct Pbes2Params<'a> {
    key_derivation_func: AlgorithmIdentifierRef<'a>,
    encryption_scheme: AlgorithmIdentifierRef<'a>,
}

/// RFC 8018 Appendix A.2:
/// ```text
/// PBKDF2-params ::= SEQUENCE {
///   salt CHOICE { specified OCTET STRING, otherSource AlgorithmIdentifier {{PBKDF2-SaltSources}} },
///   iterationCount INTEGER (1..MAX),
///   keyLength      INTEGER (1..MAX) OPTIONAL,
///   prf            AlgorithmIdentifier {{PBKDF2-PRFs}} DEFAULT algid-hmacWithSHA1 }
/// ```
/// `salt` is kept as ANY to name `otherSource` in the error; `iterationCount` as an unsigned integer of any
/// size so a huge count is refused by value, not as a decoding failure.
#[derive(Sequence)]
struct Pbkdf2Params<'a> {
    salt: AnyRef<'a>,
    iteration_count: UintRef<'a>,
    #[asn1(optional = "true")]
    key_length: Option<u32>,
    #[asn1(optional = "true")]
    prf: Option<AlgorithmIdentifierRef<'a>>,
}

/// Everything needed to derive the key and decrypt, borrowed from the input.
struct Parsed<'a> {
    prf: KdfPrf,
    iterations: u32,
    salt: &'a [u8],
    iv: [u8; BLOCK_LEN],
    ciphertext: &'a [u8],
}

fn unsupported(what: String) -> Error {
    KeyError::UnsupportedEncryption(what).into()
}

fn check_iterations(count: u64) -> Result<u32, Error> {
    match u32::try_from(count) {
        Ok(c) if (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&c) => Ok(c),
        _ => Err(KeyError::IterationCount {
            count,
            min: MIN_ITERATIONS,
            max: MAX_ITERATIONS,
        }
        .into()),
    }
}

fn parse(der_bytes: &[u8]) -> Result<Parsed<'_>, Error> {
    if der_bytes.len() > super::MAX_KEY_DER {
        return Err(Error::InvalidLength {
            what: "encrypted PKCS#8 key",
            len: der_bytes.len(),
        });
    }
    let epki = EncryptedPrivateKeyInfo::from_der(der_bytes)?;
    let alg = &epki.encryption_algorithm;
    if alg.oid != oid::PBES2 {
        let scheme = if alg.oid.parent() == Some(oid::PKCS5) {
            "PBES1 or PKCS#5 scheme"
        } else {
            "scheme"
        };
        return Err(unsupported(format!("{scheme} {} (only PBES2)", alg.oid)));
    }
    let params: Pbes2Params<'_> = alg
        .parameters
        .ok_or_else(|| unsupported("PBES2 without parameters".into()))?
        .decode_as()?;

    let kdf = &params.key_derivation_func;
    if kdf.oid != oid::PBKDF2 {
        return Err(unsupported(format!(
            "key derivation {} (only PBKDF2)",
            kdf.oid
        )));
    }
    let kdf_params: Pbkdf2Params<'_> = kdf
        .parameters
        .ok_or_else(|| unsupported("PBKDF2 without parameters".into()))?
        .decode_as()?;
    if kdf_params.salt.tag() != Tag::OctetString {
        return Err(unsupported("PBKDF2 salt from otherSource".into()));
    }
    let salt = kdf_params.salt.value();
    if !(MIN_SALT..=MAX_SALT).contains(&salt.len()) {
        return Err(Error::InvalidLength {
            what: "PBKDF2 salt",
            len: salt.len(),
        });
    }
    let count_bytes = kdf_params.iteration_count.as_bytes();
    let count = if count_bytes.len() > 8 {
        u64::MAX
    } else {
        count_bytes
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    };
    let iterations = check_iterations(count)?;
    if let Some(len) = kdf_params.key_length
        && usize::try_from(len).ok() != Some(KEY_LEN)
    {
        return Err(unsupported(format!(
            "PBKDF2 keyLength {len} (SM4 needs 16)"
        )));
    }
    let prf_alg = kdf_params
        .prf
        .ok_or_else(|| unsupported(format!("PBKDF2 PRF {} (the default)", oid::HMAC_WITH_SHA1)))?;
    if prf_alg.parameters.is_some_and(|p| !p.is_null()) {
        return Err(unsupported(format!(
            "PBKDF2 PRF {} with parameters",
            prf_alg.oid
        )));
    }
    let prf = KdfPrf::from_oid(prf_alg.oid)?;

    let enc = &params.encryption_scheme;
    if enc.oid != sm_oid::SM4_CBC {
        return Err(unsupported(format!("cipher {} (only SM4-CBC)", enc.oid)));
    }
    let iv_any = enc
        .parameters
        .ok_or_else(|| unsupported("SM4-CBC without an IV".into()))?;
    let iv: &OctetStringRef = iv_any.decode_as()?;
    let iv: [u8; BLOCK_LEN] = iv.as_bytes().try_into().map_err(|_| Error::InvalidLength {
        what: "SM4-CBC IV",
        len: iv.as_bytes().len(),
    })?;
    let ciphertext = epki.encrypted_data.as_bytes();
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(BLOCK_LEN) {
        return Err(Error::InvalidLength {
            what: "SM4-CBC ciphertext",
            len: ciphertext.len(),
        });
    }
    Ok(Parsed {
        prf,
        iterations,
        salt,
        iv,
        ciphertext,
    })
}

/// Read the PRF and iteration count of an `EncryptedPrivateKeyInfo` DER without decrypting it.
pub fn inspect(der_bytes: &[u8]) -> Result<Pbes2Info, Error> {
    let p = parse(der_bytes)?;
    Ok(Pbes2Info {
        prf: p.prf,
        iterations: p.iterations,
    })
}

/// The length of valid PKCS#7 padding at the end of `buf` (1..=16), or `None`, in time independent of the
/// padding's value.
fn pkcs7_pad_len(buf: &[u8]) -> Option<usize> {
    let last: &[u8; BLOCK_LEN] = buf.last_chunk()?;
    let pad = last[BLOCK_LEN - 1];
    let mut ok = !pad.ct_eq(&0) & (pad.ct_lt(&17));
    for (i, b) in last.iter().enumerate() {
        // Byte i is inside the pad when its distance from the end is below `pad`.
        let dist = u8::try_from(BLOCK_LEN - i).unwrap_or(u8::MAX);
        let inside = !pad.ct_lt(&dist);
        ok &= !inside | b.ct_eq(&pad);
    }
    let len = u8::conditional_select(&0, &pad, ok);
    bool::from(ok).then_some(usize::from(len))
}

/// Decrypt an `EncryptedPrivateKeyInfo` DER (PBES2, PBKDF2 with one of the [`KdfPrf`]s, SM4-CBC).
pub fn decrypt(der_bytes: &[u8], passphrase: &[u8]) -> Result<Sm2SecretKey, Error> {
    let p = parse(der_bytes)?;
    let key = p.prf.derive(passphrase, p.salt, p.iterations);
    let plain = Zeroizing::new(sm4::cbc_decrypt_unpadded(&key, &p.iv, p.ciphertext)?);
    let wrong = || Error::from(KeyError::WrongPassphrase);
    let len = pkcs7_pad_len(&plain).ok_or_else(wrong)?;
    let inner = plain.get(..plain.len() - len).ok_or_else(wrong)?;
    // CBC is unauthenticated and malleable: a wrong key yields noise, a flipped bit a predictably changed key
    // (even another curve OID). Only a key that parses, whose public half matches, proves the passphrase; every
    // failure, including a well-formed foreign key, says the same as a bad pad so no oracle tells them apart.
    super::decode_der(inner).map_err(|_| wrong())
}

/// Encrypt as an `EncryptedPrivateKeyInfo` DER with [`DEFAULT_ITERATIONS`], a random 16-byte salt and IV.
pub fn encrypt(
    sk: &Sm2SecretKey,
    passphrase: &[u8],
    prf: KdfPrf,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    encrypt_with_iterations(sk, passphrase, prf, DEFAULT_ITERATIONS)
}

/// Encrypt with an explicit iteration count in [`MIN_ITERATIONS`, `MAX_ITERATIONS`].
pub fn encrypt_with_iterations(
    sk: &Sm2SecretKey,
    passphrase: &[u8],
    prf: KdfPrf,
    iterations: u32,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let iterations = check_iterations(u64::from(iterations))?;
    let salt = crate::rng::bytes::<SALT_LEN>()?;
    let iv = crate::rng::bytes::<BLOCK_LEN>()?;
    let inner = super::encode_der(sk)?;
    let key = prf.derive(passphrase, &salt, iterations);
    let ciphertext = sm4::cbc_encrypt(&key, &iv, &inner);

    let count_be = iterations.to_be_bytes();
    // GmSSL writes keyLength and no NULL after its PRF OID; OpenSSL and Tongsuo write a NULL and no keyLength.
    let (key_length, prf_params) = match prf {
        KdfPrf::HmacSm3Gmssl => (Some(16), None),
        KdfPrf::HmacSha256 | KdfPrf::HmacSm3Tongsuo => (None, Some(AnyRef::NULL)),
    };
    let kdf_params = Pbkdf2Params {
        salt: AnyRef::new(Tag::OctetString, &salt)?,
        iteration_count: UintRef::new(&count_be)?,
        key_length,
        prf: Some(AlgorithmIdentifierRef {
            oid: prf.oid(),
            parameters: prf_params,
        }),
    }
    .to_der()?;
    let iv_der = OctetStringRef::new(&iv)?.to_der()?;
    let pbes2 = Pbes2Params {
        key_derivation_func: AlgorithmIdentifierRef {
            oid: oid::PBKDF2,
            parameters: Some(AnyRef::from_der(&kdf_params)?),
        },
        encryption_scheme: AlgorithmIdentifierRef {
            oid: sm_oid::SM4_CBC,
            parameters: Some(AnyRef::from_der(&iv_der)?),
        },
    }
    .to_der()?;
    let epki = EncryptedPrivateKeyInfo {
        encryption_algorithm: AlgorithmIdentifierRef {
            oid: oid::PBES2,
            parameters: Some(AnyRef::from_der(&pbes2)?),
        },
        encrypted_data: OctetStringRef::new(&ciphertext)?,
    };
    Ok(Zeroizing::new(epki.to_der()?))
}

#[cfg(test)]
#[path = "encrypted/tests.rs"]
mod tests;
