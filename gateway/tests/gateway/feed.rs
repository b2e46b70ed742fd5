//! The CA revocation feed in process: `CaService::revoke` → `RevocationEvent` broadcast →
//! `Gateway::follow_ca` → the device's session closed in under a second; others stay.

use crate::pki::{ISSUER, Pki};
use crate::tcp::{connect, default_policy, echo_server, echoes, start, time_to_close};
use smtrust_ca::RevocationReason;
use std::time::{Duration, Instant};

#[tokio::test]
async fn ca_revoke_cuts_the_session_within_one_second_and_spares_others() {
    let pki = Pki::new("feed").await;
    let gw = start(&pki, "tcp", echo_server().await, "", default_policy()).await;
    let _feed = gw
        .gateway()
        .follow_ca(pki.svc.subscribe(), pki.issuer_names());
    let addr = gw.local_addr("main").unwrap();
    let (a, b) = (
        pki.device("ctw-feed-a").await,
        pki.device("ctw-feed-b").await,
    );
    let mut sa = connect(&pki, &a, addr).await.unwrap();
    let mut sb = connect(&pki, &b, addr).await.unwrap();
    assert!(echoes(&mut sa, b"a").await && echoes(&mut sb, b"b").await);

    let at = Instant::now();
    pki.svc
        .revoke(ISSUER, &a.serial, RevocationReason::KeyCompromise)
        .await
        .unwrap();
    time_to_close(&mut sa).await;
    let took = at.elapsed();
    eprintln!("CaService::revoke → session closed: {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(
        echoes(&mut sb, b"still here").await,
        "the other device was cut"
    );
    // The set is updated too: a new handshake with the revoked certificate is refused.
    let mut again = connect(&pki, &a, addr).await.unwrap();
    assert!(!echoes(&mut again, b"x").await);

    // Suspend and resume b through the CA.
    pki.svc.suspend(ISSUER, &b.serial).await.unwrap();
    assert!(time_to_close(&mut sb).await < Duration::from_secs(1));
    pki.svc.resume(ISSUER, &b.serial).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut sb = connect(&pki, &b, addr).await.unwrap();
    assert!(echoes(&mut sb, b"back").await);

    let m = gw.gateway().metrics();
    assert_eq!(m.refusals("revoked"), 2, "{}", m.render()); // the cut session + the handshake
    assert_eq!(m.refusals("suspended"), 1);
    gw.shutdown().await;
}
