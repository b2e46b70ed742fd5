//! Attestation results as the gateway sees them: every stored result also lands in an in-memory table that
//! admission reads synchronously (the gateway's `AttestationLookup`). The SQL store stays the record; on
//! several nodes each gateway sees the results appraised on its own node plus downgrade events.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use smtrust_attest::{DeviceId, Error, ResultStore, Status, StoredResult};
use smtrust_policy::AttestationStatus;

/// device ID → (status, expires_at Unix seconds).
type Table = HashMap<String, (Status, u64)>;

/// The node's result store: SQL underneath, the table beside it.
#[derive(Debug, Clone)]
pub(crate) struct Results {
    sql: smtrust_attest::sql::SqlStore,
    table: Arc<RwLock<Table>>,
}

impl Results {
    pub(crate) fn new(sql: smtrust_attest::sql::SqlStore) -> Self {
        Self {
            sql,
            table: Arc::default(),
        }
    }

    /// The lookup the gateway admits with.
    pub(crate) fn lookup(&self) -> Lookup {
        Lookup {
            table: Arc::clone(&self.table),
        }
    }
}

impl ResultStore for Results {
    async fn put(&self, result: &StoredResult) -> Result<Option<Status>, Error> {
        let previous = self.sql.put(result).await?;
        self.table
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                result.device_id.as_str().to_owned(),
                (result.status, result.expires_at),
            );
        Ok(previous)
    }

    async fn latest(&self, device: &DeviceId) -> Result<Option<StoredResult>, Error> {
        self.sql.latest(device).await
    }
}

/// What admission reads: affirming and unexpired is verified; contraindicated is failed.
#[derive(Debug, Clone)]
pub(crate) struct Lookup {
    table: Arc<RwLock<Table>>,
}

impl smtrust_gateway::AttestationLookup for Lookup {
    #[allow(clippy::disallowed_methods)] // admission compares with the clock
    fn status(&self, device_id: &str) -> AttestationStatus {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        let Some((status, expires_at)) = table.get(device_id).copied() else {
            return AttestationStatus::Unverified;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match status {
            Status::Contraindicated => AttestationStatus::Failed,
            _ if now >= expires_at => AttestationStatus::Expired,
            Status::Affirming => AttestationStatus::Verified,
            // Warning: something unrecognised, nothing known bad — not verified.
            _ => AttestationStatus::Unverified,
        }
    }
}
