//! Challenges: a 32-byte nonce minted by the verifier for one device, used once, valid for a configured time.
//!
//! Without this a verifier accepts replayed evidence (veraison/services#427): the nonce is checked to be
//! known, unexpired, issued for the device whose certificate signed the evidence, and unused; consuming it is
//! one atomic step in the store, so two server nodes cannot both accept it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use core::fmt;
use subtle::ConstantTimeEq;

use crate::Error;
use crate::identity::{DeviceId, unix};
use crate::jws::DecodeError;

/// A verifier-minted nonce: 32 random bytes.
#[derive(Clone)]
pub struct Nonce([u8; Nonce::LEN]);

impl Nonce {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// 32 fresh bytes from the OS random source.
    pub fn generate() -> Result<Self, Error> {
        Ok(Self(smtrust_crypto::rng::bytes::<32>()?))
    }

    /// From exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| DecodeError::Claim {
                claim: "eat_nonce",
                why: "not 32 bytes",
            })
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for Nonce {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for Nonce {}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Nonce({}…)",
            hex::encode(self.0.get(..4).unwrap_or_default())
        )
    }
}

/// A nonce issued to one device.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Challenge {
    /// The nonce the device must put in `eat_nonce`.
    pub nonce: Nonce,
    /// The device it was issued to.
    pub device_id: DeviceId,
    /// Issue time, Unix seconds.
    pub issued_at: u64,
    /// First second at which it is no longer accepted.
    pub expires_at: u64,
}

impl Challenge {
    /// Mint a challenge for `device_id`, valid for `ttl` from `now`.
    pub fn new(device_id: DeviceId, now: SystemTime, ttl: Duration) -> Result<Self, Error> {
        let issued_at = unix(now)?;
        Ok(Self {
            nonce: Nonce::generate()?,
            device_id,
            issued_at,
            expires_at: issued_at.saturating_add(ttl.as_secs().max(1)),
        })
    }

    /// A challenge with given parts (for stores reading rows back).
    pub fn from_parts(nonce: Nonce, device_id: DeviceId, issued_at: u64, expires_at: u64) -> Self {
        Self {
            nonce,
            device_id,
            issued_at,
            expires_at,
        }
    }
}

/// What consuming a nonce found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NonceOutcome {
    /// Known, unexpired, unused: now marked used.
    Fresh(Challenge),
    /// Known but past its expiry.
    Expired(Challenge),
    /// Known and already consumed: a replay.
    AlreadyUsed(Challenge),
    /// Never issued (or pruned long ago).
    Unknown,
}

/// Where challenges live so that every server node agrees. `consume` must be atomic: of two concurrent calls
/// for one nonce, exactly one may see [`NonceOutcome::Fresh`].
pub trait NonceStore: Send + Sync {
    /// Store a newly minted challenge.
    fn insert(&self, challenge: &Challenge) -> impl Future<Output = Result<(), Error>> + Send;
    /// Mark `nonce` used if it is known, unexpired at `now` and unused; report what was found.
    fn consume(
        &self,
        nonce: &Nonce,
        now: SystemTime,
    ) -> impl Future<Output = Result<NonceOutcome, Error>> + Send;
    /// Forget challenges that expired before `before`; returns how many.
    fn prune(&self, before: SystemTime) -> impl Future<Output = Result<u64, Error>> + Send;
}

/// A single-process [`NonceStore`].
#[derive(Debug, Default)]
pub struct MemoryNonceStore {
    inner: Mutex<HashMap<[u8; 32], (Challenge, bool)>>,
}

impl MemoryNonceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`NonceStore::insert`] without a runtime.
    pub fn insert_now(&self, challenge: &Challenge) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(*challenge.nonce.as_bytes(), (challenge.clone(), false));
    }

    /// [`NonceStore::consume`] without a runtime.
    pub fn consume_now(&self, nonce: &Nonce, now: SystemTime) -> Result<NonceOutcome, Error> {
        let now = unix(now)?;
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Ok(match map.get_mut(nonce.as_bytes()) {
            None => NonceOutcome::Unknown,
            Some((c, true)) => NonceOutcome::AlreadyUsed(c.clone()),
            Some((c, _)) if now >= c.expires_at => NonceOutcome::Expired(c.clone()),
            Some((c, used)) => {
                *used = true;
                NonceOutcome::Fresh(c.clone())
            }
        })
    }
}

impl NonceStore for MemoryNonceStore {
    async fn insert(&self, challenge: &Challenge) -> Result<(), Error> {
        self.insert_now(challenge);
        Ok(())
    }

    async fn consume(&self, nonce: &Nonce, now: SystemTime) -> Result<NonceOutcome, Error> {
        self.consume_now(nonce, now)
    }

    async fn prune(&self, before: SystemTime) -> Result<u64, Error> {
        let before = unix(before)?;
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.len();
        map.retain(|_, (c, _)| c.expires_at >= before);
        Ok((n - map.len()) as u64)
    }
}
