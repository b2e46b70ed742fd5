//! `smtrust factory batch` with the CA of `smtrust ca init` in the same data directory: factory devices are
//! recorded in the CA store, so `ca show`, `ca revoke` and the CRL see them; the CA's namespace applies.
#![allow(clippy::panic, clippy::unwrap_used, clippy::indexing_slicing)] // test assertions

use std::path::Path;
use std::process::{Command, Output};

const PASS: &str = "factory ca test passphrase";

fn smtrust(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smtrust"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("SMTRUST_PASSPHRASE", PASS)
        .output()
        .expect("run smtrust")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn factory_devices_are_in_the_ca_store_and_revocable() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    ok(&smtrust(
        &d,
        &["ca", "init", "--label", "line7", "--namespace", "ctw-"],
    ));
    let csrs = tmp.path().join("csrs.jsonl");
    ok(&smtrust(
        &d,
        &[
            "factory",
            "dev-csrs",
            "--count",
            "40",
            "--out",
            csrs.to_str().unwrap(),
        ],
    ));
    // One line outside the namespace, reported and not issued.
    let mut text = std::fs::read_to_string(&csrs).unwrap();
    let other = String::from_utf8(
        smtrust(
            &d,
            &[
                "factory",
                "dev-csrs",
                "--count",
                "1",
                "--prefix",
                "abc-",
                "--out",
                "/dev/stdout",
            ],
        )
        .stdout,
    )
    .unwrap();
    text.push_str(&other);
    std::fs::write(&csrs, text).unwrap();
    let out = tmp.path().join("out");
    let report: serde_json::Value = serde_json::from_str(&ok(&smtrust(
        &d,
        &[
            "--json",
            "factory",
            "batch",
            "--csr",
            csrs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    )))
    .unwrap();
    assert_eq!(report["issued"], 40);
    assert_eq!(report["refused"], 1);
    let why = report["refusals"][0]["reason"].as_str().unwrap();
    assert!(why.contains("namespace"), "{why}");

    let certs = std::fs::read_to_string(out.join("certs.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(certs.lines().next().unwrap()).unwrap();
    let serial = first["serial"].as_str().unwrap();
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&smtrust(&d, &["--json", "ca", "show", serial]))).unwrap();
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["issuer"], "line7");
    assert_eq!(shown["device_id"], first["device_id"]);
    ok(&smtrust(
        &d,
        &["ca", "revoke", serial, "--reason", "key-compromise"],
    ));
    let crl: serde_json::Value =
        serde_json::from_str(&ok(&smtrust(&d, &["--json", "ca", "crl"]))).unwrap();
    let der = smtrust_crypto::pem::blocks(crl["crl"].as_str().unwrap().as_bytes()).unwrap();
    let hex_der = hex::encode(&der[0].1);
    assert!(
        hex_der.contains(serial),
        "revoked factory serial in the CRL"
    );
    // A device the factory issued cannot be issued again by the CA, nor by a second batch.
    let list: serde_json::Value = serde_json::from_str(&ok(&smtrust(
        &d,
        &["--json", "ca", "list", "--limit", "1000"],
    )))
    .unwrap();
    let active = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["profile"] == "factory-device" && r["status"] == "active")
        .count();
    assert_eq!(active, 39);
}
