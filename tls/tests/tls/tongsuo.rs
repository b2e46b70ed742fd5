//! Interop with Tongsuo 8.5.0 (RFC 8998 strict mode): our client against its s_server, its s_client against
//! our server; both suites, mutual authentication, data both ways, resumption, refusals on both sides.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::HandshakeKind;
use smtrust_test_support::{
    ClientConfig, ServerConfig, Tongsuo, TongsuoServer, require, temp_dir, tongsuo_client,
};
use smtrust_tls::{DeviceIdentity, Refusal, Resumption, RevocationStatus};

use crate::pki::{Authority, Leaf, Spec, pem_cert};
use crate::{DEVICE_ID, World};

const SUITES: [&str; 2] = ["TLS_SM4_GCM_SM3", "TLS_SM4_CCM_SM3"];

/// PEM files for Tongsuo: `<name>.pem` and `<name>.key` (PKCS#8).
pub fn write_leaf(dir: &Path, name: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, pem_cert(&leaf.cert)).unwrap();
    std::fs::write(
        &k,
        smtrust_crypto::pem::encode_private_key(&leaf.secret)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    (c, k)
}

pub fn write_root(dir: &Path, name: &str, root: &Authority) -> PathBuf {
    let p = dir.join(format!("{name}.pem"));
    std::fs::write(&p, pem_cert(&root.cert())).unwrap();
    p
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Connect our client, send an HTTP request to `s_server -www`, return the reply and the handshake kind.
fn our_client(
    cfg: &Arc<rustls::ClientConfig>,
    port: u16,
) -> Result<(String, Option<HandshakeKind>), rustls::Error> {
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let conn = rustls::ClientConnection::new(cfg.clone(), "localhost".try_into().unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let io = |e: std::io::Error| -> rustls::Error {
        e.get_ref()
            .and_then(|i| i.downcast_ref::<rustls::Error>())
            .cloned()
            .unwrap_or_else(|| panic!("I/O error: {e}"))
    };
    tls.write_all(b"GET / HTTP/1.0\r\n\r\n").map_err(io)?;
    tls.flush().map_err(io)?;
    let mut reply = Vec::new();
    match tls.read_to_end(&mut reply) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(io(e)),
    }
    Ok((
        String::from_utf8_lossy(&reply).into_owned(),
        tls.conn.handshake_kind(),
    ))
}

#[test]
fn our_client_against_tongsuo_server_both_suites_mutual_auth_and_resumption() {
    let Some(t) = require(Tongsuo) else { return };
    let w = World::new();
    let dir = temp_dir().unwrap();
    let root = write_root(dir.path(), "root", &w.root);
    let (cert, key) = write_leaf(dir.path(), "server", &w.server);
    for suite in SUITES {
        let mut cfg = ServerConfig::new(&cert, &key);
        cfg.client_ca = Some(root.clone());
        cfg.extra = strings(&["-ciphersuites", suite, "-www"]);
        let server = TongsuoServer::spawn(&t, &cfg).unwrap();
        let client = w.client_config(true);
        let (reply, kind) = our_client(&client, server.port()).unwrap();
        assert!(reply.contains("HTTP/1.0 200 ok"), "{reply}");
        assert!(reply.contains(&format!("Cipher is {suite}")), "{reply}");
        assert_eq!(kind, Some(HandshakeKind::Full));
        // Tongsuo sends tickets; the second connection resumes with them.
        let (reply, kind) = our_client(&client, server.port()).unwrap();
        assert!(reply.contains("Reused, TLSv1.3"), "{reply}");
        assert_eq!(kind, Some(HandshakeKind::Resumed));
    }
}

#[test]
fn our_client_refuses_revoked_tongsuo_server_and_tongsuo_refuses_unknown_client() {
    let Some(t) = require(Tongsuo) else { return };
    let w = World::new();
    let dir = temp_dir().unwrap();
    let root = write_root(dir.path(), "root", &w.root);
    let (cert, key) = write_leaf(dir.path(), "server", &w.server);
    let mut cfg = ServerConfig::new(&cert, &key);
    cfg.client_ca = Some(root);
    cfg.extra = strings(&["-www", "-verify_return_error"]);
    let server = TongsuoServer::spawn(&t, &cfg).unwrap();

    w.revoked.set(
        &w.server.issuer_der(),
        &w.server.serial(),
        RevocationStatus::Revoked,
    );
    let err = our_client(&w.client_config(true), server.port()).unwrap_err();
    assert!(
        matches!(Refusal::from_rustls(&err), Some(Refusal::Revoked { .. })),
        "{err:?}"
    );
    w.revoked.set(
        &w.server.issuer_der(),
        &w.server.serial(),
        RevocationStatus::Good,
    );

    // A device from another CA: Tongsuo refuses it with an alert.
    let other = Authority::root("other root");
    let stranger = other.issue(&Spec::device("stranger"));
    let client = Arc::new(
        smtrust_tls::client_config(w.verifier(), Some(&stranger.credentials(&[]))).unwrap(),
    );
    let err = our_client(&client, server.port()).unwrap_err();
    assert!(matches!(err, rustls::Error::AlertReceived(_)), "{err:?}");
    assert!(
        server.wait_for(
            "unable to get local issuer certificate",
            Duration::from_secs(5)
        ) || server.output().contains("verify error"),
        "{}",
        server.output()
    );
}

/// What our server saw of one connection.
#[derive(Debug)]
struct Served {
    line: String,
    suite: Option<rustls::CipherSuite>,
    kind: Option<HandshakeKind>,
    device: Option<DeviceIdentity>,
}

/// Serve `n` connections on a thread: handshake, read one line, answer `pong:<line>`, close_notify.
fn serve(
    config: Arc<rustls::ServerConfig>,
    n: usize,
) -> (u16, JoinHandle<Vec<Result<Served, rustls::Error>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        (0..n)
            .map(|_| {
                let (sock, _) = listener.accept().unwrap();
                sock.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, sock);
                let as_tls = |e: std::io::Error| {
                    e.get_ref()
                        .and_then(|i| i.downcast_ref::<rustls::Error>())
                        .cloned()
                        .unwrap_or(rustls::Error::HandshakeNotComplete)
                };
                while tls.conn.is_handshaking() {
                    tls.conn.complete_io(&mut tls.sock).map_err(as_tls)?;
                }
                let mut line = String::new();
                BufReader::new(&mut tls)
                    .read_line(&mut line)
                    .map_err(as_tls)?;
                tls.write_all(format!("pong:{line}").as_bytes())
                    .map_err(as_tls)?;
                tls.conn.send_close_notify();
                let _ = tls.flush();
                Ok(Served {
                    line,
                    suite: tls.conn.negotiated_cipher_suite().map(|s| s.suite()),
                    kind: tls.conn.handshake_kind(),
                    device: DeviceIdentity::from_connection(&tls.conn).ok(),
                })
            })
            .collect()
    });
    (port, h)
}

#[test]
fn tongsuo_client_against_our_server_both_suites_mutual_auth_and_resumption() {
    let Some(t) = require(Tongsuo) else { return };
    let w = World::new();
    let dir = temp_dir().unwrap();
    let root = write_root(dir.path(), "root", &w.root);
    let (dcert, dkey) = write_leaf(dir.path(), "device", &w.device);
    let sess = dir.path().join("sess.pem");
    let (port, h) = serve(
        w.server_config(true, Resumption::Tickets { lifetime_secs: 600 }),
        3,
    );
    let mut outs = Vec::new();
    for (i, suite) in [SUITES[0], SUITES[1], SUITES[1]].into_iter().enumerate() {
        let mut cfg = ClientConfig::new(&root);
        cfg.cert = Some((dcert.clone(), dkey.clone()));
        let sess_flag = if i == 1 {
            "-sess_out"
        } else if i == 2 {
            "-sess_in"
        } else {
            "-ign_eof"
        };
        cfg.extra = strings(&["-ciphersuites", suite, "-servername", "localhost"]);
        if sess_flag != "-ign_eof" {
            cfg.extra
                .extend(strings(&[sess_flag, sess.to_str().unwrap()]));
        }
        let out = tongsuo_client(
            &t,
            port,
            &cfg,
            format!("ping-{i}\n").as_bytes(),
            Duration::from_millis(1500),
        )
        .unwrap();
        outs.push(out.combined());
    }
    let served = h.join().unwrap();
    for (i, (s, out)) in served.into_iter().zip(&outs).enumerate() {
        let s = s.unwrap_or_else(|e| panic!("connection {i}: {e:?}\n{out}"));
        assert_eq!(s.line, format!("ping-{i}\n"));
        assert!(out.contains(&format!("pong:ping-{i}")), "{out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
        assert_eq!(
            s.device.as_ref().map(|d| d.device_id.as_str()),
            Some(DEVICE_ID)
        );
        let want = if i == 0 {
            smtrust_tls::TLS_SM4_GCM_SM3_ID
        } else {
            smtrust_tls::TLS_SM4_CCM_SM3_ID
        };
        assert_eq!(s.suite, Some(want));
        let kind = if i == 2 {
            HandshakeKind::Resumed
        } else {
            HandshakeKind::Full
        };
        assert_eq!(s.kind, Some(kind), "{out}");
    }
    assert!(outs[2].contains("Reused, TLSv1.3"), "{}", outs[2]);
}

#[test]
fn our_server_refuses_revoked_and_unknown_tongsuo_clients() {
    let Some(t) = require(Tongsuo) else { return };
    let w = World::new();
    let dir = temp_dir().unwrap();
    let root = write_root(dir.path(), "root", &w.root);
    let (dcert, dkey) = write_leaf(dir.path(), "device", &w.device);
    let other = Authority::root("other root");
    let (scert, skey) = write_leaf(
        dir.path(),
        "stranger",
        &other.issue(&Spec::device("stranger")),
    );
    w.revoked.set(
        &w.device.issuer_der(),
        &w.device.serial(),
        RevocationStatus::Revoked,
    );
    let (port, h) = serve(w.server_config(true, Resumption::Off), 2);
    let mut outs = Vec::new();
    for (c, k) in [(dcert, dkey), (scert, skey)] {
        let mut cfg = ClientConfig::new(&root);
        cfg.cert = Some((c, k));
        outs.push(
            tongsuo_client(&t, port, &cfg, b"ping\n", Duration::from_millis(1000))
                .unwrap()
                .combined(),
        );
    }
    let served = h.join().unwrap();
    let refusals: Vec<_> = served
        .iter()
        .map(|s| s.as_ref().err().and_then(Refusal::from_rustls))
        .collect();
    assert!(
        matches!(refusals[0], Some(Refusal::Revoked { .. })),
        "{refusals:?}"
    );
    assert_eq!(refusals[1], Some(Refusal::UnknownCa));
    assert!(outs[0].contains("certificate revoked"), "{}", outs[0]);
    assert!(outs[1].contains("unknown ca"), "{}", outs[1]);
    assert!(!outs.iter().any(|o| o.contains("pong")));
}

#[test]
fn tongsuo_client_refuses_our_server_from_an_untrusted_ca() {
    let Some(t) = require(Tongsuo) else { return };
    let w = World::new();
    let dir = temp_dir().unwrap();
    let other = Authority::root("other root");
    let root = write_root(dir.path(), "other", &other);
    let (port, h) = serve(w.server_config(false, Resumption::Off), 1);
    let out = tongsuo_client(
        &t,
        port,
        &ClientConfig::new(&root),
        b"ping\n",
        Duration::from_millis(800),
    )
    .unwrap();
    let served = h.join().unwrap();
    assert!(served[0].is_err(), "{served:?}");
    assert!(
        out.combined()
            .contains("unable to get local issuer certificate"),
        "{}",
        out.combined()
    );
}
