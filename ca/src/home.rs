//! The CA in a data directory: [`init`] creates it, [`open`] brings it up for the CLI, `smtrust serve` and
//! `smtrust demo`.
//!
//! Layout (keys never leave the keystore; everything here is public):
//! ```text
//! <data>/smtrust.db            SQLite store (certificates, CRLs; the factory journal shares it)
//! <data>/ca/ca.toml            labels, key ids, namespace, URLs ([`Manifest`])
//! <data>/ca/<root>.pem         root certificate
//! <data>/ca/<label>.pem        issuing CA certificate
//! <data>/ca/<label>-ocsp.pem   delegated OCSP signer certificate (re-issued by `open` near its end)
//! <data>/ca/chain.pem          issuing CA, then the certificates above it
//! <data>/ca/profiles.toml      optional profile overrides ([`crate::Profiles::from_toml`])
//! ```
//! The keystore holds the root key (absent when an intermediate was imported and the root stays offline),
//! the issuing key and the OCSP signer key, each with its certificate attached.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use smtrust_keystore::{KeyId, KeyPurpose, Keystore};
use x509_cert::Certificate;
use x509_cert::ext::pkix::BasicConstraints;
use zeroize::Zeroizing;

use crate::authority::{CaLimits, Issuer, IssuerConfig, pem_cert};
use crate::device::Namespace;
use crate::ocsp::Responder;
use crate::profile::Profiles;
use crate::serial::Serial;
use crate::service::{CaService, IssueRequest};
use crate::store::SqlStore;
use crate::{ConfigError, Error, RequestError};

/// The SQLite database file in the data directory.
pub const DB_FILE: &str = "smtrust.db";
/// The CA's directory inside the data directory.
pub const CA_DIR: &str = "ca";
/// Default root lifetime.
pub const ROOT_VALIDITY: Duration = Duration::from_secs(20 * 365 * 86_400);
/// Default issuing CA lifetime.
pub const ISSUING_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
/// The OCSP signer is re-issued when less than this is left of it.
pub const OCSP_RENEW_BEFORE: Duration = Duration::from_secs(10 * 86_400);

/// What `ca init` records in `<data>/ca/ca.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Manifest {
    /// Label of the issuing CA (URLs, store rows).
    pub label: String,
    /// Label of the root.
    pub root_label: String,
    /// Device-ID namespace prefix of the issuing CA (empty: any).
    pub namespace: String,
    /// `O=` of device subjects.
    pub organization: Option<String>,
    /// Base URL of the HTTP service (CRL, OCSP, caIssuers URLs are derived from it).
    pub base_url: Option<String>,
    /// Root key id in the keystore (absent: the root is offline).
    pub root_key: Option<String>,
    /// Issuing CA key id.
    pub issuing_key: String,
    /// OCSP signer key id.
    pub ocsp_key: String,
}

/// How to make the hierarchy.
#[derive(Debug)]
#[non_exhaustive]
pub struct InitOptions {
    /// Issuing CA label (`[A-Za-z0-9._-]`).
    pub label: String,
    /// Root subject DN (RFC 4514), when the root is made here.
    pub root_subject: String,
    /// Issuing CA subject DN, when made here.
    pub subject: String,
    /// Device-ID namespace of the issuing CA.
    pub namespace: Namespace,
    /// `O=` of device subjects.
    pub organization: Option<String>,
    /// Base URL of the HTTP service (`http://ca.example:8080`).
    pub base_url: Option<String>,
    /// An externally made CA to import instead of generating the root.
    pub import: Option<Import>,
}

impl InitOptions {
    /// Defaults for label `label`: subjects `CN=smtrust root CA` and `CN=smtrust <label> CA`, any namespace.
    pub fn new(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            root_subject: "CN=smtrust root CA".to_owned(),
            subject: format!("CN=smtrust {label} CA"),
            namespace: Namespace::default(),
            organization: None,
            base_url: None,
            import: None,
        }
    }
}

/// An externally made root or intermediate: its certificate (PEM; for an intermediate the certificates above
/// it may follow) and its private key (PKCS#8 or SEC1, PEM or DER). A root gets a new issuing CA below it; an
/// intermediate becomes the issuing CA itself and the root stays offline.
#[non_exhaustive]
pub struct Import {
    /// Certificate PEM, the imported CA first.
    pub cert_pem: Vec<u8>,
    /// Its private key.
    pub key: Zeroizing<Vec<u8>>,
    /// Passphrase of an encrypted key.
    pub passphrase: Option<Zeroizing<Vec<u8>>>,
}

impl Import {
    /// An import of `cert_pem` with `key`.
    pub fn new(cert_pem: Vec<u8>, key: Zeroizing<Vec<u8>>) -> Self {
        Self {
            cert_pem,
            key,
            passphrase: None,
        }
    }
}

impl std::fmt::Debug for Import {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Import").finish_non_exhaustive()
    }
}

/// An opened CA: the service (issuers and the OCSP responder registered), and what the CLI shows.
#[derive(Debug)]
#[non_exhaustive]
pub struct OpenedCa {
    /// The service over the store.
    pub service: CaService<SqlStore>,
    /// The issuing CA (label [`Manifest::label`]).
    pub issuing: Arc<Issuer>,
    /// The chain as PEM: issuing CA first, root last.
    pub chain_pem: String,
    /// The root certificate, DER.
    pub root_der: Vec<u8>,
    /// The manifest.
    pub manifest: Manifest,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The CA directory of a data directory.
pub fn ca_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(CA_DIR)
}

/// Whether `ca init` has run in `data_dir`.
pub fn is_initialised(data_dir: &Path) -> bool {
    ca_dir(data_dir).join("ca.toml").exists()
}

/// Write a file atomically: temporary name, fsync, rename.
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(data).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn urls(config: &mut IssuerConfig, base: Option<&str>) {
    if let Some(b) = base {
        let b = b.trim_end_matches('/');
        let l = config.label.clone();
        config.crl_url = Some(format!("{b}/crl/{l}.crl"));
        config.delta_crl_url = Some(format!("{b}/crl/{l}-delta.crl"));
        config.ocsp_url = Some(format!("{b}/ocsp/{l}"));
        config.ca_issuers_url = Some(format!("{b}/ca/{l}.crt"));
    }
}

fn issuing_config(m: &Manifest) -> Result<IssuerConfig, Error> {
    let mut c = IssuerConfig::new(&m.label);
    c.namespace = Namespace::new(&m.namespace)?;
    c.organization = m.organization.clone();
    urls(&mut c, m.base_url.as_deref());
    Ok(c)
}

fn key_id(s: &str) -> Result<KeyId, Error> {
    s.parse().map_err(|_| {
        Error::Config(ConfigError::Invalid {
            field: "ca.toml key id".into(),
            why: "not a keystore key id",
        })
    })
}

fn handle(ks: &Keystore, id: &KeyId) -> Result<Arc<dyn smtrust_crypto::x509::CertSigner>, Error> {
    Ok(Arc::new(ks.signer_cert(id)?))
}

fn certs_of(pem: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    Ok(smtrust_crypto::pem::blocks(pem)?
        .into_iter()
        .filter(|(l, _)| l == "CERTIFICATE")
        .map(|(_, d)| d.to_vec())
        .collect())
}

fn is_self_signed(der: &[u8]) -> Result<bool, Error> {
    let c = Certificate::from_der(der).map_err(|e| RequestError::malformed("certificate", &e))?;
    let t = c.tbs_certificate();
    Ok(t.issuer() == t.subject())
}

/// Create the hierarchy in `data_dir` with keys in `ks` (unsealed): a root (generated or imported), the
/// issuing CA, its delegated OCSP signer, the store, and a first CRL. Refuses to overwrite an existing CA.
pub async fn init(
    data_dir: &Path,
    ks: &Keystore,
    opts: InitOptions,
    now: SystemTime,
) -> Result<OpenedCa, Error> {
    let dir = ca_dir(data_dir);
    if is_initialised(data_dir) {
        return Err(ConfigError::AlreadyInitialised(dir).into());
    }
    crate::DeviceId::new(&opts.label)?;
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut config = IssuerConfig::new(&opts.label);
    config.namespace = opts.namespace.clone();
    config.organization = opts.organization.clone();
    urls(&mut config, opts.base_url.as_deref());
    let root_label = "root".to_owned();
    let (root_der, root_key, issuing, issuing_key, chain) = match opts.import {
        None => {
            let rk = ks.generate(KeyPurpose::CaSigning, &format!("{root_label} CA"))?;
            let root = Issuer::create_root(
                handle(ks, &rk)?,
                &opts.root_subject,
                ROOT_VALIDITY.as_secs(),
                CaLimits::path_len(Some(1)),
                Serial::random()?,
                now,
                IssuerConfig::new(&root_label),
            )?;
            ks.set_certificate(&rk, root.certificate_der())?;
            let ik = ks.generate(KeyPurpose::CaSigning, &format!("{} CA", opts.label))?;
            let inter = root.create_intermediate(
                handle(ks, &ik)?,
                &opts.subject,
                ISSUING_VALIDITY.as_secs(),
                CaLimits::path_len(Some(0)),
                Serial::random()?,
                now,
                config,
            )?;
            let root_der = root.certificate_der().to_vec();
            (root_der.clone(), Some(rk), inter, ik, vec![root_der])
        }
        Some(imp) => {
            let certs = certs_of(&imp.cert_pem)?;
            let first = certs
                .first()
                .cloned()
                .ok_or(RequestError::Import("no CERTIFICATE block in the import"))?;
            let pass = imp.passphrase.as_ref().map(|p| p.as_slice());
            let k = ks.import_pkcs8(KeyPurpose::CaSigning, "imported CA", &imp.key, pass)?;
            if is_self_signed(&first)? {
                // An imported root: a new issuing CA below it.
                let root = Issuer::import(&first, handle(ks, &k)?, IssuerConfig::new(&root_label))?;
                ks.set_certificate(&k, &first)?;
                let ik = ks.generate(KeyPurpose::CaSigning, &format!("{} CA", opts.label))?;
                let inter = root.create_intermediate(
                    handle(ks, &ik)?,
                    &opts.subject,
                    ISSUING_VALIDITY.as_secs(),
                    CaLimits::path_len(Some(0)),
                    Serial::random()?,
                    now,
                    config,
                )?;
                (first.clone(), Some(k), inter, ik, vec![first])
            } else {
                // An imported intermediate: it issues; the root (last certificate given) stays offline.
                let inter = Issuer::import(&first, handle(ks, &k)?, config)?;
                ks.set_certificate(&k, &first)?;
                let above: Vec<Vec<u8>> = certs.into_iter().skip(1).collect();
                let root_der = above.last().cloned().ok_or(RequestError::Import(
                    "an imported intermediate needs the certificates above it (up to the root) in the same PEM",
                ))?;
                (root_der, None, inter, k, above)
            }
        }
    };
    ks.set_certificate(&issuing_key, issuing.certificate_der())?;
    let mut chain_pem = pem_cert(issuing.certificate_der());
    for c in &chain {
        chain_pem.push_str(&pem_cert(c));
    }
    let ocsp_key = ks.generate(KeyPurpose::OcspSigning, &format!("{} OCSP", opts.label))?;
    let manifest = Manifest {
        label: opts.label.clone(),
        root_label,
        namespace: opts.namespace.prefix().to_owned(),
        organization: opts.organization,
        base_url: opts.base_url,
        root_key: root_key.map(|k| k.to_string()),
        issuing_key: issuing_key.to_string(),
        ocsp_key: ocsp_key.to_string(),
    };
    write_atomic(
        &dir.join(format!("{}.pem", manifest.root_label)),
        pem_cert(&root_der).as_bytes(),
    )?;
    write_atomic(
        &dir.join(format!("{}.pem", manifest.label)),
        pem_cert(issuing.certificate_der()).as_bytes(),
    )?;
    write_atomic(&dir.join("chain.pem"), chain_pem.as_bytes())?;
    let text = toml::to_string(&manifest).map_err(|e| ConfigError::Toml(e.to_string()))?;
    // ca.toml last: it is what marks the directory as initialised.
    write_atomic(&dir.join("ca.toml"), text.as_bytes())?;
    let opened = open(data_dir, ks, now).await?;
    opened.service.crl(&opened.manifest.label, false).await?;
    Ok(opened)
}

/// Open the CA of `data_dir` over its SQLite database (`<data>/smtrust.db`), signing with keys from `ks`
/// (unsealed). Issues or renews the OCSP signer certificate when needed.
pub async fn open(data_dir: &Path, ks: &Keystore, now: SystemTime) -> Result<OpenedCa, Error> {
    let store = SqlStore::open_sqlite(&data_dir.join(DB_FILE)).await?;
    open_with_store(data_dir, ks, store, now).await
}

/// [`open`] over a store of the caller's choice (PostgreSQL for several nodes).
pub async fn open_with_store(
    data_dir: &Path,
    ks: &Keystore,
    store: SqlStore,
    now: SystemTime,
) -> Result<OpenedCa, Error> {
    let dir = ca_dir(data_dir);
    let mpath = dir.join("ca.toml");
    if !mpath.exists() {
        return Err(ConfigError::NotInitialised(dir).into());
    }
    let text = std::fs::read_to_string(&mpath).map_err(io(&mpath))?;
    let manifest: Manifest =
        toml::from_str(&text).map_err(|e| ConfigError::Toml(e.message().to_owned()))?;
    let ppath = dir.join("profiles.toml");
    let profiles = if ppath.exists() {
        Profiles::from_toml(&std::fs::read_to_string(&ppath).map_err(io(&ppath))?)?
    } else {
        Profiles::default()
    };
    let svc = CaService::new(store, profiles);
    let read = |name: &str| -> Result<Vec<u8>, Error> {
        let p = dir.join(name);
        let pem = std::fs::read(&p).map_err(io(&p))?;
        certs_of(&pem)?
            .into_iter()
            .next()
            .ok_or_else(|| ConfigError::Invalid {
                field: p.display().to_string(),
                why: "no CERTIFICATE block",
            })
            .map_err(Error::from)
    };
    let root_der = read(&format!("{}.pem", manifest.root_label))?;
    if let Some(rk) = &manifest.root_key {
        let root = Issuer::import(
            &root_der,
            handle(ks, &key_id(rk)?)?,
            IssuerConfig::new(&manifest.root_label),
        )?;
        svc.add_issuer(root);
    }
    let issuing_der = read(&format!("{}.pem", manifest.label))?;
    let issuing = svc.add_issuer(Issuer::import(
        &issuing_der,
        handle(ks, &key_id(&manifest.issuing_key)?)?,
        issuing_config(&manifest)?,
    )?);
    let chain_path = dir.join("chain.pem");
    let chain_pem = std::fs::read_to_string(&chain_path).map_err(io(&chain_path))?;
    let ocsp_id = key_id(&manifest.ocsp_key)?;
    let ocsp_path = dir.join(format!("{}-ocsp.pem", manifest.label));
    let current = match std::fs::read(&ocsp_path) {
        Ok(pem) => certs_of(&pem)?.into_iter().next(),
        Err(_) => None,
    };
    let ocsp_der = match current.filter(|d| !needs_renewal(d, now)) {
        Some(d) => d,
        None => {
            let der = issue_ocsp_signer(&svc, &manifest.label, ks, &ocsp_id).await?;
            write_atomic(&ocsp_path, pem_cert(&der).as_bytes())?;
            ks.set_certificate(&ocsp_id, &der)?;
            der
        }
    };
    svc.set_responder(Responder::new(
        &issuing,
        &ocsp_der,
        handle(ks, &ocsp_id)?,
        crate::ocsp::DEFAULT_VALIDITY,
    )?);
    Ok(OpenedCa {
        service: svc,
        issuing,
        chain_pem,
        root_der,
        manifest,
    })
}

fn needs_renewal(der: &[u8], now: SystemTime) -> bool {
    Certificate::from_der(der).map_or(true, |c| {
        let na = c.tbs_certificate().validity().not_after.to_system_time();
        na.duration_since(now)
            .map_or(true, |left| left < OCSP_RENEW_BEFORE)
    })
}

async fn issue_ocsp_signer(
    svc: &CaService<SqlStore>,
    label: &str,
    ks: &Keystore,
    id: &KeyId,
) -> Result<Vec<u8>, Error> {
    use x509_cert::builder::{Builder, RequestBuilder};
    let h = ks.signer_cert(id)?;
    let signer = smtrust_crypto::x509::X509Signer::new(&h);
    let subject = format!("CN={label} OCSP responder").parse()?;
    let csr = RequestBuilder::new(subject)?
        .build::<_, smtrust_crypto::x509::DerSignature>(&signer)?
        .to_der()?;
    Ok(svc
        .issue(label, "ocsp", IssueRequest::new(csr, None))
        .await?
        .der)
}

/// Whether a DER certificate is a CA certificate (basicConstraints cA).
pub fn is_ca_certificate(der: &[u8]) -> bool {
    Certificate::from_der(der).is_ok_and(|c| {
        matches!(c.tbs_certificate().get_extension::<BasicConstraints>(), Ok(Some((_, b))) if b.ca)
    })
}
