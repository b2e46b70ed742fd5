//! An SM2 test PKI made by `smtrust_ca`: a root, an issuing CA `devices` (through a `CaService`
//! over in-memory SQLite, so revocation goes through the real service), a gateway server
//! certificate for `localhost` (also the passport signer) and device certificates carrying
//! `urn:smtrust:device:<id>`. TLS is TLS 1.3 with the RFC 8998 suites via `smtrust_tls`.

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ServerConfig};
use smtrust_ca::{
    CaLimits, CaService, IssueRequest, Issuer, IssuerConfig, Profile, ProfileKind, Profiles,
    Serial, SqlStore,
};
use smtrust_crypto::sm2::{CertId, Sm2SecretKey, Tls13Id};
use smtrust_gateway::{CertKey, IssuerNames, PassportSigner, SmTls};
use smtrust_tls::{Credentials, RevokedSet, Sm2ChainVerifier, TrustRoots, UnknownStatus};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[allow(clippy::disallowed_methods)] // tests read the clock
pub fn now() -> SystemTime {
    SystemTime::now()
}

pub const ISSUER: &str = "devices";

pub struct Pki {
    pub svc: CaService<SqlStore>,
    /// The issuing CA's label.
    pub label: String,
    pub root: CertificateDer<'static>,
    pub inter: CertificateDer<'static>,
    issuer: Arc<Issuer>,
    server: Device,
}

/// A certificate, its key and chain (leaf, issuing CA).
pub struct Device {
    pub id: String,
    pub chain: Vec<CertificateDer<'static>>,
    pub secret: Sm2SecretKey,
    pub serial: Serial,
}

impl Device {
    /// The revocation key of this certificate.
    pub fn cert_key(&self) -> CertKey {
        CertKey::of_certificate(self.chain[0].as_ref()).unwrap()
    }
    pub fn credentials(&self) -> Credentials {
        Credentials::new(
            Arc::new(self.secret.signing_key(Tls13Id).unwrap()),
            self.chain.clone(),
        )
        .unwrap()
    }
}

pub fn csr(sk: &Sm2SecretKey, subject: &str) -> Vec<u8> {
    use der::Encode;
    use x509_cert::builder::{Builder, RequestBuilder};
    let signing = sk.signing_key(CertId).unwrap();
    let signer = smtrust_crypto::x509::X509Signer::new(&signing);
    let req = RequestBuilder::new(subject.parse().unwrap())
        .unwrap()
        .build::<_, smtrust_crypto::x509::DerSignature>(&signer)
        .unwrap();
    req.to_der().unwrap()
}

impl Pki {
    pub async fn new(name: &str) -> Self {
        let store = SqlStore::open_sqlite_memory().await.unwrap();
        Self::with_store(name, store, ISSUER).await
    }

    /// A PKI whose CA service keeps its records in `store`, the issuing CA labelled `label`.
    pub async fn with_store(name: &str, store: SqlStore, label: &str) -> Self {
        let svc = CaService::new(store, Profiles::default());
        let root_sk = Sm2SecretKey::generate().unwrap();
        let t = now();
        let root = Issuer::create_root(
            Arc::new(root_sk.signing_key(CertId).unwrap()),
            &format!("CN={name} root,O=smtrust test,C=CN"),
            20 * 365 * 86400,
            CaLimits::path_len(Some(1)),
            Serial::random().unwrap(),
            t,
            IssuerConfig::new("root"),
        )
        .unwrap();
        let inter_sk = Sm2SecretKey::generate().unwrap();
        let inter = root
            .create_intermediate(
                Arc::new(inter_sk.signing_key(CertId).unwrap()),
                &format!("CN={name} devices CA,O=smtrust test,C=CN"),
                10 * 365 * 86400,
                CaLimits::path_len(Some(0)),
                Serial::random().unwrap(),
                t,
                IssuerConfig::new(label),
            )
            .unwrap();
        let root_der = CertificateDer::from(root.certificate_der().to_vec());
        let inter_der = CertificateDer::from(inter.certificate_der().to_vec());
        svc.add_issuer(root);
        let issuer = svc.add_issuer(inter);
        let sk = Sm2SecretKey::generate().unwrap();
        let mut req = IssueRequest::new(csr(&sk, "CN=gateway,O=smtrust test"), None);
        req.dns_names = vec!["localhost".into()];
        let cert = svc.issue(label, "server", req).await.unwrap();
        let server = Device {
            id: "gateway".into(),
            chain: vec![CertificateDer::from(cert.der), inter_der.clone()],
            secret: sk,
            serial: cert.serial,
        };
        Self {
            svc,
            label: label.to_owned(),
            root: root_der,
            inter: inter_der,
            issuer,
            server,
        }
    }

    pub fn roots(&self) -> TrustRoots {
        TrustRoots::new(std::slice::from_ref(&self.root)).unwrap()
    }

    /// A verifier of this PKI with no revocations (what clients and platforms use).
    pub fn verifier(&self) -> Sm2ChainVerifier {
        Sm2ChainVerifier::new(
            self.roots(),
            Arc::new(RevokedSet::new()),
            UnknownStatus::Refuse,
        )
    }

    /// The gateway's TLS material.
    pub fn sm_tls(&self) -> SmTls {
        SmTls::new(
            Arc::new(self.server.secret.signing_key(Tls13Id).unwrap()),
            self.server.chain.clone(),
            self.roots(),
        )
    }

    /// The gateway's passport signer (same key and certificate, GM/T ID).
    pub fn passport_signer(&self) -> PassportSigner {
        PassportSigner::new(
            Arc::new(self.server.secret.signing_key(CertId).unwrap()),
            &self.server.chain,
        )
    }

    pub fn issuer_names(&self) -> IssuerNames {
        IssuerNames::from_issuers([self.issuer.as_ref()])
    }

    /// A device certificate issued and recorded by the CA service.
    pub async fn device(&self, id: &str) -> Device {
        let sk = Sm2SecretKey::generate().unwrap();
        let req = IssueRequest::new(csr(&sk, &format!("CN={id}")), None);
        let cert = self.svc.issue(&self.label, "device", req).await.unwrap();
        Device {
            id: id.into(),
            chain: vec![CertificateDer::from(cert.der), self.inter.clone()],
            secret: sk,
            serial: cert.serial,
        }
    }

    /// A device certificate that expired a year ago (one-day profile, dated 400 days back).
    pub fn expired_device(&self, id: &str) -> Device {
        let sk = Sm2SecretKey::generate().unwrap();
        let csr = smtrust_ca::csr::parse_and_verify(&csr(&sk, &format!("CN={id}"))).unwrap();
        let mut profile = Profile::builtin("device", ProfileKind::DeviceIdentity);
        profile.validity_secs = 86400;
        let serial = Serial::random().unwrap();
        let cert = self
            .issuer
            .issue(
                &profile,
                &csr,
                None,
                serial,
                now() - Duration::from_secs(400 * 86400),
            )
            .unwrap();
        Device {
            id: id.into(),
            chain: vec![CertificateDer::from(cert.der), self.inter.clone()],
            secret: sk,
            serial: cert.serial,
        }
    }

    /// A TLS 1.3-SM client config trusting this PKI, authenticating as `device` (if any).
    pub fn client_config(&self, device: Option<&Device>) -> Arc<ClientConfig> {
        let creds = device.map(Device::credentials);
        Arc::new(smtrust_tls::client_config(self.verifier(), creds.as_ref()).unwrap())
    }

    /// A server config of the PKI (for tests that need a plain SM server).
    #[allow(dead_code)]
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::new(
            smtrust_tls::server_config(
                &self.server.credentials(),
                smtrust_tls::ClientAuth::None,
                smtrust_tls::Resumption::Off,
            )
            .unwrap(),
        )
    }
}
