//! Revocation across nodes over PostgreSQL (`SMTRUST_TEST_POSTGRES_URL`): two CA service instances
//! on one database; node A revokes, the gateway follows node B's `RevocationListener`
//! (`LISTEN smtrust_revocation`) and closes the device's live session within a second while the
//! other device stays connected. Ids and the issuer label are unique per run: the database persists.

use crate::pki::{Pki, now};
use crate::tcp::{connect, default_policy, echo_server, echoes, start, time_to_close};
use smtrust_ca::{CaService, Profiles, RevocationListener, RevocationReason, SqlStore};
use smtrust_test_support::{Postgres, require};
use std::time::{Duration, Instant, UNIX_EPOCH};

#[tokio::test]
async fn revoke_on_node_a_closes_the_session_behind_node_b_within_one_second() {
    let Some(url) = require(Postgres) else { return };
    let tag = format!(
        "{}-{}",
        std::process::id(),
        now().duration_since(UNIX_EPOCH).unwrap().as_micros()
    );
    let label = format!("gw-notify-{tag}");
    // Node A: the CA service that issues and revokes.
    let node_a = Pki::with_store(
        "notify",
        SqlStore::open_postgres(&url.0, 2).await.unwrap(),
        &label,
    )
    .await;
    // Node B: another service on the same database; its gateway hears A's changes only through
    // NOTIFY (nothing in process links the two).
    let node_b = CaService::new(
        SqlStore::open_postgres(&url.0, 2).await.unwrap(),
        Profiles::default(),
    );
    let listener = RevocationListener::connect(&url.0).await.unwrap();
    let gw = start(&node_a, "tcp", echo_server().await, "", default_policy()).await;
    let _feed = gw
        .gateway()
        .follow_ca_notify(listener, node_a.issuer_names());
    let addr = gw.local_addr("main").unwrap();
    let a = node_a.device(&format!("ctw-{tag}-a")).await;
    let b = node_a.device(&format!("ctw-{tag}-b")).await;
    let mut sa = connect(&node_a, &a, addr).await.unwrap();
    let mut sb = connect(&node_a, &b, addr).await.unwrap();
    assert!(echoes(&mut sa, b"a").await && echoes(&mut sb, b"b").await);

    let at = Instant::now();
    node_a
        .svc
        .revoke(&label, &a.serial, RevocationReason::KeyCompromise)
        .await
        .unwrap();
    time_to_close(&mut sa).await;
    let took = at.elapsed();
    eprintln!("node A revoke → PostgreSQL NOTIFY → node B's gateway closed the session: {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(
        echoes(&mut sb, b"still here").await,
        "the other device was cut"
    );
    // Node B's store agrees, and its gateway refuses the certificate in the handshake now.
    let rec = node_b.show(&a.serial).await.unwrap().unwrap();
    assert!(
        matches!(rec.status, smtrust_ca::CertStatus::Revoked { .. }),
        "{:?}",
        rec.status
    );
    let mut again = connect(&node_a, &a, addr).await.unwrap();
    assert!(!echoes(&mut again, b"x").await);
    assert_eq!(gw.gateway().metrics().refusals("revoked"), 2);
    gw.shutdown().await;
}
