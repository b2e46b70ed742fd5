//! One listener for SM and international clients (Acceptor + DualConfig), the downgrade refusal, and the
//! first-bytes sniff that tells TLS from TLCP.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::Acceptor;
use smtrust_test_support::{Openssl, require, temp_dir};
use smtrust_tls::{
    DualConfig, Protocol, Refusal, Resumption, SniffError, Stack, TLS_SM4_GCM_SM3_ID, sniff,
};

use crate::World;

/// The first flight a client sends.
fn client_hello(cfg: Arc<rustls::ClientConfig>) -> (rustls::ClientConnection, Vec<u8>) {
    let mut c = rustls::ClientConnection::new(cfg, "localhost".try_into().unwrap()).unwrap();
    let mut out = Vec::new();
    c.write_tls(&mut out).unwrap();
    (c, out)
}

fn accept(
    dual: &DualConfig,
    hello: &[u8],
) -> Result<(Stack, rustls::ServerConnection), Box<smtrust_tls::Refused>> {
    let mut acc = Acceptor::default();
    acc.read_tls(&mut &hello[..]).unwrap();
    let accepted = acc
        .accept()
        .map_err(|(e, _)| e)
        .unwrap()
        .expect("whole ClientHello");
    dual.accept(accepted)
}

/// Finish a handshake between an accepted server connection and its client.
fn finish(
    mut client: rustls::ClientConnection,
    mut server: rustls::ServerConnection,
) -> (rustls::ClientConnection, rustls::ServerConnection) {
    for _ in 0..6 {
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        client.read_tls(&mut &buf[..]).unwrap();
        client.process_new_packets().unwrap();
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        server.read_tls(&mut &buf[..]).unwrap();
        server.process_new_packets().unwrap();
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    (client, server)
}

fn international(
    dir: &std::path::Path,
) -> Option<(Arc<rustls::ServerConfig>, CertificateDer<'static>)> {
    let openssl = require(Openssl)?;
    let (key, cert) = (dir.join("p256.key"), dir.join("p256.pem"));
    openssl
        .run_ok([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-days",
            "2",
            "-keyout",
            key.to_str()?,
            "-out",
            cert.to_str()?,
        ])
        .expect("P-256 certificate");
    let cert = CertificateDer::from_pem_file(&cert).unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let cfg = smtrust_tls::international_server_config(vec![cert.clone()], key).unwrap();
    Some((Arc::new(cfg), cert))
}

#[test]
fn sm_and_international_clients_on_one_listener() {
    let w = World::new();
    let dir = temp_dir().unwrap();
    let Some((intl, p256)) = international(dir.path()) else {
        return;
    };
    let dual = DualConfig::new(w.server_config(true, Resumption::Off), Some(intl));

    let (client, hello) = client_hello(w.client_config(true));
    assert_eq!(sniff(&hello), Ok(Protocol::Tls));
    let (stack, server) = accept(&dual, &hello).unwrap();
    assert_eq!(stack, Stack::Sm);
    let (_, server) = finish(client, server);
    assert_eq!(
        server.negotiated_cipher_suite().map(|s| s.suite()),
        Some(TLS_SM4_GCM_SM3_ID)
    );
    assert!(smtrust_tls::DeviceIdentity::from_connection(&server).is_ok());

    let mut roots = rustls::RootCertStore::empty();
    roots.add(p256).unwrap();
    let std_client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let (client, hello) = client_hello(Arc::new(std_client));
    let (stack, server) = accept(&dual, &hello).unwrap();
    assert_eq!(stack, Stack::International);
    let (_, server) = finish(client, server);
    assert!(!smtrust_tls::is_sm_suite(
        server.negotiated_cipher_suite().unwrap().suite()
    ));
}

#[test]
fn sm_required_refuses_a_downgrade_with_an_alert() {
    let w = World::new();
    let dual = DualConfig::new(w.server_config(false, Resumption::Off), None);
    let std_client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let (mut client, hello) = client_hello(Arc::new(std_client));
    let refused = accept(&dual, &hello).expect_err("must refuse");
    assert!(
        matches!(
            &refused.error,
            smtrust_tls::Error::Refused(Refusal::SmRequired)
        ),
        "{:?}",
        refused.error
    );
    let mut alert = Vec::new();
    refused.alert.expect("alert").write_all(&mut alert).unwrap();
    client.read_tls(&mut &alert[..]).unwrap();
    assert_eq!(
        client.process_new_packets().unwrap_err(),
        rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure)
    );
}

#[test]
fn sniff_tells_tls_from_tlcp() {
    // TLCP ClientHello record: handshake, version 0x0101, length, ClientHello (GB/T 38636 §6.4.5).
    assert_eq!(
        sniff(&[0x16, 0x01, 0x01, 0x00, 0x50, 0x01, 0x00]),
        Ok(Protocol::Tlcp)
    );
    assert_eq!(
        sniff(&[0x16, 0x03, 0x01, 0x00, 0x50, 0x01]),
        Ok(Protocol::Tls)
    );
    assert_eq!(
        sniff(&[0x16, 0x03]),
        Err(SniffError::Incomplete { needed: 6 })
    );
    assert!(matches!(
        sniff(b"GET / HTTP/1.1\r\n"),
        Err(SniffError::NotClientHello { .. })
    ));
    assert!(matches!(
        sniff(&[0x17, 0x03, 0x03, 0x00, 0x10, 0x01]),
        Err(SniffError::NotClientHello { .. })
    ));
    assert!(matches!(
        sniff(&[0x16, 0x03, 0x03, 0xff, 0xff, 0x01]),
        Err(SniffError::NotClientHello { .. })
    ));
}

/// Found by the `sniff` fuzz target: rustls accepts a ClientHello in a record of any 0x03XX version (RFC 8446
/// §5.1: the field MUST be ignored), so the listener must not refuse what the stack would serve.
#[test]
fn sniff_ignores_the_record_version_as_rustls_does() {
    let mut hello = include_bytes!("../../fuzz/seeds/sniff/tongsuo-tls13-sm.bin").to_vec();
    for minor in [0x00, 0x04, 0x09, 0xff] {
        hello[2] = minor;
        let mut acceptor = Acceptor::default();
        acceptor.read_tls(&mut hello.as_slice()).unwrap();
        let accepted = acceptor.accept().unwrap().expect("a whole ClientHello");
        assert!(smtrust_tls::offers_sm(&accepted.client_hello()));
        assert_eq!(
            sniff(&hello),
            Ok(Protocol::Tls),
            "record version 03{minor:02x}"
        );
    }
}

proptest::proptest! {
    #[test]
    fn sniff_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
        let _ = sniff(&bytes);
    }
}
