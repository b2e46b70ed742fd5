//! The batch journal: two tables of the factory's own (created here at open, so the CA store's migrations
//! stay untouched) in the CA's SQLite database. Every state change of a chunk is one transaction.

use std::collections::HashMap;
use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Row, Sqlite, SqliteConnection};

use super::FactoryError;

/// Rows per multi-row statement: one statement per few hundred rows instead of one per row (the SQLite
/// driver costs a thread round trip per statement); 400 rows x 9 columns stays far below SQLite's 32766
/// bound parameters.
const ROWS: usize = 400;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS factory_batches (
    id TEXT PRIMARY KEY,
    issuer TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('issuing', 'done'))
);
CREATE TABLE IF NOT EXISTS factory_items (
    batch_id TEXT NOT NULL REFERENCES factory_batches(id),
    seq INTEGER NOT NULL,
    source TEXT NOT NULL,
    device_id TEXT,
    issuer TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'issued', 'refused')),
    reason TEXT,
    serial TEXT UNIQUE,
    payload BLOB,
    cert BLOB,
    PRIMARY KEY (batch_id, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS factory_items_one_per_device
    ON factory_items (issuer, device_id) WHERE state <> 'refused';
CREATE INDEX IF NOT EXISTS factory_items_pending ON factory_items (batch_id, state, seq);
CREATE TABLE IF NOT EXISTS factory_burned_serials (
    serial TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL,
    seq INTEGER NOT NULL
);
";

/// A device waiting to be issued.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) seq: i64,
    pub(crate) device_id: String,
    pub(crate) serial: String,
    pub(crate) payload: Vec<u8>,
}

/// One row of the journal as the report reads it.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) seq: i64,
    pub(crate) source: String,
    pub(crate) device_id: Option<String>,
    pub(crate) state: String,
    pub(crate) reason: Option<String>,
    pub(crate) serial: Option<String>,
    pub(crate) cert: Option<Vec<u8>>,
}

/// What a worker did with a pending device.
#[derive(Debug)]
pub(crate) enum Outcome {
    Issued {
        seq: i64,
        serial: String,
        cert: Vec<u8>,
    },
    Refused {
        seq: i64,
        reason: String,
    },
}

/// A row to insert when the batch is planned.
#[derive(Debug)]
pub(crate) struct NewItem {
    pub(crate) source: String,
    pub(crate) device_id: Option<String>,
    pub(crate) refused: Option<String>,
    pub(crate) serial: Option<String>,
    pub(crate) payload: Option<Vec<u8>>,
}

/// The journal: a SQLite connection driven by a private single-thread runtime (callers are sync).
pub(crate) struct Journal {
    rt: tokio::runtime::Runtime,
    conn: SqliteConnection,
}

impl Journal {
    pub(crate) fn open(path: &Path) -> Result<Self, FactoryError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(super::io_err(path))?;
        // The CA's tables (ca_certs) live in the same database: issued devices are recorded there too.
        rt.block_on(crate::SqlStore::open_sqlite(path))
            .map_err(|e| FactoryError::Issuer(format!("opening the CA store: {e}")))?;
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed chunk survives power loss, not only kill -9.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(30));
        let mut conn = rt.block_on(opts.connect())?;
        rt.block_on(sqlx::raw_sql(SCHEMA).execute(&mut conn))?;
        Ok(Self { rt, conn })
    }

    /// (issuer, params JSON, state) of a batch.
    pub(crate) fn batch(
        &mut self,
        id: &str,
    ) -> Result<Option<(String, String, String)>, FactoryError> {
        let row = self.rt.block_on(
            sqlx::query("SELECT issuer, params, state FROM factory_batches WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut self.conn),
        )?;
        Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
    }

    /// Devices this issuer already holds (issued or pending in any batch, or with an active or suspended
    /// certificate in the CA store): device id → where (batch id, or `serial <hex>`).
    pub(crate) fn held_devices(
        &mut self,
        issuer: &str,
        label: &str,
    ) -> Result<HashMap<String, String>, FactoryError> {
        let rows = self.rt.block_on(
            sqlx::query(
                "SELECT device_id, 'batch ' || batch_id FROM factory_items WHERE issuer = ? AND state <> 'refused'
                 UNION ALL
                 SELECT device_id, 'serial ' || serial FROM ca_certs
                 WHERE issuer = ? AND status IN ('active', 'hold') AND device_id IS NOT NULL",
            )
            .bind(issuer)
            .bind(label)
            .fetch_all(&mut self.conn),
        )?;
        let mut held = HashMap::with_capacity(rows.len());
        for r in rows {
            // A device in a batch is named by its batch (listed first), not by its CA row.
            held.entry(r.get(0)).or_insert_with(|| r.get(1));
        }
        Ok(held)
    }

    /// Create the batch and all its rows in one transaction: either the whole plan exists or none of it.
    pub(crate) fn create(
        &mut self,
        id: &str,
        issuer: &str,
        ca: &CaRows,
        params: &str,
        items: Vec<NewItem>,
    ) -> Result<(), FactoryError> {
        let rows: Vec<(i64, NewItem)> = items
            .into_iter()
            .enumerate()
            .map(|(seq, it)| (i64::try_from(seq).unwrap_or(i64::MAX), it))
            .collect();
        self.rt.block_on(async {
            let mut tx = self.conn.begin().await?;
            sqlx::query("INSERT INTO factory_batches (id, issuer, params, state) VALUES (?, ?, ?, 'issuing')")
                .bind(id)
                .bind(issuer)
                .bind(params)
                .execute(&mut *tx)
                .await?;
            for group in rows.chunks(ROWS) {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO factory_items (batch_id, seq, source, device_id, issuer, state, reason, serial, payload) ",
                );
                q.push_values(group, |mut b, (seq, it)| {
                    let state = if it.refused.is_some() { "refused" } else { "pending" };
                    b.push_bind(id)
                        .push_bind(*seq)
                        .push_bind(it.source.as_str())
                        .push_bind(it.device_id.as_deref())
                        .push_bind(issuer)
                        .push_bind(state)
                        .push_bind(it.refused.as_deref())
                        .push_bind(it.serial.as_deref())
                        .push_bind(it.payload.as_deref());
                });
                q.build().execute(&mut *tx).await?;
                let serials: Vec<&str> = group.iter().filter_map(|(_, it)| it.serial.as_deref()).collect();
                ca.reserve(&mut tx, &serials).await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// (devices in the batch, devices still pending), without loading the rows.
    pub(crate) fn counts(&mut self, id: &str) -> Result<(u64, u64), FactoryError> {
        let row = self.rt.block_on(
            sqlx::query(
                "SELECT COUNT(*), COALESCE(SUM(state = 'pending'), 0) FROM factory_items WHERE batch_id = ?",
            )
            .bind(id)
            .fetch_one(&mut self.conn),
        )?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok((n(row.get(0)), n(row.get(1))))
    }

    /// Up to `limit` pending devices after sequence number `after`, in order.
    pub(crate) fn pending(
        &mut self,
        id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Pending>, FactoryError> {
        let rows = self.rt.block_on(
            sqlx::query(
                "SELECT seq, device_id, serial, payload FROM factory_items
                 WHERE batch_id = ? AND state = 'pending' AND seq > ? ORDER BY seq LIMIT ?",
            )
            .bind(id)
            .bind(after)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut self.conn),
        )?;
        Ok(rows
            .into_iter()
            .map(|r| Pending {
                seq: r.get(0),
                device_id: r.get(1),
                serial: r.get(2),
                payload: r.get(3),
            })
            .collect())
    }

    /// Record a chunk's outcomes in one transaction, issued certificates also in the CA store (`ca_certs`,
    /// so revocation, OCSP and CRLs see factory devices). Refused rows give up their reserved serial (never
    /// signed; it stays `reserved` in the CA store, never reused).
    pub(crate) fn commit(
        &mut self,
        id: &str,
        ca: &CaRows,
        outcomes: &[Outcome],
    ) -> Result<(), FactoryError> {
        let mut issued = Vec::new();
        let mut refused = Vec::new();
        for o in outcomes {
            match o {
                Outcome::Issued { seq, serial, cert } => {
                    issued.push((*seq, serial.as_str(), cert.as_slice()))
                }
                Outcome::Refused { seq, reason } => refused.push((*seq, reason.as_str())),
            }
        }
        self.rt.block_on(async {
            let mut tx = self.conn.begin().await?;
            // Each statement names its rows through a VALUES CTE and finds them by primary key
            // (`seq IN (..)`); an UPDATE .. FROM VALUES join makes SQLite scan the whole table per chunk.
            for group in issued.chunks(ROWS) {
                ca.activate(&mut tx, id, group).await?;
                let mut q = QueryBuilder::<Sqlite>::new("WITH v(seq, cert) AS (");
                q.push_values(group, |mut b, (seq, _, cert)| {
                    b.push_bind(*seq).push_bind(*cert);
                });
                q.push(
                    ") UPDATE factory_items SET state = 'issued', payload = NULL, \
                     cert = (SELECT v.cert FROM v WHERE v.seq = factory_items.seq) \
                     WHERE batch_id = ",
                )
                .push_bind(id)
                .push(" AND seq IN (SELECT seq FROM v) AND state = 'pending'");
                q.build().execute(&mut *tx).await?;
            }
            for group in refused.chunks(ROWS) {
                let mut q = QueryBuilder::<Sqlite>::new("WITH v(seq, reason) AS (");
                q.push_values(group, |mut b, (seq, reason)| {
                    b.push_bind(*seq).push_bind(*reason);
                });
                q.push(
                    ") UPDATE factory_items SET state = 'refused', serial = NULL, payload = NULL, \
                     reason = (SELECT v.reason FROM v WHERE v.seq = factory_items.seq) \
                     WHERE batch_id = ",
                )
                .push_bind(id)
                .push(" AND seq IN (SELECT seq FROM v) AND state = 'pending'");
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// After a crash: give every still-pending device a fresh serial and burn the old one, since a worker
    /// may have signed a certificate with it that never reached the output.
    pub(crate) fn reserve_again(
        &mut self,
        id: &str,
        ca: &CaRows,
        fresh: &mut dyn FnMut() -> Result<String, FactoryError>,
    ) -> Result<usize, FactoryError> {
        let rows = self.rt.block_on(
            sqlx::query(
                "SELECT seq, serial FROM factory_items WHERE batch_id = ? AND state = 'pending'",
            )
            .bind(id)
            .fetch_all(&mut self.conn),
        )?;
        let mut updates = Vec::with_capacity(rows.len());
        for r in &rows {
            updates.push((r.get::<i64, _>(0), r.get::<String, _>(1), fresh()?));
        }
        self.rt.block_on(async {
            let mut tx = self.conn.begin().await?;
            for (seq, old, new) in &updates {
                sqlx::query(
                    "INSERT INTO factory_burned_serials (serial, batch_id, seq) VALUES (?, ?, ?)",
                )
                .bind(old)
                .bind(id)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE factory_items SET serial = ? WHERE batch_id = ? AND seq = ?")
                    .bind(new)
                    .bind(id)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
                ca.reserve(&mut tx, &[new.as_str()]).await?;
            }
            tx.commit().await
        })?;
        Ok(updates.len())
    }

    pub(crate) fn items(&mut self, id: &str) -> Result<Vec<Item>, FactoryError> {
        let rows = self.rt.block_on(
            sqlx::query(
                "SELECT seq, source, device_id, state, reason, serial, cert FROM factory_items
                 WHERE batch_id = ? ORDER BY seq",
            )
            .bind(id)
            .fetch_all(&mut self.conn),
        )?;
        Ok(rows
            .into_iter()
            .map(|r| Item {
                seq: r.get(0),
                source: r.get(1),
                device_id: r.get(2),
                state: r.get(3),
                reason: r.get(4),
                serial: r.get(5),
                cert: r.get(6),
            })
            .collect())
    }

    pub(crate) fn finish(&mut self, id: &str) -> Result<(), FactoryError> {
        self.rt.block_on(
            sqlx::query("UPDATE factory_batches SET state = 'done' WHERE id = ?")
                .bind(id)
                .execute(&mut self.conn),
        )?;
        Ok(())
    }
}

/// How the journal writes the CA store's `ca_certs` rows of one issuer.
#[derive(Debug)]
pub(crate) struct CaRows {
    /// The issuer label (`ca_certs.issuer`).
    pub(crate) label: String,
    /// The profile name recorded.
    pub(crate) profile: String,
    /// Unix seconds, for `reserved_at` / `changed_at`.
    pub(crate) now: i64,
}

impl CaRows {
    /// Reserve `serials` (hex) as the CA store does before signing; a collision fails the transaction.
    async fn reserve(
        &self,
        tx: &mut SqliteConnection,
        serials: &[&str],
    ) -> Result<(), sqlx::Error> {
        for group in serials.chunks(ROWS) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO ca_certs (serial, issuer, status, reserved_at, changed_at) ",
            );
            q.push_values(group, |mut b, serial| {
                b.push_bind(*serial)
                    .push_bind(self.label.as_str())
                    .push_bind("reserved")
                    .push_bind(self.now)
                    .push_bind(self.now);
            });
            q.build().execute(&mut *tx).await?;
        }
        Ok(())
    }

    /// Mark the reserved serials of `(seq, serial, certificate)` active with their certificates (the device
    /// id comes from the journal row).
    async fn activate(
        &self,
        tx: &mut SqliteConnection,
        batch: &str,
        group: &[(i64, &str, &[u8])],
    ) -> Result<(), sqlx::Error> {
        let mut q = QueryBuilder::<Sqlite>::new("WITH v(seq, serial, der, not_after) AS (");
        q.push_values(group, |mut b, (seq, serial, cert)| {
            b.push_bind(*seq)
                .push_bind(*serial)
                .push_bind(*cert)
                .push_bind(not_after(cert));
        });
        q.push(
            ") UPDATE ca_certs SET status = 'active', \
             der = (SELECT v.der FROM v WHERE v.serial = ca_certs.serial), \
             not_after = (SELECT v.not_after FROM v WHERE v.serial = ca_certs.serial), \
             device_id = (SELECT i.device_id FROM v JOIN factory_items AS i \
                 ON i.seq = v.seq AND i.serial = v.serial WHERE v.serial = ca_certs.serial AND i.batch_id = ",
        )
        .push_bind(batch)
        .push("), profile = ")
        .push_bind(self.profile.as_str())
        .push(", changed_at = ")
        .push_bind(self.now)
        .push(" WHERE serial IN (SELECT serial FROM v) AND status = 'reserved'");
        q.build().execute(&mut *tx).await?;
        Ok(())
    }
}

/// notAfter of a DER certificate in Unix seconds (0 if it does not decode: it was built here, so never).
fn not_after(der: &[u8]) -> i64 {
    <x509_cert::Certificate as der::Decode>::from_der(der).map_or(0, |c| {
        let t = c.tbs_certificate().validity().not_after.to_unix_duration();
        i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
    })
}

/// Everything the journal holds, for audits and the crash test's invariant checks.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct JournalDump {
    /// `(batch id, state)`.
    pub batches: Vec<(String, String)>,
    /// Every device row of every batch.
    pub items: Vec<DumpItem>,
    /// Serials reserved, possibly signed, never published (replaced at a resume).
    pub burned: Vec<String>,
    /// The CA store's rows: `(serial, issuer label, status, certificate DER)`.
    pub ca_certs: Vec<(String, String, String, Option<Vec<u8>>)>,
}

/// One journal row.
#[derive(Debug)]
#[non_exhaustive]
pub struct DumpItem {
    /// The batch.
    pub batch_id: String,
    /// The device id, if the line had one.
    pub device_id: Option<String>,
    /// `pending`, `issued` or `refused`.
    pub state: String,
    /// The reserved serial (hex), if any.
    pub serial: Option<String>,
    /// The issued certificate, DER.
    pub cert: Option<Vec<u8>>,
}

/// Read the whole journal at `db` (read-only use; opens like [`Journal::open`]).
pub fn dump(db: &Path) -> Result<JournalDump, FactoryError> {
    let mut j = Journal::open(db)?;
    let batches =
        j.rt.block_on(sqlx::query("SELECT id, state FROM factory_batches").fetch_all(&mut j.conn))?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    let items = j
        .rt
        .block_on(
            sqlx::query("SELECT batch_id, device_id, state, serial, cert FROM factory_items ORDER BY batch_id, seq")
                .fetch_all(&mut j.conn),
        )?
        .into_iter()
        .map(|r| DumpItem {
            batch_id: r.get(0),
            device_id: r.get(1),
            state: r.get(2),
            serial: r.get(3),
            cert: r.get(4),
        })
        .collect();
    let burned = j
        .rt
        .block_on(sqlx::query("SELECT serial FROM factory_burned_serials").fetch_all(&mut j.conn))?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let ca_certs =
        j.rt.block_on(
            sqlx::query("SELECT serial, issuer, status, der FROM ca_certs").fetch_all(&mut j.conn),
        )?
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    Ok(JournalDump {
        batches,
        items,
        burned,
        ca_certs,
    })
}
