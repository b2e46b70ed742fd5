//! Delta CRLs after bursts of revocations: coalesced into few CRLs, none missing a revocation (checked in
//! our parser and with OpenSSL), lone revocations published at once, dirty deltas regenerated on demand.

use std::collections::BTreeSet;
use std::time::Duration;

use der::Decode;
use smtrust_ca::{IssueRequest, RevocationReason, Serial, Store};
use smtrust_test_support::{Openssl, SignerKey, Verdict, require, sm2sigcheck};
use x509_cert::crl::CertificateList;

use crate::fixture::{Pki, make_csr, pki, s, signer};

/// Issue `n` device certificates in one batch.
async fn issue_many(pki: &Pki, tag: &str, n: usize) -> Vec<Serial> {
    let reqs = (0..n)
        .map(|i| {
            let (_, sk) = signer();
            IssueRequest::new(make_csr(&sk, &format!("CN=ctw-{tag}-{i}")), None)
        })
        .collect();
    pki.svc
        .issue_batch("line7", "device", reqs)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().serial)
        .collect()
}

fn listed(crl_der: &[u8]) -> BTreeSet<Serial> {
    let crl = CertificateList::from_der(crl_der).unwrap();
    crl.tbs_cert_list
        .revoked_certificates
        .unwrap_or_default()
        .iter()
        .map(|r| Serial::from_serial_number(&r.serial_number).unwrap())
        .collect()
}

/// The stored delta CRL (what other nodes and processes serve), not the service's on-demand answer.
async fn stored_delta(pki: &Pki) -> smtrust_ca::StoredCrl {
    pki.svc
        .store()
        .latest_crl("line7", true)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_concurrent_revocations_makes_few_delta_crls_listing_every_one() {
    const N: usize = 64;
    let delay = Duration::from_millis(300);
    let pki = pki().await;
    pki.svc.set_delta_crl_delay(delay);
    let serials = issue_many(&pki, "burst", N).await;
    let full = pki.svc.crl("line7", false).await.unwrap();
    let mut events = pki.svc.subscribe();
    let mut set = tokio::task::JoinSet::new();
    for s in serials.clone() {
        let svc = pki.svc.clone();
        set.spawn(async move {
            svc.revoke("line7", &s, RevocationReason::Superseded)
                .await
                .unwrap()
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    // Events are not held back by the CRL: all N are already queued.
    for _ in 0..N {
        assert!(events.try_recv().is_ok(), "a revocation event is missing");
    }
    // Past the delay plus a generation, the stored delta CRL lists every revocation.
    tokio::time::sleep(delay + Duration::from_secs(2)).await;
    let delta = stored_delta(&pki).await;
    let made = delta.number - full.number;
    assert!(
        made <= (N / 8) as u64,
        "{made} delta CRLs for {N} revocations"
    );
    let want: BTreeSet<Serial> = serials.iter().copied().collect();
    assert_eq!(listed(&delta.der), want);
    // The service serves the same one (nothing dirty left, nothing regenerated).
    assert_eq!(
        pki.svc.latest_crl("line7", true).await.unwrap().number,
        delta.number
    );
    if let Some(o) = require(Openssl) {
        let p = pki.write("burst-delta.crl", &delta.der);
        let text = o
            .run_ok(["crl", "-inform", "DER", "-in", &s(&p), "-noout", "-text"])
            .unwrap()
            .stdout_str()
            .to_uppercase();
        assert!(text.contains("DELTA CRL INDICATOR"), "{text}");
        for sn in &serials {
            assert!(
                text.contains(&sn.to_hex().to_uppercase()),
                "{sn:?} missing: {text}"
            );
        }
        assert_eq!(
            sm2sigcheck(&o, &delta.der, SignerKey::Certificate(&pki.inter_der)).unwrap(),
            Verdict::Verified
        );
    }
}

#[tokio::test]
async fn a_lone_revocation_is_in_the_stored_delta_crl_when_revoke_returns() {
    let pki = pki().await;
    let serials = issue_many(&pki, "lone", 2).await;
    pki.svc.crl("line7", false).await.unwrap();
    pki.svc
        .revoke("line7", &serials[0], RevocationReason::KeyCompromise)
        .await
        .unwrap();
    // As the CLI's `ca revoke` needs: its process exits right after.
    assert_eq!(
        listed(&stored_delta(&pki).await.der),
        BTreeSet::from([serials[0]])
    );
}

#[tokio::test]
async fn a_dirty_delta_crl_is_regenerated_when_asked_for() {
    let pki = pki().await;
    // A delay far beyond the test: only the on-demand path can publish the second revocation.
    pki.svc.set_delta_crl_delay(Duration::from_secs(3600));
    let serials = issue_many(&pki, "dirty", 2).await;
    pki.svc.crl("line7", false).await.unwrap();
    for sn in &serials {
        pki.svc
            .revoke("line7", sn, RevocationReason::KeyCompromise)
            .await
            .unwrap();
    }
    let stored = stored_delta(&pki).await;
    assert_eq!(listed(&stored.der), BTreeSet::from([serials[0]]));
    let served = pki.svc.latest_crl("line7", true).await.unwrap();
    assert!(served.number > stored.number);
    assert_eq!(listed(&served.der), serials.iter().copied().collect());
    // Served once, clean: asking again makes nothing new.
    assert_eq!(
        pki.svc.latest_crl("line7", true).await.unwrap().number,
        served.number
    );
    // flush_delta_crls has nothing left to do either.
    pki.svc.flush_delta_crls().await.unwrap();
    assert_eq!(stored_delta(&pki).await.number, served.number);
}
