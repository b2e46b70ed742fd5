//! Stores and the service: SQLite (and PostgreSQL when `SMTRUST_TEST_POSTGRES_URL` is set; required under
//! CI=true), atomic nonce consumption, latest result per device, downgrade events.

use std::sync::Arc;

use smtrust_attest::device::sign_evidence;
use smtrust_attest::sql::SqlStore;
use smtrust_attest::{
    AppraisalConfig, Appraiser, AttestationService, Challenge, NonceOutcome, NonceStore,
    ReferenceStore, ResultStore, ServiceConfig, Status,
};
use smtrust_crypto::sm2::{CertId, Sm2Signer};
use smtrust_test_support::{Postgres, require};

use crate::pki::*;

type Svc = AttestationService<SqlStore, SqlStore, SqlStore>;

async fn service(pki: &Pki, store: &SqlStore, statuses: Arc<Statuses>) -> Svc {
    let signer: Arc<dyn Sm2Signer<CertId>> = Arc::new(
        smtrust_crypto::sm2::Sm2SecretKey::from_bytes(&pki_attest_scalar(pki))
            .unwrap()
            .signing_key(CertId)
            .unwrap(),
    );
    AttestationService::new(
        Appraiser::new(pki.anchors(), AppraisalConfig::default()),
        store.clone(),
        store.clone(),
        store.clone(),
        statuses,
        signer,
        pki.attest_chain.clone(),
        ServiceConfig::default(),
    )
}

// The fixture keeps its attestation key as a signing key; the service needs an owned one.
fn pki_attest_scalar(_pki: &Pki) -> [u8; 32] {
    *ATTEST_SCALAR
}
static ATTEST_SCALAR: std::sync::LazyLock<[u8; 32]> = std::sync::LazyLock::new(|| {
    *smtrust_crypto::sm2::Sm2SecretKey::generate()
        .unwrap()
        .to_bytes()
});

async fn exercise(url: &str) {
    let store = SqlStore::connect(url).await.unwrap();
    // Tables may hold rows from earlier runs on PostgreSQL: use fresh device IDs.
    let tag = hex::encode(smtrust_crypto::rng::bytes::<4>().unwrap());
    let pki = Pki::new();
    // Results are signed by a key whose certificate we issue here.
    let att_sk = smtrust_crypto::sm2::Sm2SecretKey::from_bytes(&*ATTEST_SCALAR).unwrap();
    let att_cert = issue(
        INT_DN,
        &pki.intermediate_key,
        "CN=attest",
        &att_sk,
        false,
        Some(smtrust_attest::ATTESTATION_SERVICE_URI.into()),
        NOW_SECS - DAY,
        NOW_SECS + DAY,
    );
    let mut pki = pki;
    pki.attest_chain = vec![att_cert, pki.intermediate.clone()];
    let statuses = Arc::new(Statuses::default());
    let svc = service(&pki, &store, statuses.clone()).await;
    let model = format!("m-{tag}");
    let mut rv = reference_values();
    rv.product_model = model.clone();
    let reg = svc
        .references()
        .register(&rv, "secadmin-alice", now())
        .await
        .unwrap();
    assert_eq!(reg.registration.as_ref().unwrap().version, 1);
    let reg2 = svc
        .references()
        .register(&rv, "secadmin-bob", now())
        .await
        .unwrap();
    assert_eq!(reg2.registration.as_ref().unwrap().version, 2);
    assert_eq!(
        ReferenceStore::latest(svc.references(), &model, FW)
            .await
            .unwrap(),
        Some(reg2)
    );
    assert_eq!(svc.references().history(&model, FW).await.unwrap().len(), 2);

    let d = pki.device(&format!("dev-{tag}"));
    let mut events = svc.subscribe();

    // Affirming first.
    let ch = svc.challenge(&d.id, now()).await.unwrap();
    let mut c = claims(&d, &ch.nonce);
    c.product_model = model.clone();
    let ev = sign_evidence(&c, &d.chain, &d.key).unwrap();
    let s = svc.submit(ev.as_bytes(), now()).await.unwrap();
    assert_eq!(s.result.status, Status::Affirming, "{:?}", s.result.reasons);
    assert!(s.stored);
    let latest = svc.latest(&d.id).await.unwrap().unwrap();
    assert_eq!(latest.status, Status::Affirming);
    assert_eq!(latest.token, s.token);
    smtrust_attest::verify_result(
        latest.token.as_bytes(),
        std::slice::from_ref(&pki.root),
        now(),
    )
    .unwrap();

    // Replay: contraindicated, not stored, no event.
    let r = svc.submit(ev.as_bytes(), now()).await.unwrap();
    assert_eq!(r.result.status, Status::Contraindicated);
    assert!(!r.stored);
    assert_eq!(
        svc.latest(&d.id).await.unwrap().unwrap().status,
        Status::Affirming
    );
    assert!(events.try_recv().is_err());

    // Changed firmware measurement: stored and downgrade event.
    let ch = svc.challenge(&d.id, now()).await.unwrap();
    let mut c = claims(&d, &ch.nonce);
    c.product_model = model.clone();
    c.measurements[2].digest[5] ^= 0x80;
    let ev = sign_evidence(&c, &d.chain, &d.key).unwrap();
    let s = svc.submit(ev.as_bytes(), now()).await.unwrap();
    assert_eq!(s.result.status, Status::Contraindicated);
    assert!(s.stored);
    let e = events.try_recv().unwrap();
    assert_eq!(
        (e.device_id, e.from, e.to),
        (d.id.clone(), Status::Affirming, Status::Contraindicated)
    );
    assert_eq!(
        svc.latest(&d.id).await.unwrap().unwrap().status,
        Status::Contraindicated
    );

    // Nonce store semantics, directly.
    let ch = Challenge::new(d.id.clone(), now(), std::time::Duration::from_secs(60)).unwrap();
    store.insert(&ch).await.unwrap();
    assert!(matches!(
        store.consume(&ch.nonce, at(NOW_SECS + 61)).await.unwrap(),
        NonceOutcome::Expired(_)
    ));
    let ch = Challenge::new(d.id.clone(), now(), std::time::Duration::from_secs(60)).unwrap();
    store.insert(&ch).await.unwrap();
    // Concurrent consumers: exactly one wins.
    let (a, b2) = tokio::join!(
        store.consume(&ch.nonce, now()),
        store.consume(&ch.nonce, now())
    );
    let fresh = [a.unwrap(), b2.unwrap()]
        .into_iter()
        .filter(|o| matches!(o, NonceOutcome::Fresh(_)))
        .count();
    assert_eq!(fresh, 1);
    assert!(matches!(
        store.consume(&ch.nonce, now()).await.unwrap(),
        NonceOutcome::AlreadyUsed(_)
    ));
    let unknown = smtrust_attest::Nonce::generate().unwrap();
    assert_eq!(
        store.consume(&unknown, now()).await.unwrap(),
        NonceOutcome::Unknown
    );
    let _ = ResultStore::latest(&store, &d.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_service_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("attest.db").display()
    );
    exercise(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_service_end_to_end() {
    let Some(url) = require(Postgres) else { return };
    exercise(&url.0).await;
}

/// Group commit on SQLite: many concurrent writes from two stores on one file (as a server and a CLI, or
/// two processes, would share it). Every nonce is consumed exactly once across both, and every write a
/// caller saw succeed is in the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_group_commit_keeps_nonces_single_use_across_stores() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("attest.db").display()
    );
    let a = SqlStore::connect(&url).await.unwrap();
    let b = SqlStore::connect(&url).await.unwrap();
    let device = smtrust_attest::DeviceId::new("dev-batch").unwrap();
    let challenges: Vec<Challenge> = (0..32)
        .map(|_| Challenge::new(device.clone(), now(), std::time::Duration::from_secs(60)).unwrap())
        .collect();
    // Concurrent inserts, half through each store.
    let mut set = tokio::task::JoinSet::new();
    for (i, c) in challenges.iter().enumerate() {
        let (store, c) = (if i % 2 == 0 { a.clone() } else { b.clone() }, c.clone());
        set.spawn(async move { store.insert(&c).await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    // Four consumers per nonce, two on each store, all at once.
    let mut set = tokio::task::JoinSet::new();
    for (i, c) in challenges.iter().enumerate() {
        for k in 0..4 {
            let store = if k % 2 == 0 { a.clone() } else { b.clone() };
            let nonce = c.nonce.clone();
            set.spawn(async move { (i, store.consume(&nonce, now()).await) });
        }
    }
    let mut fresh = [0usize; 32];
    while let Some(r) = set.join_next().await {
        let (i, outcome) = r.unwrap();
        match outcome.unwrap() {
            NonceOutcome::Fresh(c) => {
                assert_eq!(c.device_id, device);
                fresh[i] += 1;
            }
            NonceOutcome::AlreadyUsed(_) => {}
            other => panic!("nonce {i}: {other:?}"),
        }
    }
    assert_eq!(fresh, [1; 32], "each nonce consumed exactly once");
    // Concurrent result writes; a third store opened afterwards reads them from the file.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..16u64 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        set.spawn(async move {
            let r = smtrust_attest::StoredResult::new(
                smtrust_attest::DeviceId::new(format!("dev-{i}")).unwrap(),
                format!("{i:02x}"),
                Status::Affirming,
                NOW_SECS + i,
                NOW_SECS + 3600,
                format!("token-{i}"),
            );
            store.put(&r).await
        });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap(), None);
    }
    let c = SqlStore::connect(&url).await.unwrap();
    for i in 0..16u64 {
        let id = smtrust_attest::DeviceId::new(format!("dev-{i}")).unwrap();
        let got = ResultStore::latest(&c, &id).await.unwrap().unwrap();
        assert_eq!(got.token, format!("token-{i}"));
        assert_eq!(got.issued_at, NOW_SECS + i);
    }
    for ch in &challenges {
        assert!(matches!(
            c.consume(&ch.nonce, now()).await.unwrap(),
            NonceOutcome::AlreadyUsed(_)
        ));
    }
}
