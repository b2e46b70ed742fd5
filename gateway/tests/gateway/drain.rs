//! Draining shutdown: new connections are refused at once, admitted sessions keep working until
//! they end or the grace period passes.

use crate::pki::Pki;
use crate::tcp::{connect, default_policy, echo_server, echoes, start, time_to_close};
use std::time::{Duration, Instant};

#[tokio::test]
async fn drain_keeps_admitted_sessions_and_refuses_new_ones() {
    let pki = Pki::new("drain").await;
    let gw = start(&pki, "tcp", echo_server().await, "", default_policy()).await;
    let addr = gw.local_addr("main").unwrap();
    let (a, b) = (
        pki.device("ctw-drain-a").await,
        pki.device("ctw-drain-b").await,
    );
    let mut sa = connect(&pki, &a, addr).await.unwrap();
    let mut sb = connect(&pki, &b, addr).await.unwrap();
    assert!(echoes(&mut sa, b"a").await && echoes(&mut sb, b"b").await);

    let at = Instant::now();
    let drain = tokio::spawn(gw.drain(Duration::from_secs(3)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        connect(&pki, &a, addr).await.is_err(),
        "a new connection is refused while draining"
    );
    assert!(echoes(&mut sa, b"still served").await);
    // a leaves by itself; b outstays the grace period and is closed then.
    drop(sa);
    assert!(echoes(&mut sb, b"b too").await);
    time_to_close(&mut sb).await;
    let closed_after = at.elapsed();
    assert_eq!(drain.await.unwrap(), 1, "b was still open at the deadline");
    assert!(
        closed_after >= Duration::from_millis(2900),
        "closed after {closed_after:?}"
    );
}

/// A grace period past the clock's range: no session left, so the drain ends at once.
#[tokio::test]
async fn drain_with_an_endless_grace_and_no_session_ends_at_once() {
    let pki = Pki::new("drain-endless").await;
    let gw = start(&pki, "tcp", echo_server().await, "", default_policy()).await;
    let left = tokio::time::timeout(Duration::from_secs(5), gw.drain(Duration::MAX))
        .await
        .expect("drain returned");
    assert_eq!(left, 0);
}
