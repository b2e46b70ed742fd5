//! Interop with GmSSL 3.1.1's `tls13_client` (TLS_SM4_GCM_SM3 only, no SNI). Two GmSSL quirks are recorded here:
//! it aborts on the TLS 1.3 middlebox ChangeCipherSpec rustls servers always send (we can drop it:
//! [`smtrust_tls::StripMiddleboxCcs`]), and it wants one handshake message per record (we cannot, see below).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use smtrust_test_support::{Gmssl, GmsslClientCert, gmssl_tls13_client, require, temp_dir};
use smtrust_tls::{DeviceIdentity, Resumption, StripMiddleboxCcs};

use crate::tongsuo::write_root;
use crate::{DEVICE_ID, World};

/// One connection: handshake (optionally without the dummy CCS), read a line, answer, close.
fn serve_one(
    cfg: Arc<rustls::ServerConfig>,
    strip_ccs: bool,
) -> (
    u16,
    JoinHandle<Result<(String, Option<DeviceIdentity>), String>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (sock, _) = listener.accept().map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut conn = rustls::ServerConnection::new(cfg).unwrap();
        let mut rd: TcpStream = sock.try_clone().unwrap();
        let mut wr = StripMiddleboxCcs::new(sock);
        let mut line = Vec::new();
        loop {
            while conn.wants_write() {
                if strip_ccs {
                    conn.write_tls(&mut wr).map_err(|e| e.to_string())?;
                } else {
                    conn.write_tls(wr.get_mut()).map_err(|e| e.to_string())?;
                }
            }
            if !conn.is_handshaking() {
                let mut buf = [0u8; 256];
                match conn.reader().read(&mut buf) {
                    Ok(n) => line.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e.to_string()),
                }
                if line.contains(&b'\n') {
                    break;
                }
            }
            if conn.read_tls(&mut rd).map_err(|e| e.to_string())? == 0 {
                return Err("peer closed".into());
            }
            conn.process_new_packets().map_err(|e| format!("{e:?}"))?;
        }
        let mut reply = b"pong:".to_vec();
        reply.extend_from_slice(&line);
        conn.writer().write_all(&reply).unwrap();
        conn.send_close_notify();
        while conn.wants_write() {
            let _ = conn.write_tls(&mut wr);
        }
        let id = DeviceIdentity::from_connection(&conn).ok();
        Ok((String::from_utf8_lossy(&line).into_owned(), id))
    });
    (port, h)
}

/// `<name>.pem` and the GmSSL-readable encrypted key `<name>.gm.pem` (password `test-pass`).
pub fn gmssl_key(dir: &std::path::Path, name: &str, leaf: &crate::pki::Leaf) -> GmsslClientCert {
    let (cert, _) = crate::tongsuo::write_leaf(dir, name, leaf);
    let key = dir.join(format!("{name}.gm.pem"));
    let pem = smtrust_crypto::pem::encode_encrypted_private_key(
        &leaf.secret,
        b"test-pass",
        smtrust_crypto::pkcs8::KdfPrf::HmacSm3Gmssl,
    )
    .unwrap();
    std::fs::write(&key, pem).unwrap();
    GmsslClientCert {
        cert,
        key,
        pass: "test-pass".into(),
    }
}

/// With the dummy CCS dropped, GmSSL derives the same handshake keys (curveSM2 ECDH, HKDF-SM3) and decrypts
/// our first SM4-GCM record, then stops. GmSSL's `tls13_do_connect` (src/tls13.c) reads one record per
/// handshake message and `tls_record_get_handshake` (src/tls.c) requires the record to hold exactly one
/// (`handshake_len != handshake_datalen` fails). rustls 0.23's server builds EncryptedExtensions,
/// CertificateRequest, Certificate, CertificateVerify and Finished into one `HandshakeFlightTls13`
/// (server/tls13.rs), whose `finish` (common_state.rs) sends them as one `MessagePayload::HandshakeFlight`,
/// i.e. one record (RFC 8446 §5.1 allows this). Nothing in rustls 0.23's configuration changes it:
/// `max_fragment_size` (32..=16389 bytes) cuts the flight into equal records regardless of message boundaries,
/// and the records are encrypted before any transport wrapper sees them. Tongsuo completes (tongsuo.rs).
#[test]
fn gmssl_quirk_client_wants_one_handshake_message_per_record() {
    let Some(g) = require(Gmssl) else { return };
    let w = World::new();
    let dir = temp_dir().unwrap();
    let root = write_root(dir.path(), "root", &w.root);
    let client_cert = gmssl_key(dir.path(), "device", &w.device);
    let (port, h) = serve_one(w.server_config(true, Resumption::Off), true);
    let out = gmssl_tls13_client(
        &g,
        port,
        &root,
        Some(&client_cert),
        b"ping-from-gmssl
",
        Duration::from_millis(1000),
    )
    .unwrap();
    let served = h.join().unwrap();
    let text = out.combined();
    assert!(
        text.contains("generate handshake secrets") && text.contains("recv {EncryptedExtensions}"),
        "{text}"
    );
    // Decryption succeeded (no bad_record_mac); the parse of the coalesced flight failed.
    assert!(!text.contains("tls13_record_decrypt"), "{text}");
    assert!(
        text.contains("tls_record_get_handshake()")
            && text.contains("tls13_record_get_handshake_encrypted_extensions()"),
        "{text}"
    );
    assert_eq!(
        served.unwrap_err(),
        format!(
            "{:?}",
            rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure)
        )
    );
    let _ = DEVICE_ID;
}

#[test]
fn gmssl_quirk_client_aborts_on_the_middlebox_ccs() {
    let Some(g) = require(Gmssl) else { return };
    let w = World::new();
    let dir = temp_dir().unwrap();
    let root = write_root(dir.path(), "root", &w.root);
    let (port, h) = serve_one(w.server_config(false, Resumption::Off), false);
    let out =
        gmssl_tls13_client(&g, port, &root, None, b"ping\n", Duration::from_millis(800)).unwrap();
    let r = h.join().unwrap();
    assert!(
        r.is_err(),
        "GmSSL completed despite the CCS (quirk fixed?): {r:?}\n{}",
        out.combined()
    );
    // It never gets to EncryptedExtensions: the dummy CCS stops it right after ServerHello.
    assert!(
        !out.combined().contains("recv {EncryptedExtensions}")
            || out.combined().contains("bad_record_mac")
            || out.combined().contains("tls13_record_decrypt"),
        "{}",
        out.combined()
    );
}
