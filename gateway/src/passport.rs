//! The signed device passport the `http` mode hands the platform in `X-Smtrust-Passport`.
//!
//! A JWS compact token (RFC 7515 §7.1): `BASE64URL(header) '.' BASE64URL(claims) '.'
//! BASE64URL(signature)`. The signature is SM2-with-SM3 under the GM/T 0009 ID over the ASCII
//! signing input, DER-encoded, with the same private `alg` `SM2-SM3` as attestation results
//! (docs/attestation.md), so one verifier convention and the OpenSSL CLI check both. The header
//! carries the signer's chain in `x5c` (standard base64 DER, §4.1.6): a platform verifies
//! offline with the CA root only ([`verify`]).
//!
//! Why not `smtrust_attest`'s JWS code: its `sign`/`split` are crate-private (only the `alg`
//! constant is public) and the crate's default features pull in sqlx; this is ~100 lines.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use der::Decode;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use smtrust_crypto::sm2::{CertId, Sm2PublicKey, Sm2Signer};
use smtrust_tls::{Purpose, Sm2ChainVerifier};
use std::sync::Arc;
use std::time::Duration;

/// The JOSE `alg`: SM2 with SM3, GM/T 0009 ID, DER signature (as `smtrust_attest::ALG_SM2_SM3`).
pub const ALG: &str = "SM2-SM3";
/// The JOSE `typ` of a passport.
pub const TYP: &str = "smtrust-passport+jwt";
/// Default passport lifetime.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Largest token [`verify`] reads.
pub const MAX_TOKEN: usize = 16 * 1024;
/// Clock skew allowed on `iat`.
const SKEW_SECS: u64 = 60;
/// Longest `x5c` accepted.
const MAX_CHAIN: usize = 4;

/// The claims of a passport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Passport {
    /// The device ID (`sub`).
    pub sub: String,
    /// The device certificate's serial number, lowercase hex.
    pub serial: String,
    /// Attestation status at issue time: `verified`, `unverified`, `failed` or `expired`.
    pub attestation: String,
    /// The policy version that allowed the request: its number in the policy store
    /// (`Gateway::activate_policy`; 0 is the shipped default bundle).
    pub policy_version: u64,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
}

/// Why a passport was not accepted (or could not be made).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PassportError {
    /// Longer than [`MAX_TOKEN`].
    #[error("passport is {len} bytes, limit {MAX_TOKEN}")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Not three base64url parts.
    #[error("passport is not a compact JWS")]
    Format,
    /// The header or claims are not the JSON expected.
    #[error("passport {part} JSON: {source}")]
    Json {
        /// `header` or `claims`.
        part: &'static str,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// `alg` or `typ` is not ours.
    #[error("passport header {member} is {found:?}")]
    Header {
        /// The member.
        member: &'static str,
        /// What it held.
        found: String,
    },
    /// `x5c` is empty, too long, or not certificates.
    #[error("passport x5c: {0}")]
    Chain(&'static str),
    /// The signer's chain does not verify against the trust roots.
    #[error("passport signer refused: {0}")]
    Signer(smtrust_tls::Refusal),
    /// The signature does not verify.
    #[error("passport signature does not verify")]
    Signature,
    /// `exp` has passed or `iat` is in the future.
    #[error("passport not valid now (iat {iat}, exp {exp}, now {now})")]
    Time {
        /// Issued at.
        iat: u64,
        /// Expires at.
        exp: u64,
        /// The verification time.
        now: u64,
    },
    /// Signing failed (the key store refused).
    #[error("passport signing: {0}")]
    Crypto(#[from] smtrust_crypto::Error),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    typ: String,
    x5c: Vec<String>,
}

/// Signs passports with the gateway's key (GM/T ID; a keystore handle in production). Its
/// certificate must carry serverAuth: [`verify`] checks it like a server certificate.
pub struct PassportSigner {
    signer: Arc<dyn Sm2Signer<CertId>>,
    header_b64: String,
    ttl: Duration,
}

impl std::fmt::Debug for PassportSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassportSigner")
            .field("public", self.signer.public_key())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl PassportSigner {
    /// A signer and its chain (end entity first), with [`DEFAULT_TTL`].
    pub fn new(signer: Arc<dyn Sm2Signer<CertId>>, chain: &[CertificateDer<'_>]) -> Self {
        let header = Header {
            alg: ALG.to_owned(),
            typ: TYP.to_owned(),
            x5c: chain.iter().map(|c| STANDARD.encode(c.as_ref())).collect(),
        };
        let json = serde_json::to_vec(&header).unwrap_or_default();
        Self {
            signer,
            header_b64: URL_SAFE_NO_PAD.encode(json),
            ttl: DEFAULT_TTL,
        }
    }

    /// How long passports live.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The configured lifetime.
    pub fn lifetime(&self) -> Duration {
        self.ttl
    }

    /// Signs `claims` into a compact token.
    pub fn sign(&self, claims: &Passport) -> Result<String, PassportError> {
        let payload = serde_json::to_vec(claims).map_err(|source| PassportError::Json {
            part: "claims",
            source,
        })?;
        let mut token = format!("{}.{}", self.header_b64, URL_SAFE_NO_PAD.encode(payload));
        let sig = self.signer.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(sig.as_der()));
        Ok(token)
    }
}

/// Verifies a passport offline: the `x5c` chain against `trust` (the CA roots and whatever
/// revocation hook the platform keeps), the SM2 signature with the chain's end entity, and the
/// validity window at `now`. Returns the claims.
pub fn verify(
    token: &str,
    trust: &Sm2ChainVerifier,
    now: UnixTime,
) -> Result<Passport, PassportError> {
    if token.len() > MAX_TOKEN {
        return Err(PassportError::TooLarge { len: token.len() });
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(PassportError::Format);
    };
    let b64 = |x: &str| URL_SAFE_NO_PAD.decode(x).map_err(|_| PassportError::Format);
    let (header, payload, sig) = (b64(h)?, b64(p)?, b64(s)?);
    let header: Header = serde_json::from_slice(&header).map_err(|source| PassportError::Json {
        part: "header",
        source,
    })?;
    if header.alg != ALG {
        return Err(PassportError::Header {
            member: "alg",
            found: header.alg,
        });
    }
    if header.typ != TYP {
        return Err(PassportError::Header {
            member: "typ",
            found: header.typ,
        });
    }
    if header.x5c.is_empty() || header.x5c.len() > MAX_CHAIN {
        return Err(PassportError::Chain("must hold 1 to 4 certificates"));
    }
    let chain = header
        .x5c
        .iter()
        .map(|c| STANDARD.decode(c).map(CertificateDer::from))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| PassportError::Chain("not base64"))?;
    let (leaf, intermediates) = chain.split_first().ok_or(PassportError::Chain("empty"))?;
    trust
        .verify(leaf, intermediates, Purpose::Server, None, now)
        .map_err(PassportError::Signer)?;
    let key = leaf_key(leaf).ok_or(PassportError::Chain("end entity key is not SM2"))?;
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or(PassportError::Format)?;
    key.verifying_key(CertId)
        .and_then(|v| v.verify_der(signing_input.as_bytes(), &sig))
        .map_err(|_| PassportError::Signature)?;
    let claims: Passport =
        serde_json::from_slice(&payload).map_err(|source| PassportError::Json {
            part: "claims",
            source,
        })?;
    let now = now.as_secs();
    if now >= claims.exp || claims.iat > now + SKEW_SECS {
        return Err(PassportError::Time {
            iat: claims.iat,
            exp: claims.exp,
            now,
        });
    }
    Ok(claims)
}

fn leaf_key(cert: &CertificateDer<'_>) -> Option<Sm2PublicKey> {
    let c = x509_cert::Certificate::from_der(cert.as_ref()).ok()?;
    let bits = c
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .as_bytes()?;
    Sm2PublicKey::from_sec1_bytes(bits).ok()
}
