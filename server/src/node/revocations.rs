//! The node's in-memory revocation index: loaded from the CA store at start, kept current by the CA's events.
//! The API's TLS verifier and the attestation appraiser ask it (the gateway keeps its own set, fed by the
//! same events through `smtrust_gateway::feed`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::pki_types::UnixTime;
use smtrust_ca::{CaService, RevocationEvent, RevocationKind, RevocationReason, SqlStore, Store};
use smtrust_tls::{RevocationCheck, RevocationStatus};
use tokio::sync::broadcast;

/// (issuer Name DER, serial magnitude).
type Key = (Vec<u8>, Vec<u8>);

/// Revoked and suspended certificates of the node's issuers.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    entries: RwLock<HashMap<Key, RevocationStatus>>,
    /// CA label → its subject Name DER (events name the issuer by label).
    issuers: HashMap<String, Vec<u8>>,
}

fn magnitude(serial: &[u8]) -> Vec<u8> {
    match serial {
        [0, rest @ ..] if !rest.is_empty() => rest.to_vec(),
        _ => serial.to_vec(),
    }
}

impl Revocations {
    /// Load every revoked or held serial of `issuers` (label, subject Name DER) from the store.
    pub(crate) async fn load(
        ca: &CaService<SqlStore>,
        issuers: Vec<(String, Vec<u8>)>,
    ) -> anyhow::Result<Arc<Self>> {
        let this = Self {
            entries: RwLock::default(),
            issuers: issuers.into_iter().collect(),
        };
        for (label, name) in &this.issuers {
            for e in ca.store().revoked(label).await? {
                let status = match e.reason {
                    Some(RevocationReason::CertificateHold) => RevocationStatus::Suspended,
                    _ => RevocationStatus::Revoked,
                };
                this.set(name.clone(), e.serial.as_bytes(), status);
            }
        }
        Ok(Arc::new(this))
    }

    fn set(&self, issuer: Vec<u8>, serial: &[u8], status: RevocationStatus) {
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let key = (issuer, magnitude(serial));
        if status == RevocationStatus::Good {
            map.remove(&key);
        } else {
            map.insert(key, status);
        }
    }

    fn get(&self, issuer: &[u8], serial: &[u8]) -> RevocationStatus {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        map.get(&(issuer.to_vec(), magnitude(serial)))
            .copied()
            .unwrap_or(RevocationStatus::Good)
    }

    /// Every entry: (issuer Name DER, serial) → revoked (true) or held (false).
    pub(crate) fn snapshot(&self) -> Vec<(Key, bool)> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .map(|(k, s)| (k.clone(), *s == RevocationStatus::Revoked))
            .collect()
    }

    /// Apply one CA event (events of other issuers are ignored).
    pub(crate) fn apply(&self, e: &RevocationEvent) {
        let Some(name) = self.issuers.get(&e.issuer) else {
            return;
        };
        let status = match e.kind {
            RevocationKind::Suspended => RevocationStatus::Suspended,
            RevocationKind::Resumed => RevocationStatus::Good,
            _ => RevocationStatus::Revoked,
        };
        self.set(name.clone(), e.serial.as_bytes(), status);
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
    fn status(&self, cert: &smtrust_tls::CertRef<'_>, _now: UnixTime) -> RevocationStatus {
        self.get(cert.issuer, cert.serial)
    }
}

impl smtrust_attest::CertificateStatus for Revocations {
    fn status(
        &self,
        cert: &smtrust_attest::CertRef<'_>,
        _now: SystemTime,
    ) -> smtrust_attest::CertStatus {
        match self.get(cert.issuer_name, cert.serial) {
            RevocationStatus::Revoked => smtrust_attest::CertStatus::Revoked,
            RevocationStatus::Suspended => smtrust_attest::CertStatus::Suspended,
            _ => smtrust_attest::CertStatus::Good,
        }
    }
}
