use std::fs;

use smtrust_test_support::{Gmssl, Openssl, require, temp_dir};

use crate::s;

#[test]
fn gmssl_reports_3_1_1() {
    let Some(gmssl) = require(Gmssl) else { return };
    let out = gmssl.run_ok(["version"]).expect("version");
    assert!(out.combined().contains("GmSSL 3.1.1"), "{}", out.combined());
}

/// GmSSL and OpenSSL agree on SM3 of the same file.
#[test]
fn gmssl_sm3_matches_openssl() {
    let Some(gmssl) = require(Gmssl) else { return };
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let dir = temp_dir().expect("temp dir");
    let msg = dir.path().join("msg");
    fs::write(&msg, b"interop: the same bytes through two implementations").expect("write");
    let g = gmssl
        .run_ok(["sm3", "-in", &s(&msg)])
        .expect("gmssl sm3")
        .stdout_str();
    let o = openssl
        .run_ok(["dgst", "-sm3", "-r", &s(&msg)])
        .expect("openssl sm3")
        .stdout_str();
    let o = o.split_whitespace().next().unwrap_or_default();
    assert_eq!(g.split_whitespace().next().unwrap_or_default(), o);
}
