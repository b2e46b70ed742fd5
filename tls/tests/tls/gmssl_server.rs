//! Our client against GmSSL 3.1.1's `tls13_server` (an echo server; TLS_SM4_GCM_SM3 only).
//!
//! What GmSSL's `tls13_do_accept` (src/tls13.c) does that matters here: it never echoes the client's
//! legacy_session_id (rustls 0.23's TLS 1.3 client does not check the echo, so that is harmless); it reads the
//! client's second flight with one `tls_record_recv` + `tls13_record_decrypt` per handshake message, so the dummy
//! ChangeCipherSpec rustls clients send before that flight is "decrypted" and fails (bad_record_mac), and a
//! record holding more than one handshake message fails `tls_record_get_handshake`'s
//! `handshake_len != handshake_datalen` check.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtrust_test_support::{Gmssl, Tool, free_port, require, temp_dir};
use smtrust_tls::StripMiddleboxCcs;

use crate::World;
use crate::gmssl::gmssl_key;
use crate::tongsuo::write_root;

/// `gmssl tls13_server`, killed (by its PID) on drop. It binds 0.0.0.0 (no option to change that), so it runs
/// only as long as the test needs it.
struct GmsslServer {
    child: Child,
    port: u16,
    stderr: std::path::PathBuf,
}

impl GmsslServer {
    fn spawn(g: &Tool, dir: &Path, w: &World, client_ca: bool) -> Self {
        let key = gmssl_key(dir, "server", &w.server);
        let port = free_port().unwrap();
        let stderr = dir.join("gmssl-server.err");
        let mut cmd = g.command();
        cmd.args(["tls13_server", "-port", &port.to_string()])
            .arg("-cert")
            .arg(&key.cert)
            .arg("-key")
            .arg(&key.key)
            .args(["-pass", &key.pass]);
        if client_ca {
            cmd.arg("-cacert")
                .arg(write_root(dir, "client-root", &w.root));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            port,
            stderr,
        };
        // A probe connection would be taken as the one client it handshakes with: watch the socket table.
        let start = Instant::now();
        while !listening(port) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "GmSSL never listened: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for GmsslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether /proc/net/tcp lists a socket in LISTEN (0A) state on `port`.
fn listening(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let needle = format!(":{port:04X} ");
    table
        .lines()
        .any(|l| l.contains(&needle) && l.split_whitespace().nth(3) == Some("0A"))
}

/// Handshake, send `line`, wait for the echo. `strip_ccs` drops the dummy CCS from our output.
fn our_client(
    cfg: Arc<rustls::ClientConfig>,
    port: u16,
    strip_ccs: bool,
    line: &[u8],
) -> Result<Vec<u8>, rustls::Error> {
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let mut conn = rustls::ClientConnection::new(cfg, "localhost".try_into().unwrap()).unwrap();
    conn.writer().write_all(line).unwrap();
    let mut rd = sock.try_clone().unwrap();
    let mut wr = StripMiddleboxCcs::new(sock);
    let mut echo = Vec::new();
    loop {
        while conn.wants_write() {
            let r = if strip_ccs {
                conn.write_tls(&mut wr)
            } else {
                conn.write_tls(wr.get_mut())
            };
            r.map_err(|e| panic!("write: {e}")).unwrap();
        }
        let mut buf = [0u8; 256];
        match conn.reader().read(&mut buf) {
            Ok(n) => echo.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
        if echo.ends_with(b"\n") {
            return Ok(echo);
        }
        match conn.read_tls(&mut rd) {
            Ok(0) => return Err(rustls::Error::HandshakeNotComplete),
            Ok(_) => {}
            Err(e) => panic!("read_tls: {e}"),
        }
        conn.process_new_packets()?;
    }
}

/// Without a client certificate our second flight is Finished alone, so once the dummy CCS is dropped
/// ([`StripMiddleboxCcs`] works on a client's output too) GmSSL completes and echoes our line. With the CCS,
/// GmSSL decrypts it as if it were the protected Finished and fails (tls13.c `tls13_record_decrypt`, then a
/// plaintext bad_record_mac alert that rustls, already under handshake keys, reports as `DecryptError`).
#[test]
fn gmssl_server_our_client_without_cert() {
    let Some(g) = require(Gmssl) else { return };
    let w = World::new();
    let dir = temp_dir().unwrap();

    let server = GmsslServer::spawn(&g, dir.path(), &w, false);
    let echo = our_client(
        w.client_config(false),
        server.port,
        true,
        b"ping-from-smtrust\n",
    );
    assert_eq!(
        echo,
        Ok(b"ping-from-smtrust\n".to_vec()),
        "{}",
        server.log()
    );
    assert!(
        server.log().contains("Connection Established!"),
        "{}",
        server.log()
    );
    drop(server);

    let server = GmsslServer::spawn(&g, dir.path(), &w, false);
    let err = our_client(w.client_config(false), server.port, false, b"ping\n");
    assert_eq!(err, Err(rustls::Error::DecryptError), "{}", server.log());
    let log = server.log();
    assert!(
        log.contains("tls13_gcm_decrypt()") && log.contains("tls13_record_decrypt()"),
        "{log}"
    );
    assert!(!log.contains("Connection Established!"), "{log}");
}

/// With a client certificate rustls 0.23 sends Certificate, CertificateVerify and Finished in ONE encrypted
/// record (client/tls13.rs builds them into a `HandshakeFlightTls13`, whose `finish` sends the concatenation as
/// one `MessagePayload::HandshakeFlight`). GmSSL decrypts that record, then `tls_record_get_handshake` (tls.c)
/// refuses it: the record holds more bytes than the first message's length (`handshake_len !=
/// handshake_datalen`). Same cause as the GmSSL client against our server (gmssl.rs). No CCS stripping helps;
/// `max_fragment_size` cuts records at a fixed size (at least 32 bytes with overhead), not at message
/// boundaries, so it cannot produce one message per record either.
#[test]
fn gmssl_quirk_server_wants_one_handshake_message_per_record() {
    let Some(g) = require(Gmssl) else { return };
    let w = World::new();
    let dir = temp_dir().unwrap();

    let server = GmsslServer::spawn(&g, dir.path(), &w, true);
    let err = our_client(w.client_config(true), server.port, true, b"ping\n");
    assert_eq!(err, Err(rustls::Error::DecryptError), "{}", server.log());
    let log = server.log();
    // Decryption succeeded; the length check on the coalesced flight failed.
    assert!(!log.contains("tls13_record_decrypt()"), "{log}");
    assert!(
        log.contains("tls_record_get_handshake()")
            && log.contains("tls13_record_get_handshake_certificate()"),
        "{log}"
    );
    assert!(!log.contains("Connection Established!"), "{log}");

    // And with the dummy CCS left in, GmSSL fails earlier, on the CCS.
    let server = GmsslServer::spawn(&g, dir.path(), &w, true);
    let err = our_client(w.client_config(true), server.port, false, b"ping\n");
    assert_eq!(err, Err(rustls::Error::DecryptError), "{}", server.log());
    let log = server.log();
    assert!(log.contains("tls13_record_decrypt()"), "{log}");
    assert!(
        !log.contains("tls13_record_get_handshake_certificate()"),
        "{log}"
    );
}
