//! `simplereenroll` supersedes the current certificate in the transaction that records the new one: a failed
//! issuance (keystore sealed) leaves the device its certificate.

use std::time::Duration;

use smtrust_ca::est::{EstConfig, EstState, RateLimit};
use smtrust_ca::{CertStatus, RevocationReason, Serial, SqlStore};
use smtrust_crypto::sm2::Sm2SecretKey;
use smtrust_tls::serve::Peer;

use super::fixture::{Sealable, make_csr, pki_with_signer};
use super::{basic, call, leaf_of, post, token};

fn serial_of(der: &[u8]) -> Serial {
    use der::Decode;
    let c = x509_cert::Certificate::from_der(der).unwrap();
    Serial::from_serial_number(c.tbs_certificate().serial_number()).unwrap()
}

#[tokio::test]
async fn reenroll_with_sealed_keystore_keeps_the_current_certificate_then_supersedes_it() {
    let key = Sealable::new();
    let pki = pki_with_signer(
        SqlStore::open_sqlite_memory().await.unwrap(),
        "http://127.0.0.1:1",
        key.clone(),
    )
    .await;
    let mut cfg = EstConfig::new("line7");
    cfg.rate_limit = RateLimit::new(100, Duration::from_millis(10));
    let st = EstState::new(pki.svc.clone(), cfg).unwrap();
    let sk = Sm2SecretKey::generate().unwrap();
    let csr = make_csr(&sk, "CN=ctw-er");
    let t = token(&st, "ctw-er").await;
    let (status, _, body) = call(&st, post("simpleenroll", &csr, Some(&basic("ctw-er", &t)))).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let cert = leaf_of(&body);
    let old = serial_of(&cert);
    let reenroll = || {
        let mut r = post("simplereenroll", &csr, None);
        r.extensions_mut().insert(Peer::from_leaf(&cert));
        r
    };
    let of_device = || async {
        pki.svc
            .list("line7", 1000, 0)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.device_id.as_deref() == Some("ctw-er"))
            .collect::<Vec<_>>()
    };

    key.seal(true);
    let (status, _, body) = call(&st, reenroll()).await;
    assert_eq!(status, 500, "{}", String::from_utf8_lossy(&body));
    let recs = of_device().await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(
        pki.svc.show(&old).await.unwrap().unwrap().status,
        CertStatus::Active
    );

    key.seal(false);
    let (status, _, body) = call(&st, reenroll()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let new = serial_of(&leaf_of(&body));
    let recs = of_device().await;
    let active: Vec<Serial> = recs
        .iter()
        .filter(|r| r.status == CertStatus::Active)
        .map(|r| r.serial)
        .collect();
    assert_eq!(active, vec![new], "{recs:?}");
    assert!(matches!(
        pki.svc.show(&old).await.unwrap().unwrap().status,
        CertStatus::Revoked {
            reason: RevocationReason::Superseded,
            ..
        }
    ));
}
