//! Every EST refusal: the right HTTP status, a clear message, nothing issued.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use smtrust_ca::est::{MAX_BODY, RateLimit};
use smtrust_crypto::sm2::Sm2SecretKey;
use smtrust_test_support::{Openssl, require};
use smtrust_tls::serve::Peer;

use super::fixture::{make_csr, s};
use super::{basic, call, est, est_with, get, issued, leaf_of, post, token};

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

#[tokio::test]
async fn bad_bodies_are_refused_and_nothing_is_issued() {
    let (pki, st) = est().await;
    let before = issued(&pki).await;
    let sk = Sm2SecretKey::generate().unwrap();
    let csr = make_csr(&sk, "CN=ctw-r1");
    let t = token(&st, "ctw-r1").await;
    let auth = basic("ctw-r1", &t);

    // Wrong content type: 415.
    let req = Request::post("/.well-known/est/simpleenroll")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, &auth)
        .body(Body::from(smtrust_ca::est::encode_base64(&csr)))
        .unwrap();
    let (status, _, body) = call(&st, req).await;
    assert_eq!(status, 415, "{}", text(&body));
    assert!(
        text(&body).contains("application/pkcs10"),
        "{}",
        text(&body)
    );

    // Transfer encoding other than base64: 400.
    let req = Request::post("/.well-known/est/simpleenroll")
        .header(header::CONTENT_TYPE, "application/pkcs10")
        .header("content-transfer-encoding", "binary")
        .header(header::AUTHORIZATION, &auth)
        .body(Body::from(csr.clone()))
        .unwrap();
    let (status, _, body) = call(&st, req).await;
    assert_eq!(status, 400);
    assert!(text(&body).contains("base64"), "{}", text(&body));

    // Bad base64: 400.
    let req = Request::post("/.well-known/est/simpleenroll")
        .header(header::CONTENT_TYPE, "application/pkcs10")
        .header(header::AUTHORIZATION, &auth)
        .body(Body::from("not*base64!"))
        .unwrap();
    let (status, _, body) = call(&st, req).await;
    assert_eq!(status, 400);
    assert!(text(&body).contains("not base64"), "{}", text(&body));

    // Oversized body: 413.
    let req = Request::post("/.well-known/est/simpleenroll")
        .header(header::CONTENT_TYPE, "application/pkcs10")
        .header(header::AUTHORIZATION, &auth)
        .body(Body::from(vec![b'A'; MAX_BODY + 1]))
        .unwrap();
    let (status, _, body) = call(&st, req).await;
    assert_eq!(status, 413, "{}", text(&body));

    // Base64 of garbage (not a CSR): 400.
    let (status, _, body) = call(
        &st,
        post("simpleenroll", b"\x30\x03\x02\x01\x00", Some(&auth)),
    )
    .await;
    assert_eq!(status, 400, "{}", text(&body));

    // A CSR for another device than the token's: 403.
    let other = make_csr(&sk, "CN=ctw-someone-else");
    let (status, _, body) = call(&st, post("simpleenroll", &other, Some(&auth))).await;
    assert_eq!(status, 403, "{}", text(&body));
    assert!(text(&body).contains("ctw-someone-else"), "{}", text(&body));

    // A wrong token: 401.
    let (status, h, body) = call(
        &st,
        post("simpleenroll", &csr, Some(&basic("ctw-r1", "guess"))),
    )
    .await;
    assert_eq!(status, 401);
    assert!(h.get("www-authenticate").is_some());
    assert!(text(&body).contains("does not match"), "{}", text(&body));

    // No authentication at all: 401 with a challenge.
    let (status, h, body) = call(&st, post("simpleenroll", &csr, None)).await;
    assert_eq!(status, 401);
    assert_eq!(
        h.get("www-authenticate").as_deref(),
        Some("Basic realm=\"smtrust EST\"")
    );
    assert!(
        text(&body).contains("authentication required"),
        "{}",
        text(&body)
    );

    assert_eq!(
        issued(&pki).await,
        before,
        "nothing issued by a refused request"
    );

    // The refusals above did not burn the token: the right request now succeeds, once.
    let (status, _, body) = call(&st, post("simpleenroll", &csr, Some(&auth))).await;
    assert_eq!(status, 200, "{}", text(&body));
    assert_eq!(issued(&pki).await, before + 1);
    // Replayed token: 401, nothing issued.
    let sk2 = Sm2SecretKey::generate().unwrap();
    let (status, _, body) = call(
        &st,
        post("simpleenroll", &make_csr(&sk2, "CN=ctw-r1"), Some(&auth)),
    )
    .await;
    assert_eq!(status, 401);
    assert!(text(&body).contains("already used"), "{}", text(&body));
    assert_eq!(issued(&pki).await, before + 1);
}

#[tokio::test]
async fn non_sm2_csr_is_refused() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let (pki, st) = est().await;
    let before = issued(&pki).await;
    let key = pki.path("p256.key");
    let csr = pki.path("p256.csr");
    openssl
        .run_ok([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &s(&key),
            "-subj",
            "/CN=ctw-p256",
            "-outform",
            "DER",
            "-out",
            &s(&csr),
        ])
        .unwrap();
    let t = token(&st, "ctw-p256").await;
    let der = std::fs::read(&csr).unwrap();
    let (status, _, body) = call(
        &st,
        post("simpleenroll", &der, Some(&basic("ctw-p256", &t))),
    )
    .await;
    assert_eq!(status, 400, "{}", text(&body));
    assert!(text(&body).contains("not SM2-with-SM3"), "{}", text(&body));
    assert_eq!(issued(&pki).await, before);
}

#[tokio::test]
async fn routes_methods_reenroll_and_rate_limit() {
    let (pki, st) = est_with(RateLimit::new(2, Duration::from_secs(3600))).await;
    let before = issued(&pki).await;
    let (status, _, _) = call(&st, get("nonsense")).await;
    assert_eq!(status, 404);
    let req = Request::get("/.well-known/est/unknown-ca/cacerts")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = call(&st, req).await;
    assert_eq!(status, 404);
    assert!(text(&body).contains("unknown-ca"));
    let (status, h, _) = call(&st, get("simpleenroll")).await;
    assert_eq!(status, 405);
    assert_eq!(h.get("allow").as_deref(), Some("POST"));
    // The labelled form serves the same CA.
    let req = Request::get("/.well-known/est/line7/cacerts")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&st, req).await.0, 200);

    let sk = Sm2SecretKey::generate().unwrap();
    let csr = make_csr(&sk, "CN=ctw-rl");
    // Re-enrollment without a client certificate: 403.
    let (status, _, body) = call(&st, post("simplereenroll", &csr, None)).await;
    assert_eq!(status, 403);
    assert!(
        text(&body).contains("current device certificate"),
        "{}",
        text(&body)
    );

    // A device certificate on simpleenroll: told to use simplereenroll.
    let t = token(&st, "ctw-rl").await;
    let (status, _, body) = call(&st, post("simpleenroll", &csr, Some(&basic("ctw-rl", &t)))).await;
    assert_eq!(status, 200, "{}", text(&body));
    let cert = leaf_of(&body);
    let mut req = post("simpleenroll", &csr, None);
    req.extensions_mut().insert(Peer::from_leaf(&cert));
    let (status, _, body) = call(&st, req).await;
    assert_eq!(status, 403, "second request of ctw-rl: {}", text(&body));
    // The third is over the burst of 2.
    let (status, h, _) = call(&st, {
        let mut r = post("simplereenroll", &csr, None);
        r.extensions_mut().insert(Peer::from_leaf(&cert));
        r
    })
    .await;
    assert_eq!(status, 429);
    assert!(h.get("retry-after").unwrap().parse::<u64>().unwrap() > 0);
    assert_eq!(issued(&pki).await, before + 1);
}

#[tokio::test]
async fn device_certificate_cannot_simpleenroll() {
    let (_pki, st) = est().await;
    let sk = Sm2SecretKey::generate().unwrap();
    let csr = make_csr(&sk, "CN=ctw-dc");
    let t = token(&st, "ctw-dc").await;
    let (status, _, body) = call(&st, post("simpleenroll", &csr, Some(&basic("ctw-dc", &t)))).await;
    assert_eq!(status, 200);
    let cert = leaf_of(&body);
    let mut req = post("simpleenroll", &csr, None);
    req.extensions_mut().insert(Peer::from_leaf(&cert));
    let (status, _, body) = call(&st, req).await;
    assert_eq!(status, 403);
    assert!(text(&body).contains("simplereenroll"), "{}", text(&body));
    // Re-enrolling for another device ID with this certificate: 403.
    let mut req = post("simplereenroll", &make_csr(&sk, "CN=ctw-other"), None);
    req.extensions_mut().insert(Peer::from_leaf(&cert));
    let (status, _, body) = call(&st, req).await;
    assert_eq!(status, 403, "{}", text(&body));
}

#[tokio::test]
async fn serverkeygen_returns_encrypted_key_and_certificate() {
    let (_pki, st) = est().await;
    let sk = Sm2SecretKey::generate().unwrap();
    let csr = make_csr(&sk, "CN=ctw-kg");
    // Without a token: 401.
    assert_eq!(call(&st, post("serverkeygen", &csr, None)).await.0, 401);
    let t = token(&st, "ctw-kg").await;
    let (status, h, body) = call(&st, post("serverkeygen", &csr, Some(&basic("ctw-kg", &t)))).await;
    assert_eq!(status, 200, "{}", text(&body));
    let ct = h.get("content-type").unwrap();
    assert!(ct.starts_with("multipart/mixed; boundary="), "{ct}");
    let boundary = ct.split("boundary=").nth(1).unwrap().to_owned();
    let body = text(&body);
    let parts: Vec<&str> = body.split(&format!("--{boundary}")).collect();
    assert_eq!(parts.len(), 4, "preamble, key, cert, close: {body}");
    assert!(parts[1].contains("Content-Type: application/pkcs8"));
    assert!(parts[2].contains("Content-Type: application/pkcs7-mime; smime-type=certs-only"));
    assert!(parts[3].starts_with("--"));
    let key_b64 = parts[1].split("\r\n\r\n").nth(1).unwrap();
    let key_der = smtrust_ca::est::decode_base64(key_b64.as_bytes()).unwrap();
    // The key is encrypted under the token, and its public half is the certificate's.
    let key = smtrust_crypto::pkcs8::decrypt_encrypted(&key_der, t.as_bytes()).unwrap();
    assert!(smtrust_crypto::pkcs8::decrypt_encrypted(&key_der, b"wrong").is_err());
    let cms = parts[2].split("\r\n\r\n").nth(1).unwrap();
    let cms_der = smtrust_ca::est::decode_base64(cms.as_bytes()).unwrap();
    let spki = smtrust_crypto::x509::public_key_to_spki_der(key.public_key()).unwrap();
    assert!(
        cms_der.windows(spki.len()).any(|w| w == spki.as_slice()),
        "certificate carries the generated key"
    );
    // Single use here too.
    assert_eq!(
        call(&st, post("serverkeygen", &csr, Some(&basic("ctw-kg", &t))))
            .await
            .0,
        401
    );
}
