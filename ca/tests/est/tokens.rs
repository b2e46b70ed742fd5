//! Enrollment tokens in the CA database: bound to device and issuing CA, expiry, single use decided by the
//! database (two stores racing for one token: exactly one wins), on SQLite and PostgreSQL.

use std::time::Duration;

use smtrust_ca::est::{TokenStore, mint_token};
use smtrust_ca::{DeviceId, SqlStore};
use smtrust_crypto::sm2::Sm2SecretKey;
use smtrust_test_support::{Postgres, require};

use super::fixture::{make_csr, now};
use super::{basic, call, est, issued, post};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tag() -> String {
    hex::encode(smtrust_crypto::rng::bytes::<6>().unwrap())
}

#[tokio::test]
async fn token_is_bound_to_issuer_and_expires_and_only_its_hash_is_stored() {
    let (pki, st) = est().await;
    let store = pki.svc.store();
    let dev = DeviceId::new("ctw-tok1").unwrap();
    let csr = make_csr(&Sm2SecretKey::generate().unwrap(), "CN=ctw-tok1");

    // Minted for another issuing CA: unknown here.
    let other = mint_token(store, "line8", &dev, Duration::from_secs(600), now())
        .await
        .unwrap();
    let (status, _, body) = call(
        &st,
        post(
            "simpleenroll",
            &csr,
            Some(&basic("ctw-tok1", other.as_str())),
        ),
    )
    .await;
    assert_eq!(status, 401, "{}", text(&body));
    assert!(
        text(&body).contains("no enrollment token"),
        "{}",
        text(&body)
    );

    // Expired (minted an hour ago for ten minutes).
    let old = mint_token(
        store,
        "line7",
        &dev,
        Duration::from_secs(600),
        now() - Duration::from_secs(3600),
    )
    .await
    .unwrap();
    let (status, _, body) = call(
        &st,
        post("simpleenroll", &csr, Some(&basic("ctw-tok1", old.as_str()))),
    )
    .await;
    assert_eq!(status, 401);
    assert!(text(&body).contains("expired"), "{}", text(&body));

    // A fresh one replaces the unused expired one; the rows hold a hash, never the token.
    let t = st
        .mint_token(None, &dev, Duration::from_secs(600))
        .await
        .unwrap();
    let rows = store.device_tokens("line7", "ctw-tok1").await.unwrap();
    assert_eq!(rows.len(), 1, "the earlier unused token was replaced");
    assert_eq!(rows[0].hash.len(), 64);
    assert!(!rows[0].hash.contains(t.as_str()) && rows[0].used_at.is_none());
    // The old token no longer matches.
    let (status, _, _) = call(
        &st,
        post("simpleenroll", &csr, Some(&basic("ctw-tok1", old.as_str()))),
    )
    .await;
    assert_eq!(status, 401);
    // An unknown label is refused at minting.
    assert!(
        st.mint_token(Some("nope"), &dev, Duration::from_secs(60))
            .await
            .is_err()
    );

    let before = issued(&pki).await;
    let (status, _, body) = call(
        &st,
        post("simpleenroll", &csr, Some(&basic("ctw-tok1", t.as_str()))),
    )
    .await;
    assert_eq!(status, 200, "{}", text(&body));
    assert_eq!(issued(&pki).await, before + 1);
    let rows = store.device_tokens("line7", "ctw-tok1").await.unwrap();
    assert!(rows[0].used_at.is_some(), "spent in the database");
}

/// Two handles on one database (two nodes) race `use_token` for one token many times: one wins each time.
async fn race(a: SqlStore, b: SqlStore) {
    for _ in 0..10 {
        let id = format!("ctw-race-{}", tag());
        let dev = DeviceId::new(&id).unwrap();
        mint_token(&a, "line7", &dev, Duration::from_secs(600), now())
            .await
            .unwrap();
        let rows = b.device_tokens("line7", &id).await.unwrap();
        assert_eq!(rows.len(), 1, "both nodes see the token");
        let h = rows[0].hash.clone();
        let at = now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let (x, y) = tokio::join!(a.use_token(&h, at), b.use_token(&h, at));
        let wins = [x.unwrap(), y.unwrap()].iter().filter(|w| **w).count();
        assert_eq!(wins, 1, "exactly one node accepts the token");
        // Released, it can be used once more; spent, never again.
        a.release_token(&h, at).await.unwrap();
        assert!(b.use_token(&h, at).await.unwrap());
        assert!(!a.use_token(&h, at).await.unwrap());
    }
}

#[tokio::test]
async fn two_sqlite_handles_cannot_both_use_a_token() {
    let dir = smtrust_test_support::temp_dir().unwrap();
    let db = dir.path().join("smtrust.db");
    let a = SqlStore::open_sqlite(&db).await.unwrap();
    let b = SqlStore::open_sqlite(&db).await.unwrap();
    race(a, b).await;
}

#[tokio::test]
async fn two_postgres_nodes_cannot_both_use_a_token() {
    let Some(url) = require(Postgres) else { return };
    let a = SqlStore::open_postgres(&url.0, 2).await.unwrap();
    let b = SqlStore::open_postgres(&url.0, 2).await.unwrap();
    race(a, b).await;
}
