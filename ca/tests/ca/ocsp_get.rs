//! OCSP over HTTP GET (RFC 6960 Appendix A.1: base64, URL-encoded, in the path) with SHA-1 and SM3 CertIDs
//! made by `openssl ocsp`, answered good / revoked / unknown.

use base64::Engine as _;
use smtrust_ca::{IssueRequest, RevocationReason};
use smtrust_test_support::{Openssl, require};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixture::{make_csr, pki_with, s, signer};

async fn http_get(port: u16, path: &str) -> Vec<u8> {
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    c.write_all(req.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all).await.unwrap();
    let at = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&all[..at]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("application/ocsp-response"), "{head}");
    all[at + 4..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_requests_with_sha1_and_sm3_cert_ids_report_good_revoked_unknown() {
    let Some(o) = require(Openssl) else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let pki = pki_with(
        smtrust_ca::SqlStore::open_sqlite_memory().await.unwrap(),
        &format!("http://127.0.0.1:{port}"),
    )
    .await;
    let app = smtrust_ca::http::ocsp_router(pki.svc.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (_, k1) = signer();
    let (_, k2) = signer();
    let good = pki
        .svc
        .issue(
            "line7",
            "device",
            IssueRequest::new(make_csr(&k1, "CN=ctw-g1"), None),
        )
        .await
        .unwrap();
    let bad = pki
        .svc
        .issue(
            "line7",
            "device",
            IssueRequest::new(make_csr(&k2, "CN=ctw-b1"), None),
        )
        .await
        .unwrap();
    pki.svc
        .revoke("line7", &bad.serial, RevocationReason::Superseded)
        .await
        .unwrap();
    let inter = pki.write_pem("inter.pem", &pki.inter_der);
    let goodp = pki.write("good.pem", good.to_pem().as_bytes());
    let badp = pki.write("bad.pem", bad.to_pem().as_bytes());
    for digest in ["-sha1", "-sm3"] {
        let reqp = pki.path(&format!("req{digest}.der"));
        // The digest option applies to the -cert/-serial options after it.
        o.run_ok([
            "ocsp",
            digest,
            "-issuer",
            &s(&inter),
            "-cert",
            &s(&goodp),
            "-cert",
            &s(&badp),
            "-serial",
            "0x11223344556677889900aabbccddeeff",
            "-no_nonce",
            "-reqout",
            &s(&reqp),
        ])
        .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&reqp).unwrap());
        let enc = b64
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let body = http_get(port, &format!("/ocsp/line7/{enc}")).await;
        let respp = pki.write(&format!("resp{digest}.der"), &body);
        let text = o
            .run_ok(["ocsp", "-respin", &s(&respp), "-resp_text", "-noverify"])
            .unwrap()
            .stdout_str();
        let statuses: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Cert Status: "))
            .collect();
        assert_eq!(statuses, ["good", "revoked", "unknown"], "{digest}: {text}");
        let alg = if digest == "-sm3" { "sm3" } else { "sha1" };
        assert!(
            text.contains(&format!("Hash Algorithm: {alg}")),
            "{digest}: CertID echoed with {alg}: {text}"
        );
    }
}
