//! OCSP of a running `smtrust serve`, asked by `openssl ocsp -url` without a nonce: a certificate issued with
//! `smtrust ca keygen` is answered good; a revocation written into the node's SQLite database by another
//! process (this test, through `smtrust_ca::SqlStore`: the node hears of it only through the store, as nodes
//! sharing a database do) turns the node's answer revoked within its poll of the store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures fail loudly

use std::time::{Duration, Instant};

use smtrust_test_support::cli::{Cli, s};
use smtrust_test_support::{Openssl, Tool, require};

const PASS: &str = "serve ocsp test passphrase";

fn ask(o: &Tool, url: &str, issuer: &std::path::Path, cert: &std::path::Path) -> String {
    // -noverify: stock OpenSSL verifies SM2 with the empty ID (ca/tests check the signatures with the GM/T ID).
    o.run([
        "ocsp",
        "-url",
        url,
        "-issuer",
        s(issuer),
        "-cert",
        s(cert),
        "-no_nonce",
        "-noverify",
    ])
    .unwrap()
    .combined()
}

#[test]
fn openssl_ocsp_url_sees_a_revocation_made_by_another_process() {
    let Some(o) = require(Openssl) else { return };
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(env!("CARGO_BIN_EXE_smtrust"), dir.path().join("data"))
        .env("SMTRUST_PASSPHRASE", PASS)
        .env("SMTRUST_KEY_PASSPHRASE", "device key passphrase");
    cli.run(&["keystore", "init"]).ok();
    cli.run(&["ca", "init", "--label", "line1", "--namespace", "ctw-"])
        .ok();
    let (key, cert) = (dir.path().join("d.key"), dir.path().join("d.pem"));
    let kg = cli
        .run(&[
            "--json",
            "ca",
            "keygen",
            "--device-id",
            "ctw-1",
            "--key-out",
            s(&key),
            "--out",
            s(&cert),
        ])
        .json();
    let serial: smtrust_ca::Serial = kg["serial"].as_str().unwrap().parse().unwrap();
    let (mut child, ready) = cli.spawn_ready(&[
        "--json",
        "serve",
        "--api",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
    ]);
    let http = ready["http"].as_str().unwrap().to_owned();
    let url = format!("{}/ocsp/line1", http.trim_end_matches('/'));
    let url = if url.starts_with("http://") {
        url
    } else {
        format!("http://{url}")
    };
    let issuer = dir.path().join("data/ca/line1.pem");
    let text = ask(&o, &url, &issuer, &cert);
    assert!(text.contains("d.pem: good"), "{text}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use smtrust_ca::Store as _;
        let store = smtrust_ca::SqlStore::open_sqlite(&dir.path().join("data/smtrust.db"))
            .await
            .unwrap();
        #[allow(clippy::disallowed_methods)] // the test is the other process: it reads the clock
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        store
            .change_status(
                "line1",
                &serial,
                smtrust_ca::RevocationKind::Revoked {
                    reason: smtrust_ca::RevocationReason::KeyCompromise,
                },
                now,
            )
            .await
            .unwrap();
    });
    let start = Instant::now();
    loop {
        let text = ask(&o, &url, &issuer, &cert);
        if text.contains("d.pem: revoked") {
            break;
        }
        assert!(text.contains("d.pem: good"), "{text}");
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "still good 15 s after the revocation: {text}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("revoked answer after {:?}", start.elapsed());
    let _ = child.kill();
    let _ = child.wait();
}
