//! One-time enrollment tokens bound to a device ID.
//!
//! Only `SM3(domain || token)` is kept; a presented token is hashed and compared in constant time. A token is
//! claimed while its request runs (so two concurrent requests cannot both use it), spent when a certificate
//! is issued, and released again if the request fails, so a device whose first CSR was refused can retry.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use base64::Engine;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Refusal;
use crate::DeviceId;

/// Separates token hashes from any other SM3 use.
const DOMAIN: &[u8] = b"smtrust EST enrollment token v1\0";
/// Random bytes per token (base64url: 43 characters).
const TOKEN_BYTES: usize = 32;

/// A freshly issued enrollment token: the only copy of the secret. Shown once, zeroized on drop.
pub struct EnrollmentToken(Zeroizing<String>);

impl EnrollmentToken {
    /// The token text, to give to the device (with its device ID) out of band.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnrollmentToken(..)")
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRefusal {
    /// No token was issued for this device ID.
    #[error("no enrollment token was issued for this device")]
    Unknown,
    /// The token does not match the one issued.
    #[error("enrollment token does not match")]
    Mismatch,
    /// The token was already used for an enrollment (a replay).
    #[error("enrollment token already used")]
    Used,
    /// The token expired.
    #[error("enrollment token expired")]
    Expired,
    /// Another request with this token is running.
    #[error("enrollment token is in use by another request")]
    InUse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Fresh,
    Claimed,
    Spent,
}

struct Entry {
    hash: [u8; 32],
    expires: SystemTime,
    state: State,
}

type Map = Arc<Mutex<HashMap<DeviceId, Entry>>>;

/// The tokens of an EST server (in memory: a restart invalidates outstanding tokens).
#[derive(Clone, Default)]
pub(crate) struct Tokens {
    map: Map,
}

fn hash(token: &[u8]) -> [u8; 32] {
    let mut m = DOMAIN.to_vec();
    m.extend_from_slice(token);
    smtrust_crypto::sm3::digest(&m)
}

impl Tokens {
    /// Issue a token for `device`, replacing any earlier one.
    pub(crate) fn issue(
        &self,
        device: &DeviceId,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<EnrollmentToken, crate::Error> {
        let raw = Zeroizing::new(smtrust_crypto::rng::bytes::<TOKEN_BYTES>()?);
        let text =
            Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_slice()));
        let entry = Entry {
            hash: hash(text.as_bytes()),
            expires: now + ttl,
            state: State::Fresh,
        };
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        // Drop entries that can no longer be used, so the map does not grow without bound.
        map.retain(|_, e| e.state != State::Spent && e.expires > now);
        map.insert(device.clone(), entry);
        Ok(EnrollmentToken(text))
    }

    /// Check `presented` for `device` and claim it for this request.
    pub(crate) fn claim(
        &self,
        device: &DeviceId,
        presented: &[u8],
        now: SystemTime,
    ) -> Result<Claim, Refusal> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let e = map
            .get_mut(device)
            .ok_or(Refusal::Token(TokenRefusal::Unknown))?;
        if !bool::from(hash(presented).ct_eq(&e.hash)) {
            return Err(Refusal::Token(TokenRefusal::Mismatch));
        }
        match e.state {
            State::Spent => return Err(Refusal::Token(TokenRefusal::Used)),
            State::Claimed => return Err(Refusal::Token(TokenRefusal::InUse)),
            State::Fresh => {}
        }
        if e.expires <= now {
            return Err(Refusal::Token(TokenRefusal::Expired));
        }
        e.state = State::Claimed;
        Ok(Claim {
            map: Arc::clone(&self.map),
            device: device.clone(),
            spent: false,
        })
    }
}

/// A claimed token: [`Claim::spend`] after issuance; dropped unspent, it becomes usable again.
pub(crate) struct Claim {
    map: Map,
    device: DeviceId,
    spent: bool,
}

impl Claim {
    pub(crate) fn spend(mut self) {
        self.spent = true;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = map.get_mut(&self.device)
            && e.state == State::Claimed
        {
            e.state = if self.spent {
                State::Spent
            } else {
                State::Fresh
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use_and_release() {
        let t = Tokens::default();
        let id = DeviceId::new("ctw-1").unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let tok = t.issue(&id, Duration::from_secs(60), now).unwrap();
        assert!(matches!(
            t.claim(&id, b"wrong", now),
            Err(Refusal::Token(TokenRefusal::Mismatch))
        ));
        let c = t.claim(&id, tok.as_str().as_bytes(), now).unwrap();
        assert!(matches!(
            t.claim(&id, tok.as_str().as_bytes(), now),
            Err(Refusal::Token(TokenRefusal::InUse))
        ));
        drop(c); // failed request: usable again
        t.claim(&id, tok.as_str().as_bytes(), now).unwrap().spend();
        assert!(matches!(
            t.claim(&id, tok.as_str().as_bytes(), now),
            Err(Refusal::Token(TokenRefusal::Used))
        ));
        let other = DeviceId::new("ctw-2").unwrap();
        assert!(matches!(
            t.claim(&other, tok.as_str().as_bytes(), now),
            Err(Refusal::Token(TokenRefusal::Unknown))
        ));
        let tok2 = t.issue(&other, Duration::from_secs(60), now).unwrap();
        assert!(matches!(
            t.claim(
                &other,
                tok2.as_str().as_bytes(),
                now + Duration::from_secs(61)
            ),
            Err(Refusal::Token(TokenRefusal::Expired))
        ));
    }
}
