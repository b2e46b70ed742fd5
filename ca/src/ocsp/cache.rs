//! The bounded cache of pre-signed OCSP responses: least recently used entries go first.
//!
//! Keyed by (serial, CertID hash). Split into shards by serial, each a `hashlink::LruCache` behind its own
//! mutex, so a lookup (which moves the entry to the back) contends only with lookups of the same shard and
//! the refresher's scan locks one shard at a time. Both keys of one serial live in the same shard, so a
//! status change bumps one shard's epoch: a response signed from a status read before the change is not
//! inserted after it (see [`Cache::insert_if`]).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use hashlink::LruCache;

use super::{CertIdHash, OcspStatus};
use crate::serial::Serial;

/// Shards of the cache (a power of two).
const SHARDS: usize = 64;

/// A cache key.
pub(crate) type Key = (Serial, CertIdHash);

/// One pre-signed response.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// The DER `OCSPResponse`.
    pub(crate) der: Arc<Vec<u8>>,
    /// When the refresher re-signs it (Unix milliseconds): half-way to nextUpdate.
    pub(crate) refresh_at: u64,
    /// After this (Unix milliseconds) a request signs afresh instead of serving it: three quarters of the
    /// way to nextUpdate, slack for a refresher that fell behind.
    pub(crate) serve_until: u64,
    /// Asked for since it was signed: an entry nobody asked for is dropped at its refresh point instead of
    /// re-signed, so the refresher's work follows the hot set, not everything ever pre-signed.
    pub(crate) used: bool,
    /// The status it answers.
    pub(crate) status: OcspStatus,
}

struct Shard {
    map: LruCache<Key, Entry>,
    /// Bumped by every status change of a serial in this shard.
    epoch: u64,
}

/// The cache.
pub(crate) struct Cache {
    shards: Vec<Mutex<Shard>>,
    capacity: AtomicUsize,
    evictions: AtomicU64,
}

impl Cache {
    /// A cache of at most `capacity` entries (at least one per shard).
    pub(crate) fn new(capacity: usize) -> Self {
        let per = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: LruCache::new(per),
                        epoch: 0,
                    })
                })
                .collect(),
            capacity: AtomicUsize::new(per.saturating_mul(SHARDS)),
            evictions: AtomicU64::new(0),
        }
    }

    /// The bound (the requested capacity rounded up to a multiple of the shard count).
    pub(crate) fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Change the bound; shrinking drops least recently used entries at once.
    pub(crate) fn set_capacity(&self, capacity: usize) {
        let per = capacity.div_ceil(SHARDS).max(1);
        for m in &self.shards {
            if let Ok(mut s) = m.lock() {
                s.map.set_capacity(per);
            }
        }
        self.capacity
            .store(per.saturating_mul(SHARDS), Ordering::Relaxed);
    }

    fn shard(&self, serial: &Serial) -> Option<&Mutex<Shard>> {
        // Serials are random: their last byte spreads evenly (the first has its top bit clear).
        let b = serial.as_bytes().last().copied().unwrap_or(0);
        self.shards.get(usize::from(b) % SHARDS)
    }

    /// The entry's response if it may still be served at `now_ms`; marks it used and most recently used.
    pub(crate) fn get(&self, key: &Key, now_ms: u64) -> Option<Arc<Vec<u8>>> {
        let mut s = self.shard(&key.0)?.lock().ok()?;
        let e = s.map.get_mut(key)?;
        if now_ms >= e.serve_until {
            return None;
        }
        e.used = true;
        Some(e.der.clone())
    }

    /// The current epoch of `serial`'s shard: read it before reading the status a response is signed from.
    pub(crate) fn epoch(&self, serial: &Serial) -> u64 {
        self.shard(serial)
            .and_then(|m| m.lock().ok().map(|s| s.epoch))
            .unwrap_or(0)
    }

    /// Insert unless the shard saw a status change since `epoch` (the response may be stale). Returns
    /// whether it was inserted.
    pub(crate) fn insert_if(&self, key: Key, entry: Entry, epoch: u64) -> bool {
        let Some(m) = self.shard(&key.0) else {
            return false;
        };
        let Ok(mut s) = m.lock() else { return false };
        if s.epoch != epoch {
            return false;
        }
        let full = s.map.len() >= s.map.capacity() && !s.map.contains_key(&key);
        s.map.insert(key, entry);
        if full {
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// A status change of `serial`: drop both its entries and bump the epoch. Returns the hashes that were
    /// cached (to be re-signed).
    pub(crate) fn invalidate(&self, serial: &Serial) -> Vec<CertIdHash> {
        let Some(m) = self.shard(serial) else {
            return Vec::new();
        };
        let Ok(mut s) = m.lock() else {
            return Vec::new();
        };
        s.epoch = s.epoch.wrapping_add(1);
        [CertIdHash::Sha1, CertIdHash::Sm3]
            .into_iter()
            .filter(|h| s.map.remove(&(*serial, *h)).is_some())
            .collect()
    }

    /// The hashes (bit 0 SHA-1, bit 1 SM3) of `serial`'s entries that answer another status than `status`.
    pub(crate) fn differs(&self, serial: &Serial, status: OcspStatus) -> u8 {
        let Some(Ok(s)) = self.shard(serial).map(|m| m.lock()) else {
            return 0;
        };
        let mut mask = 0;
        for (bit, h) in [(1, CertIdHash::Sha1), (2, CertIdHash::Sm3)] {
            if s.map
                .peek(&(*serial, h))
                .is_some_and(|e| e.status != status)
            {
                mask |= bit;
            }
        }
        mask
    }

    /// Whether an answer for `key` is cached (not counted as a use).
    pub(crate) fn contains(&self, key: &Key) -> bool {
        self.shard(&key.0)
            .and_then(|m| m.lock().ok().map(|s| s.map.contains_key(key)))
            .unwrap_or(false)
    }

    /// Entries whose refresh point is before `deadline_ms`, at most `max`: those asked for since they were
    /// signed are returned (to be re-signed), the others are dropped.
    pub(crate) fn due(&self, deadline_ms: u64, max: usize) -> Vec<Key> {
        let mut out = Vec::new();
        for m in &self.shards {
            let Ok(mut s) = m.lock() else { continue };
            let mut idle = Vec::new();
            for (k, e) in s.map.iter() {
                if e.refresh_at > deadline_ms {
                    continue;
                }
                if e.used {
                    if out.len() < max {
                        out.push(*k);
                    }
                } else {
                    idle.push(*k);
                }
            }
            for k in idle {
                s.map.remove(&k);
            }
            if out.len() >= max {
                break;
            }
        }
        out
    }

    /// Entries held now.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|m| m.lock().ok().map(|s| s.map.len()))
            .sum()
    }

    /// Entries evicted to keep the bound.
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(refresh_at: u64, used: bool) -> Entry {
        Entry {
            der: Arc::new(vec![1, 2, 3]),
            refresh_at,
            serve_until: refresh_at + 10,
            used,
            status: OcspStatus::Good,
        }
    }

    #[test]
    fn the_bound_holds_and_least_recently_used_go_first() {
        let c = Cache::new(SHARDS); // one entry per shard
        let serials: Vec<Serial> = (0..4 * SHARDS).map(|_| Serial::random().unwrap()).collect();
        for s in &serials {
            let k = (*s, CertIdHash::Sha1);
            assert!(c.insert_if(k, entry(100, false), c.epoch(s)));
        }
        assert!(c.len() <= c.capacity());
        assert!(c.evictions() > 0);
        // The last one inserted is always there.
        let last = serials.last().copied().unwrap();
        assert!(c.get(&(last, CertIdHash::Sha1), 0).is_some());
    }

    #[test]
    fn a_huge_bound_saturates_instead_of_overflowing() {
        let c = Cache::new(usize::MAX);
        assert_eq!(c.capacity(), usize::MAX);
        c.set_capacity(usize::MAX - 1);
        assert_eq!(c.capacity(), usize::MAX);
    }

    #[test]
    fn a_status_change_refuses_a_response_signed_before_it() {
        let c = Cache::new(1024);
        let s = Serial::random().unwrap();
        let before = c.epoch(&s);
        assert!(c.invalidate(&s).is_empty());
        assert!(!c.insert_if((s, CertIdHash::Sha1), entry(100, false), before));
        assert!(c.get(&(s, CertIdHash::Sha1), 0).is_none());
        assert!(c.insert_if((s, CertIdHash::Sha1), entry(100, false), c.epoch(&s)));
        assert_eq!(c.invalidate(&s), vec![CertIdHash::Sha1]);
    }

    #[test]
    fn differs_names_the_entries_that_answer_another_status() {
        let c = Cache::new(1024);
        let s = Serial::random().unwrap();
        c.insert_if((s, CertIdHash::Sha1), entry(100, false), c.epoch(&s));
        c.insert_if((s, CertIdHash::Sm3), entry(100, false), c.epoch(&s));
        assert_eq!(c.differs(&s, OcspStatus::Good), 0);
        let revoked = OcspStatus::Revoked {
            at: 5,
            reason: crate::RevocationReason::KeyCompromise,
        };
        assert_eq!(c.differs(&s, revoked), 3);
        assert_eq!(c.differs(&Serial::random().unwrap(), revoked), 0);
    }

    #[test]
    fn due_returns_used_entries_and_drops_idle_ones() {
        let c = Cache::new(1024);
        let (a, b, d) = (
            Serial::random().unwrap(),
            Serial::random().unwrap(),
            Serial::random().unwrap(),
        );
        c.insert_if((a, CertIdHash::Sha1), entry(100, true), c.epoch(&a));
        c.insert_if((b, CertIdHash::Sha1), entry(100, false), c.epoch(&b));
        c.insert_if((d, CertIdHash::Sha1), entry(500, true), c.epoch(&d));
        assert_eq!(c.due(200, 10), vec![(a, CertIdHash::Sha1)]);
        assert_eq!(c.len(), 2, "the idle entry is dropped");
        assert!(c.get(&(a, CertIdHash::Sha1), 105).is_some());
        assert!(
            c.get(&(a, CertIdHash::Sha1), 110).is_none(),
            "past serve_until"
        );
    }
}
