//! PEM (RFC 7468) framing for keys, with the labels OpenSSL, Tongsuo and GmSSL write.
//!
//! Accepts PEM or DER input. A file may hold several blocks (`openssl ecparam -genkey` writes
//! `EC PARAMETERS` before the key); parameter blocks are skipped, anything else unexpected is an error.

use der::pem::LineEnding;
use zeroize::Zeroizing;

use crate::sm2::{Sm2PublicKey, Sm2SecretKey};
use crate::x509::oid;
use crate::{Error, KeyError};

/// One PEM block: its label and the decoded DER (zeroized on drop: it may hold a key).
pub type PemBlock = (String, Zeroizing<Vec<u8>>);

/// Largest PEM text accepted.
pub const MAX_PEM: usize = 64 * 1024;

/// Split PEM text into `(label, der)` blocks. Text outside blocks is ignored, as RFC 7468 §2 allows.
pub fn blocks(text: &[u8]) -> Result<Vec<PemBlock>, Error> {
    if text.len() > MAX_PEM {
        return Err(Error::InvalidLength {
            what: "PEM text",
            len: text.len(),
        });
    }
    let text = core::str::from_utf8(text).map_err(|_| Error::Pem("not UTF-8 text".into()))?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let end_marker = block
            .find("-----END ")
            .ok_or_else(|| Error::Pem("BEGIN without END".into()))?;
        let after_end = &block[end_marker..];
        let line_end = after_end.find('\n').map_or(after_end.len(), |i| i + 1);
        let one = &block[..end_marker + line_end];
        let (label, der) = der::pem::decode_vec(one.trim_end().as_bytes())
            .map_err(|e| Error::Pem(e.to_string()))?;
        out.push((label.to_string(), Zeroizing::new(der)));
        rest = &block[end_marker + line_end..];
    }
    if out.is_empty() {
        return Err(Error::Pem("no PEM block found".into()));
    }
    Ok(out)
}

fn looks_like_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Decode an SM2 private key from PEM (`PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, `EC PRIVATE KEY`,
/// `SM2 PRIVATE KEY`) or from DER (plain PKCS#8, then SEC1).
pub fn decode_private_key(data: &[u8], passphrase: Option<&[u8]>) -> Result<Sm2SecretKey, Error> {
    if !looks_like_pem(data) {
        return crate::pkcs8::decode_der(data)
            .or_else(|e| crate::pkcs8::decode_sec1_der(data).map_err(|_| e));
    }
    for (label, der) in blocks(data)? {
        return match label.as_str() {
            "PRIVATE KEY" => crate::pkcs8::decode_der(&der),
            // `openssl ec` labels SM2 SEC1 keys `SM2 PRIVATE KEY`.
            "EC PRIVATE KEY" | "SM2 PRIVATE KEY" => crate::pkcs8::decode_sec1_der(&der),
            "ENCRYPTED PRIVATE KEY" => match passphrase {
                Some(p) => crate::pkcs8::decrypt_encrypted(&der, p),
                None => Err(KeyError::Encrypted.into()),
            },
            "EC PARAMETERS" | "SM2 PARAMETERS" => continue,
            other => Err(KeyError::UnsupportedLabel(other.to_string()).into()),
        };
    }
    Err(Error::Pem("no private key block found".into()))
}

/// Decode an SM2 public key from PEM `PUBLIC KEY` or DER `SubjectPublicKeyInfo`.
pub fn decode_public_key(data: &[u8]) -> Result<Sm2PublicKey, Error> {
    if !looks_like_pem(data) {
        return crate::x509::public_key_from_spki_der(data);
    }
    for (label, der) in blocks(data)? {
        return match label.as_str() {
            "PUBLIC KEY" => crate::x509::public_key_from_spki_der(&der),
            "EC PARAMETERS" | "SM2 PARAMETERS" => continue,
            other => Err(KeyError::UnsupportedLabel(other.to_string()).into()),
        };
    }
    Err(Error::Pem("no public key block found".into()))
}

/// Plain PKCS#8 PEM (`PRIVATE KEY`).
pub fn encode_private_key(sk: &Sm2SecretKey) -> Result<Zeroizing<String>, Error> {
    let der = crate::pkcs8::encode_der(sk)?;
    encode("PRIVATE KEY", &der)
}

/// Encrypted PKCS#8 PEM (`ENCRYPTED PRIVATE KEY`).
pub fn encode_encrypted_private_key(
    sk: &Sm2SecretKey,
    passphrase: &[u8],
    prf: crate::pkcs8::KdfPrf,
) -> Result<String, Error> {
    let der = crate::pkcs8::encrypt_pkcs8(sk, passphrase, prf)?;
    encode("ENCRYPTED PRIVATE KEY", &der).map(|z| z.to_string())
}

/// SPKI PEM (`PUBLIC KEY`).
pub fn encode_public_key(pk: &Sm2PublicKey) -> Result<String, Error> {
    let der = crate::x509::public_key_to_spki_der(pk)?;
    encode("PUBLIC KEY", &der).map(|z| z.to_string())
}

/// Any DER as PEM with `label`.
pub fn encode(label: &str, der: &[u8]) -> Result<Zeroizing<String>, Error> {
    der::pem::encode_string(label, LineEnding::LF, der)
        .map(Zeroizing::new)
        .map_err(|e| Error::Pem(e.to_string()))
}

/// Check an SPKI's algorithm is SM2, naming what it is otherwise.
pub(crate) fn check_spki_algorithm(alg: &spki::AlgorithmIdentifierRef<'_>) -> Result<(), Error> {
    if alg.oid != oid::EC_PUBLIC_KEY && alg.oid != oid::SM2_CURVE {
        return Err(KeyError::NotSm2 {
            oid: alg.oid.to_string(),
        }
        .into());
    }
    if alg.oid == oid::EC_PUBLIC_KEY {
        let curve = alg
            .parameters
            .map(|p| p.decode_as::<der::asn1::ObjectIdentifier>())
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
    }
    Ok(())
}
