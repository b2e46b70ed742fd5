//! sqlx stores: one schema for SQLite (embedded default) and PostgreSQL (several nodes), through sqlx's `Any`
//! driver. Times are Unix seconds (BIGINT), binary values BLOB/BYTEA. Consuming a nonce is one
//! `UPDATE … WHERE used_at IS NULL … RETURNING`, atomic on both engines. On SQLite the writes of an
//! appraisal go through one group-commit task (`writer`); PostgreSQL groups concurrent commits itself.

mod writer;

use std::time::SystemTime;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyConnection, AnyPool, Row};

use crate::challenge::{Challenge, Nonce, NonceOutcome, NonceStore};
use crate::ear::Status;
use crate::identity::unix;
use crate::reference::{self, ReferenceStore, ReferenceValues};
use crate::service::{ResultStore, StoredResult};
use crate::{DeviceId, Error};
use writer::{Job, Writer};

/// A connection pool with the attestation schema in place; implements every store trait.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    /// SQLite only: the group-commit task for nonce and result writes.
    writer: Option<Writer>,
}

fn schema(postgres: bool) -> [String; 3] {
    let blob = if postgres { "BYTEA" } else { "BLOB" };
    [
        format!(
            "CREATE TABLE IF NOT EXISTS attest_nonces (nonce {blob} PRIMARY KEY, device_id TEXT NOT NULL, \
             issued_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT)"
        ),
        "CREATE TABLE IF NOT EXISTS attest_references (model TEXT NOT NULL, firmware TEXT NOT NULL, \
         version BIGINT NOT NULL, registered_by TEXT NOT NULL, registered_at BIGINT NOT NULL, \
         document TEXT NOT NULL, PRIMARY KEY (model, firmware, version))"
            .to_string(),
        "CREATE TABLE IF NOT EXISTS attest_results (device_id TEXT PRIMARY KEY, cert_serial TEXT NOT NULL, \
         status TEXT NOT NULL, issued_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, token TEXT NOT NULL)"
            .to_string(),
    ]
}

fn i64_of(v: u64) -> Result<i64, Error> {
    i64::try_from(v).map_err(|_| Error::TimeOutOfRange)
}

fn u64_of(v: i64) -> Result<u64, Error> {
    u64::try_from(v).map_err(|_| Error::CorruptRow("negative time"))
}

impl SqlStore {
    /// Connect (`sqlite://path?mode=rwc`, `sqlite::memory:`, `postgres://…`) and create the schema.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        install_default_drivers();
        let postgres = url.starts_with("postgres");
        // SQLite: nonce and result writes go through the one writer task (`BEGIN IMMEDIATE`, so no
        // read-then-write transaction can fail with SQLITE_BUSY; prune and reference registration are single
        // statements, which wait on busy_timeout), and reads take the other connections, so a
        // read never waits behind a batch's fsync (WAL readers do not block the writer). An in-memory
        // database exists per connection: one connection there.
        let sqlite = url.starts_with("sqlite");
        let memory = sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        let max = if memory { 1 } else { 4 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    // Other processes (`smtrust attest refs import` beside a running server) write the same file:
                    // wait for their lock instead of failing.
                    if sqlite {
                        sqlx::Executor::execute(&mut *conn, "PRAGMA busy_timeout = 5000").await?;
                        sqlx::Executor::execute(&mut *conn, "PRAGMA journal_mode = WAL").await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        for stmt in schema(postgres) {
            sqlx::query(&stmt).execute(&pool).await?;
        }
        let writer = sqlite.then(|| Writer::spawn(pool.clone()));
        Ok(Self { pool, writer })
    }

    fn challenge_from(row: &sqlx::any::AnyRow) -> Result<Challenge, Error> {
        let nonce: Vec<u8> = row.try_get("nonce")?;
        let device: String = row.try_get("device_id")?;
        Ok(Challenge::from_parts(
            Nonce::from_slice(&nonce).map_err(|_| Error::CorruptRow("nonce length"))?,
            DeviceId::new(device).map_err(|_| Error::CorruptRow("device_id"))?,
            u64_of(row.try_get("issued_at")?)?,
            u64_of(row.try_get("expires_at")?)?,
        ))
    }
}

impl NonceStore for SqlStore {
    async fn insert(&self, c: &Challenge) -> Result<(), Error> {
        match &self.writer {
            Some(w) => w.submit(|tx| Job::Insert(c.clone(), tx)).await,
            None => insert_nonce(&mut *self.pool.acquire().await?, c).await,
        }
    }

    async fn consume(&self, nonce: &Nonce, now: SystemTime) -> Result<NonceOutcome, Error> {
        let now = i64_of(unix(now)?)?;
        match &self.writer {
            Some(w) => w.submit(|tx| Job::Consume(nonce.clone(), now, tx)).await,
            None => consume_nonce(&mut *self.pool.acquire().await?, nonce, now).await,
        }
    }

    async fn prune(&self, before: SystemTime) -> Result<u64, Error> {
        let r = sqlx::query("DELETE FROM attest_nonces WHERE expires_at < $1")
            .bind(i64_of(unix(before)?)?)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}

fn reference_from(row: &sqlx::any::AnyRow) -> Result<ReferenceValues, Error> {
    let doc: String = row.try_get("document")?;
    // Stored as an exported one-element array: the registration travels with it.
    let text = format!("[{doc}]");
    let mut v = reference::import(text.as_bytes())?
        .pop()
        .ok_or(Error::CorruptRow("empty reference document"))?;
    v.registration = Some(reference::Registration::new(
        u32::try_from(row.try_get::<i64, _>("version")?)
            .map_err(|_| Error::CorruptRow("version"))?,
        row.try_get::<String, _>("registered_by")?,
        u64_of(row.try_get("registered_at")?)?,
    ));
    Ok(v)
}

impl ReferenceStore for SqlStore {
    async fn register(
        &self,
        values: &ReferenceValues,
        by: &str,
        now: SystemTime,
    ) -> Result<ReferenceValues, Error> {
        // Validate through the same path an import takes.
        let doc = reference::export(std::slice::from_ref(&ReferenceValues {
            registration: None,
            ..values.clone()
        }))?;
        reference::import(doc.as_bytes())?;
        let inner = doc
            .trim()
            .strip_prefix('[')
            .and_then(|d| d.strip_suffix(']'))
            .ok_or(Error::CorruptRow("export shape"))?
            .to_string();
        let at = unix(now)?;
        // The primary key makes a concurrent registration of the same version fail instead of overwriting.
        let row = sqlx::query(
            "INSERT INTO attest_references (model, firmware, version, registered_by, registered_at, document) \
             SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5 FROM attest_references \
             WHERE model = $1 AND firmware = $2 RETURNING version",
        )
        .bind(values.product_model.clone())
        .bind(values.firmware_version.clone())
        .bind(by.to_string())
        .bind(i64_of(at)?)
        .bind(inner)
        .fetch_one(&self.pool)
        .await?;
        let version = u32::try_from(row.try_get::<i64, _>("version")?)
            .map_err(|_| Error::CorruptRow("version"))?;
        let mut v = values.clone();
        v.registration = Some(reference::Registration::new(version, by, at));
        Ok(v)
    }

    async fn latest(&self, model: &str, firmware: &str) -> Result<Option<ReferenceValues>, Error> {
        let row = sqlx::query(
            "SELECT * FROM attest_references WHERE model = $1 AND firmware = $2 ORDER BY version DESC LIMIT 1",
        )
        .bind(model.to_string())
        .bind(firmware.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(reference_from).transpose()
    }

    async fn history(&self, model: &str, firmware: &str) -> Result<Vec<ReferenceValues>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM attest_references WHERE model = $1 AND firmware = $2 ORDER BY version",
        )
        .bind(model.to_string())
        .bind(firmware.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(reference_from).collect()
    }

    async fn all_latest(&self) -> Result<Vec<ReferenceValues>, Error> {
        let rows = sqlx::query(
            "SELECT r.* FROM attest_references r JOIN (SELECT model, firmware, MAX(version) AS v \
             FROM attest_references GROUP BY model, firmware) m \
             ON r.model = m.model AND r.firmware = m.firmware AND r.version = m.v ORDER BY r.model, r.firmware",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(reference_from).collect()
    }
}

impl ResultStore for SqlStore {
    async fn put(&self, r: &StoredResult) -> Result<Option<Status>, Error> {
        match &self.writer {
            Some(w) => w.submit(|tx| Job::Put(Box::new(r.clone()), tx)).await,
            None => {
                let mut tx = self.pool.begin().await?;
                let previous = put_result(&mut tx, r).await?;
                tx.commit().await?;
                Ok(previous)
            }
        }
    }

    async fn latest(&self, device: &DeviceId) -> Result<Option<StoredResult>, Error> {
        let row = sqlx::query("SELECT * FROM attest_results WHERE device_id = $1")
            .bind(device.as_str().to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get("status")?;
        Ok(Some(StoredResult {
            device_id: device.clone(),
            cert_serial: row.try_get("cert_serial")?,
            status: Status::parse(&status).ok_or(Error::CorruptRow("status"))?,
            issued_at: u64_of(row.try_get("issued_at")?)?,
            expires_at: u64_of(row.try_get("expires_at")?)?,
            token: row.try_get("token")?,
        }))
    }
}

async fn insert_nonce(conn: &mut AnyConnection, c: &Challenge) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO attest_nonces (nonce, device_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(c.nonce.as_bytes().to_vec())
    .bind(c.device_id.as_str().to_string())
    .bind(i64_of(c.issued_at)?)
    .bind(i64_of(c.expires_at)?)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn consume_nonce(
    conn: &mut AnyConnection,
    nonce: &Nonce,
    now: i64,
) -> Result<NonceOutcome, Error> {
    let key = nonce.as_bytes().to_vec();
    let won = sqlx::query(
        "UPDATE attest_nonces SET used_at = $1 WHERE nonce = $2 AND used_at IS NULL AND expires_at > $1 \
         RETURNING nonce, device_id, issued_at, expires_at",
    )
    .bind(now)
    .bind(key.clone())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = won {
        return Ok(NonceOutcome::Fresh(SqlStore::challenge_from(&row)?));
    }
    let row = sqlx::query(
        "SELECT nonce, device_id, issued_at, expires_at, used_at FROM attest_nonces WHERE nonce = $1",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(NonceOutcome::Unknown);
    };
    let c = SqlStore::challenge_from(&row)?;
    let used: Option<i64> = row.try_get("used_at")?;
    Ok(if used.is_some() {
        NonceOutcome::AlreadyUsed(c)
    } else {
        NonceOutcome::Expired(c)
    })
}

/// Upserts the device's latest result; returns the previous status. Run inside a transaction.
async fn put_result(conn: &mut AnyConnection, r: &StoredResult) -> Result<Option<Status>, Error> {
    let prev: Option<String> =
        sqlx::query_scalar("SELECT status FROM attest_results WHERE device_id = $1")
            .bind(r.device_id.as_str().to_string())
            .fetch_optional(&mut *conn)
            .await?;
    sqlx::query(
        "INSERT INTO attest_results (device_id, cert_serial, status, issued_at, expires_at, token) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id) DO UPDATE SET cert_serial = $2, \
         status = $3, issued_at = $4, expires_at = $5, token = $6",
    )
    .bind(r.device_id.as_str().to_string())
    .bind(r.cert_serial.clone())
    .bind(r.status.as_str().to_string())
    .bind(i64_of(r.issued_at)?)
    .bind(i64_of(r.expires_at)?)
    .bind(r.token.clone())
    .execute(&mut *conn)
    .await?;
    prev.map(|s| Status::parse(&s).ok_or(Error::CorruptRow("status")))
        .transpose()
}
