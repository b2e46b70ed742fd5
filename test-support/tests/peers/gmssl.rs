use std::fs;
use std::time::Duration;

use smtrust_test_support::{
    Gmssl, Openssl, ServerConfig, Tongsuo, TongsuoServer, gmssl_tls13_client,
};
use smtrust_test_support::{require, temp_dir};

use crate::{s, sm2_leaf, sm2_root};

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

/// GmSSL's TLS 1.3-SM client completes a handshake with a Tongsuo server set up as peers.md says.
#[test]
fn gmssl_client_talks_to_tongsuo_server() {
    let Some(gmssl) = require(Gmssl) else { return };
    let Some(tongsuo) = require(Tongsuo) else {
        return;
    };
    let dir = temp_dir().expect("temp dir");
    let (ca, ca_key) = sm2_root(&tongsuo, dir.path());
    let ext = "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n";
    let (srv, srv_key) = sm2_leaf(&tongsuo, dir.path(), &ca, &ca_key, "server", ext);
    let mut cfg = ServerConfig::new(&srv, &srv_key);
    cfg.extra = ["-no_middlebox", "-num_tickets", "0"]
        .map(String::from)
        .to_vec();
    let server = TongsuoServer::spawn(&tongsuo, &cfg).expect("s_server ready");
    let out = gmssl_tls13_client(
        &gmssl,
        server.port(),
        &ca,
        None,
        b"ping-from-gmssl\n",
        Duration::from_secs(1),
    )
    .expect("gmssl runs");
    assert!(
        out.combined().contains("Connection established"),
        "{}",
        out.combined()
    );
    assert!(
        server.wait_for("ping-from-gmssl", Duration::from_secs(10)),
        "server saw: {}",
        server.output()
    );
}
