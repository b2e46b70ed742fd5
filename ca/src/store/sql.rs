//! [`Store`] over sqlx for SQLite and PostgreSQL: the same statements, `?` placeholders rewritten to `$n`.

use std::collections::HashMap;

use sqlx::Row;

use super::{CertRecord, Store, StoredCrl};
use crate::authority::IssuedCert;
use crate::crl::CrlEntry;
use crate::revocation::{CertStatus, RevocationEvent, RevocationKind, RevocationReason};
use crate::serial::Serial;
use crate::{Error, RequestError, StateError, StoreError};

#[derive(Clone, Debug)]
pub(super) enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// The sqlx store. Cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct SqlStore {
    pub(super) pool: Pool,
}

/// Most rows per multi-row INSERT.
const CHUNK: usize = 200;

/// Run `$body` with `$p` bound to whichever pool this is (the body is compiled once per driver).
macro_rules! with_pool {
    ($self:ident, $p:ident => $body:expr) => {
        match &$self.pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

pub(super) fn db(e: sqlx::Error) -> Error {
    Error::Store(StoreError::Database(e))
}

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl SqlStore {
    /// `sql` with `?` placeholders, as the pool's driver wants them (`$n` for PostgreSQL).
    pub(crate) fn q(&self, sql: &str) -> String {
        match self.pool {
            Pool::Sqlite(_) => sql.to_owned(),
            Pool::Postgres(_) => {
                let mut out = String::with_capacity(sql.len() + 16);
                let mut n = 0;
                for c in sql.chars() {
                    if c == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    pub(super) fn is_postgres(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }

    /// On PostgreSQL, send `event` on [`super::NOTIFY_CHANNEL`] through `conn`, the caller's transaction, so
    /// listeners hear of a change only once it commits; nothing on SQLite. Generic over the driver so that
    /// both expansions of a `with_pool!` body can call it.
    pub(super) async fn notify<'c, DB, E>(
        &self,
        conn: E,
        event: &RevocationEvent,
    ) -> Result<(), Error>
    where
        DB: sqlx::Database,
        E: sqlx::Executor<'c, Database = DB>,
        DB::Arguments<'static>: sqlx::IntoArguments<'static, DB>,
        &'static str: sqlx::Encode<'static, DB> + sqlx::Type<DB>,
        String: sqlx::Encode<'static, DB> + sqlx::Type<DB>,
    {
        if !self.is_postgres() {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(super::NOTIFY_CHANNEL)
            .bind(event.to_json())
            .execute(conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// The SQLite pool, for crate modules that keep their own tables (EST tokens).
    pub(crate) fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        match &self.pool {
            Pool::Sqlite(p) => Some(p),
            Pool::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, for crate modules that keep their own tables (EST tokens).
    pub(crate) fn postgres_pool(&self) -> Option<&sqlx::PgPool> {
        match &self.pool {
            Pool::Postgres(p) => Some(p),
            Pool::Sqlite(_) => None,
        }
    }
}

fn reserve_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO ca_certs (serial, issuer, status, reserved_at, changed_at) VALUES ",
    );
    for i in 0..rows {
        sql.push_str(if i == 0 {
            "(?, ?, 'reserved', ?, ?)"
        } else {
            ", (?, ?, 'reserved', ?, ?)"
        });
    }
    sql
}

/// One UPDATE for many rows: VALUES columns are `column1`.. in SQLite and PostgreSQL alike (sqlx sends the
/// parameter types, so PostgreSQL needs no casts).
fn record_sql(rows: usize) -> String {
    let mut sql = String::from(
        "UPDATE ca_certs SET status = 'active', device_id = v.column2, profile = v.column3, der = v.column4, \
         not_after = v.column5, changed_at = ? FROM (VALUES ",
    );
    for i in 0..rows {
        sql.push_str(if i == 0 {
            "(?, ?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?, ?)"
        });
    }
    sql.push_str(") AS v WHERE ca_certs.serial = v.column1 AND ca_certs.issuer = ? AND ca_certs.status = 'reserved'");
    sql
}

pub(super) const RECORD_ONE: &str = "UPDATE ca_certs SET status = 'active', device_id = ?, profile = ?, der = ?, not_after = ?, \
     changed_at = ? WHERE serial = ? AND issuer = ? AND status = 'reserved'";

impl SqlStore {
    /// Record certificates one UPDATE each (one certificate: no BEGIN/COMMIT round trips).
    async fn record_one_by_one(&self, certs: &[IssuedCert], now: u64) -> Result<(), Error> {
        let sql = self.q(RECORD_ONE);
        macro_rules! one {
            ($c:expr, $exec:expr) => {{
                let c = $c;
                let res = sqlx::query(&sql)
                    .bind(c.device_id.as_ref().map(|d| d.as_str().to_owned()))
                    .bind(c.profile.as_str())
                    .bind(c.der.as_slice())
                    .bind(to_i64(c.not_after))
                    .bind(to_i64(now))
                    .bind(c.serial.to_hex())
                    .bind(c.issuer.as_str())
                    .execute($exec)
                    .await;
                match res {
                    Ok(r) if r.rows_affected() == 1 => {}
                    Ok(_) => return Err(StateError::UnknownSerial(c.serial).into()),
                    Err(e) if is_unique_violation(&e) => return Err(duplicate(c)),
                    Err(e) => return Err(db(e)),
                }
            }};
        }
        with_pool!(self, p => {
            if let [c] = certs {
                one!(c, p);
                return Ok(());
            }
            let mut tx = p.begin().await.map_err(db)?;
            for c in certs {
                one!(c, &mut *tx);
            }
            tx.commit().await.map_err(db)?;
            Ok(())
        })
    }

    /// Why a bulk record failed: the first certificate whose serial is not reserved, or whose device has an
    /// active certificate.
    async fn record_failure(&self, chunk: &[IssuedCert]) -> Error {
        for c in chunk {
            match self.get(&c.serial).await {
                Ok(Some(r)) if r.status == CertStatus::Reserved && r.issuer == c.issuer => {}
                Ok(_) => return StateError::UnknownSerial(c.serial).into(),
                Err(e) => return e,
            }
            if let Some(id) = &c.device_id {
                match self.active_serial_for_device(&c.issuer, id.as_str()).await {
                    Ok(None) => {}
                    Ok(Some(_)) => return duplicate(c),
                    Err(e) => return e,
                }
            }
        }
        StoreError::Corrupt("bulk record failed without a cause").into()
    }
}

pub(super) fn duplicate(c: &IssuedCert) -> Error {
    RequestError::DuplicateDevice {
        id: c
            .device_id
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_default(),
        serial: c.serial,
    }
    .into()
}

const COLS: &str = "serial, issuer, status, device_id, profile, der, not_after, revoked_at, reason";
pub(super) const SELECT: &str = "SELECT serial, issuer, status, device_id, profile, der, not_after, revoked_at, reason FROM ca_certs";

pub(super) fn record<R: Row>(r: &R) -> Result<CertRecord, Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<Vec<u8>>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let serial: String = r.try_get("serial").map_err(db)?;
    let serial: Serial = serial
        .parse()
        .map_err(|_| StoreError::Corrupt("serial column"))?;
    let status: String = r.try_get("status").map_err(db)?;
    let at = r.try_get::<Option<i64>, _>("revoked_at").map_err(db)?;
    let reason = r.try_get::<Option<i64>, _>("reason").map_err(db)?;
    let status = match status.as_str() {
        "reserved" => CertStatus::Reserved,
        "active" => CertStatus::Active,
        "hold" => CertStatus::Hold {
            at: to_u64(at.unwrap_or(0)),
        },
        "revoked" => CertStatus::Revoked {
            at: to_u64(at.unwrap_or(0)),
            reason: reason
                .and_then(|c| u8::try_from(c).ok())
                .and_then(RevocationReason::from_code)
                .ok_or(StoreError::Corrupt("reason column"))?,
        },
        _ => return Err(StoreError::Corrupt("status column").into()),
    };
    Ok(CertRecord {
        issuer: r.try_get("issuer").map_err(db)?,
        serial,
        status,
        device_id: r.try_get("device_id").map_err(db)?,
        profile: r.try_get("profile").map_err(db)?,
        der: r.try_get("der").map_err(db)?,
        not_after: r
            .try_get::<Option<i64>, _>("not_after")
            .map_err(db)?
            .map(to_u64),
    })
}

fn entry_of(rec: &CertRecord, removed_at: Option<u64>) -> Option<CrlEntry> {
    match (rec.status, removed_at) {
        (CertStatus::Revoked { at, reason }, _) => Some(CrlEntry::revoked(rec.serial, at, reason)),
        (CertStatus::Hold { at }, _) => Some(CrlEntry::revoked(
            rec.serial,
            at,
            RevocationReason::CertificateHold,
        )),
        (CertStatus::Active, Some(at)) => Some(CrlEntry::removed(rec.serial, at)),
        _ => None,
    }
}

impl Store for SqlStore {
    async fn reserve_serials(
        &self,
        issuer: &str,
        serials: &[Serial],
        now: u64,
    ) -> Result<(), Error> {
        let conflict = |chunk: &[Serial]| -> Error {
            // Which one collided is not reported by every driver; name the first of the chunk.
            match chunk.first() {
                Some(s) => StoreError::SerialConflict(*s).into(),
                None => StoreError::Corrupt("empty chunk").into(),
            }
        };
        with_pool!(self, p => {
            if serials.len() <= CHUNK {
                // One statement is atomic on its own: no BEGIN/COMMIT round trips.
                let sql = self.q(&reserve_sql(serials.len()));
                let mut query = sqlx::query(&sql);
                for s in serials {
                    query = query.bind(s.to_hex()).bind(issuer).bind(to_i64(now)).bind(to_i64(now));
                }
                return match query.execute(p).await {
                    Ok(_) => Ok(()),
                    Err(e) if is_unique_violation(&e) => Err(conflict(serials)),
                    Err(e) => Err(db(e)),
                };
            }
            let mut tx = p.begin().await.map_err(db)?;
            for chunk in serials.chunks(CHUNK) {
                let sql = self.q(&reserve_sql(chunk.len()));
                let mut query = sqlx::query(&sql);
                for s in chunk {
                    query = query.bind(s.to_hex()).bind(issuer).bind(to_i64(now)).bind(to_i64(now));
                }
                if let Err(e) = query.execute(&mut *tx).await {
                    if is_unique_violation(&e) {
                        return Err(conflict(chunk));
                    }
                    return Err(db(e));
                }
            }
            tx.commit().await.map_err(db)?;
            Ok(())
        })
    }

    async fn active_serial_for_device(
        &self,
        issuer: &str,
        device_id: &str,
    ) -> Result<Option<Serial>, Error> {
        let sql = self.q("SELECT serial FROM ca_certs WHERE issuer = ? AND device_id = ? AND status IN ('active', 'hold')");
        with_pool!(self, p => {
            let row = sqlx::query(&sql).bind(issuer).bind(device_id).fetch_optional(p).await.map_err(db)?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let s: String = r.try_get("serial").map_err(db)?;
                    Ok(Some(s.parse().map_err(|_| StoreError::Corrupt("serial column"))?))
                }
            }
        })
    }

    async fn active_serials_for_devices(
        &self,
        issuer: &str,
        device_ids: &[String],
    ) -> Result<HashMap<String, Serial>, Error> {
        let mut out = HashMap::new();
        for chunk in device_ids.chunks(CHUNK) {
            let mut sql = String::from(
                "SELECT device_id, serial FROM ca_certs WHERE issuer = ? AND status IN ('active', 'hold') AND device_id IN (",
            );
            for i in 0..chunk.len() {
                sql.push_str(if i == 0 { "?" } else { ", ?" });
            }
            sql.push(')');
            let sql = self.q(&sql);
            with_pool!(self, p => {
                let mut query = sqlx::query(&sql).bind(issuer);
                for id in chunk {
                    query = query.bind(id.as_str());
                }
                for r in query.fetch_all(p).await.map_err(db)? {
                    let id: String = r.try_get("device_id").map_err(db)?;
                    let s: String = r.try_get("serial").map_err(db)?;
                    out.insert(id, s.parse().map_err(|_| StoreError::Corrupt("serial column"))?);
                }
            });
        }
        Ok(out)
    }

    async fn record_issued(&self, certs: &[IssuedCert], now: u64) -> Result<(), Error> {
        let Some(first) = certs.first() else {
            return Ok(());
        };
        if certs.len() == 1 || certs.iter().any(|c| c.issuer != first.issuer) {
            return self.record_one_by_one(certs, now).await;
        }
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            for chunk in certs.chunks(CHUNK) {
                let sql = self.q(&record_sql(chunk.len()));
                let mut query = sqlx::query(&sql).bind(to_i64(now));
                for c in chunk {
                    query = query
                        .bind(c.serial.to_hex())
                        .bind(c.device_id.as_ref().map(|d| d.as_str().to_owned()))
                        .bind(c.profile.as_str())
                        .bind(c.der.as_slice())
                        .bind(to_i64(c.not_after));
                }
                let res = query.bind(first.issuer.as_str()).execute(&mut *tx).await;
                match res {
                    Ok(r) if r.rows_affected() == chunk.len() as u64 => {}
                    Err(e) if !is_unique_violation(&e) => return Err(db(e)),
                    _ => {
                        // A row was not reserved, or a device gained an active certificate meanwhile: the
                        // transaction is void; find the culprit for the error.
                        drop(tx);
                        return Err(self.record_failure(chunk).await);
                    }
                }
            }
            tx.commit().await.map_err(db)?;
            Ok(())
        })
    }

    async fn record_replacing(
        &self,
        new: &IssuedCert,
        old: &Serial,
        now: u64,
    ) -> Result<RevocationEvent, Error> {
        self.replace(new, old, now).await
    }

    async fn get(&self, serial: &Serial) -> Result<Option<CertRecord>, Error> {
        let sql = self.q(&format!("{SELECT} WHERE serial = ?"));
        with_pool!(self, p => {
            let row = sqlx::query(&sql).bind(serial.to_hex()).fetch_optional(p).await.map_err(db)?;
            row.as_ref().map(record).transpose()
        })
    }

    async fn list(&self, issuer: &str, limit: u32, offset: u32) -> Result<Vec<CertRecord>, Error> {
        let sql = self.q(&format!(
            "{SELECT} WHERE issuer = ? AND status <> 'reserved' ORDER BY changed_at DESC, serial LIMIT ? OFFSET ?"
        ));
        with_pool!(self, p => {
            let rows = sqlx::query(&sql)
                .bind(issuer)
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(p)
                .await
                .map_err(db)?;
            rows.iter().map(record).collect()
        })
    }

    async fn change_status(
        &self,
        issuer: &str,
        serial: &Serial,
        change: RevocationKind,
        now: u64,
    ) -> Result<RevocationEvent, Error> {
        let sel = self.q(&format!("{SELECT} WHERE serial = ? AND issuer = ?"));
        let upd = self.q(
            "UPDATE ca_certs SET status = ?, revoked_at = ?, reason = ?, changed_at = ?, resumed = ? WHERE serial = ?",
        );
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db)?;
            let row = sqlx::query(&sel).bind(serial.to_hex()).bind(issuer).fetch_optional(&mut *tx).await.map_err(db)?;
            let rec = row.as_ref().map(record).transpose()?.ok_or(StateError::UnknownSerial(*serial))?;
            let (status, at, reason, resumed): (&str, Option<i64>, Option<i64>, i64) = match (rec.status, change) {
                (CertStatus::Reserved, _) => return Err(StateError::UnknownSerial(*serial).into()),
                (CertStatus::Revoked { .. }, _) => return Err(StateError::AlreadyRevoked(*serial).into()),
                (_, RevocationKind::Revoked { reason }) => {
                    // A held certificate keeps its original date only if it is revoked for good as a hold.
                    ("revoked", Some(to_i64(now)), Some(i64::from(reason.code())), 0)
                }
                (CertStatus::Active, RevocationKind::Suspended) => {
                    ("hold", Some(to_i64(now)), Some(i64::from(RevocationReason::CertificateHold.code())), 0)
                }
                (CertStatus::Hold { .. }, RevocationKind::Suspended) => {
                    return Err(StateError::NotSuspended(*serial).into());
                }
                (CertStatus::Hold { .. }, RevocationKind::Resumed) => ("active", None, None, 1),
                (CertStatus::Active, RevocationKind::Resumed) => {
                    return Err(StateError::NotSuspended(*serial).into());
                }
            };
            sqlx::query(&upd)
                .bind(status)
                .bind(at)
                .bind(reason)
                .bind(to_i64(now))
                .bind(resumed)
                .bind(serial.to_hex())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            let event = RevocationEvent {
                issuer: issuer.to_owned(),
                serial: *serial,
                device_id: rec.device_id.clone(),
                kind: change,
                at: now,
            };
            self.notify(&mut *tx, &event).await?;
            tx.commit().await.map_err(db)?;
            Ok(event)
        })
    }

    async fn revoked(&self, issuer: &str) -> Result<Vec<CrlEntry>, Error> {
        let sql = self.q(&format!(
            "{SELECT} WHERE issuer = ? AND status IN ('revoked', 'hold') ORDER BY serial"
        ));
        with_pool!(self, p => {
            let rows = sqlx::query(&sql).bind(issuer).fetch_all(p).await.map_err(db)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                if let Some(e) = entry_of(&record(r)?, None) {
                    out.push(e);
                }
            }
            Ok(out)
        })
    }

    async fn changed_since(&self, issuer: &str, since: u64) -> Result<Vec<CrlEntry>, Error> {
        let sql = self.q(&format!(
            "SELECT {COLS}, changed_at AS changed FROM ca_certs WHERE issuer = ? AND changed_at > ? \
             AND (status IN ('revoked', 'hold') OR (status = 'active' AND resumed = 1)) ORDER BY serial"
        ));
        with_pool!(self, p => {
            let rows = sqlx::query(&sql).bind(issuer).bind(to_i64(since)).fetch_all(p).await.map_err(db)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let changed: i64 = r.try_get("changed").map_err(db)?;
                if let Some(e) = entry_of(&record(r)?, Some(to_u64(changed))) {
                    out.push(e);
                }
            }
            Ok(out)
        })
    }

    async fn next_crl_number(&self, issuer: &str) -> Result<u64, Error> {
        let sql = self.q("SELECT MAX(number) AS n FROM ca_crls WHERE issuer = ?");
        with_pool!(self, p => {
            let row = sqlx::query(&sql).bind(issuer).fetch_one(p).await.map_err(db)?;
            let n: Option<i64> = row.try_get("n").map_err(db)?;
            Ok(to_u64(n.unwrap_or(0)) + 1)
        })
    }

    async fn record_crl(&self, issuer: &str, crl: &StoredCrl) -> Result<(), Error> {
        let sql = self.q(
            "INSERT INTO ca_crls (issuer, number, delta, this_update, der) VALUES (?, ?, ?, ?, ?)",
        );
        with_pool!(self, p => {
            sqlx::query(&sql)
                .bind(issuer)
                .bind(to_i64(crl.number))
                .bind(i64::from(crl.delta))
                .bind(to_i64(crl.this_update))
                .bind(crl.der.as_slice())
                .execute(p)
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    async fn latest_crl(&self, issuer: &str, delta: bool) -> Result<Option<StoredCrl>, Error> {
        let sql = self.q(
            "SELECT number, this_update, der FROM ca_crls WHERE issuer = ? AND delta = ? ORDER BY number DESC LIMIT 1",
        );
        with_pool!(self, p => {
            let row = sqlx::query(&sql).bind(issuer).bind(i64::from(delta)).fetch_optional(p).await.map_err(db)?;
            match row {
                None => Ok(None),
                Some(r) => Ok(Some(StoredCrl {
                    number: to_u64(r.try_get("number").map_err(db)?),
                    delta,
                    this_update: to_u64(r.try_get("this_update").map_err(db)?),
                    der: r.try_get("der").map_err(db)?,
                })),
            }
        })
    }
}
