//! Persistence: serials, issued certificates, their status and the CRLs, behind the [`Store`] trait.
//!
//! One implementation ([`SqlStore`]) serves SQLite (embedded default, WAL) and PostgreSQL with the same
//! schema (`migrations/sqlite`, `migrations/postgres`: only the column types differ). Migrations are recorded
//! in the crate's own `ca_schema_migrations` table so they do not collide with other crates' migrations in a
//! shared database.
//!
//! Invariants the schema enforces: a serial exists once in the whole database (primary key), and a device has
//! at most one active or suspended certificate per issuer (partial unique index).

#[cfg(feature = "sql")]
mod postgres;
#[cfg(feature = "sql")]
mod replace;
#[cfg(feature = "sql")]
mod sql;
#[cfg(feature = "sql")]
mod sqlite;

use std::collections::HashMap;
use std::future::Future;

use crate::Error;
use crate::authority::IssuedCert;
use crate::crl::CrlEntry;
use crate::revocation::{CertStatus, RevocationEvent, RevocationKind};
use crate::serial::Serial;

#[cfg(feature = "sql")]
pub use postgres::{NOTIFY_CHANNEL, RevocationListener};
#[cfg(feature = "sql")]
pub use sql::SqlStore;

/// One row of the certificate table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertRecord {
    /// Issuer label.
    pub issuer: String,
    /// Serial.
    pub serial: Serial,
    /// Status.
    pub status: CertStatus,
    /// Device ID, for device profiles.
    pub device_id: Option<String>,
    /// Profile name.
    pub profile: Option<String>,
    /// Certificate DER (absent while only reserved).
    pub der: Option<Vec<u8>>,
    /// notAfter, Unix seconds.
    pub not_after: Option<u64>,
}

/// A stored CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredCrl {
    /// cRLNumber.
    pub number: u64,
    /// Delta or full.
    pub delta: bool,
    /// thisUpdate, Unix seconds.
    pub this_update: u64,
    /// DER.
    pub der: Vec<u8>,
}

/// What the CA persists. Methods are async; implementations must be cheap to share (`Clone` an `Arc`/pool).
pub trait Store: Send + Sync + 'static {
    /// Reserve fresh serials for `issuer` before signing, so a crash never reuses one. Fails with
    /// [`crate::StoreError::SerialConflict`] and reserves none if any serial already exists.
    fn reserve_serials(
        &self,
        issuer: &str,
        serials: &[Serial],
        now: u64,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The serial of the device's active or suspended certificate from `issuer`, if any.
    fn active_serial_for_device(
        &self,
        issuer: &str,
        device_id: &str,
    ) -> impl Future<Output = Result<Option<Serial>, Error>> + Send;

    /// [`Store::active_serial_for_device`] for many devices at once: device ID → serial, for the devices that
    /// have one. The default asks one device at a time; [`SqlStore`] asks a few hundred per query.
    fn active_serials_for_devices(
        &self,
        issuer: &str,
        device_ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, Serial>, Error>> + Send {
        async move {
            let mut out = HashMap::new();
            for id in device_ids {
                if let Some(s) = self.active_serial_for_device(issuer, id).await? {
                    out.insert(id.clone(), s);
                }
            }
            Ok(out)
        }
    }

    /// Record signed certificates on their reserved serials, in one transaction. A device that gained an
    /// active certificate meanwhile fails the whole batch with [`crate::RequestError::DuplicateDevice`].
    fn record_issued(
        &self,
        certs: &[IssuedCert],
        now: u64,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Renewal: revoke `old` (reason superseded, any issuer) and record `new` on its reserved serial, in one
    /// transaction, so a failure leaves the old certificate active and nothing new recorded. The old one is
    /// revoked first, as the one-active-certificate-per-device index needs. `old` must be active or
    /// suspended ([`crate::StateError::AlreadyRevoked`], [`crate::StateError::UnknownSerial`] otherwise); on
    /// PostgreSQL `NOTIFY smtrust_revocation` is sent in the same transaction. Returns the old one's event.
    fn record_replacing(
        &self,
        new: &IssuedCert,
        old: &Serial,
        now: u64,
    ) -> impl Future<Output = Result<RevocationEvent, Error>> + Send;

    /// One certificate.
    fn get(
        &self,
        serial: &Serial,
    ) -> impl Future<Output = Result<Option<CertRecord>, Error>> + Send;

    /// Certificates of an issuer, newest first.
    fn list(
        &self,
        issuer: &str,
        limit: u32,
        offset: u32,
    ) -> impl Future<Output = Result<Vec<CertRecord>, Error>> + Send;

    /// Apply a revocation, suspension or resumption; checks the transition is allowed and, on PostgreSQL,
    /// sends `NOTIFY smtrust_revocation` in the same transaction. Returns the event.
    fn change_status(
        &self,
        issuer: &str,
        serial: &Serial,
        change: RevocationKind,
        now: u64,
    ) -> impl Future<Output = Result<RevocationEvent, Error>> + Send;

    /// Revoked and suspended certificates of an issuer (a full CRL's entries).
    fn revoked(&self, issuer: &str) -> impl Future<Output = Result<Vec<CrlEntry>, Error>> + Send;

    /// Entries changed after `since` (a delta CRL's entries; resumed certificates as removeFromCRL).
    fn changed_since(
        &self,
        issuer: &str,
        since: u64,
    ) -> impl Future<Output = Result<Vec<CrlEntry>, Error>> + Send;

    /// The next cRLNumber of an issuer (full and delta CRLs share the sequence).
    fn next_crl_number(&self, issuer: &str) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Store a signed CRL.
    fn record_crl(
        &self,
        issuer: &str,
        crl: &StoredCrl,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The latest full (`delta = false`) or delta CRL.
    fn latest_crl(
        &self,
        issuer: &str,
        delta: bool,
    ) -> impl Future<Output = Result<Option<StoredCrl>, Error>> + Send;
}
