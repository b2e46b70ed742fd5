//! A three-level SM2 PKI (root → issuing CA `line7` with namespace `ctw-` → leaves) over a SQLite store,
//! plus helpers that run the peers on files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use smtrust_ca::{
    CaLimits, CaService, Issuer, IssuerConfig, Namespace, Profiles, Responder, Serial, SqlStore,
};
use smtrust_crypto::sm2::{CertId, Sm2SecretKey};
use smtrust_crypto::x509::CertSigner;
use smtrust_test_support::TempDir;

pub(crate) const DISTID: &str = "distid:1234567812345678";

pub(crate) fn signer() -> (Arc<dyn CertSigner>, Sm2SecretKey) {
    let sk = Sm2SecretKey::generate().unwrap();
    (Arc::new(sk.signing_key(CertId).unwrap()), sk)
}

#[allow(clippy::disallowed_methods)] // tests read the clock
pub(crate) fn now() -> SystemTime {
    SystemTime::now()
}

pub(crate) struct Pki {
    pub svc: CaService<SqlStore>,
    pub root_der: Vec<u8>,
    pub inter_der: Vec<u8>,
    pub ocsp_der: Vec<u8>,
    pub dir: TempDir,
}

pub(crate) fn line7_config(base: &str) -> IssuerConfig {
    let mut c = IssuerConfig::new("line7");
    c.namespace = Namespace::new("ctw-").unwrap();
    c.organization = Some("smtrust test".into());
    c.crl_url = Some(format!("{base}/crl/line7.crl"));
    c.delta_crl_url = Some(format!("{base}/crl/line7-delta.crl"));
    c.ocsp_url = Some(format!("{base}/ocsp/line7"));
    c.ca_issuers_url = Some(format!("{base}/ca/line7.crt"));
    c
}

pub(crate) async fn pki_with(store: SqlStore, base: &str) -> Pki {
    pki_with_signer(store, base, signer().0).await
}

/// A signer whose key can be sealed (signing then fails, as a sealed keystore's handle does).
pub(crate) struct Sealable {
    key: smtrust_crypto::sm2::Sm2SigningKey<CertId>,
    pub sealed: std::sync::atomic::AtomicBool,
}

impl Sealable {
    pub(crate) fn new() -> Arc<Self> {
        let sk = Sm2SecretKey::generate().unwrap();
        Arc::new(Self {
            key: sk.signing_key(CertId).unwrap(),
            sealed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(crate) fn seal(&self, sealed: bool) {
        self.sealed
            .store(sealed, std::sync::atomic::Ordering::SeqCst);
    }
}

impl smtrust_crypto::sm2::Sm2Signer<CertId> for Sealable {
    fn public_key(&self) -> &smtrust_crypto::sm2::Sm2PublicKey {
        self.key.public_key()
    }

    fn sign(&self, msg: &[u8]) -> Result<smtrust_crypto::sm2::Sm2Signature, smtrust_crypto::Error> {
        if self.sealed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(smtrust_crypto::Error::Internal("keystore sealed"));
        }
        self.key.sign(msg)
    }
}

/// [`pki_with`] with the issuing CA `line7` signing through `inter_signer`.
pub(crate) async fn pki_with_signer(
    store: SqlStore,
    base: &str,
    inter_signer: Arc<dyn CertSigner>,
) -> Pki {
    let svc = CaService::new(store, Profiles::default());
    let (root_signer, _) = signer();
    let t = now();
    let root = Issuer::create_root(
        root_signer,
        "CN=smtrust test root,O=smtrust test,C=CN",
        20 * 365 * 86400,
        CaLimits::path_len(Some(1)),
        Serial::random().unwrap(),
        t,
        IssuerConfig::new("root"),
    )
    .unwrap();
    let inter = root
        .create_intermediate(
            inter_signer,
            "CN=smtrust line7 CA,O=smtrust test,C=CN",
            10 * 365 * 86400,
            CaLimits::path_len(Some(0)),
            Serial::random().unwrap(),
            t,
            line7_config(base),
        )
        .unwrap();
    let root_der = root.certificate_der().to_vec();
    let inter_der = inter.certificate_der().to_vec();
    svc.add_issuer(root);
    let inter = svc.add_issuer(inter);
    // The delegated OCSP signer, issued by line7 through the service (recorded like any certificate).
    let (ocsp_key_signer, ocsp_sk) = signer();
    let csr = make_csr(&ocsp_sk, "CN=line7 OCSP responder");
    let ocsp_cert = svc
        .issue("line7", "ocsp", smtrust_ca::IssueRequest::new(csr, None))
        .await
        .unwrap();
    svc.set_responder(
        Responder::new(
            &inter,
            &ocsp_cert.der,
            ocsp_key_signer,
            smtrust_ca::ocsp::DEFAULT_VALIDITY,
        )
        .unwrap(),
    );
    Pki {
        svc,
        root_der,
        inter_der,
        ocsp_der: ocsp_cert.der,
        dir: smtrust_test_support::temp_dir().unwrap(),
    }
}

pub(crate) async fn pki() -> Pki {
    pki_with(
        SqlStore::open_sqlite_memory().await.unwrap(),
        "http://127.0.0.1:1",
    )
    .await
}

/// A CSR made in Rust with x509-cert's RequestBuilder (GM/T ID).
pub(crate) fn make_csr(sk: &Sm2SecretKey, subject: &str) -> Vec<u8> {
    use der::Encode;
    use x509_cert::builder::{Builder, RequestBuilder};
    let signing = sk.signing_key(CertId).unwrap();
    let signer = smtrust_crypto::x509::X509Signer::new(&signing);
    let b = RequestBuilder::new(subject.parse().unwrap()).unwrap();
    let req = b
        .build::<_, smtrust_crypto::x509::DerSignature>(&signer)
        .unwrap();
    req.to_der().unwrap()
}

impl Pki {
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    pub(crate) fn write_pem(&self, name: &str, der: &[u8]) -> PathBuf {
        self.write(name, smtrust_ca::authority::pem_cert(der).as_bytes())
    }
}

pub(crate) fn s(p: &Path) -> String {
    p.display().to_string()
}
