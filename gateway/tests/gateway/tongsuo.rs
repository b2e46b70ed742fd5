//! Tongsuo 8.5.0 `s_client` (strict RFC 8998, TLS 1.3, client certificate) through a `tcp`
//! listener to an echo server; without a certificate, or with a revoked one, it is refused.

use crate::pki::{Device, Pki};
use crate::tcp::{default_policy, echo_server, start};
use smtrust_gateway::{CertStatus, GatewayEvent};
use smtrust_test_support::{ClientConfig, Tongsuo, require, temp_dir, tongsuo_client};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn pem(der: &[u8]) -> String {
    smtrust_crypto::pem::encode("CERTIFICATE", der)
        .unwrap()
        .to_string()
}

/// `<name>.pem` (leaf), `<name>-chain.pem` (issuing CA), `<name>.key` (PKCS#8).
pub fn write_device(dir: &Path, name: &str, d: &Device) -> (PathBuf, PathBuf, PathBuf) {
    let (c, ch, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}-chain.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, pem(d.chain[0].as_ref())).unwrap();
    std::fs::write(&ch, pem(d.chain[1].as_ref())).unwrap();
    let key = smtrust_crypto::pem::encode_private_key(&d.secret).unwrap();
    std::fs::write(&k, key.as_bytes()).unwrap();
    (c, ch, k)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tongsuo_s_client_through_a_tcp_listener_and_refusals() {
    let Some(t) = require(Tongsuo) else { return };
    let pki = Pki::new("tongsuo").await;
    let gw = start(&pki, "tcp", echo_server().await, "", default_policy()).await;
    let port = gw.local_addr("main").unwrap().port();
    let dir = temp_dir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, pem(pki.root.as_ref())).unwrap();
    let good = pki.device("ctw-tongsuo-1").await;
    let revoked = pki.device("ctw-tongsuo-2").await;
    gw.gateway().handle_event(GatewayEvent::CertStatus {
        cert: revoked.cert_key(),
        status: CertStatus::Revoked,
    });

    let run = |cert: Option<(PathBuf, PathBuf, PathBuf)>, msg: &'static [u8]| {
        let (t, root) = (t.clone(), root.clone());
        tokio::task::spawn_blocking(move || {
            let mut cfg = ClientConfig::new(&root);
            if let Some((c, chain, k)) = cert {
                cfg.cert = Some((c, k));
                cfg.extra = vec!["-cert_chain".into(), chain.display().to_string()];
            }
            tongsuo_client(&t, port, &cfg, msg, Duration::from_millis(1500))
                .unwrap()
                .combined()
        })
    };
    let out = run(
        Some(write_device(dir.path(), "good", &good)),
        b"hello-through-gateway\n",
    )
    .await
    .unwrap();
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(out.contains("TLS_SM4_GCM_SM3"), "{out}");
    // s_client prints what it receives: the echo came back through the gateway.
    assert!(out.contains("hello-through-gateway"), "{out}");

    let out = run(None, b"anonymous-hello\n").await.unwrap();
    assert!(!out.contains("anonymous-hello"), "{out}");
    let out = run(
        Some(write_device(dir.path(), "revoked", &revoked)),
        b"revoked-hello\n",
    )
    .await
    .unwrap();
    assert!(!out.contains("revoked-hello"), "{out}");
    assert!(out.contains("certificate revoked"), "{out}");

    let m = gw.gateway().metrics();
    assert_eq!(m.refusals("no_client_certificate"), 1, "{}", m.render());
    assert_eq!(m.refusals("revoked"), 1, "{}", m.render());
    gw.shutdown().await;
}
