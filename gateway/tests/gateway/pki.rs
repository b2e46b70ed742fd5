//! A throwaway PKI for the tests: a CA, a server certificate, device certificates carrying
//! `urn:smtrust:device:<id>`.
//!
//! The `tls` crate's SM provider and SM2 verifier are not in the tree yet, so these tests run
//! the gateway over rustls's ring provider with ECDSA P-256 certificates (rcgen). The gateway
//! takes any `rustls::ServerConfig`; swapping in the SM config changes nothing here but this file.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
    SerialNumber, date_time_ymd,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use smtrust_gateway::CertKey;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub struct Pki {
    issuer: Issuer<'static, KeyPair>,
    ca: CertificateDer<'static>,
    server: (Vec<CertificateDer<'static>>, Vec<u8>),
    serial: AtomicU8,
}

pub struct Device {
    pub chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

impl Device {
    /// The revocation key of this device's certificate.
    pub fn cert_key(&self) -> CertKey {
        CertKey::of_certificate(self.chain[0].as_ref()).unwrap()
    }
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = params.self_signed(&key).unwrap().der().clone();
        let issuer = Issuer::new(params, key);
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        Self {
            server: (vec![server.der().clone()], server_key.serialize_der()),
            issuer,
            ca,
            serial: AtomicU8::new(1),
        }
    }

    fn roots(&self) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        Arc::new(roots)
    }

    pub fn device(&self, id: &str) -> Device {
        self.device_with(id, |_| {})
    }

    pub fn expired_device(&self, id: &str) -> Device {
        self.device_with(id, |p| {
            p.not_before = date_time_ymd(2020, 1, 1);
            p.not_after = date_time_ymd(2021, 1, 1);
        })
    }

    fn device_with(&self, id: &str, edit: impl FnOnce(&mut CertificateParams)) -> Device {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, id);
        params.subject_alt_names = vec![SanType::URI(
            format!("urn:smtrust:device:{id}").try_into().unwrap(),
        )];
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        params.serial_number = Some(SerialNumber::from(vec![0x10, n]));
        edit(&mut params);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Device {
            chain: vec![cert.der().clone()],
            key: key.serialize_der(),
        }
    }

    pub fn server_config(&self) -> Arc<ServerConfig> {
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots(), provider())
            .build()
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server.1.clone()));
        Arc::new(
            ServerConfig::builder_with_provider(provider())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(self.server.0.clone(), key)
                .unwrap(),
        )
    }

    /// A client config trusting this PKI's CA, authenticating as `device`.
    pub fn client_config(&self, device: &Device) -> Arc<ClientConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(device.key.clone()));
        Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_root_certificates(self.roots())
                .with_client_auth_cert(device.chain.clone(), key)
                .unwrap(),
        )
    }
}
