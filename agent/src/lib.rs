#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attest;
mod csr;
mod enroll;
mod error;
pub mod est;
mod home;
mod renewal;

// The public interface is:
pub use attest::{AttestConfig, AttestOutcome, MeasurementSpec};
pub use error::Error;
pub use est::EstServer;
pub use renewal::{renewal_due, renewal_due_at};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use der::{Decode, Encode};
use smtrust_crypto::sm2::{Sm2SecretKey, Tls13Id};
use smtrust_tls::{Credentials, DeviceId};

/// The device agent over one directory (see the layout in the crate documentation).
#[derive(Debug, Clone)]
pub struct Agent {
    dir: PathBuf,
}

/// What the agent directory holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Status {
    /// The directory.
    pub dir: PathBuf,
    /// The device ID, once a CSR was made or an enrollment ran.
    pub device_id: Option<String>,
    /// Whether a device key exists.
    pub has_key: bool,
    /// Whether a bootstrap identity is installed.
    pub has_bootstrap: bool,
    /// The device certificate, if enrolled.
    pub certificate: Option<CertInfo>,
    /// Certificates in `chain.pem`.
    pub chain_len: usize,
}

/// The device certificate, summarised.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct CertInfo {
    /// Serial, hex.
    pub serial: String,
    /// Issuer (RFC 4514).
    pub issuer: String,
    /// notBefore, Unix seconds.
    pub not_before: u64,
    /// notAfter, Unix seconds.
    pub not_after: u64,
    /// When renewal is due (two thirds of the lifetime), Unix seconds.
    pub renew_at: u64,
    /// Whether the certificate matches the key in `key.pem`.
    pub matches_key: bool,
}

impl CertInfo {
    /// Whether renewal is due at `now`.
    pub fn renewal_due(&self, now: SystemTime) -> bool {
        unix(now) >= self.renew_at
    }

    /// Whether the certificate has expired at `now`.
    pub fn expired(&self, now: SystemTime) -> bool {
        unix(now) > self.not_after
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Agent {
    /// Use `dir` (created with mode 0700 if missing).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref().to_path_buf();
        home::create_dir(&dir)?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Make a new SM2 device key in `key.pem` (0600). Refuses to overwrite an existing key.
    /// Returns the public key as PEM.
    pub fn keygen(&self) -> Result<String, Error> {
        if home::read(&self.dir, home::KEY)?.is_some() {
            return Err(Error::KeyExists(home::path(&self.dir, home::KEY)));
        }
        let sk = Sm2SecretKey::generate()?;
        self.store_key(&sk)?;
        Ok(smtrust_crypto::pem::encode_public_key(sk.public_key())?)
    }

    /// Make a key unless one exists.
    pub fn ensure_key(&self) -> Result<(), Error> {
        if home::read(&self.dir, home::KEY)?.is_none() {
            self.keygen()?;
        }
        Ok(())
    }

    fn store_key(&self, sk: &Sm2SecretKey) -> Result<(), Error> {
        let pem = smtrust_crypto::pem::encode_private_key(sk)?;
        home::write(&self.dir, home::KEY, pem.as_bytes(), true)
    }

    pub(crate) fn key(&self) -> Result<Sm2SecretKey, Error> {
        let pem =
            zeroize::Zeroizing::new(home::read(&self.dir, home::KEY)?.ok_or(Error::Missing {
                what: "device key (key.pem)",
                dir: self.dir.clone(),
                hint: "run keygen first",
            })?);
        Ok(smtrust_crypto::pem::decode_private_key(&pem, None)?)
    }

    /// A DER CSR for `device_id`, signed with the device key (GM/T 0009 ID). Records the device ID.
    pub fn csr(&self, device_id: &str) -> Result<Vec<u8>, Error> {
        let id = DeviceId::new(device_id)?;
        let der = csr::build(&self.key()?, id.as_str())?;
        home::write(&self.dir, home::DEVICE_ID, id.as_str().as_bytes(), false)?;
        Ok(der)
    }

    /// Install the factory bootstrap identity (certificate and key PEM) used by
    /// [`Agent::enroll_with_bootstrap`].
    pub fn install_bootstrap(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), Error> {
        let key = smtrust_crypto::pem::decode_private_key(key_pem, None)?;
        pem_certs(cert_pem)?;
        home::write(&self.dir, home::BOOTSTRAP_CERT, cert_pem, false)?;
        let pem = smtrust_crypto::pem::encode_private_key(&key)?;
        home::write(&self.dir, home::BOOTSTRAP_KEY, pem.as_bytes(), true)
    }

    /// The device certificate (DER), if enrolled (the first certificate of `cert.pem`).
    pub fn certificate(&self) -> Result<Option<Vec<u8>>, Error> {
        match home::read(&self.dir, home::CERT)? {
            Some(pem) => Ok(pem_certs(&pem)?.into_iter().next()),
            None => Ok(None),
        }
    }

    /// The issuing CA chain from the last `/cacerts` (DER).
    pub fn chain(&self) -> Result<Vec<Vec<u8>>, Error> {
        match home::read(&self.dir, home::CHAIN)? {
            Some(pem) => pem_certs(&pem),
            None => Ok(Vec::new()),
        }
    }

    /// TLS client credentials from the device key and certificate, for connecting to a gateway (or re-enrolling).
    pub fn credentials(&self) -> Result<Credentials, Error> {
        let cert = self.certificate()?.ok_or(Error::Missing {
            what: "device certificate (cert.pem)",
            dir: self.dir.clone(),
            hint: "enroll first",
        })?;
        let mut chain = vec![cert];
        chain.extend(self.chain()?.into_iter().filter(|c| !self_signed(c)));
        credentials(&self.key()?, chain)
    }

    pub(crate) fn bootstrap_credentials(&self) -> Result<Credentials, Error> {
        let missing = Error::Missing {
            what: "bootstrap identity (bootstrap/cert.pem, bootstrap/key.pem)",
            dir: self.dir.clone(),
            hint: "install it at manufacture (Agent::install_bootstrap)",
        };
        let (Some(cert), Some(key)) = (
            home::read(&self.dir, home::BOOTSTRAP_CERT)?,
            home::read(&self.dir, home::BOOTSTRAP_KEY)?,
        ) else {
            return Err(missing);
        };
        let key = smtrust_crypto::pem::decode_private_key(&zeroize::Zeroizing::new(key), None)?;
        let chain: Vec<Vec<u8>> = pem_certs(&cert)?
            .into_iter()
            .filter(|c| !self_signed(c))
            .collect();
        if chain.is_empty() {
            return Err(missing);
        }
        credentials(&key, chain)
    }

    /// What the directory holds.
    pub fn status(&self) -> Result<Status, Error> {
        let key = match home::read(&self.dir, home::KEY)? {
            Some(_) => Some(self.key()?),
            None => None,
        };
        let certificate = match self.certificate()? {
            Some(der) => Some(cert_info(&der, key.as_ref())?),
            None => None,
        };
        let device_id = home::read(&self.dir, home::DEVICE_ID)?
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned());
        Ok(Status {
            dir: self.dir.clone(),
            device_id,
            has_key: key.is_some(),
            has_bootstrap: home::read(&self.dir, home::BOOTSTRAP_CERT)?.is_some(),
            certificate,
            chain_len: self.chain()?.len(),
        })
    }
}

/// TLS credentials: the key as an RFC 8998 signer, the leaf then its intermediates (the server needs them to
/// build the path to its root).
fn credentials(key: &Sm2SecretKey, chain: Vec<Vec<u8>>) -> Result<Credentials, Error> {
    let signer = Arc::new(key.signing_key(Tls13Id)?);
    Ok(Credentials::new(
        signer,
        chain
            .into_iter()
            .map(rustls::pki_types::CertificateDer::from)
            .collect(),
    )?)
}

/// A root (subject = issuer) is not sent: the peer has it or does not trust it.
fn self_signed(der: &[u8]) -> bool {
    x509_cert::Certificate::from_der(der)
        .map(|c| c.tbs_certificate().subject() == c.tbs_certificate().issuer())
        .unwrap_or(false)
}

/// Whether the certificate's SPKI is the key's.
fn matches(cert: &x509_cert::Certificate, key: &Sm2SecretKey) -> Result<bool, Error> {
    let spki = cert.tbs_certificate().subject_public_key_info().to_der()?;
    Ok(spki == smtrust_crypto::x509::public_key_to_spki_der(key.public_key())?)
}

fn cert_info(der: &[u8], key: Option<&Sm2SecretKey>) -> Result<CertInfo, Error> {
    let c = x509_cert::Certificate::from_der(der)?;
    let tbs = c.tbs_certificate();
    let nb = tbs.validity().not_before.to_system_time();
    let na = tbs.validity().not_after.to_system_time();
    Ok(CertInfo {
        serial: hex::encode(tbs.serial_number().as_bytes()),
        issuer: tbs.issuer().to_string(),
        not_before: unix(nb),
        not_after: unix(na),
        renew_at: unix(renewal_due_at(nb, na)),
        matches_key: match key {
            Some(k) => matches(&c, k)?,
            None => false,
        },
    })
}

/// The DER certificates of a PEM file.
fn pem_certs(pem: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    Ok(smtrust_crypto::pem::blocks(pem)?
        .into_iter()
        .filter(|(l, _)| l == "CERTIFICATE")
        .map(|(_, d)| d.to_vec())
        .collect())
}

/// PEM of DER certificates.
fn to_pem(certs: &[Vec<u8>]) -> Result<String, Error> {
    let mut out = String::new();
    for c in certs {
        out.push_str(&smtrust_crypto::pem::encode("CERTIFICATE", c)?);
    }
    Ok(out)
}
