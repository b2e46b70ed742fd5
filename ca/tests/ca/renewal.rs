//! Renewal (`CaService::renew`): the new certificate is recorded and the current one superseded in one store
//! transaction; a failure leaves the current one active and nothing new recorded.

use std::sync::Arc;

use smtrust_ca::{
    CertStatus, Error, IssueRequest, RevocationKind, RevocationReason, Serial, SqlStore,
    StateError, Store,
};
use smtrust_test_support::{Postgres, require};

use crate::fixture::{Pki, Sealable, make_csr, pki_with_signer, signer};

fn tag() -> String {
    Serial::random().unwrap().to_hex()[..8].to_owned()
}

async fn issue_device(pki: &Pki, id: &str) -> Serial {
    let (_, sk) = signer();
    pki.svc
        .issue(
            "line7",
            "device",
            IssueRequest::new(make_csr(&sk, &format!("CN={id}")), None),
        )
        .await
        .unwrap()
        .serial
}

fn renewal_request(id: &str) -> IssueRequest {
    let (_, sk) = signer();
    IssueRequest::new(
        make_csr(&sk, &format!("CN={id}")),
        Some(smtrust_ca::DeviceId::new(id).unwrap()),
    )
}

async fn status(pki: &Pki, serial: &Serial) -> CertStatus {
    pki.svc.show(serial).await.unwrap().unwrap().status
}

/// Certificates of `id` recorded by line7 (any status but reserved).
async fn recorded_for(pki: &Pki, id: &str) -> Vec<smtrust_ca::CertRecord> {
    pki.svc
        .list("line7", 10_000, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.device_id.as_deref() == Some(id))
        .collect()
}

fn delta_lists(der: &[u8], serial: &Serial) -> bool {
    use der::Decode;
    let crl = x509_cert::crl::CertificateList::from_der(der).unwrap();
    crl.tbs_cert_list
        .revoked_certificates
        .unwrap_or_default()
        .iter()
        .any(|r| Serial::from_serial_number(&r.serial_number).unwrap() == *serial)
}

async fn sealable(store: SqlStore) -> (Pki, Arc<Sealable>) {
    let key = Sealable::new();
    let pki = pki_with_signer(store, "http://127.0.0.1:1", key.clone()).await;
    (pki, key)
}

/// Signing fails (keystore sealed): the current certificate stays active, nothing new is recorded, no event.
async fn failed_signing_keeps_current(store: SqlStore) {
    let (pki, key) = sealable(store).await;
    let id = format!("ctw-rf-{}", tag());
    let old = issue_device(&pki, &id).await;
    let mut events = pki.svc.subscribe();
    key.seal(true);
    let err = pki
        .svc
        .renew("line7", "device", renewal_request(&id), &old)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Crypto(_) | Error::Builder(_)),
        "{err:?}"
    );
    assert_eq!(status(&pki, &old).await, CertStatus::Active);
    let store = pki.svc.store();
    assert_eq!(
        store.active_serial_for_device("line7", &id).await.unwrap(),
        Some(old)
    );
    let recs = recorded_for(&pki, &id).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert!(events.try_recv().is_err(), "no revocation event");
    // Unsealed, the same renewal goes through.
    key.seal(false);
    let new = pki
        .svc
        .renew("line7", "device", renewal_request(&id), &old)
        .await
        .unwrap();
    assert_eq!(status(&pki, &new.serial).await, CertStatus::Active);
    assert!(matches!(
        status(&pki, &old).await,
        CertStatus::Revoked {
            reason: RevocationReason::Superseded,
            ..
        }
    ));
}

/// A normal renewal: one active certificate (the new one), the old revoked as superseded, in the delta CRL,
/// the event sent; the revoked one cannot be renewed again.
async fn renewal_supersedes(store: SqlStore) {
    let (pki, _key) = sealable(store).await;
    let id = format!("ctw-rn-{}", tag());
    let old = issue_device(&pki, &id).await;
    pki.svc.crl("line7", false).await.unwrap();
    let mut events = pki.svc.subscribe();
    let new = pki
        .svc
        .renew("line7", "device", renewal_request(&id), &old)
        .await
        .unwrap();
    assert_ne!(new.serial, old);
    let recs = recorded_for(&pki, &id).await;
    let active: Vec<Serial> = recs
        .iter()
        .filter(|r| r.status == CertStatus::Active)
        .map(|r| r.serial)
        .collect();
    assert_eq!(active, vec![new.serial], "{recs:?}");
    assert!(
        matches!(
            status(&pki, &old).await,
            CertStatus::Revoked {
                reason: RevocationReason::Superseded,
                ..
            }
        ),
        "{recs:?}"
    );
    let ev = events.try_recv().unwrap();
    assert_eq!(ev.serial, old);
    assert_eq!(ev.device_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        ev.kind,
        RevocationKind::Revoked {
            reason: RevocationReason::Superseded
        }
    );
    // The lone change regenerated the stored delta CRL at once (what other nodes serve).
    let delta = pki
        .svc
        .store()
        .latest_crl("line7", true)
        .await
        .unwrap()
        .unwrap();
    assert!(
        delta_lists(&delta.der, &old),
        "old serial in the stored delta CRL"
    );
    // The superseded certificate cannot be renewed again; nothing more is recorded.
    let err = pki
        .svc
        .renew("line7", "device", renewal_request(&id), &old)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::State(StateError::AlreadyRevoked(s)) if s == old),
        "{err:?}"
    );
    // Renewing another device's certificate is refused.
    let other = format!("ctw-ro-{}", tag());
    let err = pki
        .svc
        .renew("line7", "device", renewal_request(&other), &new.serial)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Request(_)), "{err:?}");
    assert_eq!(recorded_for(&pki, &id).await.len(), 2);
    assert!(recorded_for(&pki, &other).await.is_empty());
}

/// The store rolls the supersession back when recording the new certificate fails in the same transaction
/// (here: its serial is not a reserved one).
async fn store_rolls_back(store: SqlStore) {
    let (pki, _key) = sealable(store).await;
    let id = format!("ctw-rb-{}", tag());
    let old = issue_device(&pki, &id).await;
    let (_, sk) = signer();
    let recorded = pki
        .svc
        .issue(
            "line7",
            "device",
            IssueRequest::new(make_csr(&sk, &format!("CN=ctw-rb2-{}", tag())), None),
        )
        .await
        .unwrap();
    let err = pki
        .svc
        .store()
        .record_replacing(&recorded, &old, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::State(StateError::UnknownSerial(_))),
        "{err:?}"
    );
    assert_eq!(status(&pki, &old).await, CertStatus::Active);
}

#[tokio::test]
async fn renewal_whose_signing_fails_keeps_the_current_certificate() {
    failed_signing_keeps_current(SqlStore::open_sqlite_memory().await.unwrap()).await;
}

#[tokio::test]
async fn renewal_supersedes_the_current_certificate_in_one_transaction() {
    renewal_supersedes(SqlStore::open_sqlite_memory().await.unwrap()).await;
}

#[tokio::test]
async fn record_replacing_rolls_back_the_supersession_on_failure() {
    store_rolls_back(SqlStore::open_sqlite_memory().await.unwrap()).await;
}

#[tokio::test]
async fn renewal_on_postgres() {
    let Some(url) = require(Postgres) else { return };
    failed_signing_keeps_current(SqlStore::open_postgres(&url.0, 4).await.unwrap()).await;
    renewal_supersedes(SqlStore::open_postgres(&url.0, 4).await.unwrap()).await;
    store_rolls_back(SqlStore::open_postgres(&url.0, 4).await.unwrap()).await;
}
