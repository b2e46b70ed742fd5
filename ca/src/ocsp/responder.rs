//! The responder of one issuing CA: signs responses with the delegated OCSP signer, keeps the pre-signed ones
//! in a bounded cache, and queues the serials whose answers the background worker (`CaService::spawn_ocsp`)
//! should sign ahead of any request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use der::asn1::{BitString, Int, Null, OctetString};
use der::{Decode, Encode};
use hashlink::LinkedHashMap;
use smtrust_crypto::x509::CertSigner;
use x509_cert::Certificate;

use super::asn1::{
    BasicOcspResponse, CertId, CertStatus as AsnStatus, OcspResponse, OcspResponseStatus,
    ResponderId, ResponseBytes, ResponseData, RevokedInfo, SingleResponse,
};
use super::cache::{Cache, Entry, Key};
use super::{CertIdHash, IssuerHashes, OCSP_BASIC, OcspStatus, ParsedRequest, gtime, unix};
use crate::authority::Issuer;
use crate::revocation::RevocationReason;
use crate::serial::Serial;
use crate::{Error, RequestError};

/// Default bound of the response cache. An entry costs its DER response (770–830 bytes measured: the
/// delegated signer's certificate is in every response) plus about 150 bytes of bookkeeping (key, times, list
/// links, hash slot, `Arc` and allocator headers): about 0.95 KB, so 100,000 entries ≈ 95 MB.
pub const DEFAULT_CACHE_ENTRIES: usize = 100_000;
/// Serials waiting for the worker; past this, new ones are not queued (their first request signs).
pub const MAX_PENDING: usize = 65_536;

/// What the worker should sign for a queued serial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    /// Just issued: the status is `good`, no store read needed.
    Issued,
    /// Its status changed: read it from the store. `hashes` are the CertID hashes that were cached.
    Changed {
        /// Bit 0: SHA-1, bit 1: SM3.
        hashes: u8,
    },
}

fn bit(h: CertIdHash) -> u8 {
    match h {
        CertIdHash::Sha1 => 1,
        CertIdHash::Sm3 => 2,
    }
}

/// Counters of one responder, for tests, benchmarks and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OcspStats {
    /// Responses signed on the request path because no fresh pre-signed one was cached (nonce-less).
    pub signed_on_miss: u64,
    /// Responses signed on the request path because the request carried a nonce or several CertIDs.
    pub signed_per_request: u64,
    /// Responses signed by the worker after an issuance or a status change.
    pub presigned: u64,
    /// Responses re-signed by the refresher before their refresh point.
    pub refreshed: u64,
    /// Requests answered from the cache.
    pub hits: u64,
    /// Entries evicted to keep the cache bound.
    pub evictions: u64,
    /// Entries cached now.
    pub cached: u64,
    /// The cache bound.
    pub capacity: u64,
}

#[derive(Default)]
struct Counters {
    miss: AtomicU64,
    per_request: AtomicU64,
    presigned: AtomicU64,
    refreshed: AtomicU64,
    hits: AtomicU64,
}

/// Who asked for a signature (which counter it goes to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    Presign,
    Refresh,
}

/// An OCSP responder for one issuing CA, signing with its delegated OCSP signer.
pub struct Responder {
    label: String,
    hashes: IssuerHashes,
    signer: Arc<dyn CertSigner>,
    signer_cert: Certificate,
    key_hash: Vec<u8>,
    validity: Duration,
    presign: u8,
    cache: Cache,
    pending: Mutex<LinkedHashMap<Serial, Pending>>,
    /// Set while a worker runs: without one nothing is queued.
    worker: AtomicBool,
    pub(crate) wake: tokio::sync::Notify,
    counters: Counters,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("issuer", &self.label)
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// A responder for `issuer`, signing with the delegated OCSP signer `signer` whose certificate (issued by
    /// `issuer` with the `ocsp` profile) is `signer_cert_der`. Responses are valid for `validity`
    /// (nextUpdate − thisUpdate, at least 2 s); the cache holds [`DEFAULT_CACHE_ENTRIES`]; issuance pre-signs
    /// SHA-1 CertIDs (what `openssl ocsp` and most clients send).
    pub fn new(
        issuer: &Issuer,
        signer_cert_der: &[u8],
        signer: Arc<dyn CertSigner>,
        validity: Duration,
    ) -> Result<Self, Error> {
        let hashes = IssuerHashes::of(issuer.certificate())?;
        let signer_cert = Certificate::from_der(signer_cert_der)
            .map_err(|e| RequestError::malformed("OCSP signer certificate", &e))?;
        let spki_der = signer_cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()?;
        if smtrust_crypto::x509::public_key_from_spki_der(&spki_der)? != *signer.public_key() {
            return Err(
                RequestError::Import("OCSP signer key does not match its certificate").into(),
            );
        }
        let key_hash = super::key_hash(&signer_cert);
        Ok(Self {
            label: issuer.label().to_owned(),
            hashes,
            signer,
            signer_cert,
            key_hash,
            validity: validity.max(Duration::from_secs(2)),
            presign: bit(CertIdHash::Sha1),
            cache: Cache::new(DEFAULT_CACHE_ENTRIES),
            pending: Mutex::new(LinkedHashMap::new()),
            worker: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
            counters: Counters::default(),
        })
    }

    /// Bound the cache to `entries` (rounded up to a multiple of 64). Memory: see [`DEFAULT_CACHE_ENTRIES`].
    pub fn with_cache_entries(self, entries: usize) -> Self {
        self.set_cache_entries(entries);
        self
    }

    /// Change the cache bound of a running responder (shrinking evicts least recently used entries at once).
    pub fn set_cache_entries(&self, entries: usize) {
        self.cache.set_capacity(entries);
    }

    /// The CertID hashes pre-signed at issuance (default SHA-1 only; each costs one signature per
    /// certificate). A status change re-signs the hashes that were cached, plus these.
    pub fn with_presign_hashes(mut self, hashes: &[CertIdHash]) -> Self {
        self.presign = hashes.iter().fold(0, |m, h| m | bit(*h));
        self
    }

    /// The issuer label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Response validity.
    pub fn validity(&self) -> Duration {
        self.validity
    }

    /// The counters.
    pub fn stats(&self) -> OcspStats {
        let c = &self.counters;
        OcspStats {
            signed_on_miss: c.miss.load(Ordering::Relaxed),
            signed_per_request: c.per_request.load(Ordering::Relaxed),
            presigned: c.presigned.load(Ordering::Relaxed),
            refreshed: c.refreshed.load(Ordering::Relaxed),
            hits: c.hits.load(Ordering::Relaxed),
            evictions: self.cache.evictions(),
            cached: self.cache.len() as u64,
            capacity: self.cache.capacity() as u64,
        }
    }

    /// For each CertID: the serial to look up if it names this issuer, else `None` (answered unknown).
    pub fn serials(&self, req: &ParsedRequest) -> Vec<Option<Serial>> {
        req.cert_ids
            .iter()
            .map(|id| {
                self.hashes
                    .matches(id)
                    .and_then(|_| Serial::from_slice(id.serial_number.as_bytes()))
            })
            .collect()
    }

    /// The cache key of a single-certificate request without a nonce whose CertID is the one a cached answer
    /// carries ([`IssuerHashes::cert_id`]: parameters NULL); a CertID without parameters is answered per
    /// request, so the response echoes it as sent.
    fn cache_key(&self, req: &ParsedRequest) -> Option<Key> {
        if req.nonce.is_some() {
            return None;
        }
        let [id] = req.cert_ids.as_slice() else {
            return None;
        };
        id.hash_algorithm.parameters.as_ref()?;
        let h = self.hashes.matches(id)?;
        Some((Serial::from_slice(id.serial_number.as_bytes())?, h))
    }

    /// A cached pre-signed response for this request, if it may still be served.
    pub fn cached(&self, req: &ParsedRequest, now: SystemTime) -> Option<Arc<Vec<u8>>> {
        let key = self.cache_key(req)?;
        let hit = self.cache.get(&key, millis(now))?;
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
        Some(hit)
    }

    /// The cache epoch of the request's serial; read before the statuses that [`Self::respond`] signs.
    pub fn epoch(&self, req: &ParsedRequest) -> Option<u64> {
        self.cache_key(req).map(|(s, _)| self.cache.epoch(&s))
    }

    /// Drop the cached responses of `serial` (its status changed) and, with a worker running, queue it to be
    /// signed again.
    pub fn invalidate(&self, serial: &Serial) {
        let was = self
            .cache
            .invalidate(serial)
            .into_iter()
            .fold(0, |m, h| m | bit(h));
        self.enqueue(*serial, Pending::Changed { hashes: was }, true);
    }

    /// Whether an answer about `serial` for `hash` CertIDs is cached. After a status change it is not until the
    /// new status is signed.
    pub fn is_cached(&self, serial: &Serial, hash: CertIdHash) -> bool {
        self.cache.contains(&(*serial, hash))
    }

    /// `serial` has `status` in the store, possibly changed outside this service (another process on the same
    /// database, another node): with a worker running, its cached answers that say otherwise are queued to be
    /// signed again (they stay served meanwhile).
    pub fn changed_elsewhere(&self, serial: &Serial, status: OcspStatus) {
        let hashes = self.cache.differs(serial, status);
        if hashes != 0 {
            self.enqueue(*serial, Pending::Changed { hashes }, true);
        }
    }

    /// Certificates just recorded: with a worker running, queue their `good` answers to be pre-signed.
    pub fn note_issued(&self, serials: &[Serial]) {
        for s in serials {
            self.enqueue(*s, Pending::Issued, false);
        }
    }

    fn enqueue(&self, serial: Serial, p: Pending, overwrite: bool) {
        if !self.worker.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut q) = self.pending.lock() {
            if let Some(v) = q.get_mut(&serial) {
                // A change overrides a queued issuance: never pre-sign `good` over a newer status.
                if overwrite {
                    *v = p;
                }
            } else if q.len() < MAX_PENDING {
                q.insert(serial, p);
            }
        }
        self.wake.notify_one();
    }

    /// Mark the worker running or stopped (a stopped worker's queue is dropped).
    pub(crate) fn set_worker(&self, running: bool) {
        self.worker.store(running, Ordering::Release);
        if !running && let Ok(mut q) = self.pending.lock() {
            q.clear();
        }
    }

    /// Put back serials taken by [`Self::take_pending`] that could not be signed (a store read failed): a
    /// change polled from the store is seen once, so dropping it would leave the old answer served. No wake-up:
    /// a failing store is retried at the worker's next tick, not in a loop. A serial queued again meanwhile
    /// keeps that entry, merged with this one.
    pub(crate) fn requeue(&self, items: Vec<(Serial, Pending)>) {
        if !self.worker.load(Ordering::Acquire) {
            return;
        }
        let Ok(mut q) = self.pending.lock() else {
            return;
        };
        for (serial, p) in items {
            if let Some(v) = q.get_mut(&serial) {
                *v = match (*v, p) {
                    (Pending::Changed { hashes: a }, Pending::Changed { hashes: b }) => {
                        Pending::Changed { hashes: a | b }
                    }
                    (Pending::Issued, p) | (p, Pending::Issued) => p,
                };
            } else if q.len() < MAX_PENDING {
                q.insert(serial, p);
            }
        }
    }

    /// Up to `max` queued serials, oldest first.
    pub(crate) fn take_pending(&self, max: usize) -> Vec<(Serial, Pending)> {
        let Ok(mut q) = self.pending.lock() else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(max.min(q.len()));
        while out.len() < max {
            let Some(x) = q.pop_front() else { break };
            out.push(x);
        }
        out
    }

    /// The CertID hashes to sign for a queued serial.
    pub(crate) fn hashes_for(&self, p: Pending) -> Vec<CertIdHash> {
        let m = match p {
            Pending::Issued => self.presign,
            Pending::Changed { hashes } => hashes | self.presign,
        };
        [CertIdHash::Sha1, CertIdHash::Sm3]
            .into_iter()
            .filter(|h| m & bit(*h) != 0)
            .collect()
    }

    /// The shard epoch of `serial` (read before its status).
    pub(crate) fn serial_epoch(&self, serial: &Serial) -> u64 {
        self.cache.epoch(serial)
    }

    /// Cached entries to re-sign because their refresh point is before `deadline` (idle ones are dropped).
    pub(crate) fn due(&self, deadline: SystemTime, max: usize) -> Vec<Key> {
        self.cache.due(millis(deadline), max)
    }

    /// Sign the single-certificate response of `key` with `status` and cache it unless the serial's status
    /// changed since `epoch`. Runs on a blocking thread (one SM2 signature).
    pub(crate) fn presign(
        &self,
        key: Key,
        status: OcspStatus,
        epoch: u64,
        now: SystemTime,
        why: Why,
    ) -> Result<bool, Error> {
        let (serial, hash) = key;
        let id = self.hashes.cert_id(hash, &serial)?;
        let der_bytes = self.sign(std::slice::from_ref(&id), &[status], None, now)?;
        match why {
            Why::Presign => &self.counters.presigned,
            Why::Refresh => &self.counters.refreshed,
        }
        .fetch_add(1, Ordering::Relaxed);
        let inserted = self
            .cache
            .insert_if(key, self.entry(der_bytes, status, now), epoch);
        if !inserted {
            // A change in the shard since `epoch` (this serial's, which queued it again, or another's, which
            // did not): sign again from a fresh read rather than leave the serial to a request-path miss.
            self.enqueue(serial, Pending::Changed { hashes: bit(hash) }, false);
        }
        Ok(inserted)
    }

    fn entry(&self, der: Arc<Vec<u8>>, status: OcspStatus, now: SystemTime) -> Entry {
        let t = millis(now);
        let v = u64::try_from(self.validity.as_millis()).unwrap_or(u64::MAX);
        Entry {
            der,
            refresh_at: t.saturating_add(v / 2),
            serve_until: t.saturating_add(v / 4 * 3),
            used: false,
            status,
        }
    }

    /// Build and sign the response on the request path; `statuses` are in request order (from
    /// [`Self::serials`] and the store). A cacheable answer is cached unless the serial's status changed
    /// since `epoch` (from [`Self::epoch`], read before the statuses).
    pub fn respond(
        &self,
        req: &ParsedRequest,
        statuses: &[OcspStatus],
        epoch: Option<u64>,
        now: SystemTime,
    ) -> Result<Arc<Vec<u8>>, Error> {
        let der_bytes = self.sign(&req.cert_ids, statuses, req.nonce.clone(), now)?;
        match (self.cache_key(req), epoch) {
            (Some(key), Some(epoch)) => {
                self.counters.miss.fetch_add(1, Ordering::Relaxed);
                let status = statuses.first().copied().unwrap_or(OcspStatus::Unknown);
                let mut e = self.entry(der_bytes.clone(), status, now);
                e.used = true;
                self.cache.insert_if(key, e, epoch);
            }
            _ => {
                self.counters.per_request.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(der_bytes)
    }

    fn sign(
        &self,
        ids: &[CertId],
        statuses: &[OcspStatus],
        nonce: Option<x509_cert::ext::Extension>,
        now: SystemTime,
    ) -> Result<Arc<Vec<u8>>, Error> {
        let this_update = gtime(unix(now))?;
        let next = unix(now).saturating_add(self.validity.as_secs());
        let mut responses = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            let status = statuses.get(i).copied().unwrap_or(OcspStatus::Unknown);
            let cert_status = match status {
                OcspStatus::Good => AsnStatus::Good(Null),
                OcspStatus::Unknown => AsnStatus::Unknown(Null),
                OcspStatus::Revoked { at, reason } => AsnStatus::Revoked(RevokedInfo {
                    revocation_time: gtime(at)?,
                    revocation_reason: (reason != RevocationReason::Unspecified)
                        .then(|| crate::crl::to_crl_reason(reason)),
                }),
            };
            responses.push(SingleResponse {
                cert_id: id.clone(),
                cert_status,
                this_update,
                next_update: Some(gtime(next)?),
                single_extensions: None,
            });
        }
        let data = ResponseData {
            responder_id: ResponderId::ByKey(OctetString::new(self.key_hash.clone())?),
            produced_at: this_update,
            responses,
            response_extensions: nonce.map(|n| vec![n]),
        };
        let tbs = data.to_der()?;
        let sig = self.signer.sign(&tbs)?;
        let basic = BasicOcspResponse {
            tbs_response_data: data,
            signature_algorithm: smtrust_crypto::x509::sm2_with_sm3(),
            signature: BitString::from_bytes(sig.as_der())?,
            certs: Some(vec![self.signer_cert.clone()]),
        };
        let resp = OcspResponse {
            response_status: OcspResponseStatus::Successful,
            response_bytes: Some(ResponseBytes {
                response_type: OCSP_BASIC,
                response: OctetString::new(basic.to_der()?)?,
            }),
        };
        Ok(Arc::new(resp.to_der()?))
    }
}

impl IssuerHashes {
    /// The CertID a client computes for `serial` with `hash` (parameters NULL, as OpenSSL writes them).
    fn cert_id(&self, hash: CertIdHash, serial: &Serial) -> Result<CertId, Error> {
        let (oid, (n, k)) = match hash {
            CertIdHash::Sha1 => (const_oid::db::rfc5912::ID_SHA_1, &self.sha1),
            CertIdHash::Sm3 => (super::SM3, &self.sm3),
        };
        Ok(CertId {
            hash_algorithm: spki::AlgorithmIdentifierOwned {
                oid,
                parameters: Some(Null.into()),
            },
            issuer_name_hash: OctetString::new(n.clone())?,
            issuer_key_hash: OctetString::new(k.clone())?,
            serial_number: Int::new(serial.as_bytes())?,
        })
    }
}

/// Unix milliseconds.
pub(crate) fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
