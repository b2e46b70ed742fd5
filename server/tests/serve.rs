//! `smtrust serve` through the real binary: it opens the CA of the data directory, serves CRLs over HTTP, and
//! answers `smtrust keystore status|seal` through its admin socket; Ctrl-C stops it and removes the socket.

use std::io::{Read, Write};
use std::process::{Command, Output};
use std::time::Duration;

const PASS: &str = "a long operator passphrase for the serve test";

fn smtrust(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smtrust"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("SMTRUST_PASSPHRASE", PASS)
        .output()
        .expect("run smtrust")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn http_get(addr: &str, path: &str) -> (String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    (
        String::from_utf8_lossy(&buf[..split]).into_owned(),
        buf[split + 4..].to_vec(),
    )
}

#[test]
fn serve_answers_crl_and_keystore_seal_through_the_admin_socket() {
    let dir = tempfile::tempdir().unwrap();
    ok(smtrust(dir.path(), &["keystore", "init"]));
    ok(smtrust(
        dir.path(),
        &["ca", "init", "--label", "line1", "--namespace", "ctw-"],
    ));
    let (mut child, v) =
        smtrust_test_support::cli::Cli::new(env!("CARGO_BIN_EXE_smtrust"), dir.path())
            .env("SMTRUST_PASSPHRASE", PASS)
            .spawn_ready(&[
                "--json",
                "serve",
                "--api",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
            ]);
    let http = v["http"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();

    let (head, crl) = http_get(&http, "/crl/line1.crl");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(crl.first(), Some(&0x30), "a DER CRL");

    let status: serde_json::Value =
        serde_json::from_str(&ok(smtrust(dir.path(), &["--json", "keystore", "status"]))).unwrap();
    assert_eq!(status["sealed"], false, "{status}");
    ok(smtrust(dir.path(), &["keystore", "seal"]));
    let status: serde_json::Value =
        serde_json::from_str(&ok(smtrust(dir.path(), &["--json", "keystore", "status"]))).unwrap();
    assert_eq!(status["sealed"], true, "{status}");

    let stopped = smtrust_test_support::cli::interrupt(&mut child, Duration::from_secs(10));
    assert!(stopped.is_some(), "serve stops on SIGINT");
    assert!(!dir.path().join("admin.sock").exists(), "socket removed");
}
