//! The async layer: challenges, appraisal with stores, stored results and downgrade events. The server's HTTP
//! handlers call these; everything CPU-bound is in the sync core.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use smtrust_crypto::sm2::{CertId, Sm2Signer};
use tokio::sync::broadcast;

use crate::appraisal::{Appraiser, CertificateStatus, Checked};
use crate::challenge::{Challenge, NonceStore};
use crate::ear::{AttestationResult, Status};
use crate::reference::ReferenceStore;
use crate::{DeviceId, Error};

/// A stored result: the latest per device is what gateways ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredResult {
    /// The device.
    pub device_id: DeviceId,
    /// Its certificate serial, hex.
    pub cert_serial: String,
    /// The status.
    pub status: Status,
    /// Issue time, Unix seconds.
    pub issued_at: u64,
    /// End of validity, Unix seconds.
    pub expires_at: u64,
    /// The signed result token.
    pub token: String,
}

impl StoredResult {
    /// A result row (stores and tools build these; the service makes them from signed results).
    pub fn new(
        device_id: DeviceId,
        cert_serial: String,
        status: Status,
        issued_at: u64,
        expires_at: u64,
        token: String,
    ) -> Self {
        Self {
            device_id,
            cert_serial,
            status,
            issued_at,
            expires_at,
            token,
        }
    }
}

/// Where results live.
pub trait ResultStore: Send + Sync {
    /// Store `result` as the device's latest; returns the status of the previous latest, if any.
    fn put(
        &self,
        result: &StoredResult,
    ) -> impl Future<Output = Result<Option<Status>, Error>> + Send;
    /// The device's latest result.
    fn latest(
        &self,
        device: &DeviceId,
    ) -> impl Future<Output = Result<Option<StoredResult>, Error>> + Send;
}

/// A single-process [`ResultStore`] (latest only).
#[derive(Debug, Default)]
pub struct MemoryResultStore {
    inner: Mutex<HashMap<DeviceId, StoredResult>>,
}

impl MemoryResultStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ResultStore for MemoryResultStore {
    async fn put(&self, result: &StoredResult) -> Result<Option<Status>, Error> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map
            .insert(result.device_id.clone(), result.clone())
            .map(|r| r.status))
    }

    async fn latest(&self, device: &DeviceId) -> Result<Option<StoredResult>, Error> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(device).cloned())
    }
}

/// Emitted when a device's stored status gets worse (e.g. affirming → contraindicated); gateways cut or
/// restrict its sessions, as for a revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttestationDowngrade {
    /// The device.
    pub device_id: DeviceId,
    /// Its certificate serial, hex.
    pub cert_serial: String,
    /// Previous status.
    pub from: Status,
    /// New status.
    pub to: Status,
    /// When, Unix seconds.
    pub at: u64,
}

/// Service settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// How long a challenge is accepted. Default 5 minutes.
    pub challenge_ttl: Duration,
    /// Event channel capacity (slow receivers lag, they do not block appraisal). Default 1024.
    pub event_capacity: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            challenge_ttl: Duration::from_secs(300),
            event_capacity: 1024,
        }
    }
}

/// What [`AttestationService::submit`] returns.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Submitted {
    /// The result.
    pub result: AttestationResult,
    /// The signed result token (returned to the device, stored when `stored`).
    pub token: String,
    /// Stored as the device's latest (authenticated and fresh evidence only).
    pub stored: bool,
}

/// The attestation service: one per server node; the stores make nodes agree.
pub struct AttestationService<N, R, S> {
    appraiser: Appraiser,
    nonces: N,
    references: R,
    results: S,
    status: Arc<dyn CertificateStatus>,
    signer: Arc<dyn Sm2Signer<CertId>>,
    signer_chain: Vec<Vec<u8>>,
    config: ServiceConfig,
    events: broadcast::Sender<AttestationDowngrade>,
}

impl<N, R, S> core::fmt::Debug for AttestationService<N, R, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AttestationService").finish_non_exhaustive()
    }
}

impl<N: NonceStore, R: ReferenceStore, S: ResultStore> AttestationService<N, R, S> {
    /// Wire the service. `signer` is the attestation key (a keystore handle); `signer_chain` its certificate
    /// chain, leaf first, the leaf carrying SAN URI `urn:smtrust:service:attestation`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        appraiser: Appraiser,
        nonces: N,
        references: R,
        results: S,
        status: Arc<dyn CertificateStatus>,
        signer: Arc<dyn Sm2Signer<CertId>>,
        signer_chain: Vec<Vec<u8>>,
        config: ServiceConfig,
    ) -> Self {
        let (events, _) = broadcast::channel(config.event_capacity.max(1));
        Self {
            appraiser,
            nonces,
            references,
            results,
            status,
            signer,
            signer_chain,
            config,
            events,
        }
    }

    /// Downgrade events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<AttestationDowngrade> {
        self.events.subscribe()
    }

    /// The reference-value store (registration, import, export).
    pub fn references(&self) -> &R {
        &self.references
    }

    /// Mint and store a challenge for `device`.
    pub async fn challenge(&self, device: &DeviceId, now: SystemTime) -> Result<Challenge, Error> {
        let c = Challenge::new(device.clone(), now, self.config.challenge_ttl)?;
        self.nonces.insert(&c).await?;
        Ok(c)
    }

    /// Appraise evidence, sign the result, store it when bound, and emit a downgrade event if the device's
    /// status got worse. Undecodable evidence still gets a signed contraindicated result.
    #[tracing::instrument(skip_all)]
    pub async fn submit(&self, evidence: &[u8], now: SystemTime) -> Result<Submitted, Error> {
        let checked = self.appraiser.check(evidence, self.status.as_ref(), now);
        self.complete(checked, now).await
    }

    /// [`submit`](Self::submit) for a client already authenticated as `device` (by its TLS client
    /// certificate): undecodable evidence is refused with [`Error::Decode`], and evidence claiming another
    /// device with [`Error::EvidenceFromOtherDevice`], before any nonce is consumed or result stored.
    #[tracing::instrument(skip_all, fields(device_id = %device))]
    pub async fn submit_from(
        &self,
        device: &DeviceId,
        evidence: &[u8],
        now: SystemTime,
    ) -> Result<Submitted, Error> {
        let mut checked = self.appraiser.check(evidence, self.status.as_ref(), now);
        if let Some(e) = checked.take_decode_error() {
            return Err(Error::Decode(e));
        }
        if let Some(claimed) = checked.device_id().filter(|c| *c != device) {
            return Err(Error::EvidenceFromOtherDevice {
                authenticated: device.clone(),
                claimed: claimed.clone(),
            });
        }
        self.complete(checked, now).await
    }

    async fn complete(&self, checked: Checked, now: SystemTime) -> Result<Submitted, Error> {
        let nonce = match checked.nonce() {
            Some(n) => Some(self.nonces.consume(n, now).await?),
            None => None,
        };
        let refs = match checked.reference_key() {
            Some((model, fw)) if checked.authenticated() => {
                self.references.latest(model, fw).await?
            }
            _ => None,
        };
        let appraisal = self.appraiser.finish(checked, nonce, refs.as_ref(), now)?;
        let result = appraisal.result;
        let token = result.sign(self.signer.as_ref(), &self.signer_chain)?;
        let mut stored = false;
        if let (true, Some(device), Some(serial)) = (
            appraisal.bound,
            result.device_id.clone(),
            result.cert_serial.clone(),
        ) {
            let previous = self
                .results
                .put(&StoredResult {
                    device_id: device.clone(),
                    cert_serial: serial.clone(),
                    status: result.status,
                    issued_at: result.issued_at,
                    expires_at: result.expires_at,
                    token: token.clone(),
                })
                .await?;
            stored = true;
            if let Some(from) = previous.filter(|p| *p < result.status) {
                tracing::info!(device_id = %device, ?from, to = ?result.status, "attestation downgrade");
                // No receivers is not an error: gateways may not be up yet.
                let _ = self.events.send(AttestationDowngrade {
                    device_id: device,
                    cert_serial: serial,
                    from,
                    to: result.status,
                    at: result.issued_at,
                });
            }
        }
        tracing::debug!(status = result.status.as_str(), stored, "appraised");
        Ok(Submitted {
            result,
            token,
            stored,
        })
    }

    /// The device's latest stored result.
    pub async fn latest(&self, device: &DeviceId) -> Result<Option<StoredResult>, Error> {
        self.results.latest(device).await
    }
}
