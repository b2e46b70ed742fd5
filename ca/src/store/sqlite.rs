//! Opening the SQLite store (WAL) and applying the schema.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::sql::{Pool, SqlStore};
use crate::{Error, StoreError};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_est_tokens.sql"),
    ),
];

impl SqlStore {
    /// Open (creating if needed) the SQLite database at `path` in WAL mode, and migrate it.
    pub async fn open_sqlite(path: &Path) -> Result<Self, Error> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable against process crashes (kill -9); a power loss may drop the last
            // transactions but never corrupts the database.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10));
        Self::sqlite_with(opts).await
    }

    /// A private in-memory SQLite database (tests).
    pub async fn open_sqlite_memory() -> Result<Self, Error> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|e| Error::Store(StoreError::Database(e)))?;
        Self::sqlite_with(opts).await
    }

    async fn sqlite_with(opts: SqliteConnectOptions) -> Result<Self, Error> {
        let pool = SqlitePoolOptions::new()
            // One writer at a time is SQLite's model; one connection also keeps `:memory:` a single database.
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(|e| Error::Store(StoreError::Database(e)))?;
        let store = SqlStore {
            pool: Pool::Sqlite(pool),
        };
        store.migrate(MIGRATIONS).await?;
        Ok(store)
    }

    pub(super) async fn migrate(&self, migrations: &[(i64, &str)]) -> Result<(), Error> {
        let db = |e| Error::Store(StoreError::Database(e));
        macro_rules! run {
            ($p:ident) => {{
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS ca_schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                )
                .execute($p)
                .await
                .map_err(db)?;
                for (version, sql) in migrations {
                    let check = self.q("SELECT version FROM ca_schema_migrations WHERE version = ?");
                    let done = sqlx::query(&check).bind(*version).fetch_optional($p).await.map_err(db)?;
                    if done.is_some() {
                        continue;
                    }
                    let mut tx = $p.begin().await.map_err(db)?;
                    sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(db)?;
                    let ins = self.q("INSERT INTO ca_schema_migrations (version, applied_at) VALUES (?, 0)");
                    sqlx::query(&ins).bind(*version).execute(&mut *tx).await.map_err(db)?;
                    tx.commit().await.map_err(db)?;
                }
                Ok(())
            }};
        }
        match &self.pool {
            Pool::Sqlite(p) => run!(p),
            Pool::Postgres(p) => run!(p),
        }
    }
}
