//! Renewal in one transaction: the old certificate revoked (superseded), the new one recorded.

use super::sql::{
    Pool, RECORD_ONE, SELECT, SqlStore, db, duplicate, is_unique_violation, record, to_i64,
};
use crate::authority::IssuedCert;
use crate::revocation::{CertStatus, RevocationEvent, RevocationKind, RevocationReason};
use crate::serial::Serial;
use crate::{Error, StateError};

impl SqlStore {
    /// [`super::Store::record_replacing`]. Dropping the transaction on any error rolls both changes back.
    pub(super) async fn replace(
        &self,
        new: &IssuedCert,
        old: &Serial,
        now: u64,
    ) -> Result<RevocationEvent, Error> {
        let sel = self.q(&format!("{SELECT} WHERE serial = ?"));
        // The status condition makes a concurrent revocation or renewal of `old` lose here, not overwrite.
        let revoke = self.q(
            "UPDATE ca_certs SET status = 'revoked', revoked_at = ?, reason = ?, changed_at = ?, resumed = 0 \
             WHERE serial = ? AND status IN ('active', 'hold')",
        );
        let activate = self.q(RECORD_ONE);
        let reason = RevocationReason::Superseded;
        macro_rules! run {
            ($p:ident) => {{
                let mut tx = $p.begin().await.map_err(db)?;
                let row = sqlx::query(&sel)
                    .bind(old.to_hex())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                let rec = row
                    .as_ref()
                    .map(record)
                    .transpose()?
                    .ok_or(StateError::UnknownSerial(*old))?;
                match rec.status {
                    CertStatus::Reserved => return Err(StateError::UnknownSerial(*old).into()),
                    CertStatus::Revoked { .. } => {
                        return Err(StateError::AlreadyRevoked(*old).into());
                    }
                    CertStatus::Active | CertStatus::Hold { .. } => {}
                }
                // Old first: the unique index allows one active certificate per device and issuer.
                let done = sqlx::query(&revoke)
                    .bind(to_i64(now))
                    .bind(i64::from(reason.code()))
                    .bind(to_i64(now))
                    .bind(old.to_hex())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                if done.rows_affected() != 1 {
                    return Err(StateError::AlreadyRevoked(*old).into());
                }
                let res = sqlx::query(&activate)
                    .bind(new.device_id.as_ref().map(|d| d.as_str().to_owned()))
                    .bind(new.profile.as_str())
                    .bind(new.der.as_slice())
                    .bind(to_i64(new.not_after))
                    .bind(to_i64(now))
                    .bind(new.serial.to_hex())
                    .bind(new.issuer.as_str())
                    .execute(&mut *tx)
                    .await;
                match res {
                    Ok(r) if r.rows_affected() == 1 => {}
                    Ok(_) => return Err(StateError::UnknownSerial(new.serial).into()),
                    Err(e) if is_unique_violation(&e) => return Err(duplicate(new)),
                    Err(e) => return Err(db(e)),
                }
                let event = RevocationEvent {
                    issuer: rec.issuer.clone(),
                    serial: *old,
                    device_id: rec.device_id.clone(),
                    kind: RevocationKind::Revoked { reason },
                    at: now,
                };
                self.notify(&mut *tx, &event).await?;
                tx.commit().await.map_err(db)?;
                Ok(event)
            }};
        }
        match &self.pool {
            Pool::Sqlite(p) => run!(p),
            Pool::Postgres(p) => run!(p),
        }
    }
}
