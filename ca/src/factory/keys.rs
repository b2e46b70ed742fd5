//! How a generated device key is protected in its bundle, and the batch key derivation that makes
//! passphrase-protected bundles affordable at 100,000 devices.
//!
//! A password KDF strong enough for a human passphrase (PBKDF2, 600,000 iterations) costs ~0.3 s; run per
//! bundle it would take hours per batch. So the passphrase is stretched **once per batch** and each bundle
//! gets its own 256-bit password derived from that:
//!
//! ```text
//! master   = PBKDF2-HMAC-SM3(passphrase, salt = batch salt (16 random bytes), iterations, 32 bytes)
//! password = lowercase hex of HKDF-SM3(salt = batch salt, ikm = master,
//!                                      info = "smtrust-factory-bundle-v1:" || device id, 32 bytes)
//! bundle   = standard encrypted PKCS#8 (PBES2, PBKDF2-HMAC-SHA256 at 1,000 iterations, SM4-CBC)
//!            under `password`
//! ```
//! Guessing the passphrase still costs the full batch KDF per guess; one device's password reveals neither
//! the master nor any other device's. The batch parameters (not secret) are in `OUT/bundle-kdf.json`. A
//! flashing station derives `master` once per batch and each device's password with any PBKDF2/HKDF
//! implementation, e.g. the OpenSSL 3 CLI (`openssl kdf ... PBKDF2` then `... HKDF`, see docs/factory.md),
//! and opens the bundle with `openssl pkey -passin`.

use smtrust_crypto::pkcs8::KdfPrf;
use smtrust_crypto::sm2::{Sm2PublicKey, Sm2SecretKey};
use zeroize::Zeroizing;

use super::FactoryError;
use super::output;

/// Scheme name written into `bundle-kdf.json` and the HKDF info prefix.
pub const BUNDLE_KDF_SCHEME: &str = "smtrust-factory-bundle-v1";
/// Default PBKDF2-HMAC-SM3 iterations of the batch KDF (run once per batch).
pub const BATCH_KDF_ITERATIONS: u32 = 600_000;
/// PBKDF2 iterations inside each bundle: the lowest `smtrust_crypto` writes. The password has 256 bits of
/// entropy, so these add no strength; the strength is in the batch KDF.
const BUNDLE_ITERATIONS: u32 = smtrust_crypto::pkcs8::MIN_ITERATIONS;
/// Length of the batch salt.
const SALT_LEN: usize = 16;

/// How a generated private key is protected in its bundle.
#[non_exhaustive]
pub enum KeyProtection {
    /// Encrypted PKCS#8 under a per-device password derived from the batch passphrase (module docs).
    DerivedPassphrase {
        /// The batch passphrase (from a file or the environment, never a flag value).
        passphrase: Zeroizing<Vec<u8>>,
        /// PBKDF2-HMAC-SM3 iterations of the batch KDF.
        iterations: u32,
    },
    /// Encrypted PKCS#8 (PBES2, PBKDF2-HMAC-SHA256, SM4-CBC) under the batch passphrase itself, with the
    /// full `iterations` per bundle: slow (a password KDF per device), kept for small batches.
    Passphrase {
        /// The passphrase (from a file or the environment, never a flag value).
        passphrase: Zeroizing<Vec<u8>>,
        /// PBKDF2 iterations per bundle.
        iterations: u32,
    },
    /// The PKCS#8 DER encrypted with SM2 to the line's transport public key.
    Envelope(Sm2PublicKey),
}

impl std::fmt::Debug for KeyProtection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DerivedPassphrase { iterations, .. } => {
                write!(f, "DerivedPassphrase {{ iterations: {iterations}, .. }}")
            }
            Self::Passphrase { iterations, .. } => {
                write!(f, "Passphrase {{ iterations: {iterations}, .. }}")
            }
            Self::Envelope(_) => f.write_str("Envelope(..)"),
        }
    }
}

impl KeyProtection {
    /// What the journal records, so a resume with other protection is refused.
    pub(crate) fn kind(&self) -> String {
        match self {
            Self::DerivedPassphrase { iterations, .. } => {
                format!("{BUNDLE_KDF_SCHEME}/pbkdf2-hmac-sm3/{iterations}")
            }
            Self::Passphrase { iterations, .. } => format!("pkcs8-pbes2/{iterations}"),
            Self::Envelope(pk) => format!("sm2-envelope/{}", hex::encode(pk.sm3_fingerprint())),
        }
    }

    /// The keys of one run: the batch KDF is run here, once.
    pub(crate) fn prepare(&self, salt_hex: Option<&str>) -> Result<RunKeys<'_>, FactoryError> {
        let master = match self {
            Self::DerivedPassphrase {
                passphrase,
                iterations,
            } => {
                let salt = salt_hex
                    .and_then(|s| hex::decode(s).ok())
                    .ok_or_else(|| FactoryError::Manifest("batch has no bundle KDF salt".into()))?;
                Some(BatchKdf::master(passphrase, &salt, *iterations)?)
            }
            _ => None,
        };
        Ok(RunKeys { keys: self, master })
    }
}

/// A fresh batch salt (hex), for the batch parameters.
pub(crate) fn fresh_salt() -> Result<String, FactoryError> {
    Ok(hex::encode(smtrust_crypto::rng::bytes::<SALT_LEN>()?))
}

/// The batch KDF: master secret, then one password per device.
#[derive(Debug)]
#[non_exhaustive]
pub struct BatchKdf;

/// A derived secret (the batch master or a device password); zeroized on drop, never printed.
pub struct Secret {
    salt: Vec<u8>,
    bytes: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl BatchKdf {
    /// `master = PBKDF2-HMAC-SM3(passphrase, salt, iterations)`, 32 bytes.
    pub fn master(passphrase: &[u8], salt: &[u8], iterations: u32) -> Result<Secret, FactoryError> {
        if !(smtrust_crypto::pkcs8::MIN_ITERATIONS..=smtrust_crypto::pkcs8::MAX_ITERATIONS)
            .contains(&iterations)
            || salt.len() < 8
        {
            return Err(FactoryError::Manifest(format!(
                "batch KDF: {iterations} iterations or a {}-byte salt is out of range",
                salt.len()
            )));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        pbkdf2::pbkdf2_hmac::<smtrust_crypto::sm3::Sm3>(
            passphrase,
            salt,
            iterations,
            bytes.as_mut(),
        );
        Ok(Secret {
            salt: salt.to_vec(),
            bytes,
        })
    }

    /// The bundle password of `device_id`: lowercase hex of HKDF-SM3(salt, master, scheme ":" device id).
    pub fn device_password(
        master: &Secret,
        device_id: &str,
    ) -> Result<Zeroizing<String>, FactoryError> {
        let info = format!("{BUNDLE_KDF_SCHEME}:{device_id}");
        let mut okm = Zeroizing::new([0u8; 32]);
        smtrust_crypto::sm3::hkdf(
            &master.salt,
            master.bytes.as_slice(),
            info.as_bytes(),
            okm.as_mut(),
        )?;
        Ok(Zeroizing::new(hex::encode(okm.as_slice())))
    }
}

/// The key protection of one run, with the batch master derived.
pub(crate) struct RunKeys<'a> {
    keys: &'a KeyProtection,
    master: Option<Secret>,
}

impl RunKeys<'_> {
    /// The protected key block (PEM) of `device_id`'s key.
    pub(crate) fn protect(
        &self,
        device_id: &str,
        sk: &Sm2SecretKey,
    ) -> Result<String, FactoryError> {
        let pkcs8 = |pass: &[u8], iterations: u32| -> Result<String, FactoryError> {
            let der = smtrust_crypto::pkcs8::encrypt_pkcs8_with_iterations(
                sk,
                pass,
                KdfPrf::HmacSha256,
                iterations,
            )?;
            Ok(smtrust_crypto::pem::encode(output::KEY_LABEL_PKCS8, &der)?.to_string())
        };
        match (self.keys, &self.master) {
            (KeyProtection::DerivedPassphrase { .. }, Some(master)) => {
                let pass = BatchKdf::device_password(master, device_id)?;
                pkcs8(pass.as_bytes(), BUNDLE_ITERATIONS)
            }
            (KeyProtection::DerivedPassphrase { .. }, None) => Err(FactoryError::Manifest(
                "bundle KDF master not derived".into(),
            )),
            (
                KeyProtection::Passphrase {
                    passphrase,
                    iterations,
                },
                _,
            ) => pkcs8(passphrase, *iterations),
            (KeyProtection::Envelope(pk), _) => {
                let der = smtrust_crypto::pkcs8::encode_der(sk)?;
                let ct = smtrust_crypto::sm2::encrypt_der(pk, &der)?;
                Ok(smtrust_crypto::pem::encode(output::KEY_LABEL_ENVELOPE, &ct)?.to_string())
            }
        }
    }

    /// `bundle-kdf.json`: what a flashing station needs besides the passphrase (nothing secret).
    pub(crate) fn params_json(&self) -> Option<serde_json::Value> {
        match (self.keys, &self.master) {
            (KeyProtection::DerivedPassphrase { iterations, .. }, Some(m)) => {
                Some(serde_json::json!({
                    "scheme": BUNDLE_KDF_SCHEME,
                    "master": {"kdf": "pbkdf2", "prf": "hmac-sm3", "iterations": iterations,
                               "salt": hex::encode(&m.salt), "length": 32},
                    "device_password": {"kdf": "hkdf", "digest": "sm3", "salt": hex::encode(&m.salt),
                                        "info": format!("{BUNDLE_KDF_SCHEME}:<device_id>"), "length": 32,
                                        "encoding": "lowercase hex"},
                    "bundle": {"format": "PKCS#8 EncryptedPrivateKeyInfo, PBES2",
                               "kdf": "pbkdf2-hmac-sha256", "cipher": "sm4-cbc"},
                }))
            }
            _ => None,
        }
    }
}
