//! Full handshakes with both suites, resumption (tickets and stateful), HelloRetryRequest, key update,
//! close_notify, and the DeviceIdentity of a verified client.

use std::io::Read;
use std::sync::Arc;

use rustls::HandshakeKind;
use smtrust_tls::{
    CURVE_SM2, DeviceIdentity, IdentityError, Resumption, SM_SUITES, TLS_SM4_CCM_SM3,
    TLS_SM4_CCM_SM3_ID, TLS_SM4_GCM_SM3, TLS_SM4_GCM_SM3_ID,
};

use crate::pair::Pair;
use crate::pki::Spec;
use crate::{DEVICE_ID, World};

#[test]
fn mutual_auth_with_each_suite_carries_data_both_ways() {
    let w = World::new();
    for (suite, id) in [
        (TLS_SM4_GCM_SM3, TLS_SM4_GCM_SM3_ID),
        (TLS_SM4_CCM_SM3, TLS_SM4_CCM_SM3_ID),
    ] {
        let creds = w.device.credentials(&[]);
        let client =
            smtrust_tls::client_config_with_suites(w.verifier(), Some(&creds), &[suite]).unwrap();
        let mut p = Pair::new(
            Arc::new(client),
            w.server_config(true, Resumption::Off),
            "localhost",
        );
        p.handshake().unwrap();
        let sides: [&rustls::CommonState; 2] = [&p.client, &p.server];
        for side in sides {
            assert_eq!(side.negotiated_cipher_suite().map(|s| s.suite()), Some(id));
            assert_eq!(
                side.negotiated_key_exchange_group().map(|g| g.name()),
                Some(CURVE_SM2)
            );
            assert_eq!(
                side.protocol_version(),
                Some(rustls::ProtocolVersion::TLSv1_3)
            );
        }
        assert_eq!(p.client_to_server(b"ping"), b"ping");
        assert_eq!(p.server_to_client(b"pong"), b"pong");
    }
}

#[test]
fn device_identity_from_verified_client_certificate() {
    let w = World::new();
    let mut p = Pair::new(
        w.client_config(true),
        w.server_config(true, Resumption::Off),
        "localhost",
    );
    p.handshake().unwrap();
    let id = DeviceIdentity::from_connection(&p.server).unwrap();
    assert_eq!(id.device_id.as_str(), DEVICE_ID);
    assert_eq!(id.serial, w.device.serial());
    assert_eq!(id.issuer_der, w.device.issuer_der());
    assert!(id.issuer.contains("CN=smtrust test root"), "{}", id.issuer);
    assert_eq!(
        id.fingerprint.0,
        smtrust_crypto::sm3::digest(w.device.cert.as_ref())
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(id.not_after.as_secs() > now + 300 * 86400);
}

#[test]
fn device_identity_refuses_ambiguous_and_anonymous_certificates() {
    let w = World::new();
    let mut spec = Spec::device("dev-a");
    spec.subject = "CN=dev-a,serialNumber=dev-b".into();
    let two = w.root.issue(&spec);
    assert!(matches!(
        DeviceIdentity::from_certificate(&two.cert),
        Err(IdentityError::Conflicting { .. })
    ));
    let mut spec = Spec::device("x");
    spec.subject = "O=nobody".into();
    spec.uris.clear();
    let none = w.root.issue(&spec);
    assert_eq!(
        DeviceIdentity::from_certificate(&none.cert),
        Err(IdentityError::NoDeviceId)
    );
    let mut spec = Spec::device("bad id/with slash");
    spec.subject = "O=x".into();
    let bad = w.root.issue(&spec);
    assert!(matches!(
        DeviceIdentity::from_certificate(&bad.cert),
        Err(IdentityError::InvalidDeviceId(_))
    ));
    // A server without client auth has no device identity to give.
    let mut p = Pair::new(
        w.client_config(false),
        w.server_config(false, Resumption::Off),
        "localhost",
    );
    p.handshake().unwrap();
    assert!(p.server.peer_certificates().is_none());
    assert_eq!(
        DeviceIdentity::from_connection(&p.server),
        Err(IdentityError::NoPeerCertificate)
    );
}

fn resumes(resumption: Resumption) -> (Option<HandshakeKind>, Option<HandshakeKind>) {
    let w = World::new();
    let server = w.server_config(true, resumption);
    let client = w.client_config(true);
    let mut first = Pair::new(client.clone(), server.clone(), "localhost");
    first.handshake().unwrap();
    assert_eq!(first.client_to_server(b"one"), b"one");
    let mut second = Pair::new(client, server, "localhost");
    second.handshake().unwrap();
    assert_eq!(second.client_to_server(b"two"), b"two");
    // A resumed session still carries the client's identity.
    assert_eq!(
        DeviceIdentity::from_connection(&second.server)
            .unwrap()
            .device_id
            .as_str(),
        DEVICE_ID
    );
    (
        first.server.handshake_kind(),
        second.server.handshake_kind(),
    )
}

#[test]
fn resumption_with_sm4_gcm_tickets() {
    let (a, b) = resumes(Resumption::Tickets {
        lifetime_secs: 3600,
    });
    assert_eq!(a, Some(HandshakeKind::Full));
    assert_eq!(b, Some(HandshakeKind::Resumed));
}

#[test]
fn resumption_stateful() {
    let (a, b) = resumes(Resumption::Stateful { capacity: 64 });
    assert_eq!(a, Some(HandshakeKind::Full));
    assert_eq!(b, Some(HandshakeKind::Resumed));
}

#[test]
fn resumption_off_means_full_handshakes() {
    let (a, b) = resumes(Resumption::Off);
    assert_eq!(
        (a, b),
        (Some(HandshakeKind::Full), Some(HandshakeKind::Full))
    );
}

#[test]
fn hello_retry_request_when_client_guesses_another_group_first() {
    let w = World::new();
    // A client that puts X25519 first: its key share is for X25519, the SM server asks again for curveSM2.
    let mut provider = smtrust_tls::provider();
    provider
        .kx_groups
        .insert(0, rustls::crypto::ring::kx_group::X25519);
    assert!(matches!(
        smtrust_tls::check_sm_coupling(&provider),
        Err(smtrust_tls::ConfigError::SmCouplingBroken { .. })
    ));
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(smtrust_tls::verify::SmServerVerifier::new(
            w.verifier(),
        )))
        .with_no_client_auth();
    let mut p = Pair::new(
        Arc::new(client),
        w.server_config(false, Resumption::Off),
        "localhost",
    );
    p.handshake().unwrap();
    assert_eq!(
        p.server.handshake_kind(),
        Some(HandshakeKind::FullWithHelloRetryRequest)
    );
    assert_eq!(
        p.client.negotiated_key_exchange_group().map(|g| g.name()),
        Some(CURVE_SM2)
    );
    assert_eq!(p.client_to_server(b"after hrr"), b"after hrr");
}

#[test]
fn key_update_both_directions_keeps_data_flowing() {
    let w = World::new();
    let mut p = Pair::new(
        w.client_config(true),
        w.server_config(true, Resumption::Off),
        "localhost",
    );
    p.handshake().unwrap();
    for i in 0..3u8 {
        p.client.refresh_traffic_keys().unwrap();
        assert_eq!(p.client_to_server(&[i; 100]), vec![i; 100]);
        p.server.refresh_traffic_keys().unwrap();
        assert_eq!(p.server_to_client(&[i; 200]), vec![i; 200]);
    }
}

#[test]
fn close_notify_gives_clean_eof() {
    let w = World::new();
    let mut p = Pair::new(
        w.client_config(true),
        w.server_config(true, Resumption::Off),
        "localhost",
    );
    p.handshake().unwrap();
    assert_eq!(p.client_to_server(b"last words"), b"last words");
    p.client.send_close_notify();
    p.round().unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        p.server.reader().read(&mut buf).unwrap(),
        0,
        "clean EOF after close_notify"
    );
    p.server.send_close_notify();
    p.round().unwrap();
    assert_eq!(p.client.reader().read(&mut buf).unwrap(), 0);
}

#[test]
fn all_sm_suites_are_offered_gcm_first() {
    assert_eq!(
        SM_SUITES.map(|s| s.suite()),
        [TLS_SM4_GCM_SM3_ID, TLS_SM4_CCM_SM3_ID]
    );
}
