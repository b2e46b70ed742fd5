//! Every refusal path, in process: the refusing side's typed [`Refusal`] and the alert the other side gets.

use std::sync::Arc;

use rustls::AlertDescription;
use smtrust_crypto::sm2::{CertId, Sm2PublicKey, Sm2Signature, Sm2Signer, Sm2SigningKey, Tls13Id};
use smtrust_tls::{ClientAuth, Credentials, Refusal, Resumption, RevocationStatus, RevokedSet};

use crate::pair::{Failed, Pair};
use crate::pki::{Authority, CLIENT_AUTH, SERVER_AUTH, Spec, validity_days};
use crate::{World, verifier_for};

/// The client refused the server: its refusal, and the alert the server received.
fn client_refuses(p: &mut Pair) -> Refusal {
    let err = p.handshake().expect_err("client must refuse");
    let Failed::Client(e) = err else {
        panic!("server failed first: {err:?}")
    };
    let _ = p.round();
    Refusal::from_rustls(&e).unwrap_or_else(|| panic!("not a typed refusal: {e:?}"))
}

/// The server refused the client.
fn server_refuses(p: &mut Pair) -> (Refusal, Option<rustls::Error>) {
    let err = p.handshake().expect_err("server must refuse");
    let Failed::Server(e) = err else {
        panic!("client failed first: {err:?}")
    };
    let peer = p.round().err().and_then(|f| f.client().cloned());
    (
        Refusal::from_rustls(&e).unwrap_or_else(|| panic!("not a typed refusal: {e:?}")),
        peer,
    )
}

fn server_with(
    _w: &World,
    leaf: &crate::pki::Leaf,
    chain_tail: &[rustls::pki_types::CertificateDer<'static>],
) -> Arc<rustls::ServerConfig> {
    Arc::new(
        smtrust_tls::server_config(
            &leaf.credentials(chain_tail),
            ClientAuth::None,
            Resumption::Off,
        )
        .unwrap(),
    )
}

fn client_with(w: &World, leaf: &crate::pki::Leaf) -> Arc<rustls::ClientConfig> {
    Arc::new(smtrust_tls::client_config(w.verifier(), Some(&leaf.credentials(&[]))).unwrap())
}

fn alert(e: Option<rustls::Error>) -> Option<AlertDescription> {
    match e {
        Some(rustls::Error::AlertReceived(a)) => Some(a),
        _ => None,
    }
}

#[test]
fn unknown_ca_both_sides() {
    let w = World::new();
    let other = Authority::root("other root");
    // Client trusts another root.
    let client =
        Arc::new(smtrust_tls::client_config(verifier_for(&other, &w.revoked), None).unwrap());
    let mut p = Pair::new(client, w.server_config(false, Resumption::Off), "localhost");
    assert_eq!(client_refuses(&mut p), Refusal::UnknownCa);
    // Server gets a client certificate from another CA.
    let stranger = other.issue(&Spec::device("stranger"));
    let mut p = Pair::new(
        client_with(&w, &stranger),
        w.server_config(true, Resumption::Off),
        "localhost",
    );
    let (r, peer) = server_refuses(&mut p);
    assert_eq!(r, Refusal::UnknownCa);
    assert_eq!(alert(peer), Some(AlertDescription::UnknownCA));
}

#[test]
fn revoked_and_suspended_client_certificates() {
    let w = World::new();
    let server = w.server_config(true, Resumption::Off);
    let set: &RevokedSet = &w.revoked;
    set.set(
        &w.device.issuer_der(),
        &w.device.serial(),
        RevocationStatus::Revoked,
    );
    let mut p = Pair::new(w.client_config(true), server.clone(), "localhost");
    let (r, peer) = server_refuses(&mut p);
    // The alert is certificate_revoked; rustls's Revoked variant carries no serial (the verifier logs it).
    assert!(matches!(r, Refusal::Revoked { .. }), "{r:?}");
    assert_eq!(alert(peer), Some(AlertDescription::CertificateRevoked));

    set.set(
        &w.device.issuer_der(),
        &w.device.serial(),
        RevocationStatus::Suspended,
    );
    let mut p = Pair::new(w.client_config(true), server.clone(), "localhost");
    assert_eq!(
        server_refuses(&mut p).0,
        Refusal::Suspended {
            serial: hex::encode(w.device.serial())
        }
    );

    // Lifting the hold lets the device back in: the hook is asked on every handshake.
    set.set(
        &w.device.issuer_der(),
        &w.device.serial(),
        RevocationStatus::Good,
    );
    Pair::new(w.client_config(true), server, "localhost")
        .handshake()
        .unwrap();
}

#[derive(Debug)]
struct NoAnswer;
impl smtrust_tls::RevocationCheck for NoAnswer {
    fn status(
        &self,
        _: &smtrust_tls::CertRef<'_>,
        _: rustls::pki_types::UnixTime,
    ) -> RevocationStatus {
        RevocationStatus::Unknown
    }
}

#[test]
fn unknown_revocation_status_fails_closed_unless_allowed() {
    let w = World::new();
    for (policy, ok) in [
        (smtrust_tls::UnknownStatus::Refuse, false),
        (smtrust_tls::UnknownStatus::Allow, true),
    ] {
        let roots = smtrust_tls::TrustRoots::new(&[w.root.cert()]).unwrap();
        let v = smtrust_tls::Sm2ChainVerifier::new(roots, Arc::new(NoAnswer), policy);
        let client = Arc::new(smtrust_tls::client_config(v, None).unwrap());
        let mut p = Pair::new(client, w.server_config(false, Resumption::Off), "localhost");
        if ok {
            p.handshake().unwrap();
        } else {
            assert!(matches!(
                client_refuses(&mut p),
                Refusal::RevocationUnknown { .. }
            ));
        }
    }
}

#[test]
fn revoked_server_certificate() {
    let w = World::new();
    w.revoked.set(
        &w.server.issuer_der(),
        &w.server.serial(),
        RevocationStatus::Revoked,
    );
    let mut p = Pair::new(
        w.client_config(false),
        w.server_config(false, Resumption::Off),
        "localhost",
    );
    assert!(matches!(client_refuses(&mut p), Refusal::Revoked { .. }));
}

#[test]
fn expired_and_not_yet_valid_certificates() {
    let w = World::new();
    let mut spec = Spec::server("localhost");
    spec.validity = validity_days(-30, -1);
    let expired = w.root.issue(&spec);
    let mut p = Pair::new(
        w.client_config(false),
        server_with(&w, &expired, &[]),
        "localhost",
    );
    assert!(matches!(client_refuses(&mut p), Refusal::Expired { .. }));

    let mut spec = Spec::device("late");
    spec.validity = validity_days(2, 30);
    let early = w.root.issue(&spec);
    let mut p = Pair::new(
        client_with(&w, &early),
        w.server_config(true, Resumption::Off),
        "localhost",
    );
    assert_eq!(server_refuses(&mut p).0, Refusal::NotYetValid);
}

#[test]
fn wrong_key_usage_and_extended_key_usage() {
    let w = World::new();
    // A client certificate used as a server certificate: EKU clientAuth only.
    let mut spec = Spec::server("localhost");
    spec.eku = vec![CLIENT_AUTH];
    let wrong_eku = w.root.issue(&spec);
    let mut p = Pair::new(
        w.client_config(false),
        server_with(&w, &wrong_eku, &[]),
        "localhost",
    );
    assert!(matches!(client_refuses(&mut p), Refusal::WrongKeyUsage(_)));

    // A device certificate whose KeyUsage lacks digitalSignature.
    let mut spec = Spec::device("enc-only");
    spec.key_usage = x509_cert::ext::pkix::KeyUsages::KeyEncipherment.into();
    let wrong_ku = w.root.issue(&spec);
    let mut p = Pair::new(
        client_with(&w, &wrong_ku),
        w.server_config(true, Resumption::Off),
        "localhost",
    );
    assert_eq!(
        server_refuses(&mut p).0,
        Refusal::WrongKeyUsage("key usage lacks digitalSignature")
    );
    let _ = SERVER_AUTH;
}

#[test]
fn certificate_signed_with_the_empty_id_is_named() {
    let w = World::new();
    let mut spec = Spec::server("localhost");
    spec.empty_id = true;
    let openssl_style = w.root.issue(&spec);
    let mut p = Pair::new(
        w.client_config(false),
        server_with(&w, &openssl_style, &[]),
        "localhost",
    );
    assert_eq!(
        client_refuses(&mut p),
        Refusal::WrongDistinguishingId("certificate signed with the empty ID")
    );
}

/// Claims the TLS 1.3 ID but signs with the certificate ID: what libsmx does in CertificateVerify.
struct CertIdPretendingTls(Sm2SigningKey<CertId>);
impl Sm2Signer<Tls13Id> for CertIdPretendingTls {
    fn public_key(&self) -> &Sm2PublicKey {
        self.0.public_key()
    }
    fn sign(&self, msg: &[u8]) -> Result<Sm2Signature, smtrust_crypto::Error> {
        self.0.sign(msg)
    }
}

#[test]
fn certificate_verify_with_the_certificate_id_is_refused_both_sides() {
    let w = World::new();
    let bad = Arc::new(CertIdPretendingTls(
        w.server.secret.signing_key(CertId).unwrap(),
    ));
    let creds = Credentials::new(bad, vec![w.server.cert.clone()]).unwrap();
    let server =
        Arc::new(smtrust_tls::server_config(&creds, ClientAuth::None, Resumption::Off).unwrap());
    let mut p = Pair::new(w.client_config(false), server, "localhost");
    assert_eq!(
        client_refuses(&mut p),
        Refusal::WrongDistinguishingId("CertificateVerify signed with the certificate ID")
    );

    let bad = Arc::new(CertIdPretendingTls(
        w.device.secret.signing_key(CertId).unwrap(),
    ));
    let creds = Credentials::new(bad, vec![w.device.cert.clone()]).unwrap();
    let client = Arc::new(smtrust_tls::client_config(w.verifier(), Some(&creds)).unwrap());
    let mut p = Pair::new(client, w.server_config(true, Resumption::Off), "localhost");
    assert!(matches!(
        server_refuses(&mut p).0,
        Refusal::WrongDistinguishingId(_)
    ));
}

#[test]
fn name_mismatch_path_length_and_name_constraints() {
    let w = World::new();
    let mut p = Pair::new(
        w.client_config(false),
        w.server_config(false, Resumption::Off),
        "other.example",
    );
    assert_eq!(client_refuses(&mut p), Refusal::NameMismatch);

    // root → ica1 (pathLen 0) → ica2 → leaf: ica1 may not have a CA below it.
    let ica1 = w
        .root
        .intermediate(&Spec::ca("CN=ica1,O=smtrust test", Some(0)));
    let ica2 = ica1.intermediate(&Spec::ca("CN=ica2,O=smtrust test", None));
    let leaf = ica2.issue(&Spec::server("localhost"));
    let server = server_with(&w, &leaf, &[ica2.cert(), ica1.cert()]);
    let mut p = Pair::new(w.client_config(false), server, "localhost");
    assert_eq!(client_refuses(&mut p), Refusal::PathLength);

    // An intermediate constrained to example.com issues for localhost.
    let mut spec = Spec::ca("CN=constrained,O=smtrust test", Some(0));
    spec.permitted_dns = Some("example.com");
    let nc = w.root.intermediate(&spec);
    let leaf = nc.issue(&Spec::server("localhost"));
    let mut p = Pair::new(
        w.client_config(false),
        server_with(&w, &leaf, &[nc.cert()]),
        "localhost",
    );
    assert_eq!(client_refuses(&mut p), Refusal::NameConstraint);

    // The same intermediate works for a name inside its subtree (so the refusal above is the constraint).
    let ok = nc.issue(&Spec::server("www.example.com"));
    Pair::new(
        w.client_config(false),
        server_with(&w, &ok, &[nc.cert()]),
        "www.example.com",
    )
    .handshake()
    .unwrap();
}

#[test]
fn missing_client_certificate_when_required() {
    let w = World::new();
    let mut p = Pair::new(
        w.client_config(false),
        w.server_config(true, Resumption::Off),
        "localhost",
    );
    let err = p.handshake().expect_err("must refuse");
    assert!(
        matches!(err.server(), Some(rustls::Error::NoCertificatesPresented)),
        "{err:?}"
    );
}

#[test]
fn optional_client_auth_accepts_anonymous_but_checks_presented_certificates() {
    let w = World::new();
    let cfg = |w: &World| {
        Arc::new(
            smtrust_tls::server_config(
                &w.server.credentials(&[]),
                ClientAuth::Optional(w.verifier()),
                Resumption::Off,
            )
            .unwrap(),
        )
    };
    Pair::new(w.client_config(false), cfg(&w), "localhost")
        .handshake()
        .unwrap();
    w.revoked.set(
        &w.device.issuer_der(),
        &w.device.serial(),
        RevocationStatus::Revoked,
    );
    let mut p = Pair::new(w.client_config(true), cfg(&w), "localhost");
    assert!(matches!(server_refuses(&mut p).0, Refusal::Revoked { .. }));
}

#[test]
fn signer_must_match_the_certificate_and_providers_must_keep_the_coupling() {
    let w = World::new();
    let wrong = w.device.signer();
    assert!(matches!(
        Credentials::new(wrong, vec![w.server.cert.clone()]),
        Err(smtrust_tls::Error::Config(
            smtrust_tls::ConfigError::KeyMismatch
        ))
    ));
    let mut p = smtrust_tls::provider();
    p.cipher_suites
        .push(rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256);
    assert!(smtrust_tls::check_sm_coupling(&p).is_err());
    let r = smtrust_tls::server_config_with_suites(
        &w.server.credentials(&[]),
        ClientAuth::None,
        Resumption::Off,
        &[rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256],
    );
    assert!(matches!(
        r,
        Err(smtrust_tls::Error::Config(
            smtrust_tls::ConfigError::SmCouplingBroken { .. }
        ))
    ));
    assert!(smtrust_tls::check_sm_coupling(&smtrust_tls::provider()).is_ok());
}
