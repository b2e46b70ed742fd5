//! One-time enrollment tokens bound to a device ID and an issuing CA: what a token is, and its hash.
//!
//! The token is 32 random bytes, base64url (43 characters), shown once when it is minted. The CA database
//! keeps only `SM3(domain || token)` ([`super::token_store`]); a presented token is hashed and compared with
//! the stored hashes in constant time.

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine;
use zeroize::Zeroizing;

use crate::Error;

/// Separates token hashes from any other SM3 use.
const DOMAIN: &[u8] = b"smtrust EST enrollment token v1\0";
/// Random bytes per token (base64url: 43 characters).
const TOKEN_BYTES: usize = 32;
/// Longest token text accepted for hashing (a longer one cannot match; refuse before hashing it).
pub(crate) const MAX_TOKEN_LEN: usize = 256;

/// A freshly minted enrollment token: the only copy of the secret. Shown once, zeroized on drop.
pub struct EnrollmentToken {
    text: Zeroizing<String>,
    expires: SystemTime,
}

impl EnrollmentToken {
    /// The token text, to give to the device (with its device ID) out of band.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// When the token stops being accepted.
    pub fn expires_at(&self) -> SystemTime {
        self.expires
    }
}

impl fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollmentToken")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRefusal {
    /// No token was minted for this device ID at this issuing CA.
    #[error("no enrollment token was issued for this device")]
    Unknown,
    /// The token does not match the one minted.
    #[error("enrollment token does not match")]
    Mismatch,
    /// The token was already used for an enrollment (a replay), or another request is using it now.
    #[error("enrollment token already used")]
    Used,
    /// The token expired.
    #[error("enrollment token expired")]
    Expired,
    /// Another request with this token is running.
    #[error("enrollment token is in use by another request")]
    InUse,
}

/// A new random token valid for `ttl` from `now`.
pub(crate) fn generate(ttl: Duration, now: SystemTime) -> Result<EnrollmentToken, Error> {
    let raw = Zeroizing::new(smtrust_crypto::rng::bytes::<TOKEN_BYTES>()?);
    let text =
        Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_slice()));
    Ok(EnrollmentToken {
        text,
        expires: now + ttl,
    })
}

/// `SM3(domain || token)`.
pub(crate) fn hash(token: &[u8]) -> [u8; 32] {
    let mut m = Zeroizing::new(DOMAIN.to_vec());
    m.extend_from_slice(token);
    smtrust_crypto::sm3::digest(m.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_hashes_domain_separated() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let a = generate(Duration::from_secs(60), now).unwrap();
        let b = generate(Duration::from_secs(60), now).unwrap();
        assert_ne!(a.as_str(), b.as_str());
        assert_eq!(a.as_str().len(), 43);
        assert_eq!(a.expires_at(), now + Duration::from_secs(60));
        assert_ne!(
            hash(a.as_str().as_bytes()),
            smtrust_crypto::sm3::digest(a.as_str().as_bytes())
        );
        assert!(!format!("{a:?}").contains(a.as_str()));
    }
}
