//! Events that change who may stay connected, and the in-memory revocation set.
//!
//! The gateway consumes these small types; `ca` (revocation broadcast, PostgreSQL NOTIFY) and
//! `attest` (downgrades) are adapted to them by the server, so the gateway does not move with
//! their APIs.

use crate::identity::CertKey;
use rustls_pki_types::UnixTime;
use smtrust_policy::AttestationStatus;
use smtrust_tls::{CertRef, RevocationCheck, RevocationStatus};
use std::collections::HashMap;
use std::sync::RwLock;

/// A certificate's status as the CA publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertStatus {
    /// Good (also: a suspension lifted).
    Good,
    /// Revoked for good.
    Revoked,
    /// On hold (certificateHold): refused until reinstated.
    Suspended,
}

/// An event the gateway acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GatewayEvent {
    /// A certificate's status changed.
    CertStatus {
        /// Which certificate.
        cert: CertKey,
        /// Its new status.
        status: CertStatus,
    },
    /// A device's attestation result changed.
    Attestation {
        /// Device ID.
        device_id: String,
        /// The new status.
        status: AttestationStatus,
    },
    /// The latest appraisal of a device got worse: close its sessions.
    AttestationDowngraded {
        /// Device ID.
        device_id: String,
    },
}

/// Where the gateway reads a device's attestation status at admission.
pub trait AttestationLookup: Send + Sync {
    /// The device's current status.
    fn status(&self, device_id: &str) -> AttestationStatus;
}

/// Revoked and suspended certificates, loaded at start and kept current by events. Lookups are
/// O(1); only non-good entries are stored. It is also the TLS verifier's [`RevocationCheck`], so a
/// revoked or suspended certificate (leaf or intermediate) is refused in the handshake itself.
#[derive(Debug, Default)]
pub struct RevocationSet {
    entries: RwLock<HashMap<CertKey, CertStatus>>,
}

impl RevocationSet {
    /// A set from the CA's initial list.
    pub fn from_initial(initial: impl IntoIterator<Item = (CertKey, CertStatus)>) -> Self {
        let set = Self::default();
        for (cert, status) in initial {
            set.apply(cert, status);
        }
        set
    }

    /// Records a status change.
    pub fn apply(&self, cert: CertKey, status: CertStatus) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        match status {
            CertStatus::Good => {
                entries.remove(&cert);
            }
            other => {
                entries.insert(cert, other);
            }
        }
    }

    /// The status of a certificate (good when unknown).
    pub fn status(&self, cert: &CertKey) -> CertStatus {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.get(cert).copied().unwrap_or(CertStatus::Good)
    }

    /// How many non-good certificates are held.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no certificate is revoked or suspended.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RevocationCheck for RevocationSet {
    fn status(&self, cert: &CertRef<'_>, _now: UnixTime) -> RevocationStatus {
        let key = CertKey::new(cert.issuer.to_vec(), cert.serial);
        match RevocationSet::status(self, &key) {
            CertStatus::Good => RevocationStatus::Good,
            CertStatus::Suspended => RevocationStatus::Suspended,
            CertStatus::Revoked => RevocationStatus::Revoked,
        }
    }
}

/// The attestation statuses pushed by events; unknown devices are `Unverified`.
#[derive(Debug, Default)]
pub struct AttestationTable {
    statuses: RwLock<HashMap<String, AttestationStatus>>,
}

impl AttestationTable {
    /// Records a device's status.
    pub fn set(&self, device_id: &str, status: AttestationStatus) {
        self.statuses
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(device_id.to_owned(), status);
    }
}

impl AttestationLookup for AttestationTable {
    fn status(&self, device_id: &str) -> AttestationStatus {
        self.statuses
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(device_id)
            .copied()
            .unwrap_or(AttestationStatus::Unverified)
    }
}
