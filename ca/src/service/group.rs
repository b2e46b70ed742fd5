//! Group commit: concurrent `issue` calls share their store round trips.
//!
//! Each call needs three (duplicate-device check, serial reservation, record). Alone, each is a statement
//! and a wake-up of the store's connection thread; under many concurrent calls that thread, not the
//! signing, is the limit (measured: ~300 µs of CPU per certificate on SQLite's connection thread). Here the
//! first caller to find the store idle runs everything that queued meanwhile as one statement; the others
//! wait for its answer. No timer: a lone caller runs at once, and batches grow only while the store is busy.
//!
//! The combined run happens in a spawned task, so a caller that goes away (an HTTP client disconnects) never
//! leaves the others without an answer. When a combined write fails, nothing of it was committed for the
//! others' sake: every caller gets `None` and repeats its own part alone, so one caller's refusal (a device
//! that gained a certificate meanwhile) is reported to that caller only.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{CaService, SERIAL_RETRIES};
use crate::authority::IssuedCert;
use crate::serial::Serial;
use crate::store::Store;
use crate::{Error, StoreError};

type Waiter<T, R> = (T, oneshot::Sender<Option<R>>);

/// One kind of store operation, coalesced.
pub(super) struct Group<T, R> {
    queue: Mutex<Vec<Waiter<T, R>>>,
    leader: Arc<tokio::sync::Mutex<()>>,
}

impl<T, R> std::fmt::Debug for Group<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Group")
    }
}

impl<T, R> Default for Group<T, R> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            leader: Arc::new(tokio::sync::Mutex::new(())),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Group<T, R> {
    /// Run `item` with whatever queued meanwhile through `run_all`, which answers each item in order, or
    /// `None` if the combined run failed (the caller then does its part alone).
    pub(super) async fn run<F, Fut>(&self, item: T, run_all: F) -> Option<R>
    where
        F: FnOnce(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Option<Vec<R>>> + Send + 'static,
    {
        let (tx, mut rx) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((item, tx));
        let guard = self.leader.clone().lock_owned().await;
        // A previous leader may have taken (and answered) this item.
        if let Ok(r) = rx.try_recv() {
            return r;
        }
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        let (items, waiters): (Vec<T>, Vec<oneshot::Sender<Option<R>>>) = batch.into_iter().unzip();
        let n = items.len();
        tokio::spawn(async move {
            let _guard = guard;
            match run_all(items).await {
                Some(rs) if rs.len() == n => {
                    for (w, r) in waiters.into_iter().zip(rs) {
                        let _ = w.send(Some(r));
                    }
                }
                _ => {
                    for w in waiters {
                        let _ = w.send(None);
                    }
                }
            }
        });
        rx.await.ok().flatten()
    }
}

/// The coalesced store operations of one service.
#[derive(Debug, Default)]
pub(super) struct Groups {
    /// (issuer, device IDs) → the active ones with their serials.
    devices: Group<(String, Vec<String>), HashMap<String, Serial>>,
    /// (issuer, serials) reserved.
    reservations: Group<(String, Vec<Serial>), ()>,
    /// Signed certificates recorded.
    records: Group<Vec<IssuedCert>, ()>,
}

impl<S: Store> CaService<S> {
    /// Which of `ids` have an active or suspended certificate from `issuer`.
    pub(super) async fn active_devices(
        &self,
        issuer: &str,
        ids: Vec<String>,
    ) -> Result<HashMap<String, Serial>, Error> {
        let svc = self.clone();
        let item = (issuer.to_owned(), ids.clone());
        let grouped = self
            .inner
            .groups
            .devices
            .run(item, move |items| async move {
                let mut found: HashMap<&str, HashMap<String, Serial>> = HashMap::new();
                let mut wanted: BTreeMap<&str, Vec<String>> = BTreeMap::new();
                for (iss, ids) in &items {
                    wanted.entry(iss).or_default().extend(ids.iter().cloned());
                }
                for (iss, ids) in wanted {
                    let f = svc
                        .inner
                        .store
                        .active_serials_for_devices(iss, &ids)
                        .await
                        .ok()?;
                    found.insert(iss, f);
                }
                let answers = items
                    .iter()
                    .map(|(iss, ids)| {
                        let f = found.get(iss.as_str());
                        ids.iter()
                            .filter_map(|id| Some((id.clone(), *f?.get(id)?)))
                            .collect()
                    })
                    .collect();
                Some(answers)
            })
            .await;
        match grouped {
            Some(m) => Ok(m),
            None => {
                self.inner
                    .store
                    .active_serials_for_devices(issuer, &ids)
                    .await
            }
        }
    }

    /// Reserve `n` fresh serials for `issuer` (redrawn on the astronomically unlikely collision).
    pub(super) async fn reserve(
        &self,
        issuer: &str,
        n: usize,
        now: u64,
    ) -> Result<Vec<Serial>, Error> {
        let serials = fresh(n)?;
        let svc = self.clone();
        let grouped = self
            .inner
            .groups
            .reservations
            .run(
                (issuer.to_owned(), serials.clone()),
                move |items| async move {
                    let mut all: BTreeMap<&str, Vec<Serial>> = BTreeMap::new();
                    for (iss, s) in &items {
                        all.entry(iss).or_default().extend_from_slice(s);
                    }
                    for (iss, s) in all {
                        svc.inner.store.reserve_serials(iss, &s, now).await.ok()?;
                    }
                    Some(vec![(); items.len()])
                },
            )
            .await;
        if grouped.is_some() {
            return Ok(serials);
        }
        let mut last = None;
        for _ in 0..SERIAL_RETRIES {
            let serials = fresh(n)?;
            match self
                .inner
                .store
                .reserve_serials(issuer, &serials, now)
                .await
            {
                Ok(()) => return Ok(serials),
                Err(Error::Store(StoreError::SerialConflict(s))) => last = Some(s),
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::SerialConflict(last.unwrap_or(Serial::random()?)).into())
    }

    /// Record signed certificates on their reserved serials.
    pub(super) async fn record(&self, certs: &[IssuedCert], now: u64) -> Result<(), Error> {
        let svc = self.clone();
        let grouped = self
            .inner
            .groups
            .records
            .run(certs.to_vec(), move |items| async move {
                let all: Vec<IssuedCert> = items.iter().flatten().cloned().collect();
                svc.inner.store.record_issued(&all, now).await.ok()?;
                Some(vec![(); items.len()])
            })
            .await;
        match grouped {
            Some(()) => Ok(()),
            None => self.inner.store.record_issued(certs, now).await,
        }
    }
}

fn fresh(n: usize) -> Result<Vec<Serial>, Error> {
    (0..n)
        .map(|_| Serial::random())
        .collect::<Result<Vec<_>, _>>()
}
