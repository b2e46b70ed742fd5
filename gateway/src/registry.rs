//! Live sessions keyed by device ID, so an event closes exactly that device's connections.

use crate::identity::CertKey;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Why the gateway closed an admitted session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Its certificate was revoked.
    Revoked,
    /// Its certificate was suspended.
    Suspended,
    /// Its attestation was downgraded.
    AttestationDowngraded,
    /// The gateway is shutting down.
    Shutdown,
}

impl CloseReason {
    /// Label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Suspended => "suspended",
            Self::AttestationDowngraded => "attestation_downgraded",
            Self::Shutdown => "shutdown",
        }
    }
}

struct Entry {
    cert: CertKey,
    close: watch::Sender<Option<CloseReason>>,
}

/// The registry of admitted sessions.
#[derive(Default)]
pub(crate) struct Registry {
    next: AtomicU64,
    devices: Mutex<HashMap<String, HashMap<u64, Entry>>>,
}

/// A session's place in the registry; dropping it removes the session.
pub(crate) struct SessionGuard {
    registry: Arc<Registry>,
    device_id: String,
    id: u64,
    /// Becomes `Some(reason)` when the gateway wants this session closed.
    pub(crate) closed: watch::Receiver<Option<CloseReason>>,
}

impl Registry {
    /// Registers an admitted session.
    pub(crate) fn register(self: &Arc<Self>, device_id: &str, cert: CertKey) -> SessionGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(None);
        self.lock()
            .entry(device_id.to_owned())
            .or_default()
            .insert(id, Entry { cert, close: tx });
        SessionGuard {
            registry: Arc::clone(self),
            device_id: device_id.to_owned(),
            id,
            closed: rx,
        }
    }

    /// Closes every session of a device; returns how many.
    pub(crate) fn close_device(&self, device_id: &str, reason: CloseReason) -> usize {
        let devices = self.lock();
        devices.get(device_id).map_or(0, |sessions| {
            sessions
                .values()
                .map(|e| usize::from(e.close.send(Some(reason)).is_ok()))
                .sum()
        })
    }

    /// Closes every session using this certificate; returns how many.
    pub(crate) fn close_cert(&self, cert: &CertKey, reason: CloseReason) -> usize {
        // Events are rare; a scan over live sessions costs microseconds at 10k sessions.
        let devices = self.lock();
        devices
            .values()
            .flat_map(HashMap::values)
            .filter(|e| &e.cert == cert)
            .map(|e| usize::from(e.close.send(Some(reason)).is_ok()))
            .sum()
    }

    /// Closes all sessions.
    pub(crate) fn close_all(&self, reason: CloseReason) {
        for e in self.lock().values().flat_map(HashMap::values) {
            let _ = e.close.send(Some(reason));
        }
    }

    /// Number of live sessions.
    pub(crate) fn len(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<u64, Entry>>> {
        self.devices.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let mut devices = self.registry.lock();
        if let Some(sessions) = devices.get_mut(&self.device_id) {
            sessions.remove(&self.id);
            if sessions.is_empty() {
                devices.remove(&self.device_id);
            }
        }
    }
}
