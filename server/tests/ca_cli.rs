//! `smtrust ca …` end to end through the real binary, checked with the OpenSSL 3 CLI: init → issue an
//! OpenSSL-made CSR → verify each chain link → revoke → the CRL lists it; refusals; keygen; suspend/resume.
#![allow(clippy::panic, clippy::unwrap_used, clippy::indexing_slicing)] // test assertions

use std::path::{Path, PathBuf};

use smtrust_test_support::cli::{Cli, Run};
use smtrust_test_support::{GMT_DEFAULT_ID, Openssl, Tool, Verdict, require};

const PASS: &str = "ca cli test passphrase";
const DISTID: &str = "distid:1234567812345678";

fn smtrust(dir: &Path, args: &[&str]) -> Run {
    Cli::new(env!("CARGO_BIN_EXE_smtrust"), dir)
        .env("SMTRUST_PASSPHRASE", PASS)
        .env("SMTRUST_KEY_PASSPHRASE", "device key passphrase")
        .run(args)
}

fn ok(out: &Run) -> String {
    out.ok()
}

fn json(out: &Run) -> serde_json::Value {
    out.json()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// An SM2 key and a CSR (DER) for `cn`, made by OpenSSL (with or without the GM/T ID).
fn openssl_csr(o: &Tool, dir: &Path, name: &str, cn: &str, distid: bool) -> PathBuf {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    o.genpkey_sm2(&key).unwrap();
    let id = if distid { GMT_DEFAULT_ID } else { "" };
    let der = o.req_sm2(&key, &format!("/CN={cn}"), id).unwrap();
    std::fs::write(&csr, der).unwrap();
    csr
}

/// `cert` checked against `issuer` alone by `openssl verify` under the GM/T ID.
fn verify_link(o: &Tool, issuer: &Path, cert: &Path) {
    let read = |p: &Path| std::fs::read(p).unwrap();
    let v = smtrust_test_support::verify_link(o, &read(issuer), &read(cert), None).unwrap();
    assert_eq!(v, Verdict::Verified, "openssl verify {}", cert.display());
}

#[test]
fn init_issue_verify_revoke_and_the_crl_lists_it() {
    let Some(o) = require(Openssl) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let w = tmp.path();
    let init = json(&smtrust(
        &d,
        &[
            "--json",
            "ca",
            "init",
            "--label",
            "line7",
            "--namespace",
            "ctw-",
            "--organization",
            "smtrust CLI test",
            "--base-url",
            "http://127.0.0.1:8080",
        ],
    ));
    assert_eq!(init["label"], "line7");
    assert_eq!(init["namespace"], "ctw-");
    // A second init refuses to overwrite.
    assert!(!smtrust(&d, &["ca", "init"]).status.success());

    let csr = openssl_csr(&o, w, "dev", "ctw-0000000042", true);
    let dev = w.join("dev.pem");
    let issued = json(&smtrust(
        &d,
        &[
            "--json",
            "ca",
            "issue",
            "--csr",
            &s(&csr),
            "--profile",
            "device",
            "--out",
            &s(&dev),
        ],
    ));
    let serial = issued["serial"].as_str().unwrap().to_owned();
    assert_eq!(issued["device_id"], "ctw-0000000042");

    let chain = w.join("chain.pem");
    ok(&smtrust(&d, &["ca", "export-chain", "--out", &s(&chain)]));
    let chain_text = std::fs::read_to_string(&chain).unwrap();
    assert_eq!(chain_text.matches("BEGIN CERTIFICATE").count(), 2);
    let issuing = d.join("ca/line7.pem");
    let root = d.join("ca/root.pem");
    verify_link(&o, &issuing, &dev);
    verify_link(&o, &root, &issuing);
    verify_link(&o, &root, &root);
    let text = o
        .run_ok(["x509", "-in", &s(&dev), "-noout", "-text"])
        .unwrap()
        .stdout_str();
    assert!(
        text.contains("URI:urn:smtrust:device:ctw-0000000042"),
        "{text}"
    );
    assert!(text.contains("http://127.0.0.1:8080/ocsp/line7"), "{text}");

    let shown = json(&smtrust(&d, &["--json", "ca", "show", &serial]));
    assert_eq!(shown["status"], "active");
    ok(&smtrust(
        &d,
        &["ca", "revoke", &serial, "--reason", "key-compromise"],
    ));
    let shown = json(&smtrust(&d, &["--json", "ca", "show", &serial]));
    assert_eq!(shown["status"], "revoked");
    assert_eq!(shown["reason_code"], 1);
    // Revoking twice is refused.
    assert!(!smtrust(&d, &["ca", "revoke", &serial]).status.success());

    let crl = w.join("line7.crl");
    ok(&smtrust(&d, &["ca", "crl", "--out", &s(&crl)]));
    let text = o
        .run_ok(["crl", "-in", &s(&crl), "-noout", "-text"])
        .unwrap()
        .stdout_str();
    assert!(
        text.to_uppercase().contains(&serial.to_uppercase()),
        "serial {serial} in CRL: {text}"
    );
    assert!(text.contains("Key Compromise"), "{text}");
    let delta = json(&smtrust(&d, &["--json", "ca", "crl", "--delta"]));
    assert_eq!(delta["delta"], true);

    let list = json(&smtrust(&d, &["--json", "ca", "list"]));
    let rows = list.as_array().unwrap();
    assert!(rows.iter().any(|r| r["serial"] == serial.as_str()));
    assert!(
        rows.iter().any(|r| r["profile"] == "ocsp"),
        "OCSP signer recorded"
    );
}

#[test]
fn refusals_keygen_and_suspension() {
    let Some(o) = require(Openssl) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let w = tmp.path();
    ok(&smtrust(
        &d,
        &["ca", "init", "--label", "line7", "--namespace", "ctw-"],
    ));

    // A CSR made without -sigopt distid: refused with the exact fix.
    let csr = openssl_csr(&o, w, "noid", "ctw-1", false);
    let out = smtrust(&d, &["ca", "issue", "--csr", &s(&csr)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("-sigopt distid:1234567812345678"), "{err}");
    // Outside the namespace.
    let csr = openssl_csr(&o, w, "other", "abc-1", true);
    let out = smtrust(&d, &["ca", "issue", "--csr", &s(&csr)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("namespace"));
    // A duplicate active device.
    let csr = openssl_csr(&o, w, "a", "ctw-2", true);
    ok(&smtrust(&d, &["ca", "issue", "--csr", &s(&csr)]));
    let csr = openssl_csr(&o, w, "b", "ctw-2", true);
    let out = smtrust(&d, &["ca", "issue", "--csr", &s(&csr)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has an active"));

    // Server-side keygen: the key comes back once, encrypted; OpenSSL decrypts it and it matches the cert.
    let key = w.join("kg.key");
    let cert = w.join("kg.pem");
    let kg = json(&smtrust(
        &d,
        &[
            "--json",
            "ca",
            "keygen",
            "--device-id",
            "ctw-3",
            "--key-out",
            &s(&key),
            "--out",
            &s(&cert),
        ],
    ));
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("BEGIN ENCRYPTED PRIVATE KEY")
    );
    let pk_from_key = o
        .run_ok([
            "pkey",
            "-in",
            &s(&key),
            "-passin",
            "pass:device key passphrase",
            "-pubout",
        ])
        .unwrap()
        .stdout_str();
    let pk_from_cert = o
        .run_ok(["x509", "-in", &s(&cert), "-noout", "-pubkey"])
        .unwrap()
        .stdout_str();
    assert_eq!(pk_from_key, pk_from_cert);
    verify_link(&o, &d.join("ca/line7.pem"), &cert);

    let serial = kg["serial"].as_str().unwrap();
    ok(&smtrust(&d, &["ca", "suspend", serial]));
    assert_eq!(
        json(&smtrust(&d, &["--json", "ca", "show", serial]))["status"],
        "suspended"
    );
    ok(&smtrust(&d, &["ca", "resume", serial]));
    assert_eq!(
        json(&smtrust(&d, &["--json", "ca", "show", serial]))["status"],
        "active"
    );
    assert!(!smtrust(&d, &["ca", "resume", serial]).status.success());
}

#[test]
fn import_an_external_root_or_intermediate() {
    let Some(o) = require(Openssl) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let genkey = |name: &str| {
        let key = w.join(name);
        o.genpkey_sm2(&key).unwrap();
        key
    };
    // An OpenSSL-made root.
    let root_key = genkey("root.key");
    let root = w.join("root.pem");
    o.run_ok([
        "req",
        "-new",
        "-x509",
        "-key",
        &s(&root_key),
        "-sm3",
        "-sigopt",
        DISTID,
        "-subj",
        "/CN=imported root",
        "-days",
        "3650",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        "-out",
        &s(&root),
    ])
    .unwrap();
    // Imported root: a new issuing CA is made below it and chains to it.
    let d = w.join("data");
    ok(&smtrust(
        &d,
        &[
            "ca",
            "init",
            "--label",
            "line8",
            "--import-cert",
            &s(&root),
            "--import-key",
            &s(&root_key),
        ],
    ));
    verify_link(&o, &root, &d.join("ca/line8.pem"));
    let csr = openssl_csr(&o, w, "dev", "ctw-9", true);
    let dev = w.join("dev.pem");
    ok(&smtrust(
        &d,
        &["ca", "issue", "--csr", &s(&csr), "--out", &s(&dev)],
    ));
    verify_link(&o, &d.join("ca/line8.pem"), &dev);

    // An OpenSSL-made intermediate under that root, imported with its chain: the root stays offline.
    let inter_key = genkey("inter.key");
    let inter_csr = w.join("inter.csr");
    o.run_ok([
        "req",
        "-new",
        "-key",
        &s(&inter_key),
        "-sm3",
        "-sigopt",
        DISTID,
        "-subj",
        "/CN=imported intermediate",
        "-out",
        &s(&inter_csr),
    ])
    .unwrap();
    let ext = w.join("ext.cnf");
    std::fs::write(
        &ext,
        "[v3]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    let inter = w.join("inter.pem");
    o.run_ok([
        "x509",
        "-req",
        "-in",
        &s(&inter_csr),
        "-CA",
        &s(&root),
        "-CAkey",
        &s(&root_key),
        "-sm3",
        "-sigopt",
        DISTID,
        "-vfyopt",
        DISTID,
        "-days",
        "365",
        "-set_serial",
        "0x1234abcd",
        "-extfile",
        &s(&ext),
        "-extensions",
        "v3",
        "-out",
        &s(&inter),
    ])
    .unwrap();
    verify_link(&o, &root, &inter);
    let chain = w.join("inter-chain.pem");
    std::fs::write(
        &chain,
        std::fs::read_to_string(&inter).unwrap() + &std::fs::read_to_string(&root).unwrap(),
    )
    .unwrap();
    let d2 = w.join("data2");
    let init = json(&smtrust(
        &d2,
        &[
            "--json",
            "ca",
            "init",
            "--label",
            "line9",
            "--import-cert",
            &s(&chain),
            "--import-key",
            &s(&inter_key),
        ],
    ));
    assert_eq!(init["root_offline"], true);
    let csr = openssl_csr(&o, w, "dev2", "ctw-10", true);
    let dev2 = w.join("dev2.pem");
    ok(&smtrust(
        &d2,
        &["ca", "issue", "--csr", &s(&csr), "--out", &s(&dev2)],
    ));
    verify_link(&o, &inter, &dev2);
    let exported =
        String::from_utf8(ok(&smtrust(&d2, &["ca", "export-chain"])).into_bytes()).unwrap();
    assert_eq!(exported.matches("BEGIN CERTIFICATE").count(), 2);

    // A certificate that is not a CA is refused, and so is an intermediate without its chain.
    let out = smtrust(
        &w.join("e1"),
        &[
            "ca",
            "init",
            "--import-cert",
            &s(&dev),
            "--import-key",
            &s(&w.join("dev.key")),
        ],
    );
    assert!(!out.status.success());
    let out = smtrust(
        &w.join("e2"),
        &[
            "ca",
            "init",
            "--import-cert",
            &s(&inter),
            "--import-key",
            &s(&inter_key),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("certificates above it"));
}
