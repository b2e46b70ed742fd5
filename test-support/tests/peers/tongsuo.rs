use std::time::Duration;

use smtrust_test_support::{
    ClientConfig, ServerConfig, Tongsuo, TongsuoServer, require, temp_dir, tongsuo_client,
};

use crate::{sm2_leaf, sm2_root};

#[test]
fn tongsuo_reports_8_5_0() {
    let Some(tongsuo) = require(Tongsuo) else {
        return;
    };
    let out = tongsuo.run_ok(["version"]).expect("version");
    assert!(
        out.stdout_str().contains("Tongsuo 8.5.0"),
        "{}",
        out.combined()
    );
}

/// A full RFC 8998 mutual-auth handshake between Tongsuo's s_server and s_client through the helpers.
#[test]
fn tongsuo_tls13_sm_mutual_auth_handshake() {
    let Some(tongsuo) = require(Tongsuo) else {
        return;
    };
    let dir = temp_dir().expect("temp dir");
    let (ca, ca_key) = sm2_root(&tongsuo, dir.path());
    let (srv, srv_key) = sm2_leaf(
        &tongsuo,
        dir.path(),
        &ca,
        &ca_key,
        "server",
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:server.test\n",
    );
    let (cli, cli_key) = sm2_leaf(
        &tongsuo,
        dir.path(),
        &ca,
        &ca_key,
        "client",
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    );
    let mut scfg = ServerConfig::new(&srv, &srv_key);
    scfg.client_ca = Some(ca.clone());
    let server = TongsuoServer::spawn(&tongsuo, &scfg).expect("s_server ready");

    let mut ccfg = ClientConfig::new(&ca);
    ccfg.cert = Some((cli, cli_key));
    let out = tongsuo_client(
        &tongsuo,
        server.port(),
        &ccfg,
        b"ping-from-client\n",
        Duration::from_secs(1),
    )
    .expect("s_client runs");
    let report = out.combined();
    assert!(report.contains("TLS_SM4_GCM_SM3"), "{report}");
    assert!(report.contains("Verify return code: 0 (ok)"), "{report}");
    assert!(
        server.wait_for("ping-from-client", Duration::from_secs(10)),
        "server saw: {}",
        server.output()
    );
}

/// Without a client certificate, a server that demands one refuses the handshake.
#[test]
fn tongsuo_server_refuses_client_without_certificate() {
    let Some(tongsuo) = require(Tongsuo) else {
        return;
    };
    let dir = temp_dir().expect("temp dir");
    let (ca, ca_key) = sm2_root(&tongsuo, dir.path());
    let (srv, srv_key) = sm2_leaf(
        &tongsuo,
        dir.path(),
        &ca,
        &ca_key,
        "server",
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    );
    let mut scfg = ServerConfig::new(&srv, &srv_key);
    scfg.client_ca = Some(ca.clone());
    let server = TongsuoServer::spawn(&tongsuo, &scfg).expect("s_server ready");
    let out = tongsuo_client(
        &tongsuo,
        server.port(),
        &ClientConfig::new(&ca),
        b"secret\n",
        Duration::from_secs(1),
    )
    .expect("s_client runs");
    assert!(
        !server.wait_for("secret", Duration::from_secs(2)),
        "data passed without a client certificate"
    );
    let report = out.combined();
    assert!(report.contains("alert certificate required"), "{report}");
}
