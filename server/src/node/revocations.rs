//! The node's in-memory revocation index: loaded from the CA store at start, kept current by the CA's events.
//! It is the gateway's own set type (`smtrust_gateway::RevocationSet`, also a TLS `RevocationCheck`), asked by
//! the API's TLS verifier and the attestation appraiser; the gateway keeps its own instance, fed by the same
//! events through `smtrust_gateway::feed`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::pki_types::UnixTime;
use smtrust_ca::{CaService, RevocationEvent, RevocationKind, RevocationReason, SqlStore, Store};
use smtrust_gateway::{CertKey, CertStatus, RevocationSet};
use smtrust_tls::{RevocationCheck, RevocationStatus};
use tokio::sync::broadcast;

/// Revoked and held certificates of the node's issuers.
#[derive(Debug)]
pub(crate) struct Revocations {
    set: RevocationSet,
    /// CA label → its subject Name DER (events name the issuer by label).
    issuers: HashMap<String, Vec<u8>>,
}

/// The start-up list, also handed to the gateway's own set.
pub(crate) type Initial = Vec<(CertKey, CertStatus)>;

impl Revocations {
    /// Load every revoked or held serial of `issuers` (label, subject Name DER) from the store.
    pub(crate) async fn load(
        ca: &CaService<SqlStore>,
        issuers: Vec<(String, Vec<u8>)>,
    ) -> anyhow::Result<(Arc<Self>, Initial)> {
        let mut initial = Vec::new();
        for (label, name) in &issuers {
            for e in ca.store().revoked(label).await? {
                let status = match e.reason {
                    Some(RevocationReason::CertificateHold) => CertStatus::Suspended,
                    _ => CertStatus::Revoked,
                };
                initial.push((CertKey::new(name.clone(), e.serial.as_bytes()), status));
            }
        }
        let this = Self {
            set: RevocationSet::from_initial(initial.clone()),
            issuers: issuers.into_iter().collect(),
        };
        Ok((Arc::new(this), initial))
    }

    /// Apply one CA event (events of other issuers are ignored).
    pub(crate) fn apply(&self, e: &RevocationEvent) {
        let Some(name) = self.issuers.get(&e.issuer) else {
            return;
        };
        let status = match e.kind {
            RevocationKind::Suspended => CertStatus::Suspended,
            RevocationKind::Resumed => CertStatus::Good,
            // Revoked, and any kind added later: fail closed.
            _ => CertStatus::Revoked,
        };
        self.set
            .apply(CertKey::new(name.clone(), e.serial.as_bytes()), status);
    }

    /// Follow the CA's in-process events until the CA is dropped.
    pub(crate) fn follow(
        self: &Arc<Self>,
        mut events: broadcast::Receiver<RevocationEvent>,
    ) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(e) => this.apply(&e),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "revocation feed lagged; restart to reload");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }
}

impl RevocationCheck for Revocations {
    fn status(&self, cert: &smtrust_tls::CertRef<'_>, now: UnixTime) -> RevocationStatus {
        RevocationCheck::status(&self.set, cert, now)
    }
}

impl smtrust_attest::CertificateStatus for Revocations {
    fn status(
        &self,
        cert: &smtrust_attest::CertRef<'_>,
        _now: SystemTime,
    ) -> smtrust_attest::CertStatus {
        let key = CertKey::new(cert.issuer_name.to_vec(), cert.serial);
        match self.set.status(&key) {
            CertStatus::Revoked => smtrust_attest::CertStatus::Revoked,
            CertStatus::Suspended => smtrust_attest::CertStatus::Suspended,
            _ => smtrust_attest::CertStatus::Good,
        }
    }
}
