//! OCSP on the service: answering requests (a cache lookup, else the store's status signed), and the worker
//! that signs answers off the request path — after issuance and status changes, and before cached answers
//! reach their refresh point.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::{CaService, now};
use crate::ocsp::responder::{Pending, Why};
use crate::ocsp::{self, OcspStats, OcspStatus, Responder};
use crate::serial::Serial;
use crate::store::Store;
use crate::{Error, StoreError};

/// How often the worker reads the store for status changes made by other processes or nodes.
const OCSP_POLL: Duration = Duration::from_secs(5);
/// Slack of that read, for a change whose time was taken before a poll but committed after it.
const POLL_SLACK: u64 = 3;

/// Serials the worker signs per blocking job (one job at a time: the worker never takes more than one core).
const BATCH: usize = 256;

impl<S: Store> CaService<S> {
    /// Answer a DER OCSP request for `issuer`: a cached pre-signed response when there is one, else the
    /// store's status, signed. Malformed requests get an unsigned `malformedRequest`.
    pub async fn ocsp(&self, issuer: &str, request: &[u8]) -> Result<Arc<Vec<u8>>, Error> {
        match ocsp::parse_request(request) {
            Ok(req) => self.ocsp_parsed(issuer, req).await,
            Err(_) => Ok(Arc::new(ocsp::error_response(
                ocsp::asn1::OcspResponseStatus::MalformedRequest,
            ))),
        }
    }

    /// Answer a parsed OCSP request.
    pub async fn ocsp_parsed(
        &self,
        issuer: &str,
        req: ocsp::ParsedRequest,
    ) -> Result<Arc<Vec<u8>>, Error> {
        let r = self.responder(issuer)?;
        let t = now();
        if let Some(hit) = r.cached(&req, t) {
            return Ok(hit);
        }
        // Read before the statuses: a change committed meanwhile keeps this answer out of the cache.
        let epoch = r.epoch(&req);
        let mut statuses = Vec::new();
        for s in r.serials(&req) {
            statuses.push(match s {
                Some(s) => self.ocsp_status(issuer, &s).await?,
                None => OcspStatus::Unknown,
            });
        }
        tokio::task::spawn_blocking(move || r.respond(&req, &statuses, epoch, t))
            .await
            .map_err(|_| StoreError::Corrupt("OCSP task panicked"))?
    }

    async fn ocsp_status(&self, issuer: &str, serial: &Serial) -> Result<OcspStatus, Error> {
        Ok(match self.inner.store.get(serial).await? {
            Some(rec) if rec.issuer == issuer => OcspStatus::from(Some(rec.status)),
            _ => OcspStatus::Unknown,
        })
    }

    /// Certificates just recorded: the OCSP worker (if running) signs their `good` answers before anyone asks.
    pub(super) fn ocsp_issued(&self, issuer: &str, serials: impl IntoIterator<Item = Serial>) {
        if let Ok(r) = self.responder(issuer) {
            r.note_issued(&serials.into_iter().collect::<Vec<_>>());
        }
    }

    /// The OCSP responder of `issuer`.
    pub fn ocsp_responder(&self, issuer: &str) -> Result<Arc<Responder>, Error> {
        self.responder(issuer)
    }

    /// Bound the OCSP response cache of `issuer` to `entries` (memory: [`ocsp::DEFAULT_CACHE_ENTRIES`]).
    pub fn set_ocsp_cache_entries(&self, issuer: &str, entries: usize) -> Result<(), Error> {
        self.responder(issuer)?.set_cache_entries(entries);
        Ok(())
    }

    /// The OCSP counters of `issuer`'s responder (signatures made on and off the request path, cache hits,
    /// evictions, size).
    pub fn ocsp_stats(&self, issuer: &str) -> Result<OcspStats, Error> {
        Ok(self.responder(issuer)?.stats())
    }

    /// Start the OCSP worker: it signs the answers of newly issued certificates and of every status change
    /// as they happen, and re-signs cached answers clients keep asking for before their refresh point, so the
    /// request path is a lookup. It serves the responders registered now, and stops when `stop` turns true
    /// (or its sender is dropped); the handle resolves once it has stopped.
    pub fn spawn_ocsp(&self, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let responders: Vec<Arc<Responder>> = self
            .inner
            .responders
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for r in &responders {
            r.set_worker(true);
        }
        let svc = self.clone();
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for r in responders {
                let (svc, stop) = (svc.clone(), stop.clone());
                tasks.spawn(async move { svc.ocsp_worker(r, stop).await });
            }
            let _ = stop.wait_for(|s| *s).await;
            while tasks.join_next().await.is_some() {}
        })
    }

    async fn ocsp_worker(&self, r: Arc<Responder>, mut stop: watch::Receiver<bool>) {
        // The refresher looks ahead by two ticks, so an entry is re-signed before its refresh point.
        let tick = (r.validity() / 16).clamp(Duration::from_millis(100), Duration::from_secs(60));
        let lead = (tick * 2).min(r.validity() / 4);
        let mut timer = tokio::time::interval(tick);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + OCSP_POLL, OCSP_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut since = super::unix(now()).saturating_sub(POLL_SLACK);
        loop {
            let (refresh, changes) = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = r.wake.notified() => (false, false),
                _ = timer.tick() => (true, false),
                _ = poll.tick() => (false, true),
            };
            if changes {
                match self.poll_changes(&r, since).await {
                    Ok(next) => since = next,
                    Err(e) => tracing::warn!(issuer = r.label(), error = %e, "OCSP change poll"),
                }
            }
            if refresh && let Err(e) = self.refresh(&r, lead, &stop).await {
                tracing::warn!(issuer = r.label(), error = %e, "OCSP refresh");
            }
            if let Err(e) = self.presign_pending(&r, &stop).await {
                tracing::warn!(issuer = r.label(), error = %e, "OCSP pre-signing");
            }
        }
        r.set_worker(false);
    }

    /// Queue the cached answers that disagree with the status changes committed since `since` (by anyone);
    /// returns the next `since`. Changes this service made were re-signed when published, so they agree.
    async fn poll_changes(&self, r: &Arc<Responder>, since: u64) -> Result<u64, Error> {
        let next = super::unix(now()).saturating_sub(POLL_SLACK);
        for e in self.inner.store.changed_since(r.label(), since).await? {
            let status = match e.reason {
                Some(reason) => OcspStatus::Revoked {
                    at: e.revoked_at,
                    reason,
                },
                None => OcspStatus::Good, // resumed (removeFromCRL)
            };
            r.changed_elsewhere(&e.serial, status);
        }
        Ok(next)
    }

    /// Sign everything queued.
    async fn presign_pending(
        &self,
        r: &Arc<Responder>,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), Error> {
        while !*stop.borrow() {
            let batch = r.take_pending(BATCH);
            if batch.is_empty() {
                return Ok(());
            }
            if let Err(e) = self.presign_batch(r, &batch).await {
                r.requeue(batch);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Read the statuses of one batch taken from the queue and sign them.
    async fn presign_batch(
        &self,
        r: &Arc<Responder>,
        batch: &[(Serial, Pending)],
    ) -> Result<(), Error> {
        let mut jobs = Vec::with_capacity(batch.len());
        for &(serial, p) in batch {
            let epoch = r.serial_epoch(&serial);
            let status = match p {
                Pending::Issued => OcspStatus::Good,
                Pending::Changed { .. } => self.ocsp_status(r.label(), &serial).await?,
            };
            for h in r.hashes_for(p) {
                jobs.push(((serial, h), status, epoch));
            }
        }
        self.sign_jobs(r, jobs, Why::Presign).await
    }

    /// Re-sign the cached entries due within `lead`, reading each status again.
    async fn refresh(
        &self,
        r: &Arc<Responder>,
        lead: Duration,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), Error> {
        while !*stop.borrow() {
            let due = r.due(now() + lead, BATCH);
            if due.is_empty() {
                return Ok(());
            }
            let mut jobs = Vec::with_capacity(due.len());
            for key in due {
                let epoch = r.serial_epoch(&key.0);
                jobs.push((key, self.ocsp_status(r.label(), &key.0).await?, epoch));
            }
            self.sign_jobs(r, jobs, Why::Refresh).await?;
        }
        Ok(())
    }

    async fn sign_jobs(
        &self,
        r: &Arc<Responder>,
        jobs: Vec<(ocsp::CacheKey, OcspStatus, u64)>,
        why: Why,
    ) -> Result<(), Error> {
        let r = r.clone();
        tokio::task::spawn_blocking(move || {
            let t: SystemTime = now();
            for (key, status, epoch) in jobs {
                r.presign(key, status, epoch, t, why)?;
            }
            Ok::<_, Error>(())
        })
        .await
        .map_err(|_| StoreError::Corrupt("OCSP worker task panicked"))?
    }
}
