//! The one async layer: checks a request, reserves serials in the [`Store`], signs (on blocking threads, both
//! cores for batches), records, and publishes revocation events.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;
use zeroize::Zeroizing;

use crate::authority::{IssuedCert, Issuer, PreparedCert};
use crate::crl::{self, CrlKind};
use crate::csr::{self, CsrDistId, VerifiedCsr};
use crate::device::DeviceId;
use crate::ocsp::Responder;
use crate::profile::{Profile, Profiles};
use crate::revocation::{RevocationEvent, RevocationKind, RevocationReason};
use crate::serial::Serial;
use crate::store::{CertRecord, Store, StoredCrl};
use crate::{ConfigError, Error, RequestError, StoreError};

mod cpu;
mod delta;
mod group;
mod ocsp;
mod own_keys;
mod renew;

pub use delta::DELTA_CRL_DELAY;

/// How long a CRL is valid (nextUpdate − thisUpdate).
pub const CRL_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// How many times a colliding serial is redrawn.
const SERIAL_RETRIES: usize = 4;
/// Requests per chunk of a pipelined batch.
const PIPELINE_CHUNK: usize = 64;
/// Chunks of one batch in flight at once.
const PIPELINE_DEPTH: usize = 4;

/// One issuance request.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IssueRequest {
    /// The CSR, PEM or DER.
    pub csr: Vec<u8>,
    /// The device ID the caller authenticated, if any (else read from the CSR subject).
    pub device_id: Option<DeviceId>,
    /// Extra DNS names (server profiles).
    pub dns_names: Vec<String>,
}

impl IssueRequest {
    /// A request for a CSR.
    pub fn new(csr: Vec<u8>, device_id: Option<DeviceId>) -> Self {
        Self {
            csr,
            device_id,
            dns_names: Vec::new(),
        }
    }
}

/// A server-generated key and its certificate. The key is shown once.
#[non_exhaustive]
pub struct KeygenOutput {
    /// `ENCRYPTED PRIVATE KEY` PEM (PKCS#8, PBES2, SM4-CBC).
    pub encrypted_key_pem: Zeroizing<String>,
    /// The certificate.
    pub cert: IssuedCert,
}

impl std::fmt::Debug for KeygenOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeygenOutput")
            .field("cert", &self.cert.serial)
            .finish_non_exhaustive()
    }
}

struct Inner<S> {
    store: S,
    profiles: Profiles,
    issuers: RwLock<HashMap<String, Arc<Issuer>>>,
    responders: RwLock<HashMap<String, Arc<Responder>>>,
    events: broadcast::Sender<RevocationEvent>,
    /// CRL numbers are allocated and recorded under this lock, so concurrent revocations in one process never
    /// race for the same number. Across PostgreSQL nodes the unique constraint refuses the loser's CRL (a store
    /// error); the next change or the schedule makes a newer one.
    crl_lock: tokio::sync::Mutex<()>,
    /// Which delta CRLs miss a change, and who regenerates them (see `service/delta.rs`).
    deltas: delta::Deltas,
    /// Runs CSR verification and signing, one job per core.
    cpu: cpu::Cpu,
    /// Concurrent calls' store round trips, shared.
    groups: group::Groups,
}

/// The CA service. Cheap to clone.
pub struct CaService<S: Store> {
    inner: Arc<Inner<S>>,
}

impl<S: Store> std::fmt::Debug for CaService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<String> = self
            .inner
            .issuers
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("CaService")
            .field("issuers", &labels)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Clone for CaService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

#[allow(clippy::disallowed_methods)] // the service is the edge that reads the clock
fn now() -> SystemTime {
    SystemTime::now()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl<S: Store> CaService<S> {
    /// A service over `store` with these profiles.
    pub fn new(store: S, profiles: Profiles) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                store,
                profiles,
                issuers: RwLock::new(HashMap::new()),
                responders: RwLock::new(HashMap::new()),
                events,
                crl_lock: tokio::sync::Mutex::new(()),
                deltas: delta::Deltas::default(),
                cpu: cpu::Cpu::new(),
                groups: group::Groups::default(),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// Register an issuing CA (its label must be unique).
    pub fn add_issuer(&self, issuer: Issuer) -> Arc<Issuer> {
        let a = Arc::new(issuer);
        if let Ok(mut m) = self.inner.issuers.write() {
            m.insert(a.label().to_owned(), a.clone());
        }
        a
    }

    /// Register the OCSP responder of an issuer.
    pub fn set_responder(&self, responder: Responder) {
        if let Ok(mut m) = self.inner.responders.write() {
            m.insert(responder.label().to_owned(), Arc::new(responder));
        }
    }

    /// An issuer by label.
    pub fn issuer(&self, label: &str) -> Result<Arc<Issuer>, Error> {
        self.inner
            .issuers
            .read()
            .ok()
            .and_then(|m| m.get(label).cloned())
            .ok_or_else(|| ConfigError::UnknownIssuer(label.to_owned()).into())
    }

    fn responder(&self, label: &str) -> Result<Arc<Responder>, Error> {
        self.inner
            .responders
            .read()
            .ok()
            .and_then(|m| m.get(label).cloned())
            .ok_or_else(|| ConfigError::NoOcspSigner(label.to_owned()).into())
    }

    fn profile(&self, name: &str) -> Result<&Profile, Error> {
        self.inner
            .profiles
            .get(name)
            .ok_or_else(|| RequestError::UnknownProfile(name.to_owned()).into())
    }

    /// Receive revocation events raised in this process.
    pub fn subscribe(&self) -> broadcast::Receiver<RevocationEvent> {
        self.inner.events.subscribe()
    }

    /// Issue one certificate from a CSR.
    pub async fn issue(
        &self,
        issuer: &str,
        profile: &str,
        req: IssueRequest,
    ) -> Result<IssuedCert, Error> {
        let mut out = self.issue_batch(issuer, profile, vec![req]).await?;
        out.pop()
            .unwrap_or(Err(StoreError::Corrupt("empty batch result").into()))
    }

    /// Issue many certificates: CSRs are verified and signed on every core, serials reserved and certificates
    /// recorded a few hundred rows per statement. A large batch runs as a pipeline of chunks (one chunk's store
    /// work overlaps the next one's signing). Each request gets its own result; refused requests store
    /// nothing. A store failure fails the call (chunks recorded before it stay issued: `list` shows them).
    pub async fn issue_batch(
        &self,
        issuer: &str,
        profile: &str,
        reqs: Vec<IssueRequest>,
    ) -> Result<Vec<Result<IssuedCert, Error>>, Error> {
        let iss = self.issuer(issuer)?;
        let prof = Arc::new(self.profile(profile)?.clone());
        if reqs.len() <= PIPELINE_CHUNK {
            return self.issue_chunk(iss, prof, reqs).await;
        }
        let gate = Arc::new(tokio::sync::Semaphore::new(PIPELINE_DEPTH));
        let mut set = tokio::task::JoinSet::new();
        let mut it = reqs.into_iter();
        let mut chunks = 0;
        loop {
            let chunk: Vec<IssueRequest> = it.by_ref().take(PIPELINE_CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            let (svc, iss, prof, gate) = (self.clone(), iss.clone(), prof.clone(), gate.clone());
            let k = chunks;
            set.spawn(async move {
                let _permit = gate.acquire_owned().await;
                (k, svc.issue_chunk(iss, prof, chunk).await)
            });
            chunks += 1;
        }
        let mut parts: Vec<Vec<Result<IssuedCert, Error>>> =
            (0..chunks).map(|_| Vec::new()).collect();
        let mut failed = None;
        while let Some(done) = set.join_next().await {
            let (k, res) = done.map_err(|_| StoreError::Corrupt("issuance task panicked"))?;
            match (res, parts.get_mut(k)) {
                (Ok(v), Some(slot)) => *slot = v,
                (Ok(_), None) => return Err(StoreError::Corrupt("chunk index").into()),
                (Err(e), _) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(parts.into_iter().flatten().collect()),
        }
    }

    /// One chunk: parse, verify and check (CPU, on the bounded pool), then sign and record.
    async fn issue_chunk(
        &self,
        iss: Arc<Issuer>,
        prof: Arc<Profile>,
        reqs: Vec<IssueRequest>,
    ) -> Result<Vec<Result<IssuedCert, Error>>, Error> {
        let iss2 = iss.clone();
        let prepared: Vec<Result<PreparedCert, Error>> = self
            .inner
            .cpu
            .map(reqs, move |r| {
                let csr = csr::parse_and_verify(&r.csr)?;
                iss2.prepare(&prof, &csr, r.device_id.as_ref(), &r.dns_names)
            })
            .await?;
        self.sign_and_record(iss, prepared).await
    }

    async fn sign_and_record(
        &self,
        iss: Arc<Issuer>,
        mut prepared: Vec<Result<PreparedCert, Error>>,
    ) -> Result<Vec<Result<IssuedCert, Error>>, Error> {
        // 2. Duplicate active device IDs (in the store, and within the batch).
        let ids: Vec<String> = prepared
            .iter()
            .filter_map(|p| Some(p.as_ref().ok()?.device_id.as_ref()?.as_str().to_owned()))
            .collect();
        let active = if ids.is_empty() {
            HashMap::new()
        } else {
            self.active_devices(iss.label(), ids).await?
        };
        let mut seen = HashMap::new();
        for p in prepared.iter_mut() {
            let Ok(pc) = p else { continue };
            let Some(id) = pc.device_id.clone() else {
                continue;
            };
            if let Some(serial) = active.get(id.as_str()).copied() {
                *p = Err(RequestError::DuplicateDevice {
                    id: id.to_string(),
                    serial,
                }
                .into());
            } else if seen.insert(id.clone(), ()).is_some() {
                *p = Err(RequestError::DuplicateDevice {
                    id: id.to_string(),
                    serial: Serial::from_slice(&[0; 16]).unwrap_or(Serial::random()?),
                }
                .into());
            }
        }
        // 3. Reserve serials before signing (retry on the astronomically unlikely collision).
        let n = prepared.iter().filter(|p| p.is_ok()).count();
        let t = now();
        let serials = if n == 0 {
            Vec::new()
        } else {
            self.reserve(iss.label(), n, unix(t)).await?
        };
        // 4. Sign in parallel.
        let mut jobs = Vec::with_capacity(n);
        let mut it = serials.into_iter();
        for p in prepared {
            jobs.push(p.map(|pc| (pc, it.next())));
        }
        let iss2 = iss.clone();
        let signed: Vec<Result<IssuedCert, Error>> = self
            .inner
            .cpu
            .map(jobs, move |j| {
                let (pc, serial) = j?;
                let serial = serial.ok_or(StoreError::Corrupt("serial count"))?;
                iss2.sign(&pc, serial, t)
            })
            .await?;
        // 5. Record in one transaction. A device that gained an active certificate since step 2 (a
        // concurrent call, or the same device in another chunk of this batch) refuses that request only.
        let mut signed = signed;
        let mut ok: Vec<IssuedCert> = signed
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect();
        while !ok.is_empty() {
            match self.record(&ok, unix(t)).await {
                Ok(()) => break,
                Err(Error::Request(RequestError::DuplicateDevice { id, serial })) => {
                    let active = self
                        .inner
                        .store
                        .active_serial_for_device(iss.label(), &id)
                        .await?
                        .unwrap_or(serial);
                    let before = ok.len();
                    ok.retain(|c| c.serial != serial);
                    if ok.len() == before {
                        return Err(RequestError::DuplicateDevice { id, serial }.into());
                    }
                    for r in signed.iter_mut() {
                        if matches!(r, Ok(c) if c.serial == serial) {
                            *r = Err(RequestError::DuplicateDevice {
                                id: id.clone(),
                                serial: active,
                            }
                            .into());
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        for c in &ok {
            tracing::info!(serial = %c.serial, issuer = %c.issuer, profile = %c.profile, "issued");
        }
        self.ocsp_issued(iss.label(), ok.iter().map(|c| c.serial));
        Ok(signed)
    }

    /// Server-side key generation for a device that cannot make its own key: the key is returned once as
    /// encrypted PKCS#8 under `passphrase` (PBES2, PBKDF2-HMAC-SM3 as GmSSL writes it), with the certificate.
    pub async fn keygen(
        &self,
        issuer: &str,
        profile: &str,
        device_id: DeviceId,
        passphrase: Zeroizing<Vec<u8>>,
        prf: smtrust_crypto::pkcs8::KdfPrf,
    ) -> Result<KeygenOutput, Error> {
        let iss = self.issuer(issuer)?;
        let prof = self.profile(profile)?.clone();
        let iss2 = iss.clone();
        let (key_pem, prepared) = tokio::task::spawn_blocking(move || {
            let sk = smtrust_crypto::sm2::Sm2SecretKey::generate()?;
            let spki_der = smtrust_crypto::x509::public_key_to_spki_der(sk.public_key())?;
            let spki = <spki::SubjectPublicKeyInfoOwned as der::Decode>::from_der(&spki_der)?;
            let pseudo = VerifiedCsr {
                subject: crate::authority::ext::device_subject(device_id.as_str(), None)?,
                public_key: sk.public_key().clone(),
                spki,
                requested_extensions: vec![],
                signed_with: CsrDistId::GmT,
                der: vec![],
            };
            let prepared = iss2.prepare(&prof, &pseudo, Some(&device_id), &[]);
            let pem = smtrust_crypto::pem::encode_encrypted_private_key(&sk, &passphrase, prf)?;
            Ok::<_, Error>((Zeroizing::new(pem), prepared))
        })
        .await
        .map_err(|_| StoreError::Corrupt("keygen task panicked"))??;
        let mut out = self.sign_and_record(iss, vec![prepared]).await?;
        let cert = out
            .pop()
            .unwrap_or(Err(StoreError::Corrupt("empty result").into()))?;
        Ok(KeygenOutput {
            encrypted_key_pem: key_pem,
            cert,
        })
    }

    /// Revoke for good.
    pub async fn revoke(
        &self,
        issuer: &str,
        serial: &Serial,
        reason: RevocationReason,
    ) -> Result<RevocationEvent, Error> {
        let kind = if reason == RevocationReason::CertificateHold {
            RevocationKind::Suspended
        } else {
            RevocationKind::Revoked { reason }
        };
        self.change(issuer, serial, kind).await
    }

    /// Suspend (certificateHold).
    pub async fn suspend(&self, issuer: &str, serial: &Serial) -> Result<RevocationEvent, Error> {
        self.change(issuer, serial, RevocationKind::Suspended).await
    }

    /// Resume a suspended certificate.
    pub async fn resume(&self, issuer: &str, serial: &Serial) -> Result<RevocationEvent, Error> {
        self.change(issuer, serial, RevocationKind::Resumed).await
    }

    async fn change(
        &self,
        issuer: &str,
        serial: &Serial,
        kind: RevocationKind,
    ) -> Result<RevocationEvent, Error> {
        self.issuer(issuer)?;
        let ev = self
            .inner
            .store
            .change_status(issuer, serial, kind, unix(now()))
            .await?;
        self.publish(&ev).await?;
        Ok(ev)
    }

    /// After a committed status change: drop cached OCSP answers, send the event, mark the delta CRL.
    async fn publish(&self, ev: &RevocationEvent) -> Result<(), Error> {
        if let Ok(r) = self.responder(&ev.issuer) {
            r.invalidate(&ev.serial);
        }
        tracing::info!(serial = %ev.serial, issuer = %ev.issuer, kind = ?ev.kind, "status changed");
        let _ = self.inner.events.send(ev.clone());
        // The delta CRL follows, coalesced with other changes (full CRLs follow the schedule).
        self.delta_changed(&ev.issuer).await
    }

    /// Make, store and return a new CRL: full, or delta on top of the latest full CRL (a full one is made
    /// first if none exists).
    pub async fn crl(&self, issuer: &str, delta: bool) -> Result<StoredCrl, Error> {
        let _guard = self.inner.crl_lock.lock().await;
        self.crl_locked(issuer, delta).await
    }

    async fn crl_locked(&self, issuer: &str, delta: bool) -> Result<StoredCrl, Error> {
        let iss = self.issuer(issuer)?;
        let st = &self.inner.store;
        let started = tokio::time::Instant::now();
        // Every change marked before this point is committed, so the entries read below include it.
        let covers = self.inner.deltas.snapshot(issuer);
        let t = now();
        let (kind, entries) = if delta {
            let base = match st.latest_crl(issuer, false).await? {
                Some(b) => b,
                None => Box::pin(self.crl_locked(issuer, false)).await?,
            };
            // Times are whole seconds: a change in the base's own second may have missed the base, so it
            // goes in the delta too (listing an entry the base also has is harmless).
            (
                CrlKind::Delta { base: base.number },
                st.changed_since(issuer, base.this_update.saturating_sub(1))
                    .await?,
            )
        } else {
            (CrlKind::Full, st.revoked(issuer).await?)
        };
        let number = st.next_crl_number(issuer).await?;
        let der = tokio::task::spawn_blocking(move || {
            crl::build(&iss, kind, number, &entries, t, t + CRL_VALIDITY)
        })
        .await
        .map_err(|_| StoreError::Corrupt("CRL task panicked"))??;
        let stored = StoredCrl {
            number,
            delta,
            this_update: unix(t),
            der,
        };
        st.record_crl(issuer, &stored).await?;
        if delta {
            self.inner.deltas.made(issuer, covers, started);
        }
        Ok(stored)
    }

    /// The latest CRL (making one if none exists). A delta CRL that misses a change made in this process is
    /// regenerated first.
    pub async fn latest_crl(&self, issuer: &str, delta: bool) -> Result<StoredCrl, Error> {
        if delta && self.delta_dirty(issuer) {
            self.refresh_delta(issuer).await?;
        }
        match self.inner.store.latest_crl(issuer, delta).await? {
            Some(c) => Ok(c),
            None => self.crl(issuer, delta).await,
        }
    }

    /// Regenerate full and delta CRLs of every issuer every `every` (the schedule).
    pub fn spawn_crl_schedule(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let svc = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let labels: Vec<String> = svc
                    .inner
                    .issuers
                    .read()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                for l in labels {
                    if let Err(e) = svc.crl(&l, false).await {
                        tracing::error!(issuer = %l, error = %e, "scheduled CRL failed");
                    }
                }
            }
        })
    }

    /// One certificate's record.
    pub async fn show(&self, serial: &Serial) -> Result<Option<CertRecord>, Error> {
        self.inner.store.get(serial).await
    }

    /// Certificates of an issuer, newest first.
    pub async fn list(
        &self,
        issuer: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<CertRecord>, Error> {
        self.inner.store.list(issuer, limit, offset).await
    }

    /// The chain of an issuer as PEM: the issuer first, then its ancestors registered in this service
    /// (matched by subject/issuer name).
    pub fn export_chain(&self, issuer: &str) -> Result<String, Error> {
        let mut cur = self.issuer(issuer)?;
        let mut out = crate::authority::pem_cert(cur.certificate_der());
        let all: Vec<Arc<Issuer>> = self
            .inner
            .issuers
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for _ in 0..8 {
            let tbs = cur.certificate().tbs_certificate();
            if tbs.issuer() == tbs.subject() {
                break;
            }
            let Some(parent) = all.iter().find(|i| i.subject() == tbs.issuer()) else {
                break;
            };
            out.push_str(&crate::authority::pem_cert(parent.certificate_der()));
            cur = parent.clone();
        }
        Ok(out)
    }
}
