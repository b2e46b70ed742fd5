//! OpenSSL and Tongsuo against the EST server.

use std::sync::Arc;

use smtrust_ca::IssueRequest;
use smtrust_crypto::sm2::{Sm2SecretKey, Tls13Id};
use smtrust_test_support::{ClientConfig, Openssl, Tongsuo, require, tongsuo_client};
use smtrust_tls::{ClientAuth, Credentials, Resumption};

use super::fixture::{make_csr, s};
use super::{basic, call, est, get, post, token};

/// `openssl base64 -d | openssl pkcs7 -inform DER -print_certs` on a base64 body.
fn print_certs(
    openssl: &smtrust_test_support::Tool,
    pki: &super::fixture::Pki,
    name: &str,
    body: &[u8],
) -> String {
    let b64 = pki.write(&format!("{name}.b64"), body);
    let der = pki.path(&format!("{name}.der"));
    openssl
        .run_ok(["base64", "-d", "-in", &s(&b64), "-out", &s(&der)])
        .unwrap();
    let out = openssl
        .run_ok(["pkcs7", "-inform", "DER", "-in", &s(&der), "-print_certs"])
        .unwrap();
    out.stdout_str().to_string()
}

#[tokio::test]
async fn openssl_parses_cacerts_and_csrattrs() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let (pki, st) = est().await;
    let (status, h, body) = call(&st, get("cacerts")).await;
    assert_eq!(status, 200);
    assert_eq!(
        h.get("content-type").as_deref(),
        Some("application/pkcs7-mime; smime-type=certs-only")
    );
    assert_eq!(
        h.get("content-transfer-encoding").as_deref(),
        Some("base64")
    );
    let certs = print_certs(&openssl, &pki, "cacerts", &body);
    assert!(certs.contains("smtrust line7 CA"), "{certs}");
    assert!(certs.contains("smtrust test root"), "{certs}");

    let (status, h, body) = call(&st, get("csrattrs")).await;
    assert_eq!(status, 200);
    assert_eq!(
        h.get("content-type").as_deref(),
        Some("application/csrattrs")
    );
    let b64 = pki.write("csrattrs.b64", &body);
    let der = pki.path("csrattrs.der");
    openssl
        .run_ok(["base64", "-d", "-in", &s(&b64), "-out", &s(&der)])
        .unwrap();
    let parsed = openssl
        .run_ok(["asn1parse", "-inform", "DER", "-in", &s(&der)])
        .unwrap();
    let text = parsed.stdout_str().to_string();
    // SM2-with-SM3, id-ecPublicKey with the SM2 curve, serialNumber.
    assert!(
        text.contains("SM2-with-SM3") || text.contains("1.2.156.10197.1.501"),
        "{text}"
    );
    assert!(text.contains("id-ecPublicKey"), "{text}");
    assert!(
        text.contains("SM2") && text.contains("serialNumber"),
        "{text}"
    );
}

#[tokio::test]
async fn openssl_csr_enrolls_and_openssl_parses_the_response() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let (pki, st) = est().await;
    let key = pki.path("dev.key");
    openssl.genpkey_sm2(&key).unwrap();
    let der = openssl
        .req_sm2(&key, "/CN=ctw-ossl-1", smtrust_test_support::GMT_DEFAULT_ID)
        .unwrap();
    let t = token(&st, "ctw-ossl-1").await;
    let (status, h, body) = call(
        &st,
        post("simpleenroll", &der, Some(&basic("ctw-ossl-1", &t))),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        h.get("content-type").as_deref(),
        Some("application/pkcs7-mime; smime-type=certs-only")
    );
    let certs = print_certs(&openssl, &pki, "enroll", &body);
    assert!(certs.contains("ctw-ossl-1"), "{certs}");
    assert!(
        certs.contains("smtrust line7 CA"),
        "issuer printed: {certs}"
    );
    // The issued certificate carries the OpenSSL key: its public key matches the CSR's.
    let leaf = pki.path("leaf.pem");
    std::fs::write(&leaf, certs.as_bytes()).unwrap();
    let cert_pub = openssl
        .run_ok(["x509", "-in", &s(&leaf), "-noout", "-pubkey"])
        .unwrap();
    let key_pub = openssl
        .run_ok(["pkey", "-in", &s(&key), "-pubout"])
        .unwrap();
    assert_eq!(cert_pub.stdout_str(), key_pub.stdout_str());
}

#[test]
fn tongsuo_fetches_cacerts_over_tls13_sm() {
    let Some(tongsuo) = require(Tongsuo) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (pki, st, port, stop) = rt.block_on(async {
        let (pki, st) = est().await;
        let server_key = Sm2SecretKey::generate().unwrap();
        let mut req = IssueRequest::new(make_csr(&server_key, "CN=est.test"), None);
        req.dns_names = vec!["est.test".into()];
        let cert = pki.svc.issue("line7", "server", req).await.unwrap();
        let creds = Credentials::new(
            Arc::new(server_key.signing_key(Tls13Id).unwrap()),
            vec![cert.der.into(), pki.inter_der.clone().into()],
        )
        .unwrap();
        let tls = smtrust_tls::server_config(&creds, ClientAuth::None, Resumption::Off).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(smtrust_tls::serve::serve(
            listener,
            Arc::new(tls),
            smtrust_ca::est::router(st.clone()),
            async move {
                let _ = stopped.await;
            },
        ));
        (pki, st, port, stop)
    });
    let root = pki.write_pem("root.pem", &pki.root_der);
    let mut cfg = ClientConfig::new(&root);
    cfg.extra = vec!["-servername".into(), "est.test".into(), "-ign_eof".into()];
    let out = tongsuo_client(
        &tongsuo,
        port,
        &cfg,
        b"GET /.well-known/est/cacerts HTTP/1.1\r\nHost: est.test\r\nConnection: close\r\n\r\n",
        std::time::Duration::from_secs(2),
    )
    .unwrap();
    let text = out.combined();
    assert!(text.contains("TLS_SM4_GCM_SM3"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    assert!(text.contains("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: application/pkcs7-mime; smime-type=certs-only"),
        "{text}"
    );
    let _ = stop.send(());
    drop(st);
}
