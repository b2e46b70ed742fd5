//! Enrollment tokens in the CA database (table `est_tokens`, migration 0002), so that an operator can mint
//! one for a running server (admin socket) or offline (the data directory's database), and so that several
//! nodes sharing PostgreSQL agree on whether a token was used.
//!
//! - Minting stores `SM3(domain || token)`, the device ID, the issuer label and the expiry; an unused earlier
//!   token of the same device and issuer is replaced.
//! - Using a token: the rows of (issuer, device) are read, the presented token's hash is compared with each
//!   in constant time, then `UPDATE … SET used_at = now WHERE token_hash = ? AND used_at IS NULL AND
//!   expires_at > now` claims it. The database decides: of two nodes racing, one updates the row, the other
//!   sees zero rows changed and refuses.
//! - A request that fails after claiming (a refused CSR, a store error) releases the token (`used_at` back to
//!   NULL, only if it is still this claim's), so the device can retry; a successful one keeps it spent.

use std::future::Future;
use std::time::{Duration, SystemTime};

use subtle::ConstantTimeEq;

use super::Refusal;
use super::token::{self, EnrollmentToken, MAX_TOKEN_LEN, TokenRefusal};
use crate::store::Store;
use crate::{DeviceId, Error};

/// Rows of tokens expired longer ago than this are deleted when a new token is minted.
const RETAIN_EXPIRED: Duration = Duration::from_secs(30 * 86_400);

/// One stored token (its hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRecord {
    /// `SM3(domain || token)`, hex.
    pub hash: String,
    /// Issuing CA label the token is good for.
    pub issuer: String,
    /// The device ID it is bound to.
    pub device_id: String,
    /// Minted, Unix seconds.
    pub created_at: u64,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
    /// When it was used (claimed), Unix seconds.
    pub used_at: Option<u64>,
}

/// A [`Store`] that also keeps enrollment tokens (implemented by [`crate::SqlStore`]).
pub trait TokenStore: Store + Clone {
    /// Store a new token; delete unused tokens of the same issuer and device, and long-expired rows.
    fn put_token(
        &self,
        rec: &TokenRecord,
        purge_before: u64,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The tokens of a device at an issuer.
    fn device_tokens(
        &self,
        issuer: &str,
        device_id: &str,
    ) -> impl Future<Output = Result<Vec<TokenRecord>, Error>> + Send;

    /// Mark the token used at `now` if it is unused and unexpired; whether this call did it.
    fn use_token(&self, hash: &str, now: u64) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Undo [`TokenStore::use_token`] of `used_at` (only if the row still carries that mark).
    fn release_token(
        &self,
        hash: &str,
        used_at: u64,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Mint a token for `device` at the issuing CA `issuer`, valid for `ttl`. The caller checks that `issuer` is
/// served. Returns the only copy of the token.
pub async fn mint_token<S: TokenStore>(
    store: &S,
    issuer: &str,
    device: &DeviceId,
    ttl: Duration,
    now: SystemTime,
) -> Result<EnrollmentToken, Error> {
    let tok = token::generate(ttl, now)?;
    let rec = TokenRecord {
        hash: hex::encode(token::hash(tok.as_str().as_bytes())),
        issuer: issuer.to_owned(),
        device_id: device.as_str().to_owned(),
        created_at: unix(now),
        expires_at: unix(tok.expires_at()),
        used_at: None,
    };
    store
        .put_token(&rec, unix(now).saturating_sub(RETAIN_EXPIRED.as_secs()))
        .await?;
    tracing::info!(device = %device, issuer, expires_at = rec.expires_at, "EST enrollment token minted");
    Ok(tok)
}

/// Mint a token without a running server, directly in the database of a data directory made by
/// `smtrust ca init` (`<data>/smtrust.db`). `label` must be the data directory's issuing CA (the one its
/// server serves over EST); default that CA. Returns the label and the token.
#[cfg(feature = "sql")]
pub async fn mint_in_data_dir(
    data_dir: &std::path::Path,
    label: Option<&str>,
    device: &DeviceId,
    ttl: Duration,
    now: SystemTime,
) -> Result<(String, EnrollmentToken), Error> {
    use crate::ConfigError;
    let dir = crate::home::ca_dir(data_dir);
    let mpath = dir.join("ca.toml");
    let text = std::fs::read_to_string(&mpath).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::from(ConfigError::NotInitialised(dir.clone())),
        _ => Error::Io {
            path: mpath.clone(),
            source: e,
        },
    })?;
    let manifest: crate::home::Manifest =
        toml::from_str(&text).map_err(|e| ConfigError::Toml(e.message().to_owned()))?;
    let issuer = match label {
        None => manifest.label,
        Some(l) if l == manifest.label => manifest.label,
        Some(l) => return Err(ConfigError::UnknownIssuer(l.chars().take(64).collect()).into()),
    };
    let store = crate::SqlStore::open_sqlite(&data_dir.join(crate::home::DB_FILE)).await?;
    let tok = mint_token(&store, &issuer, device, ttl, now).await?;
    Ok((issuer, tok))
}

/// Check `presented` for `device` at `issuer` and claim it in the database for this request.
pub(crate) async fn claim<S: TokenStore>(
    store: &S,
    issuer: &str,
    device: &DeviceId,
    presented: &[u8],
    now: SystemTime,
) -> Result<Claim<S>, Refusal> {
    let rows = store.device_tokens(issuer, device.as_str()).await?;
    if rows.is_empty() {
        return Err(Refusal::Token(TokenRefusal::Unknown));
    }
    if presented.len() > MAX_TOKEN_LEN {
        return Err(Refusal::Token(TokenRefusal::Mismatch));
    }
    let h = token::hash(presented);
    // Compare with every row in constant time; which row matched is not visible in the timing.
    let mut found: Option<&TokenRecord> = None;
    for r in &rows {
        let stored = hex::decode(&r.hash).unwrap_or_default();
        if bool::from(stored.as_slice().ct_eq(h.as_slice())) {
            found = Some(r);
        }
    }
    let rec = found.ok_or(Refusal::Token(TokenRefusal::Mismatch))?;
    let at = unix(now);
    if rec.used_at.is_some() {
        return Err(Refusal::Token(TokenRefusal::Used));
    }
    if rec.expires_at <= at {
        return Err(Refusal::Token(TokenRefusal::Expired));
    }
    if !store.use_token(&rec.hash, at).await? {
        // Another request (on this node or another) claimed it between the read and the update.
        return Err(Refusal::Token(TokenRefusal::Used));
    }
    Ok(Claim {
        store: store.clone(),
        hash: rec.hash.clone(),
        at,
        open: true,
    })
}

/// A claimed token: [`Claim::spend`] after issuance, [`Claim::release`] after a failure. Dropped open (the
/// request was cancelled), it is released in the background.
pub(crate) struct Claim<S: TokenStore> {
    store: S,
    hash: String,
    at: u64,
    open: bool,
}

impl<S: TokenStore> Claim<S> {
    /// Keep the token used.
    pub(crate) fn spend(mut self) {
        self.open = false;
    }

    /// Make the token usable again.
    pub(crate) async fn release(mut self) {
        self.open = false;
        if let Err(e) = self.store.release_token(&self.hash, self.at).await {
            tracing::warn!(error = %e, "EST token not released after a failed request");
        }
    }
}

impl<S: TokenStore> Drop for Claim<S> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (store, hash, at) = (self.store.clone(), std::mem::take(&mut self.hash), self.at);
            rt.spawn(async move {
                if let Err(e) = store.release_token(&hash, at).await {
                    tracing::warn!(error = %e, "EST token not released after a cancelled request");
                }
            });
        }
    }
}

#[cfg(feature = "sql")]
mod sql {
    use sqlx::Row;

    use super::{TokenRecord, TokenStore};
    use crate::store::SqlStore;
    use crate::{Error, StoreError};

    fn db(e: sqlx::Error) -> Error {
        Error::Store(StoreError::Database(e))
    }

    fn i(v: u64) -> i64 {
        i64::try_from(v).unwrap_or(i64::MAX)
    }

    fn u(v: i64) -> u64 {
        u64::try_from(v).unwrap_or(0)
    }

    /// Run `$body` with `$p` the pool and `$q` the store's placeholder rewrite ([`SqlStore::q`]).
    macro_rules! with_pool {
        ($self:ident, $p:ident, $q:ident => $body:expr) => {
            if let Some($p) = $self.sqlite_pool() {
                let $q = |s: &str| $self.q(s);
                $body
            } else if let Some($p) = $self.postgres_pool() {
                let $q = |s: &str| $self.q(s);
                $body
            } else {
                Err(StoreError::Corrupt("no pool").into())
            }
        };
    }

    const DELETE: &str = "DELETE FROM est_tokens WHERE (issuer = ? AND device_id = ? AND used_at IS NULL) OR expires_at < ?";
    const INSERT: &str = "INSERT INTO est_tokens (token_hash, issuer, device_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)";
    const SELECT: &str = "SELECT token_hash, issuer, device_id, created_at, expires_at, used_at FROM est_tokens WHERE issuer = ? AND device_id = ?";
    const USE: &str = "UPDATE est_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?";
    const RELEASE: &str =
        "UPDATE est_tokens SET used_at = NULL WHERE token_hash = ? AND used_at = ?";

    impl TokenStore for SqlStore {
        async fn put_token(&self, rec: &TokenRecord, purge_before: u64) -> Result<(), Error> {
            with_pool!(self, p, q => {
                let mut tx = p.begin().await.map_err(db)?;
                sqlx::query(&q(DELETE))
                    .bind(&rec.issuer)
                    .bind(&rec.device_id)
                    .bind(i(purge_before))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                sqlx::query(&q(INSERT))
                    .bind(&rec.hash)
                    .bind(&rec.issuer)
                    .bind(&rec.device_id)
                    .bind(i(rec.created_at))
                    .bind(i(rec.expires_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)
            })
        }

        async fn device_tokens(
            &self,
            issuer: &str,
            device_id: &str,
        ) -> Result<Vec<TokenRecord>, Error> {
            with_pool!(self, p, q => {
                let rows = sqlx::query(&q(SELECT))
                    .bind(issuer)
                    .bind(device_id)
                    .fetch_all(p)
                    .await
                    .map_err(db)?;
                rows.iter()
                    .map(|r| {
                        Ok(TokenRecord {
                            hash: r.try_get("token_hash").map_err(db)?,
                            issuer: r.try_get("issuer").map_err(db)?,
                            device_id: r.try_get("device_id").map_err(db)?,
                            created_at: u(r.try_get("created_at").map_err(db)?),
                            expires_at: u(r.try_get("expires_at").map_err(db)?),
                            used_at: r.try_get::<Option<i64>, _>("used_at").map_err(db)?.map(u),
                        })
                    })
                    .collect()
            })
        }

        async fn use_token(&self, hash: &str, now: u64) -> Result<bool, Error> {
            with_pool!(self, p, q => {
                let done = sqlx::query(&q(USE))
                    .bind(i(now))
                    .bind(hash)
                    .bind(i(now))
                    .execute(p)
                    .await
                    .map_err(db)?;
                Ok(done.rows_affected() == 1)
            })
        }

        async fn release_token(&self, hash: &str, used_at: u64) -> Result<(), Error> {
            with_pool!(self, p, q => {
                sqlx::query(&q(RELEASE))
                    .bind(hash)
                    .bind(i(used_at))
                    .execute(p)
                    .await
                    .map_err(db)?;
                Ok(())
            })
        }
    }
}
