use std::fs;

use smtrust_test_support::{Openssl, require, temp_dir};

use crate::{DISTID, s, sm2_key};

/// The distinguishing ID is part of what OpenSSL signs: a GM/T-ID signature verifies with that ID only.
#[test]
fn openssl_sm2_signature_depends_on_distid() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let dir = temp_dir().expect("temp dir");
    let key = sm2_key(&openssl, dir.path(), "k.pem");
    let (msg, sig, pubkey) = (
        dir.path().join("msg"),
        dir.path().join("sig"),
        dir.path().join("pub.pem"),
    );
    fs::write(&msg, b"smtrust test-support").expect("write msg");
    openssl
        .run_ok(["pkey", "-in", &s(&key), "-pubout", "-out", &s(&pubkey)])
        .expect("pubout");
    openssl
        .run_ok([
            "dgst",
            "-sm3",
            "-sign",
            &s(&key),
            "-sigopt",
            DISTID,
            "-out",
            &s(&sig),
            &s(&msg),
        ])
        .expect("sign");

    let ok = openssl
        .run([
            "dgst",
            "-sm3",
            "-verify",
            &s(&pubkey),
            "-sigopt",
            DISTID,
            "-signature",
            &s(&sig),
            &s(&msg),
        ])
        .expect("verify runs");
    assert!(
        ok.success() && ok.stdout_str().contains("Verified OK"),
        "{}",
        ok.combined()
    );

    let empty_id = openssl
        .run([
            "dgst",
            "-sm3",
            "-verify",
            &s(&pubkey),
            "-signature",
            &s(&sig),
            &s(&msg),
        ])
        .expect("verify runs");
    assert!(
        !empty_id.success(),
        "empty ID must not verify a GM/T-ID signature: {}",
        empty_id.combined()
    );
}

#[test]
fn run_captures_failure_and_stdin() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let out = openssl
        .run_with_stdin(["dgst", "-sm3", "-r"], b"abc")
        .expect("dgst runs");
    assert!(out.success());
    // The hash itself is checked against PyPI gmssl in pygmssl.rs; here: 64 hex digits, then the `*stdin` tag.
    let line = out.stdout_str();
    let hex = line.split_whitespace().next().unwrap_or_default();
    assert_eq!(hex.len(), 64, "{line}");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");

    let bad = openssl
        .run_ok(["dgst", "-sm3", "/nonexistent/input"])
        .expect_err("missing input fails");
    assert!(
        matches!(bad, smtrust_test_support::Error::Failed { .. }),
        "{bad}"
    );
}
