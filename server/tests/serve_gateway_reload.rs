//! Gateway config reload through the real binary: `smtrust serve --gateway FILE` re-reads FILE on SIGHUP (and on
//! `POST /gateway/reload` over the admin socket) and applies it live: a new listener accepts, the kept one keeps
//! its socket, a bad file is logged and ignored. And the service certificate renewed on `POST /service/renew`:
//! new handshakes of the API and the gateway present it, a session made before goes on.

#![allow(clippy::panic, reason = "test helpers: a failure is a failed test")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use smtrust_test_support::cli::Cli;

const PASS: &str = "a long operator passphrase for the gateway reload test";

fn listener(name: &str, bind: &str) -> String {
    format!(
        "[[listener]]\nname = \"{name}\"\nbind = \"{bind}\"\nmode = \"tcp\"\nupstream = \"127.0.0.1:9\"\n"
    )
}

/// A port nothing listens on now (bound and released; the OS does not hand it out again at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a probe socket")
        .port()
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// Waits up to 10 s for `addr` to accept (`want`) or refuse (`!want`) TCP connections.
fn wait_accepts(addr: SocketAddr, want: bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if accepts(addr) == want {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{addr} {} after 10 s",
        if want {
            "still refuses"
        } else {
            "still accepts"
        }
    );
}

fn hup(child: &Child) {
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// `POST /gateway/reload` on the admin socket: (status, body).
fn admin_reload(data_dir: &Path) -> (u16, String) {
    admin_post(data_dir, "/gateway/reload")
}

#[test]
fn sighup_and_the_admin_socket_reload_the_gateway_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cli = Cli::new(env!("CARGO_BIN_EXE_smtrust"), dir.path()).env("SMTRUST_PASSPHRASE", PASS);
    cli.run(&["keystore", "init"]).ok();
    cli.run(&["ca", "init", "--label", "line1", "--namespace", "ctw-"])
        .ok();
    let gw = dir.path().join("gateway.toml");
    std::fs::write(&gw, listener("main", "127.0.0.1:0")).expect("write gateway.toml");
    let (mut child, v) = cli.spawn_ready(&[
        "--json",
        "serve",
        "--api",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--gateway",
        gw.to_str().expect("utf-8 path"),
    ]);
    let main: SocketAddr = v["gateway"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l[0] == "main"))
        .and_then(|l| l[1].as_str())
        .and_then(|a| a.parse().ok())
        .expect("main listener address");
    assert!(accepts(main));

    // SIGHUP: a second listener appears; main keeps its socket.
    let second: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    assert!(!accepts(second));
    std::fs::write(
        &gw,
        format!(
            "{}{}",
            listener("main", "127.0.0.1:0"),
            listener("second", &second.to_string())
        ),
    )
    .expect("rewrite gateway.toml");
    hup(&child);
    let took = wait_accepts(second, true);
    eprintln!("SIGHUP → new listener accepting after {took:?}");
    assert!(accepts(main), "main lost its socket");

    // A bad file is logged and ignored: the process stays, both listeners stay.
    std::fs::write(&gw, "[[listener]]\nname = \"main\"\nbind = ").expect("write a broken file");
    hup(&child);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "serve exited on a bad file"
    );
    assert!(accepts(main) && accepts(second));
    let (status, body) = admin_reload(dir.path());
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("error"), "{body}");

    // The admin socket route: second removed, it stops accepting.
    std::fs::write(&gw, listener("main", "127.0.0.1:0")).expect("rewrite gateway.toml");
    let (status, body) = admin_reload(dir.path());
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).expect("JSON report");
    assert_eq!(report["removed"], serde_json::json!(["second"]), "{body}");
    wait_accepts(second, false);
    assert!(accepts(main));

    let status = smtrust_test_support::cli::interrupt(&mut child, Duration::from_secs(30))
        .expect("serve stops on SIGINT");
    assert!(status.success(), "{status:?}");
}

/// A TLS 1.3-SM client session to `addr` trusting `trust` (DER, issuing CA then root), handshake done.
fn tls_session(
    addr: &str,
    trust: &[Vec<u8>],
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let roots = smtrust_tls::TrustRoots::new(
        &trust
            .iter()
            .map(|d| rustls::pki_types::CertificateDer::from(d.clone()))
            .collect::<Vec<_>>(),
    )
    .expect("roots");
    let verifier = smtrust_tls::Sm2ChainVerifier::new(
        roots,
        std::sync::Arc::new(smtrust_tls::RevokedSet::new()),
        smtrust_tls::UnknownStatus::Refuse,
    );
    let config = smtrust_tls::client_config(verifier, None).expect("client config");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("conn");
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).expect("handshake");
    }
    rustls::StreamOwned::new(conn, tcp)
}

/// The serial (hex) of the certificate the server at `addr` presents to a new handshake.
fn serial_of(s: &rustls::StreamOwned<rustls::ClientConnection, TcpStream>) -> String {
    use der::Decode;
    let leaf = &s.conn.peer_certificates().expect("server certificate")[0];
    let cert = x509_cert::Certificate::from_der(leaf.as_ref()).expect("certificate");
    hex::encode(cert.tbs_certificate().serial_number().as_bytes())
}

/// `POST path` on the admin socket: (status, body).
fn admin_post(data_dir: &Path, path: &str) -> (u16, String) {
    let mut s =
        UnixStream::connect(smtrust_keystore::admin::socket_path(data_dir)).expect("admin socket");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

#[test]
fn renewed_service_certificate_reaches_new_handshakes_of_the_api_and_the_gateway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cli = Cli::new(env!("CARGO_BIN_EXE_smtrust"), dir.path()).env("SMTRUST_PASSPHRASE", PASS);
    cli.run(&["keystore", "init"]).ok();
    cli.run(&["ca", "init", "--label", "line1", "--namespace", "ctw-"])
        .ok();
    let gw = dir.path().join("gateway.toml");
    // No client certificate needed: the handshake completes (admission then refuses, which is fine here).
    std::fs::write(
        &gw,
        format!(
            "{}client_cert_required = false\n",
            listener("main", "127.0.0.1:0")
        ),
    )
    .expect("write gateway.toml");
    let (mut child, v) = cli.spawn_ready(&[
        "--json",
        "serve",
        "--api",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--gateway",
        gw.to_str().expect("utf-8 path"),
    ]);
    let api = v["api"]
        .as_str()
        .expect("api")
        .trim_start_matches("https://")
        .to_owned();
    let main = v["gateway"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l[0] == "main"))
        .and_then(|l| l[1].as_str())
        .expect("main listener address")
        .to_owned();
    let chain = std::fs::read(v["trust_chain"].as_str().expect("trust chain")).expect("chain.pem");
    let trust: Vec<Vec<u8>> = smtrust_crypto::pem::blocks(&chain)
        .expect("pem")
        .into_iter()
        .map(|(_, d)| d.to_vec())
        .collect();

    let mut old = tls_session(&api, &trust);
    let before = serial_of(&old);
    assert_eq!(
        serial_of(&tls_session(&main, &trust)),
        before,
        "one certificate for API and gateway"
    );

    let (status, body) = admin_post(dir.path(), "/service/renew");
    assert_eq!(status, 200, "{body}");
    let renewed: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let after = renewed["tls_serial"]
        .as_str()
        .expect("tls serial")
        .to_owned();
    assert_ne!(after, before);
    assert!(renewed["passport_serial"].is_string(), "{body}");
    assert_eq!(serial_of(&tls_session(&api, &trust)), after);
    assert_eq!(serial_of(&tls_session(&main, &trust)), after);

    // The session made before the renewal still works.
    write!(
        old,
        "GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("write on the old session");
    let mut head = [0u8; 12];
    old.read_exact(&mut head).expect("read on the old session");
    assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));

    let status = smtrust_test_support::cli::interrupt(&mut child, Duration::from_secs(30))
        .expect("serve stops on SIGINT");
    assert!(status.success(), "{status:?}");
}
