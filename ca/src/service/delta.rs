//! Delta CRLs after status changes, coalesced.
//!
//! Each delta CRL lists every change since its base CRL, so regenerating it on every one of N revocations
//! costs O(N²) and serialises them on the CRL lock. Instead a change marks its issuer's delta CRL dirty:
//! - if no delta CRL was started within the last `delay` ([`DELTA_CRL_DELAY`] unless
//!   [`CaService::set_delta_crl_delay`] says otherwise), the change regenerates it at once, so a lone change
//!   (the CLI's `ca revoke` in a short-lived process) is in the delta CRL when the call returns;
//! - otherwise one task per issuer regenerates it `delay` after the last one started, covering every change
//!   marked until then; a burst of changes over T seconds makes about T / delay + 1 delta CRLs.
//!
//! Serving: [`CaService::latest_crl`] regenerates a dirty delta CRL before answering, so this process never
//! serves a delta CRL that misses a change it made. Other processes and nodes sharing the store see a change
//! in the stored delta CRL within `delay` plus one generation. A change marked while the task is pending at
//! shutdown is made by [`CaService::flush_delta_crls`], the next change, or the next explicit CRL.
//! Revocation events do not wait for any of this: they are sent before the delta CRL is touched.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::CaService;
use crate::Error;
use crate::store::Store;

/// Default coalescing delay of delta CRLs after a status change.
pub const DELTA_CRL_DELAY: Duration = Duration::from_millis(200);

/// How long a failed background regeneration waits before it tries again (at least the delay).
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct IssuerDelta {
    /// Changes marked so far (a counter, never reset).
    marked: u64,
    /// Changes known to be in the latest stored delta CRL.
    covered: u64,
    /// When the latest delta CRL generation started.
    last: Option<Instant>,
    /// A background regeneration is pending.
    scheduled: bool,
}

/// The dirty state of every issuer's delta CRL.
#[derive(Debug)]
pub(super) struct Deltas {
    delay_ms: AtomicU64,
    issuers: Mutex<HashMap<String, IssuerDelta>>,
}

impl Default for Deltas {
    fn default() -> Self {
        Self {
            delay_ms: AtomicU64::new(millis(DELTA_CRL_DELAY)),
            issuers: Mutex::new(HashMap::new()),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What a change asks for.
enum Plan {
    /// Regenerate now, in the caller.
    Now,
    /// A task regenerates at this instant.
    Spawn(Instant),
    /// A task is already pending and will cover it.
    Pending,
}

impl Deltas {
    fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(Ordering::Relaxed))
    }

    fn with<T>(&self, issuer: &str, f: impl FnOnce(&mut IssuerDelta) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of plain counters: keep going.
        let mut m = self.issuers.lock().unwrap_or_else(|e| e.into_inner());
        f(m.entry(issuer.to_owned()).or_default())
    }

    /// Record one committed change of `issuer` and decide who regenerates.
    fn mark(&self, issuer: &str) -> Plan {
        let delay = self.delay();
        self.with(issuer, |d| {
            d.marked += 1;
            if d.scheduled {
                return Plan::Pending;
            }
            let now = Instant::now();
            match d.last {
                Some(t) if now.duration_since(t) < delay => {
                    d.scheduled = true;
                    Plan::Spawn(t + delay)
                }
                _ => {
                    // Open the window now so concurrent changes wait for the task instead of queueing here.
                    d.last = Some(now);
                    Plan::Now
                }
            }
        })
    }

    /// The mark count a generation starting now will cover (take it before reading the store).
    pub(super) fn snapshot(&self, issuer: &str) -> u64 {
        self.with(issuer, |d| d.marked)
    }

    /// A delta CRL covering `snapshot` changes was stored; its generation started at `started`.
    pub(super) fn made(&self, issuer: &str, snapshot: u64, started: Instant) {
        self.with(issuer, |d| {
            d.covered = d.covered.max(snapshot);
            d.last = Some(d.last.map_or(started, |l| l.max(started)));
        });
    }

    fn dirty(&self, issuer: &str) -> bool {
        self.with(issuer, |d| d.marked > d.covered)
    }

    /// After a background run: when to run again, or `None` (and no task pending) if nothing is left.
    fn next_run(&self, issuer: &str, failed: bool) -> Option<Instant> {
        let delay = self.delay();
        self.with(issuer, |d| {
            if d.marked > d.covered {
                let base = d.last.unwrap_or_else(Instant::now);
                Some(if failed {
                    Instant::now() + delay.max(RETRY_AFTER)
                } else {
                    base + delay
                })
            } else {
                d.scheduled = false;
                None
            }
        })
    }

    fn dirty_issuers(&self) -> Vec<String> {
        let m = self.issuers.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .filter(|(_, d)| d.marked > d.covered)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

impl<S: Store> CaService<S> {
    /// Set the coalescing delay of delta CRLs after status changes (default [`DELTA_CRL_DELAY`]; zero makes
    /// every change regenerate at once, as a burst of N changes then costs O(N²)).
    pub fn set_delta_crl_delay(&self, delay: Duration) {
        self.inner
            .deltas
            .delay_ms
            .store(millis(delay), Ordering::Relaxed);
    }

    /// A change of `issuer` was committed: regenerate its delta CRL now or schedule it.
    pub(super) async fn delta_changed(&self, issuer: &str) -> Result<(), Error> {
        match self.inner.deltas.mark(issuer) {
            Plan::Now => self.refresh_delta(issuer).await,
            Plan::Pending => Ok(()),
            Plan::Spawn(at) => {
                let svc = self.clone();
                let issuer = issuer.to_owned();
                tokio::spawn(async move {
                    let mut at = at;
                    loop {
                        tokio::time::sleep_until(at).await;
                        let res = svc.refresh_delta(&issuer).await;
                        if let Err(e) = &res {
                            tracing::error!(issuer = %issuer, error = %e, "delta CRL regeneration failed");
                        }
                        match svc.inner.deltas.next_run(&issuer, res.is_err()) {
                            Some(next) => at = next,
                            None => break,
                        }
                    }
                });
                Ok(())
            }
        }
    }

    /// Regenerate `issuer`'s delta CRL if a change is not in the stored one yet.
    pub(super) async fn refresh_delta(&self, issuer: &str) -> Result<(), Error> {
        let _guard = self.inner.crl_lock.lock().await;
        if !self.inner.deltas.dirty(issuer) {
            return Ok(());
        }
        if self.inner.store.latest_crl(issuer, false).await?.is_none() {
            // No base CRL yet: the first request for a CRL makes the full one and a delta on top of it.
            let snap = self.inner.deltas.snapshot(issuer);
            self.inner.deltas.made(issuer, snap, Instant::now());
            return Ok(());
        }
        self.crl_locked(issuer, true).await.map(|_| ())
    }

    /// Whether `issuer` has changes not yet in its stored delta CRL.
    pub(super) fn delta_dirty(&self, issuer: &str) -> bool {
        self.inner.deltas.dirty(issuer)
    }

    /// Regenerate now every delta CRL with pending changes (before a graceful shutdown, or to publish at
    /// once).
    pub async fn flush_delta_crls(&self) -> Result<(), Error> {
        for issuer in self.inner.deltas.dirty_issuers() {
            self.refresh_delta(&issuer).await?;
        }
        Ok(())
    }
}
