//! JWS compact serialization (RFC 7515 §7.1) with SM2-with-SM3, shared by evidence and results.
//!
//! `BASE64URL(header) '.' BASE64URL(payload) '.' BASE64URL(signature)`. The signature is over the ASCII
//! signing input `BASE64URL(header) '.' BASE64URL(payload)`, exactly as received, with the GM/T 0009 ID, and is
//! the DER `SEQUENCE { r, s }` (not JWS ES256's raw `r || s`) so that the OpenSSL CLI checks it unchanged
//! (docs/attestation.md). This is the only module that splits tokens; all checks happen before any JSON is read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use smtrust_crypto::sm2::{CertId, Sm2Signature, Sm2Signer};

use crate::Error;

/// The private JOSE `alg` for SM2 signatures with SM3 and the GM/T 0009 default ID, DER-encoded.
pub const ALG_SM2_SM3: &str = "SM2-SM3";

/// Largest token accepted (evidence with a 4-certificate chain is about 6 KiB).
pub const MAX_TOKEN: usize = 64 * 1024;

/// Which part of a token a decode error is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    /// The protected header.
    Header,
    /// The claims.
    Payload,
    /// The signature.
    Signature,
}

/// Why a token could not be decoded. Never contains the token's bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Longer than [`MAX_TOKEN`].
    #[error("token is {len} bytes, limit {max}")]
    TooLarge {
        /// The length given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not three `.`-separated parts.
    #[error("expected 3 dot-separated parts, found {found}")]
    Segments {
        /// How many parts there were.
        found: usize,
    },
    /// A part is not canonical unpadded base64url.
    #[error("{part:?} is not canonical base64url")]
    Base64 {
        /// The part.
        part: Part,
    },
    /// A part is not the JSON we expect (unknown or duplicate member, wrong type, trailing data).
    #[error("{part:?} JSON at line {line} column {column}: {source}")]
    Json {
        /// The part.
        part: Part,
        /// Line of the error within the decoded part.
        line: usize,
        /// Column of the error.
        column: usize,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The header names another algorithm or type.
    #[error("header {member} is {found:?}, expected {expected:?}")]
    Header {
        /// The member.
        member: &'static str,
        /// What it held (bounded: header values are short).
        found: String,
        /// What we accept.
        expected: &'static str,
    },
    /// The signature is not a canonical DER SM2 signature.
    #[error("signature: {0}")]
    Signature(smtrust_crypto::Error),
    /// A claim is present but not acceptable.
    #[error("claim {claim}: {why}")]
    Claim {
        /// The claim's name.
        claim: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// A certificate in `x5c` could not be parsed.
    #[error("x5c[{index}]: {why}")]
    Certificate {
        /// Position in the chain (0 = leaf).
        index: usize,
        /// What is wrong.
        why: &'static str,
    },
}

/// A token split and base64-decoded, nothing interpreted yet.
pub(crate) struct Token<'a> {
    /// The exact bytes the signature covers.
    pub signing_input: &'a [u8],
    pub header: Vec<u8>,
    pub payload: Vec<u8>,
    pub signature: Sm2Signature,
}

pub(crate) fn split(token: &[u8]) -> Result<Token<'_>, DecodeError> {
    if token.len() > MAX_TOKEN {
        return Err(DecodeError::TooLarge {
            len: token.len(),
            max: MAX_TOKEN,
        });
    }
    let dots: Vec<usize> = token
        .iter()
        .enumerate()
        .filter_map(|(i, b)| (*b == b'.').then_some(i))
        .collect();
    let (first, second) = match dots.as_slice() {
        [a, b] => (*a, *b),
        other => {
            return Err(DecodeError::Segments {
                found: other.len() + 1,
            });
        }
    };
    let (signing_input, rest) = token.split_at(second);
    let (h, p) = signing_input.split_at(first);
    let p = p.get(1..).unwrap_or_default();
    let s = rest.get(1..).unwrap_or_default();
    let header = b64(h, Part::Header)?;
    let payload = b64(p, Part::Payload)?;
    let sig = b64(s, Part::Signature)?;
    let signature = Sm2Signature::from_der(&sig).map_err(DecodeError::Signature)?;
    Ok(Token {
        signing_input,
        header,
        payload,
        signature,
    })
}

fn b64(part_bytes: &[u8], part: Part) -> Result<Vec<u8>, DecodeError> {
    if part_bytes.is_empty() {
        return Err(DecodeError::Base64 { part });
    }
    URL_SAFE_NO_PAD
        .decode(part_bytes)
        .map_err(|_| DecodeError::Base64 { part })
}

/// Parse a decoded part strictly into `T` (which should `deny_unknown_fields`).
pub(crate) fn json<'de, T: serde::Deserialize<'de>>(
    bytes: &'de [u8],
    part: Part,
) -> Result<T, DecodeError> {
    serde_json::from_slice(bytes).map_err(|source| DecodeError::Json {
        part,
        line: source.line(),
        column: source.column(),
        source,
    })
}

/// Encode and sign: returns the compact token.
pub(crate) fn sign(
    header: &impl serde::Serialize,
    payload: &impl serde::Serialize,
    signer: &dyn Sm2Signer<CertId>,
) -> Result<String, Error> {
    let mut out = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header)?);
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload)?));
    let sig = signer.sign(out.as_bytes())?;
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig.as_der()));
    Ok(out)
}

/// base64url (unpadded) of bytes, for claims that carry binary values.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url decode of a claim value.
pub(crate) fn from_b64url(text: &str, claim: &'static str) -> Result<Vec<u8>, DecodeError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| DecodeError::Claim {
            claim,
            why: "not canonical base64url",
        })
}
