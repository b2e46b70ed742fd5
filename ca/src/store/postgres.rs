//! Opening the PostgreSQL store, and the LISTEN side of revocation events.

use sqlx::postgres::{PgListener, PgPoolOptions};

use super::sql::{Pool, SqlStore};
use crate::revocation::RevocationEvent;
use crate::{Error, StoreError};

/// The NOTIFY channel revocation events are sent on (payload: [`RevocationEvent`] as JSON).
pub const NOTIFY_CHANNEL: &str = "smtrust_revocation";

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_est_tokens.sql"),
    ),
];

impl SqlStore {
    /// Connect to PostgreSQL (`postgres://…`) and migrate. Concurrent first starts of several nodes are
    /// serialised with an advisory lock.
    pub async fn open_postgres(url: &str, max_connections: u32) -> Result<Self, Error> {
        let db = |e| Error::Store(StoreError::Database(e));
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect(url)
            .await
            .map_err(db)?;
        let store = SqlStore {
            pool: Pool::Postgres(pool.clone()),
        };
        let mut conn = pool.acquire().await.map_err(db)?;
        // 0x736d7472 = "smtr": one lock id for this crate's migrations.
        sqlx::query("SELECT pg_advisory_lock(1936553074)")
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        let res = store.migrate(MIGRATIONS).await;
        sqlx::query("SELECT pg_advisory_unlock(1936553074)")
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        res.map(|()| store)
    }
}

/// Receives revocation events NOTIFYed by any node sharing the PostgreSQL database.
pub struct RevocationListener {
    inner: PgListener,
}

impl std::fmt::Debug for RevocationListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RevocationListener")
    }
}

impl RevocationListener {
    /// Connect and `LISTEN smtrust_revocation`.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let db = |e| Error::Store(StoreError::Database(e));
        let mut inner = PgListener::connect(url).await.map_err(db)?;
        inner.listen(NOTIFY_CHANNEL).await.map_err(db)?;
        Ok(Self { inner })
    }

    /// The next event (reconnects transparently; events sent while disconnected are lost, so a gateway
    /// reloads the revoked set after [`Error::Store`]).
    pub async fn recv(&mut self) -> Result<RevocationEvent, Error> {
        let n = self
            .inner
            .recv()
            .await
            .map_err(|e| Error::Store(StoreError::Database(e)))?;
        RevocationEvent::from_json(n.payload()).map_err(Error::Store)
    }
}
