//! Revocation, suspension, events, CRLs (OpenSSL, Tongsuo, GmSSL), and the same store tests on PostgreSQL.

use smtrust_ca::{
    IssueRequest, RevocationKind, RevocationListener, RevocationReason, SqlStore, StateError,
};
use smtrust_test_support::{
    Gmssl, Openssl, Postgres, SignerKey, Tongsuo, Verdict, require, sm2sigcheck,
};

use crate::fixture::{Pki, make_csr, pki, pki_with, s, signer};

async fn issue(pki: &Pki, id: &str) -> smtrust_ca::IssuedCert {
    let (_, sk) = signer();
    pki.svc
        .issue(
            "line7",
            "device",
            IssueRequest::new(make_csr(&sk, &format!("CN={id}")), None),
        )
        .await
        .unwrap()
}

/// A device-id prefix unique to this run: a persistent database (PostgreSQL) keeps earlier runs' active
/// devices, and a duplicate active device id is refused by design.
fn run_tag() -> String {
    let b = smtrust_crypto::rng::bytes::<6>().unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn lifecycle(pki: &Pki, tag: &str) {
    let mut events = pki.svc.subscribe();
    let a = issue(pki, &format!("ctw-{tag}-a")).await;
    let b = issue(pki, &format!("ctw-{tag}-b")).await;
    pki.svc.crl("line7", false).await.unwrap();
    let e = pki
        .svc
        .revoke("line7", &a.serial, RevocationReason::KeyCompromise)
        .await
        .unwrap();
    assert_eq!(
        e.kind,
        RevocationKind::Revoked {
            reason: RevocationReason::KeyCompromise
        }
    );
    assert_eq!(events.recv().await.unwrap(), e);
    pki.svc.suspend("line7", &b.serial).await.unwrap();
    assert_eq!(events.recv().await.unwrap().kind, RevocationKind::Suspended);
    // Revoked is final; resume needs a hold.
    assert!(matches!(
        pki.svc.suspend("line7", &a.serial).await,
        Err(smtrust_ca::Error::State(StateError::AlreadyRevoked(_)))
    ));
    assert!(matches!(
        pki.svc.resume("line7", &a.serial).await,
        Err(smtrust_ca::Error::State(StateError::AlreadyRevoked(_)))
    ));
    let full = pki.svc.crl("line7", false).await.unwrap();
    pki.svc.resume("line7", &b.serial).await.unwrap();
    assert_eq!(events.recv().await.unwrap().kind, RevocationKind::Resumed);
    let delta = pki.svc.latest_crl("line7", true).await.unwrap();
    assert!(delta.number > full.number);
    let rec = pki.svc.show(&b.serial).await.unwrap().unwrap();
    assert_eq!(rec.status, smtrust_ca::CertStatus::Active);
}

#[tokio::test]
async fn revoke_suspend_resume_on_sqlite() {
    lifecycle(&pki().await, &run_tag()).await;
}

#[tokio::test]
async fn revoke_suspend_resume_on_postgres_with_notify() {
    let Some(url) = require(Postgres) else { return };
    let store = SqlStore::open_postgres(&url.0, 4).await.unwrap();
    let mut listener = RevocationListener::connect(&url.0).await.unwrap();
    let pki = pki_with(store, "http://127.0.0.1:1").await;
    let tag = run_tag();
    lifecycle(&pki, &tag).await;
    // The NOTIFY side: the three changes arrive as JSON events (other tests may share the database).
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv())
            .await
            .unwrap()
            .unwrap();
        if ev
            .device_id
            .as_deref()
            .is_some_and(|d| d == format!("ctw-{tag}-a") || d == format!("ctw-{tag}-b"))
        {
            kinds.push(ev.kind);
        }
    }
    assert!(kinds.contains(&RevocationKind::Suspended));
    assert!(kinds.contains(&RevocationKind::Resumed));
}

#[tokio::test]
async fn crls_parse_verify_and_revoke_in_openssl_tongsuo_and_gmssl() {
    let pki = pki().await;
    let good = issue(&pki, "ctw-good").await;
    let bad = issue(&pki, "ctw-bad").await;
    pki.svc.crl("line7", false).await.unwrap();
    pki.svc
        .revoke("line7", &bad.serial, RevocationReason::KeyCompromise)
        .await
        .unwrap();
    let full = pki.svc.crl("line7", false).await.unwrap();
    let delta = pki.svc.crl("line7", true).await.unwrap();
    let root = pki.write_pem("root.pem", &pki.root_der);
    let inter = pki.write_pem("inter.pem", &pki.inter_der);
    let crl = pki.write("full.crl", &full.der);
    let dcrl = pki.write("delta.crl", &delta.der);
    let goodp = pki.write("good.pem", good.to_pem().as_bytes());
    let badp = pki.write("bad.pem", bad.to_pem().as_bytes());
    if let Some(o) = require(Openssl) {
        let text = o
            .run_ok(["crl", "-inform", "DER", "-in", &s(&crl), "-noout", "-text"])
            .unwrap()
            .stdout_str();
        assert!(text.contains(&bad.serial.to_hex().to_uppercase()), "{text}");
        assert!(text.contains("Key Compromise"), "{text}");
        assert!(text.contains("Freshest CRL"), "{text}");
        let dtext = o
            .run_ok(["crl", "-inform", "DER", "-in", &s(&dcrl), "-noout", "-text"])
            .unwrap()
            .stdout_str();
        assert!(dtext.contains("Delta CRL Indicator"), "{dtext}");
        // AKI = the issuer's SKI (not the root's).
        let ski = o
            .run_ok([
                "x509",
                "-in",
                &s(&inter),
                "-noout",
                "-ext",
                "subjectKeyIdentifier",
            ])
            .unwrap()
            .stdout_str();
        let ski = ski.lines().nth(1).unwrap().trim().to_owned();
        assert!(text.contains(&ski), "CRL AKI must be {ski}: {text}");
        for c in [&full.der, &delta.der] {
            assert_eq!(
                sm2sigcheck(&o, c, SignerKey::Certificate(&pki.inter_der)).unwrap(),
                Verdict::Verified
            );
        }
    }
    if let Some(t) = require(Tongsuo) {
        let crl_pem = pki.write(
            "full.crl.pem",
            smtrust_ca::crl::to_pem(&full.der).as_bytes(),
        );
        let ok = t
            .run([
                "verify",
                "-crl_check",
                "-CAfile",
                &s(&root),
                "-untrusted",
                &s(&inter),
                "-CRLfile",
                &s(&crl_pem),
                &s(&goodp),
            ])
            .unwrap();
        assert!(ok.success(), "{}", ok.combined());
        let rev = t
            .run([
                "verify",
                "-crl_check",
                "-CAfile",
                &s(&root),
                "-untrusted",
                &s(&inter),
                "-CRLfile",
                &s(&crl_pem),
                &s(&badp),
            ])
            .unwrap();
        assert!(
            !rev.success() && rev.combined().contains("revoked"),
            "{}",
            rev.combined()
        );
        let v = t
            .run([
                "crl",
                "-inform",
                "DER",
                "-in",
                &s(&crl),
                "-CAfile",
                &s(&inter),
                "-noout",
                "-verify",
            ])
            .unwrap();
        assert!(v.combined().contains("verify OK"), "{}", v.combined());
    }
    if let Some(g) = require(Gmssl) {
        let out = g
            .run(["crlverify", "-in", &s(&crl), "-cacert", &s(&inter)])
            .unwrap();
        assert!(out.success(), "gmssl crlverify: {}", out.combined());
    }
}
