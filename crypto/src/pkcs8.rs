//! SM2 private keys in PKCS#8 (RFC 5958), plain and encrypted (PBES2, RFC 8018), and SEC1 (RFC 5915).
//!
//! One parser for private-key bytes from files and peers. It names what it found when the key is not an SM2
//! key (RSA, P-256, ...), and never panics.

mod encrypted;

use der::asn1::{ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode};
use pkcs8::PrivateKeyInfoRef;
use sec1::{EcParameters, EcPrivateKey};
use zeroize::Zeroizing;

use crate::sm2::Sm2SecretKey;
use crate::x509::oid;
use crate::{Error, KeyError};

pub use encrypted::{
    DEFAULT_ITERATIONS, KdfPrf, MAX_ITERATIONS, MIN_ITERATIONS, Pbes2Info,
    decrypt as decrypt_encrypted, encrypt as encrypt_pkcs8,
    encrypt_with_iterations as encrypt_pkcs8_with_iterations, inspect as inspect_encrypted,
    oid as pbes2_oid,
};

/// Largest key file accepted.
pub const MAX_KEY_DER: usize = 16 * 1024;

/// Decode a plain PKCS#8 `PrivateKeyInfo` holding an SM2 key.
pub fn decode_der(der_bytes: &[u8]) -> Result<Sm2SecretKey, Error> {
    if der_bytes.len() > MAX_KEY_DER {
        return Err(Error::InvalidLength {
            what: "PKCS#8 key",
            len: der_bytes.len(),
        });
    }
    let pki = PrivateKeyInfoRef::from_der(der_bytes)?;
    let alg = pki.algorithm.oid;
    if alg == oid::EC_PUBLIC_KEY {
        let curve: Option<ObjectIdentifier> = pki
            .algorithm
            .parameters
            .map(|p| p.decode_as::<ObjectIdentifier>())
            .transpose()?;
        match curve {
            Some(c) if c == oid::SM2_CURVE => {}
            Some(c) => return Err(KeyError::WrongCurve { oid: c.to_string() }.into()),
            None => {
                return Err(KeyError::WrongCurve {
                    oid: "(absent)".into(),
                }
                .into());
            }
        }
    } else if alg != oid::SM2_CURVE {
        // Some tools put the SM2 curve OID itself in the algorithm field; anything else is another algorithm.
        return Err(KeyError::NotSm2 {
            oid: alg.to_string(),
        }
        .into());
    }
    decode_sec1_der(pki.private_key.as_bytes())
}

/// Decode a SEC1 `ECPrivateKey` (RFC 5915) holding an SM2 key; checks the curve and the embedded public key.
pub fn decode_sec1_der(der_bytes: &[u8]) -> Result<Sm2SecretKey, Error> {
    let ec = EcPrivateKey::from_der(der_bytes)?;
    if let Some(EcParameters::NamedCurve(c)) = ec.parameters
        && c != oid::SM2_CURVE
    {
        return Err(KeyError::WrongCurve { oid: c.to_string() }.into());
    }
    let sk = Sm2SecretKey::from_bytes(ec.private_key).map_err(|e| match e {
        Error::InvalidLength { .. } => Error::Key(KeyError::InvalidValue),
        other => other,
    })?;
    if let Some(pub_bytes) = ec.public_key
        && pub_bytes != sk.public_key().to_sec1_uncompressed().as_slice()
    {
        // A compressed encoding of the same point is fine; any other point is not.
        let other = crate::sm2::Sm2PublicKey::from_sec1_bytes(pub_bytes)
            .map_err(|_| KeyError::PublicKeyMismatch)?;
        if &other != sk.public_key() {
            return Err(KeyError::PublicKeyMismatch.into());
        }
    }
    Ok(sk)
}

/// The inner `ECPrivateKey` with both `[0] namedCurve` and `[1] publicKey` (GmSSL requires both).
pub fn encode_sec1_der(sk: &Sm2SecretKey) -> Result<Zeroizing<Vec<u8>>, Error> {
    let d = sk.to_bytes();
    let public = sk.public_key().to_sec1_uncompressed();
    let ec = EcPrivateKey {
        private_key: d.as_slice(),
        parameters: Some(EcParameters::NamedCurve(oid::SM2_CURVE)),
        public_key: Some(&public),
    };
    Ok(Zeroizing::new(ec.to_der()?))
}

/// Encode as a plain PKCS#8 `PrivateKeyInfo` (id-ecPublicKey, namedCurve SM2), as OpenSSL writes it.
pub fn encode_der(sk: &Sm2SecretKey) -> Result<Zeroizing<Vec<u8>>, Error> {
    let inner = encode_sec1_der(sk)?;
    let params = der::AnyRef::from(&oid::SM2_CURVE);
    let pki = PrivateKeyInfoRef::new(
        spki::AlgorithmIdentifier {
            oid: oid::EC_PUBLIC_KEY,
            parameters: Some(params),
        },
        OctetStringRef::new(inner.as_slice())?,
    );
    Ok(Zeroizing::new(pki.to_der()?))
}

/// Entry points for fuzz targets.
#[doc(hidden)]
pub mod fuzzing {
    /// Decode PKCS#8 / SEC1 / encrypted PKCS#8 DER (must never panic).
    /// A key that decodes re-encodes to DER that decodes to the same key (PKCS#8 and SEC1).
    pub fn decode_private_key_der(data: &[u8]) {
        if let Ok(k) = super::decode_der(data) {
            let again = super::encode_der(&k).and_then(|d| super::decode_der(&d));
            assert!(again.is_ok_and(|a| a.ct_eq(&k)), "PKCS#8 round trip");
        }
        if let Ok(k) = super::decode_sec1_der(data) {
            let again = super::encode_sec1_der(&k).and_then(|d| super::decode_sec1_der(&d));
            assert!(again.is_ok_and(|a| a.ct_eq(&k)), "SEC1 round trip");
        }
        // Parameters only: PBKDF2 on every input would make the fuzzer crawl.
        let _ = super::inspect_encrypted(data);
    }

    /// Decode any PEM text (must never panic).
    pub fn decode_pem(data: &[u8]) {
        // No passphrase: PBKDF2 on every input would make the fuzzer crawl (inspect covers the parameters).
        let _ = crate::pem::decode_private_key(data, None);
        let _ = crate::pem::decode_public_key(data);
    }
}
