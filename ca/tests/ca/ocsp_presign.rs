//! OCSP answers signed off the request path: pre-signed at issuance and on status changes by the worker
//! (`CaService::spawn_ocsp`), re-signed before their refresh point while clients keep asking, kept in a bounded
//! cache; a nonce is signed per request. The responder's counters (`CaService::ocsp_stats`) say which
//! signatures were made where.

use std::time::{Duration, Instant};

use der::asn1::{Int, OctetString};
use der::{Decode, Encode};
use sha1::Digest;
use smtrust_ca::ocsp::OcspStats;
use smtrust_ca::ocsp::asn1::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request,
    TbsRequest,
};
use smtrust_ca::{IssueRequest, IssuedCert, Responder, RevocationReason, Serial, SqlStore};
use smtrust_test_support::{Openssl, Postgres, SignerKey, Verdict, require, sm2sigcheck};
use x509_cert::ext::Extension;

use crate::fixture::{Pki, make_csr, pki, pki_with, s, signer};

fn tag() -> String {
    hex::encode(smtrust_crypto::rng::bytes::<6>().unwrap())
}

fn cert_id(issuer_der: &[u8], serial: &Serial) -> CertId {
    let issuer = x509_cert::Certificate::from_der(issuer_der).unwrap();
    let tbs = issuer.tbs_certificate();
    let name = tbs.subject().to_der().unwrap();
    let key = tbs.subject_public_key_info().subject_public_key.raw_bytes();
    CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ID_SHA_1,
            parameters: Some(der::asn1::Null.into()),
        },
        issuer_name_hash: OctetString::new(sha1::Sha1::digest(&name).to_vec()).unwrap(),
        issuer_key_hash: OctetString::new(sha1::Sha1::digest(key).to_vec()).unwrap(),
        serial_number: Int::new(serial.as_bytes()).unwrap(),
    }
}

fn request(pki: &Pki, serial: &Serial, nonce: Option<&[u8]>) -> Vec<u8> {
    request_for(cert_id(&pki.inter_der, serial), nonce)
}

fn request_for(id: CertId, nonce: Option<&[u8]>) -> Vec<u8> {
    let request_extensions = nonce.map(|n| {
        vec![Extension {
            extn_id: smtrust_ca::ocsp::OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(OctetString::new(n.to_vec()).unwrap().to_der().unwrap())
                .unwrap(),
        }]
    });
    OcspRequest {
        tbs_request: TbsRequest {
            version: None,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: id,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    }
    .to_der()
    .unwrap()
}

/// The status the response gives, after checking it names `serial` and its signature verifies with the
/// delegated signer's key (GM/T default ID).
fn status_of(pki: &Pki, resp: &[u8], serial: &Serial) -> CertStatus {
    let r = OcspResponse::from_der(resp).unwrap();
    assert_eq!(r.response_status, OcspResponseStatus::Successful);
    let basic = BasicOcspResponse::from_der(r.response_bytes.unwrap().response.as_bytes()).unwrap();
    let tbs = basic.tbs_response_data.to_der().unwrap();
    let signer = x509_cert::Certificate::from_der(&pki.ocsp_der).unwrap();
    let spki = signer
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap();
    let pk = smtrust_crypto::x509::public_key_from_spki_der(&spki).unwrap();
    pk.verifying_key(smtrust_crypto::sm2::CertId)
        .unwrap()
        .verify_der(&tbs, basic.signature.raw_bytes())
        .expect("response signature verifies");
    let single = &basic.tbs_response_data.responses[0];
    assert_eq!(single.cert_id.serial_number.as_bytes(), serial.as_bytes());
    single.cert_status.clone()
}

async fn issue(pki: &Pki, id: &str) -> IssuedCert {
    let (_, k) = signer();
    pki.svc
        .issue(
            "line7",
            "device",
            IssueRequest::new(make_csr(&k, &format!("CN={id}")), None),
        )
        .await
        .unwrap()
}

/// Wait until the counters satisfy `f` (the worker runs in the background).
async fn until(pki: &Pki, what: &str, f: impl Fn(&OcspStats) -> bool) -> OcspStats {
    let start = Instant::now();
    loop {
        let st = pki.svc.ocsp_stats("line7").unwrap();
        if f(&st) {
            return st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what}: counters {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until the answer about `serial` (SHA-1 CertID) is cached: after issuance or a status change, that
/// means the worker signed it (a change drops the old answer before the call that made it returns).
async fn until_cached(pki: &Pki, serial: &Serial, what: &str) {
    let start = Instant::now();
    let r = pki.svc.ocsp_responder("line7").unwrap();
    while !r.is_cached(serial, smtrust_ca::ocsp::CertIdHash::Sha1) {
        assert!(start.elapsed() < Duration::from_secs(20), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Replace line7's responder with one of `validity` and `entries` (a fresh delegated signer).
async fn responder(pki: &mut Pki, validity: Duration, entries: usize) {
    let (key, sk) = signer();
    let cert = pki
        .svc
        .issue(
            "line7",
            "ocsp",
            IssueRequest::new(make_csr(&sk, "CN=line7 OCSP responder 2"), None),
        )
        .await
        .unwrap();
    let inter = pki.svc.issuer("line7").unwrap();
    pki.svc.set_responder(
        Responder::new(&inter, &cert.der, key, validity)
            .unwrap()
            .with_cache_entries(entries),
    );
    pki.ocsp_der = cert.der;
}

async fn issue_then_revoke_is_answered_from_the_cache(pki: &Pki) {
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let worker = pki.svc.spawn_ocsp(stop_rx);
    let t = tag();
    let c = issue(pki, &format!("ctw-{t}-a")).await;
    until_cached(pki, &c.serial, "pre-signed after issue").await;
    let req = request(pki, &c.serial, None);
    let resp = pki.svc.ocsp("line7", &req).await.unwrap();
    assert!(matches!(
        status_of(pki, &resp, &c.serial),
        CertStatus::Good(_)
    ));
    let st = pki.svc.ocsp_stats("line7").unwrap();
    assert_eq!(st.signed_on_miss, 0, "first request signed: {st:?}");
    assert_eq!(st.hits, 1);

    pki.svc
        .revoke("line7", &c.serial, RevocationReason::KeyCompromise)
        .await
        .unwrap();
    until_cached(pki, &c.serial, "re-signed after revoke").await;
    let resp = pki.svc.ocsp("line7", &req).await.unwrap();
    match status_of(pki, &resp, &c.serial) {
        CertStatus::Revoked(info) => assert_eq!(
            info.revocation_reason,
            Some(x509_cert::ext::pkix::CrlReason::KeyCompromise)
        ),
        other => panic!("expected revoked, got {other:?}"),
    }
    let st = pki.svc.ocsp_stats("line7").unwrap();
    assert_eq!(
        st.signed_on_miss, 0,
        "revoked answer signed on request: {st:?}"
    );
    assert_eq!(st.hits, 2);

    // Suspend and resume a second certificate: each change re-signed by the worker.
    let d = issue(pki, &format!("ctw-{t}-b")).await;
    until_cached(pki, &d.serial, "pre-signed b").await;
    pki.svc.suspend("line7", &d.serial).await.unwrap();
    until_cached(pki, &d.serial, "re-signed after suspend").await;
    let req_d = request(pki, &d.serial, None);
    let resp = pki.svc.ocsp("line7", &req_d).await.unwrap();
    match status_of(pki, &resp, &d.serial) {
        CertStatus::Revoked(info) => assert_eq!(
            info.revocation_reason,
            Some(x509_cert::ext::pkix::CrlReason::CertificateHold)
        ),
        other => panic!("expected on hold, got {other:?}"),
    }
    pki.svc.resume("line7", &d.serial).await.unwrap();
    until_cached(pki, &d.serial, "re-signed after resume").await;
    let resp = pki.svc.ocsp("line7", &req_d).await.unwrap();
    assert!(matches!(
        status_of(pki, &resp, &d.serial),
        CertStatus::Good(_)
    ));
    assert_eq!(pki.svc.ocsp_stats("line7").unwrap().signed_on_miss, 0);

    // A nonce cannot be answered ahead of time: signed per request, nonce echoed.
    let nonce = smtrust_crypto::rng::bytes::<16>().unwrap();
    let resp = pki
        .svc
        .ocsp("line7", &request(pki, &c.serial, Some(&nonce)))
        .await
        .unwrap();
    assert!(matches!(
        status_of(pki, &resp, &c.serial),
        CertStatus::Revoked(_)
    ));
    assert!(
        resp.windows(nonce.len()).any(|w| w == nonce),
        "nonce echoed"
    );
    assert_eq!(pki.svc.ocsp_stats("line7").unwrap().signed_per_request, 1);

    // Stop: the worker ends, and nothing is queued any more (a new certificate's first answer is a miss).
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .expect("worker stops")
        .unwrap();
    let before = pki.svc.ocsp_stats("line7").unwrap();
    let e = issue(pki, &format!("ctw-{t}-c")).await;
    let resp = pki
        .svc
        .ocsp("line7", &request(pki, &e.serial, None))
        .await
        .unwrap();
    assert!(matches!(
        status_of(pki, &resp, &e.serial),
        CertStatus::Good(_)
    ));
    let after = pki.svc.ocsp_stats("line7").unwrap();
    assert_eq!(after.presigned, before.presigned);
    assert_eq!(after.signed_on_miss, before.signed_on_miss + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_revoke_suspend_resume_are_pre_signed_on_sqlite() {
    issue_then_revoke_is_answered_from_the_cache(&pki().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_revoke_suspend_resume_are_pre_signed_on_postgres() {
    let Some(url) = require(Postgres) else { return };
    let store = SqlStore::open_postgres(&url.0, 4).await.unwrap();
    issue_then_revoke_is_answered_from_the_cache(&pki_with(store, "http://127.0.0.1:1").await)
        .await;
}

/// A CertID whose hash AlgorithmIdentifier omits the NULL parameters is echoed as sent (signed per request),
/// not answered with the pre-signed response, whose CertID carries NULL as OpenSSL writes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cert_id_without_null_parameters_is_echoed_as_sent() {
    let pki = pki().await;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let worker = pki.svc.spawn_ocsp(stop_rx);
    let c = issue(&pki, &format!("ctw-{}-p", tag())).await;
    until_cached(&pki, &c.serial, "pre-signed after issue").await;
    let mut id = cert_id(&pki.inter_der, &c.serial);
    id.hash_algorithm.parameters = None;
    let resp = pki
        .svc
        .ocsp("line7", &request_for(id.clone(), None))
        .await
        .unwrap();
    assert!(matches!(
        status_of(&pki, &resp, &c.serial),
        CertStatus::Good(_)
    ));
    let r = OcspResponse::from_der(&resp).unwrap();
    let basic = BasicOcspResponse::from_der(r.response_bytes.unwrap().response.as_bytes()).unwrap();
    assert_eq!(basic.tbs_response_data.responses[0].cert_id, id);
    stop.send(true).unwrap();
    worker.await.unwrap();
}

/// A revocation committed by another process on the same database (here: straight through the store, so this
/// service publishes nothing) reaches the cached answer within the worker's poll of the store (5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_by_another_process_is_re_signed_within_the_poll() {
    use smtrust_ca::{RevocationKind, Store as _};
    let pki = pki().await;
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let _worker = pki.svc.spawn_ocsp(stop_rx);
    let c = issue(&pki, &format!("ctw-{}-x", tag())).await;
    until_cached(&pki, &c.serial, "pre-signed").await;
    let req = request(&pki, &c.serial, None);
    let r = pki.svc.ocsp("line7", &req).await.unwrap();
    assert!(matches!(
        status_of(&pki, &r, &c.serial),
        CertStatus::Good(_)
    ));
    let at = crate::fixture::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    pki.svc
        .store()
        .change_status(
            "line7",
            &c.serial,
            RevocationKind::Revoked {
                reason: RevocationReason::KeyCompromise,
            },
            at,
        )
        .await
        .unwrap();
    let started = Instant::now();
    until(&pki, "re-signed after the poll", |s| s.presigned >= 2).await;
    assert!(started.elapsed() < Duration::from_secs(8));
    let r = pki.svc.ocsp("line7", &req).await.unwrap();
    assert!(matches!(
        status_of(&pki, &r, &c.serial),
        CertStatus::Revoked(_)
    ));
    let st = pki.svc.ocsp_stats("line7").unwrap();
    assert_eq!(st.signed_on_miss, 0, "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresher_re_signs_hot_entries_before_their_refresh_point() {
    let mut pki = pki().await;
    // 4 s validity: refresh point at 2 s, served until 3 s, refresher tick 250 ms.
    responder(&mut pki, Duration::from_secs(4), 1024).await;
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let _worker = pki.svc.spawn_ocsp(stop_rx);
    let t = tag();
    let hot = issue(&pki, &format!("ctw-{t}-hot")).await;
    let idle = issue(&pki, &format!("ctw-{t}-idle")).await;
    until_cached(&pki, &hot.serial, "hot pre-signed").await;
    until_cached(&pki, &idle.serial, "idle pre-signed").await;
    let req = request(&pki, &hot.serial, None);
    let first = pki.svc.ocsp("line7", &req).await.unwrap();
    // Ask every 200 ms for 7 s (well past nextUpdate of the first answer): every answer is a hit.
    let start = Instant::now();
    let mut answers = vec![first];
    while start.elapsed() < Duration::from_secs(7) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = pki.svc.ocsp("line7", &req).await.unwrap();
        assert!(matches!(
            status_of(&pki, &r, &hot.serial),
            CertStatus::Good(_)
        ));
        answers.push(r);
    }
    let st = pki.svc.ocsp_stats("line7").unwrap();
    assert_eq!(
        st.signed_on_miss, 0,
        "a hot entry expired into a request-path signing: {st:?}"
    );
    assert!(st.refreshed >= 3, "re-signed each ~2 s: {st:?}");
    answers.dedup();
    assert!(
        answers.len() >= 3,
        "the served answer changed with each refresh"
    );
    // The idle entry was dropped at its refresh point instead of re-signed.
    assert_eq!(st.cached, 1, "{st:?}");
    let r = pki
        .svc
        .ocsp("line7", &request(&pki, &idle.serial, None))
        .await
        .unwrap();
    assert!(matches!(
        status_of(&pki, &r, &idle.serial),
        CertStatus::Good(_)
    ));
    assert_eq!(pki.svc.ocsp_stats("line7").unwrap().signed_on_miss, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_bound_holds_and_evicted_serials_are_answered_correctly() {
    let mut pki = pki().await;
    responder(&mut pki, smtrust_ca::ocsp::DEFAULT_VALIDITY, 64).await;
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let _worker = pki.svc.spawn_ocsp(stop_rx);
    let t = tag();
    let reqs = (0..300)
        .map(|i| {
            let (_, k) = signer();
            IssueRequest::new(make_csr(&k, &format!("CN=ctw-{t}-{i}")), None)
        })
        .collect();
    let certs: Vec<IssuedCert> = pki
        .svc
        .issue_batch("line7", "device", reqs)
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    until(&pki, "issued pre-signed", |s| s.presigned >= 300).await;
    let revoked: Vec<&IssuedCert> = certs.iter().step_by(3).collect();
    for c in &revoked {
        pki.svc
            .revoke("line7", &c.serial, RevocationReason::Superseded)
            .await
            .unwrap();
    }
    until(&pki, "all pre-signed", |s| s.presigned >= 400).await;
    let st = pki.svc.ocsp_stats("line7").unwrap();
    assert_eq!(st.capacity, 64);
    assert!(st.cached <= st.capacity, "{st:?}");
    assert!(st.evictions > 0, "{st:?}");
    // Twice over every serial: evicted ones are signed on the request path, and every answer is right.
    for _ in 0..2 {
        for (i, c) in certs.iter().enumerate() {
            let r = pki
                .svc
                .ocsp("line7", &request(&pki, &c.serial, None))
                .await
                .unwrap();
            let st = status_of(&pki, &r, &c.serial);
            if i % 3 == 0 {
                assert!(matches!(st, CertStatus::Revoked(_)), "{i}: {st:?}");
            } else {
                assert!(matches!(st, CertStatus::Good(_)), "{i}: {st:?}");
            }
        }
        let st = pki.svc.ocsp_stats("line7").unwrap();
        assert!(st.cached <= st.capacity, "{st:?}");
    }
    let st = pki.svc.ocsp_stats("line7").unwrap();
    assert!(st.signed_on_miss > 0 && st.hits > 0, "{st:?}");
}

/// A pre-signed answer is what `openssl ocsp` expects: over HTTP (`-url`, no nonce) it reports good, then
/// revoked after `revoke`, without a signature on the request path; OpenSSL finds the certificate's CertID in
/// the answer, and the signature verifies with the GM/T ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_ocsp_url_gets_pre_signed_good_then_revoked() {
    let Some(o) = require(Openssl) else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let pki = pki_with(SqlStore::open_sqlite_memory().await.unwrap(), &base).await;
    let app = smtrust_ca::http::ocsp_router(pki.svc.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let _worker = pki.svc.spawn_ocsp(stop_rx);
    let c = issue(&pki, &format!("ctw-{}-o", tag())).await;
    until_cached(&pki, &c.serial, "pre-signed").await;
    let inter = pki.write_pem("inter.pem", &pki.inter_der);
    let certp = pki.write("c.pem", c.to_pem().as_bytes());
    let respp = pki.path("resp.der");
    let ask = |o: smtrust_test_support::Tool| {
        let (url, inter, certp, respp) = (
            format!("{base}/ocsp/line7"),
            inter.clone(),
            certp.clone(),
            respp.clone(),
        );
        tokio::task::spawn_blocking(move || {
            // -noverify: stock OpenSSL verifies SM2 with the empty ID; the signature is checked below instead.
            o.run_ok([
                "ocsp",
                "-url",
                &url,
                "-issuer",
                &s(&inter),
                "-cert",
                &s(&certp),
                "-no_nonce",
                "-noverify",
                "-respout",
                &s(&respp),
            ])
            .unwrap()
            .combined()
        })
    };
    let text = ask(o.clone()).await.unwrap();
    assert!(text.contains("c.pem: good"), "{text}");
    let resp = std::fs::read(&respp).unwrap();
    assert_eq!(
        sm2sigcheck(&o, &resp, SignerKey::Certificate(&pki.ocsp_der)).unwrap(),
        Verdict::Verified
    );
    pki.svc
        .revoke("line7", &c.serial, RevocationReason::KeyCompromise)
        .await
        .unwrap();
    until_cached(&pki, &c.serial, "re-signed after revoke").await;
    let text = ask(o.clone()).await.unwrap();
    assert!(text.contains("c.pem: revoked"), "{text}");
    let st = pki.svc.ocsp_stats("line7").unwrap();
    assert_eq!(st.signed_on_miss + st.signed_per_request, 0, "{st:?}");
    assert_eq!(st.hits, 2, "{st:?}");
}
