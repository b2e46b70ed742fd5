//! SM and international clients on one port (`smtrust_tls::DualConfig`): a client that does not
//! offer RFC 8998 is refused (`sm_required`) unless an international config is given; with one,
//! an ECDSA P-256 device certificate (rcgen, ring provider) is admitted on the same listener.

use crate::pki::Pki;
use crate::tcp::{default_policy, echo_server, echoes};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use smtrust_gateway::{Config, Gateway};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A P-256 CA, a `localhost` server certificate and a device certificate.
struct P256 {
    roots: Arc<RootCertStore>,
    server: (Vec<CertificateDer<'static>>, Vec<u8>),
    device: (Vec<CertificateDer<'static>>, Vec<u8>),
}

fn p256(device_id: &str) -> P256 {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "intl test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap().der().clone();
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let dev_key = KeyPair::generate().unwrap();
    let mut dev = CertificateParams::new(Vec::<String>::new()).unwrap();
    dev.subject_alt_names = vec![SanType::URI(
        format!("urn:smtrust:device:{device_id}")
            .try_into()
            .unwrap(),
    )];
    let dev = dev.signed_by(&dev_key, &issuer).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca_cert).unwrap();
    P256 {
        roots: Arc::new(roots),
        server: (vec![server.der().clone()], server_key.serialize_der()),
        device: (vec![dev.der().clone()], dev_key.serialize_der()),
    }
}

fn key(der: &[u8]) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.to_vec()))
}

impl P256 {
    fn server_config(&self) -> Arc<ServerConfig> {
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::clone(&self.roots), ring())
            .build()
            .unwrap();
        Arc::new(
            ServerConfig::builder_with_provider(ring())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(self.server.0.clone(), key(&self.server.1))
                .unwrap(),
        )
    }

    fn client_config(&self) -> Arc<ClientConfig> {
        Arc::new(
            ClientConfig::builder_with_provider(ring())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_root_certificates(Arc::clone(&self.roots))
                .with_client_auth_cert(self.device.0.clone(), key(&self.device.1))
                .unwrap(),
        )
    }
}

async fn gateway(pki: &Pki, international: Option<Arc<ServerConfig>>) -> smtrust_gateway::Running {
    let config = Config::from_toml(&format!(
        "[[listener]]\nname = \"main\"\nbind = \"127.0.0.1:0\"\nmode = \"tcp\"\nupstream = \"{}\"\n",
        echo_server().await
    ))
    .unwrap();
    let mut tls = pki.sm_tls();
    if let Some(i) = international {
        tls = tls.international(i);
    }
    Gateway::builder(config, Arc::new(default_policy()))
        .sm_tls(tls)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn non_sm_client_is_refused_unless_an_international_config_is_given() {
    let pki = Pki::new("dual").await;
    let intl = p256("intl-dev-1");
    let name = ServerName::try_from("localhost").unwrap();

    let gw = gateway(&pki, None).await;
    let addr = gw.local_addr("main").unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let r = TlsConnector::from(intl.client_config())
        .connect(name.clone(), tcp)
        .await;
    assert!(
        r.is_err(),
        "a P-256-only client got a handshake on an SM-only listener"
    );
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(gw.gateway().metrics().refusals("sm_required"), 1);
    gw.shutdown().await;

    let gw = gateway(&pki, Some(intl.server_config())).await;
    let addr = gw.local_addr("main").unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut s = TlsConnector::from(intl.client_config())
        .connect(name, tcp)
        .await
        .unwrap();
    assert!(echoes(&mut s, b"international").await);
    // SM clients still get the SM stack on the same port.
    let dev = pki.device("ctw-dual-sm").await;
    let mut s = crate::tcp::connect(&pki, &dev, addr).await.unwrap();
    assert!(echoes(&mut s, b"sm").await);
    assert_eq!(gw.gateway().session_count(), 2);
    gw.shutdown().await;
}
