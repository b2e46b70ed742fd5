//! OCSP: responses parsed by OpenSSL, signatures checked with the GM/T ID, and the running axum responder
//! queried by `openssl ocsp -url`.

use smtrust_ca::{IssueRequest, RevocationReason};
use smtrust_test_support::{Openssl, SignerKey, Verdict, require, sm2sigcheck};

use crate::fixture::{make_csr, pki_with, s, signer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_ocsp_url_reports_good_and_revoked_and_signatures_verify() {
    let Some(o) = require(Openssl) else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let pki = pki_with(
        smtrust_ca::SqlStore::open_sqlite_memory().await.unwrap(),
        &base,
    )
    .await;
    let app = smtrust_ca::http::ocsp_router(pki.svc.clone())
        .merge(smtrust_ca::http::crl_router(pki.svc.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (_, k1) = signer();
    let (_, k2) = signer();
    let good = pki
        .svc
        .issue(
            "line7",
            "device",
            IssueRequest::new(make_csr(&k1, "CN=ctw-ok"), None),
        )
        .await
        .unwrap();
    let bad = pki
        .svc
        .issue(
            "line7",
            "device",
            IssueRequest::new(make_csr(&k2, "CN=ctw-ko"), None),
        )
        .await
        .unwrap();
    pki.svc
        .revoke("line7", &bad.serial, RevocationReason::KeyCompromise)
        .await
        .unwrap();
    let inter = pki.write_pem("inter.pem", &pki.inter_der);
    let goodp = pki.write("good.pem", good.to_pem().as_bytes());
    let badp = pki.write("bad.pem", bad.to_pem().as_bytes());
    let url = format!("{base}/ocsp/line7");
    let o2 = o.clone();
    let (inter2, goodp2, badp2, dir) = (
        inter.clone(),
        goodp.clone(),
        badp.clone(),
        pki.path("resp.der"),
    );
    let out = tokio::task::spawn_blocking(move || {
        // -noverify: stock OpenSSL verifies SM2 with the empty ID; the signature is checked below instead.
        o2.run([
            "ocsp",
            "-url",
            &url,
            "-issuer",
            &s(&inter2),
            "-cert",
            &s(&goodp2),
            "-cert",
            &s(&badp2),
            "-noverify",
            "-respout",
            &s(&dir),
            "-resp_text",
        ])
        .unwrap()
    })
    .await
    .unwrap();
    let text = out.combined();
    assert!(out.success(), "{text}");
    assert!(text.contains("good.pem: good"), "{text}");
    assert!(text.contains("bad.pem: revoked"), "{text}");
    assert!(
        text.contains("Key Compromise") || text.contains("keyCompromise"),
        "{text}"
    );
    assert!(text.contains("OCSP Nonce"), "nonce echoed: {text}");
    let resp = std::fs::read(pki.path("resp.der")).unwrap();
    assert_eq!(
        sm2sigcheck(&o, &resp, SignerKey::Certificate(&pki.ocsp_der)).unwrap(),
        Verdict::Verified
    );
    // Without a nonce the response is pre-signed and cached: two GETs return identical bytes.
    let (o3, inter3, goodp3) = (o.clone(), inter.clone(), goodp.clone());
    let reqp = pki.path("req.der");
    let req2 = reqp.clone();
    tokio::task::spawn_blocking(move || {
        o3.run_ok([
            "ocsp",
            "-issuer",
            &s(&inter3),
            "-cert",
            &s(&goodp3),
            "-no_nonce",
            "-reqout",
            &s(&req2),
        ])
        .unwrap();
    })
    .await
    .unwrap();
    let req = std::fs::read(&reqp).unwrap();
    let a = pki.svc.ocsp("line7", &req).await.unwrap();
    let b = pki.svc.ocsp("line7", &req).await.unwrap();
    assert_eq!(a, b);
    // The unsigned error for garbage.
    let e = pki.svc.ocsp("line7", b"garbage").await.unwrap();
    assert_eq!(e.as_slice(), &[0x30, 0x03, 0x0a, 0x01, 0x01]);
}
