//! The agent enrolls (token, bootstrap certificate) and renews against the EST server of `smtrust-ca`, served
//! over TLS 1.3-SM by `smtrust_tls::serve`, all in process over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures fail loudly

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use smtrust_agent::{Agent, Error, EstServer};
use smtrust_ca::est::{EstConfig, EstState};
use smtrust_ca::revocation::CertStatus;
use smtrust_ca::{
    CaLimits, CaService, DeviceId, IssueRequest, Issuer, IssuerConfig, Namespace, Profiles, Serial,
    SqlStore,
};
use smtrust_crypto::sm2::{CertId, Sm2SecretKey, Tls13Id};
use smtrust_tls::{ClientAuth, Credentials, Resumption, RevokedSet, Sm2ChainVerifier, TrustRoots};
use tokio::sync::oneshot;

#[allow(clippy::disallowed_methods)] // tests read the clock
fn now() -> SystemTime {
    SystemTime::now()
}

fn csr(sk: &Sm2SecretKey, subject: &str) -> Vec<u8> {
    use der::Encode;
    use x509_cert::builder::{Builder, RequestBuilder};
    let signing = sk.signing_key(CertId).unwrap();
    let signer = smtrust_crypto::x509::X509Signer::new(&signing);
    RequestBuilder::new(subject.parse().unwrap())
        .unwrap()
        .build::<_, smtrust_crypto::x509::DerSignature>(&signer)
        .unwrap()
        .to_der()
        .unwrap()
}

fn pem(der: &[u8]) -> String {
    smtrust_ca::authority::pem_cert(der)
}

struct Est {
    state: EstState<SqlStore>,
    root: Vec<u8>,
    inter: Vec<u8>,
    addr: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Est {
    fn svc(&self) -> &CaService<SqlStore> {
        self.state.service()
    }

    fn server(&self) -> EstServer {
        EstServer::new(&self.addr, "est.test", vec![self.root.clone()]).unwrap()
    }

    async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("graceful shutdown")
            .unwrap()
            .unwrap();
    }
}

/// Root → line7 (namespace `ctw-`) over in-memory SQLite; an EST server for line7 on 127.0.0.1.
async fn start() -> Est {
    let svc = CaService::new(
        SqlStore::open_sqlite_memory().await.unwrap(),
        Profiles::default(),
    );
    // The CA is two years old, so certificates issued (and expired) in the past chain to it.
    let t = now() - Duration::from_secs(2 * 365 * 86400);
    let gen_signer = || {
        let sk = Sm2SecretKey::generate().unwrap();
        Arc::new(sk.signing_key(CertId).unwrap())
    };
    let root = Issuer::create_root(
        gen_signer(),
        "CN=agent test root,O=smtrust test,C=CN",
        20 * 365 * 86400,
        CaLimits::path_len(Some(1)),
        Serial::random().unwrap(),
        t,
        IssuerConfig::new("root"),
    )
    .unwrap();
    let mut cfg = IssuerConfig::new("line7");
    cfg.namespace = Namespace::new("ctw-").unwrap();
    let inter = root
        .create_intermediate(
            gen_signer(),
            "CN=agent test line7,O=smtrust test,C=CN",
            10 * 365 * 86400,
            CaLimits::path_len(Some(0)),
            Serial::random().unwrap(),
            t,
            cfg,
        )
        .unwrap();
    let (root_der, inter_der) = (
        root.certificate_der().to_vec(),
        inter.certificate_der().to_vec(),
    );
    svc.add_issuer(root);
    svc.add_issuer(inter);
    // The EST server's TLS certificate (server profile, DNS est.test).
    let server_key = Sm2SecretKey::generate().unwrap();
    let mut req = IssueRequest::new(csr(&server_key, "CN=est.test"), None);
    req.dns_names = vec!["est.test".into()];
    let server_cert = svc.issue("line7", "server", req).await.unwrap();
    let creds = Credentials::new(
        Arc::new(server_key.signing_key(Tls13Id).unwrap()),
        vec![server_cert.der.clone().into(), inter_der.clone().into()],
    )
    .unwrap();
    let verifier = Sm2ChainVerifier::new(
        TrustRoots::new(&[root_der.clone().into()]).unwrap(),
        Arc::new(RevokedSet::new()),
        smtrust_tls::UnknownStatus::Refuse,
    )
    .with_expiry_grace(smtrust_ca::est::DEFAULT_REENROLL_GRACE);
    let tls = smtrust_tls::server_config(&creds, ClientAuth::Optional(verifier), Resumption::Off)
        .unwrap();
    let state = EstState::new(svc, EstConfig::new("line7")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(smtrust_tls::serve::serve(
        listener,
        Arc::new(tls),
        // As the node serves it: EST beside another device route (a stand-in for attestation), behind the
        // guard that lets a peer whose certificate expired within the grace reach only simplereenroll.
        smtrust_ca::est::router(state.clone())
            .route(
                "/attest/v1/challenge",
                axum::routing::post(|| async { "challenge" }),
            )
            .layer(axum::middleware::from_fn(
                smtrust_ca::est::expired_peer_guard,
            )),
        async move {
            let _ = stopped.await;
        },
    ));
    Est {
        state,
        root: root_der,
        inter: inter_der,
        addr,
        stop: Some(stop),
        task,
    }
}

async fn status_of(est: &Est, serial_hex: &str) -> CertStatus {
    let serial: Serial = serial_hex.parse().unwrap();
    est.svc().show(&serial).await.unwrap().unwrap().status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_enroll_replay_and_renew_over_tls13_sm() {
    let est = start().await;
    let dir = smtrust_test_support::temp_dir().unwrap();
    let agent = Agent::open(dir.path().join("dev")).unwrap();
    let id = DeviceId::new("ctw-token-1").unwrap();
    let token = est
        .state
        .mint_token(None, &id, Duration::from_secs(600))
        .await
        .unwrap();

    let st = agent
        .enroll_with_token(&est.server(), id.as_str(), token.as_str())
        .await
        .unwrap();
    let cert = st.certificate.clone().unwrap();
    assert!(cert.matches_key);
    assert_eq!(st.device_id.as_deref(), Some("ctw-token-1"));
    assert_eq!(st.chain_len, 2, "cacerts gives line7 and the root");
    assert!(!cert.renewal_due(now()));
    let leaf = agent.certificate().unwrap().unwrap();
    let ident = smtrust_tls::DeviceIdentity::from_certificate(&leaf.clone().into()).unwrap();
    assert_eq!(ident.device_id.as_str(), "ctw-token-1");
    // Key file is owner-only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(agent.dir().join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The token is single use: a second device directory replaying it is refused, nothing issued.
    let other = Agent::open(dir.path().join("replay")).unwrap();
    match other
        .enroll_with_token(&est.server(), id.as_str(), token.as_str())
        .await
    {
        Err(Error::Refused {
            status, message, ..
        }) => {
            assert_eq!(status, 401);
            assert!(message.contains("already used"), "{message}");
        }
        other => panic!("replay accepted: {other:?}"),
    }
    assert!(other.certificate().unwrap().is_none());

    // Renew with the current certificate: new key, new serial, the old certificate superseded.
    let old_key = std::fs::read(agent.dir().join("key.pem")).unwrap();
    let renewed = agent.renew(&est.server()).await.unwrap();
    let new_cert = renewed.certificate.unwrap();
    assert_ne!(new_cert.serial, cert.serial);
    assert!(new_cert.matches_key);
    assert_ne!(std::fs::read(agent.dir().join("key.pem")).unwrap(), old_key);
    assert!(matches!(
        status_of(&est, &cert.serial).await,
        CertStatus::Revoked { .. }
    ));
    assert_eq!(status_of(&est, &new_cert.serial).await, CertStatus::Active);
    // The superseded certificate no longer authenticates a re-enrollment... (its key is gone from the
    // agent), and renewal is not due for a fresh certificate.
    assert!(
        agent
            .renew_if_due(&est.server(), now())
            .await
            .unwrap()
            .is_none()
    );
    est.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_certificate_enrolls_once() {
    let est = start().await;
    let dir = smtrust_test_support::temp_dir().unwrap();
    let agent = Agent::open(dir.path()).unwrap();
    let id = DeviceId::new("ctw-boot-1").unwrap();
    // At manufacture: a bootstrap identity from the EST bootstrap profile.
    let bkey = Sm2SecretKey::generate().unwrap();
    let boot = est
        .svc()
        .issue(
            "line7",
            "est-bootstrap",
            IssueRequest::new(csr(&bkey, "CN=ctw-boot-1"), Some(id.clone())),
        )
        .await
        .unwrap();
    let key_pem = smtrust_crypto::pem::encode_private_key(&bkey).unwrap();
    let chain_pem = format!("{}{}", pem(&boot.der), pem(&est.inter));
    agent
        .install_bootstrap(chain_pem.as_bytes(), key_pem.as_bytes())
        .unwrap();

    let st = agent
        .enroll_with_bootstrap(&est.server(), id.as_str())
        .await
        .unwrap();
    let cert = st.certificate.unwrap();
    assert!(cert.matches_key);
    assert_eq!(status_of(&est, &cert.serial).await, CertStatus::Active);
    // The bootstrap certificate is retired (superseded) and cannot enroll again.
    assert!(matches!(
        status_of(&est, &boot.serial.to_hex()).await,
        CertStatus::Revoked { .. }
    ));
    let again = Agent::open(dir.path().join("again")).unwrap();
    again
        .install_bootstrap(chain_pem.as_bytes(), key_pem.as_bytes())
        .unwrap();
    match again
        .enroll_with_bootstrap(&est.server(), id.as_str())
        .await
    {
        Err(Error::Refused {
            status, message, ..
        }) => {
            assert_eq!(status, 403, "{message}");
            assert!(message.contains("revoked"), "{message}");
        }
        other => panic!("bootstrap reused: {other:?}"),
    }
    // No authentication at all: 401.
    let anon = Agent::open(dir.path().join("anon")).unwrap();
    anon.ensure_key().unwrap();
    match anon.enroll_with_bootstrap(&est.server(), "ctw-x").await {
        Err(Error::Missing { .. }) => {}
        other => panic!("{other:?}"),
    }
    est.shutdown().await;
}

/// Install in `dir` a device identity for `id` whose certificate expired `ago` before now (signed in the past
/// by line7 and recorded as the device's active certificate). Returns the certificate's serial, hex.
async fn expired_identity(est: &Est, dir: &std::path::Path, id: &str, ago: Duration) -> String {
    let key = Sm2SecretKey::generate().unwrap();
    let profiles = Profiles::default();
    let profile = profiles.get("device").unwrap();
    let signed_at = now() - Duration::from_secs(profile.validity_secs) - ago;
    let vcsr = smtrust_ca::csr::parse_and_verify(&csr(&key, &format!("CN={id}"))).unwrap();
    let serial = Serial::random().unwrap();
    let at = now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let store = est.svc().store();
    use smtrust_ca::Store;
    store.reserve_serials("line7", &[serial], at).await.unwrap();
    let issuer = est.svc().issuer("line7").unwrap();
    let cert = issuer
        .issue(
            profile,
            &vcsr,
            Some(&DeviceId::new(id).unwrap()),
            serial,
            signed_at,
        )
        .unwrap();
    store
        .record_issued(std::slice::from_ref(&cert), at)
        .await
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let key_pem = smtrust_crypto::pem::encode_private_key(&key).unwrap();
    std::fs::write(dir.join("key.pem"), key_pem.as_bytes()).unwrap();
    std::fs::write(dir.join("cert.pem"), pem(&cert.der)).unwrap();
    std::fs::write(
        dir.join("chain.pem"),
        format!("{}{}", pem(&est.inter), pem(&est.root)),
    )
    .unwrap();
    std::fs::write(dir.join("device-id"), id).unwrap();
    cert.serial.to_hex()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificate_renews_within_the_grace_and_does_nothing_else() {
    let est = start().await;
    let dir = smtrust_test_support::temp_dir().unwrap();

    // Expired an hour ago: renewal works (new key, new certificate, the old one superseded).
    let late = dir.path().join("late");
    let old = expired_identity(&est, &late, "ctw-late-1", Duration::from_secs(3600)).await;
    let agent = Agent::open(&late).unwrap();
    assert!(agent.status().unwrap().certificate.unwrap().expired(now()));
    // ...but nothing else: not an attestation challenge, not simpleenroll (403 from the guard).
    let cfg = smtrust_agent::AttestConfig::new("m", "1");
    match agent.attest(&est.server(), &cfg, now()).await {
        Err(Error::Refused {
            status, message, ..
        }) => {
            assert_eq!(status, 403, "{message}");
            assert!(message.contains("only simplereenroll"), "{message}");
        }
        other => panic!("expired peer reached attestation: {other:?}"),
    }
    let mut cert_pem = std::fs::read(late.join("cert.pem")).unwrap();
    cert_pem.extend_from_slice(pem(&est.inter).as_bytes());
    let key_pem = std::fs::read(late.join("key.pem")).unwrap();
    let as_boot = Agent::open(dir.path().join("as-boot")).unwrap();
    as_boot.install_bootstrap(&cert_pem, &key_pem).unwrap();
    match as_boot
        .enroll_with_bootstrap(&est.server(), "ctw-late-1")
        .await
    {
        Err(Error::Refused {
            status, message, ..
        }) => {
            assert_eq!(status, 403, "{message}");
            assert!(message.contains("only simplereenroll"), "{message}");
        }
        other => panic!("expired peer reached simpleenroll: {other:?}"),
    }
    let renewed = agent.renew(&est.server()).await.unwrap();
    let new_cert = renewed.certificate.unwrap();
    assert!(!new_cert.expired(now()) && new_cert.matches_key);
    assert_eq!(status_of(&est, &new_cert.serial).await, CertStatus::Active);
    assert!(matches!(
        status_of(&est, &old).await,
        CertStatus::Revoked { .. }
    ));

    // Expired eight days ago (beyond the 7-day grace): the handshake itself is refused, nothing issued.
    let gone = dir.path().join("gone");
    let old = expired_identity(&est, &gone, "ctw-gone-1", Duration::from_secs(8 * 86400)).await;
    let agent = Agent::open(&gone).unwrap();
    match agent.renew(&est.server()).await {
        Err(Error::Transport(m)) => assert!(m.contains("simplereenroll"), "{m}"),
        other => panic!("renewed beyond the grace: {other:?}"),
    }
    assert_eq!(status_of(&est, &old).await, CertStatus::Active);
    est.shutdown().await;
}
