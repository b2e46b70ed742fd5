//! The authority: issuing CAs (root, intermediate, imported) and the sync work of issuing certificates.
//!
//! Nothing here touches a clock, a socket or a database: time and serials are parameters, so the service
//! layer can reserve a serial in the store before [`Issuer::sign`] runs (a crash never reuses one).

pub mod ext;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use const_oid::db::{rfc4519, rfc5280};
use der::{Decode, Encode};
use smtrust_crypto::x509::{CertSigner, DerSignature, X509Signer};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
};
use x509_cert::name::Name;
use x509_cert::time::{Time, Validity};

use crate::csr::{CsrDistId, VerifiedCsr};
use crate::device::{DeviceId, Namespace};
use crate::profile::{Profile, ProfileKind};
use crate::serial::Serial;
use crate::{Error, RequestError};

/// How far notBefore is set in the past, for devices with slightly slow clocks.
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// Settings of one issuing CA, filled into what it issues.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuerConfig {
    /// Short label (`root`, `line7`), the key in the store and in URLs.
    pub label: String,
    /// The device-ID namespace this CA may issue in (enforced at issuance; see [`crate::device`]).
    pub namespace: Namespace,
    /// `O=` of device subjects.
    pub organization: Option<String>,
    /// Full CRL URL (cRLDistributionPoints of issued certificates).
    pub crl_url: Option<String>,
    /// Delta CRL URL (freshestCRL of full CRLs).
    pub delta_crl_url: Option<String>,
    /// OCSP responder URL (AIA).
    pub ocsp_url: Option<String>,
    /// URL of this CA's certificate (AIA caIssuers).
    pub ca_issuers_url: Option<String>,
}

impl CaLimits {
    /// Limits with a pathLenConstraint (`None`: unlimited).
    pub fn path_len(path_len: Option<u8>) -> Self {
        Self { path_len }
    }
}

impl IssuerConfig {
    /// A config with just a label.
    pub fn new(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            ..Self::default()
        }
    }
}

/// An issuing CA: its certificate, its signer and its settings.
#[derive(Clone)]
pub struct Issuer {
    config: IssuerConfig,
    cert: Certificate,
    der: Vec<u8>,
    ski: Vec<u8>,
    not_after: SystemTime,
    signer: Arc<dyn CertSigner>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("label", &self.config.label)
            .field(
                "subject",
                &self.cert.tbs_certificate().subject().to_string(),
            )
            .finish_non_exhaustive()
    }
}

/// What a CA certificate may do below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CaLimits {
    /// pathLenConstraint (None: unlimited).
    pub path_len: Option<u8>,
}

/// A profile that hands x509-cert's builder a fixed subject, issuer and extension list.
struct Fixed {
    subject: Name,
    issuer: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for Fixed {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

/// A request the authority has checked and is ready to sign once a serial is reserved.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PreparedCert {
    /// The profile name.
    pub profile: String,
    /// The device ID, for device profiles.
    pub device_id: Option<DeviceId>,
    /// The subject that will be written.
    pub subject: Name,
    /// The subject key.
    pub spki: SubjectPublicKeyInfoOwned,
    extensions_wo_keyid: Vec<Extension>,
    validity_secs: u64,
}

/// A signed certificate.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IssuedCert {
    /// Its serial.
    pub serial: Serial,
    /// DER.
    pub der: Vec<u8>,
    /// The device ID, if any.
    pub device_id: Option<DeviceId>,
    /// The profile name.
    pub profile: String,
    /// notAfter, Unix seconds.
    pub not_after: u64,
    /// The issuer label.
    pub issuer: String,
}

impl IssuedCert {
    /// PEM `CERTIFICATE`.
    pub fn to_pem(&self) -> String {
        pem_cert(&self.der)
    }
}

/// PEM `CERTIFICATE` of a DER certificate.
pub fn pem_cert(der: &[u8]) -> String {
    smtrust_crypto::pem::encode("CERTIFICATE", der)
        .map(|z| z.to_string())
        .unwrap_or_default()
}

fn validity(now: SystemTime, secs: u64, cap: Option<SystemTime>) -> Result<Validity, Error> {
    let nb = now.checked_sub(BACKDATE).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut na = now
        .checked_add(Duration::from_secs(secs))
        .ok_or(der::Error::from(der::ErrorKind::DateTime))?;
    if let Some(cap) = cap {
        na = na.min(cap);
    }
    Ok(Validity::new(Time::try_from(nb)?, Time::try_from(na)?))
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn spki_of(signer: &dyn CertSigner) -> Result<SubjectPublicKeyInfoOwned, Error> {
    let der = smtrust_crypto::x509::public_key_to_spki_der(signer.public_key())?;
    Ok(SubjectPublicKeyInfoOwned::from_der(&der)?)
}

fn ca_extensions(
    spki: &SubjectPublicKeyInfoOwned,
    issuer_ski: Option<&[u8]>,
    limits: CaLimits,
) -> Result<Vec<Extension>, Error> {
    let ski = ext::key_identifier(spki);
    let bc = BasicConstraints {
        ca: true,
        path_len_constraint: limits.path_len,
    };
    let ku = KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature);
    Ok(vec![
        ext::ext(rfc5280::ID_CE_BASIC_CONSTRAINTS, true, &bc)?,
        ext::ext(rfc5280::ID_CE_KEY_USAGE, true, &ku)?,
        ext::ski(&ski)?,
        ext::aki(issuer_ski.unwrap_or(&ski))?,
    ])
}

impl Issuer {
    /// A self-signed root CA.
    pub fn create_root(
        signer: Arc<dyn CertSigner>,
        subject: &str,
        validity_secs: u64,
        limits: CaLimits,
        serial: Serial,
        now: SystemTime,
        config: IssuerConfig,
    ) -> Result<Self, Error> {
        let name: Name = subject.parse()?;
        let spki = spki_of(signer.as_ref())?;
        let fixed = Fixed {
            subject: name.clone(),
            issuer: name,
            extensions: ca_extensions(&spki, None, limits)?,
        };
        let b = CertificateBuilder::new(
            fixed,
            serial.to_serial_number()?,
            validity(now, validity_secs, None)?,
            spki,
        )?;
        let cert = b.build::<_, DerSignature>(&X509Signer::new(signer.as_ref()))?;
        Self::from_parts(cert, signer, config)
    }

    /// An intermediate CA signed by `self`, with its own `signer`.
    #[allow(clippy::too_many_arguments)]
    pub fn create_intermediate(
        &self,
        signer: Arc<dyn CertSigner>,
        subject: &str,
        validity_secs: u64,
        limits: CaLimits,
        serial: Serial,
        now: SystemTime,
        config: IssuerConfig,
    ) -> Result<Issuer, Error> {
        let name: Name = subject.parse()?;
        let spki = spki_of(signer.as_ref())?;
        let mut extensions = ca_extensions(&spki, Some(&self.ski), limits)?;
        self.push_distribution(&mut extensions)?;
        let fixed = Fixed {
            subject: name,
            issuer: self.subject().clone(),
            extensions,
        };
        let b = CertificateBuilder::new(
            fixed,
            serial.to_serial_number()?,
            validity(now, validity_secs, Some(self.not_after))?,
            spki,
        )?;
        let cert = b.build::<_, DerSignature>(&X509Signer::new(self.signer.as_ref()))?;
        Self::from_parts(cert, signer, config)
    }

    /// Import an externally made root or intermediate; `signer` must hold the key of its subject public key.
    pub fn import(
        cert_der: &[u8],
        signer: Arc<dyn CertSigner>,
        config: IssuerConfig,
    ) -> Result<Self, Error> {
        let cert = Certificate::from_der(cert_der)
            .map_err(|e| RequestError::malformed("CA certificate", &e))?;
        let tbs = cert.tbs_certificate();
        let bc = tbs
            .get_extension::<BasicConstraints>()
            .map_err(|e| RequestError::malformed("basicConstraints", &e))?;
        if !bc.is_some_and(|(_, b)| b.ca) {
            return Err(RequestError::Import("not a CA certificate (basicConstraints cA)").into());
        }
        if spki_of(signer.as_ref())? != *tbs.subject_public_key_info() {
            return Err(RequestError::Import("signer key does not match the certificate").into());
        }
        Self::from_parts(cert, signer, config)
    }

    fn from_parts(
        cert: Certificate,
        signer: Arc<dyn CertSigner>,
        config: IssuerConfig,
    ) -> Result<Self, Error> {
        let der = cert.to_der()?;
        let tbs = cert.tbs_certificate();
        let ski = match tbs.get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>() {
            Ok(Some((_, s))) => s.0.as_bytes().to_vec(),
            _ => ext::key_identifier(tbs.subject_public_key_info()),
        };
        let not_after = tbs.validity().not_after.to_system_time();
        Ok(Self {
            config,
            cert,
            der,
            ski,
            not_after,
            signer,
        })
    }

    /// The settings.
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }
    /// The label.
    pub fn label(&self) -> &str {
        &self.config.label
    }
    /// The CA certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }
    /// The CA certificate's DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.der
    }
    /// The CA's subject.
    pub fn subject(&self) -> &Name {
        self.cert.tbs_certificate().subject()
    }
    /// The CA's subject key identifier (used as AKI of what it signs, CRLs included).
    pub fn key_id(&self) -> &[u8] {
        &self.ski
    }
    /// The CA's signer.
    pub fn signer(&self) -> &dyn CertSigner {
        self.signer.as_ref()
    }
    /// The CA certificate's notAfter.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    fn push_distribution(&self, exts: &mut Vec<Extension>) -> Result<(), Error> {
        if let Some(u) = &self.config.crl_url {
            exts.push(ext::crl_dp(u)?);
        }
        if let Some(a) = ext::aia(
            self.config.ocsp_url.as_deref(),
            self.config.ca_issuers_url.as_deref(),
        )? {
            exts.push(a);
        }
        Ok(())
    }

    /// Check a verified CSR against a profile and this CA's namespace, and decide the certificate's content.
    /// `device_id` is what the caller authenticated (EST token, factory manifest); when absent it is read from
    /// the CSR subject (serialNumber, else CN). Nothing is stored or signed.
    pub fn prepare(
        &self,
        profile: &Profile,
        csr: &VerifiedCsr,
        device_id: Option<&DeviceId>,
        dns_names: &[String],
    ) -> Result<PreparedCert, Error> {
        if csr.signed_with == CsrDistId::Empty && !profile.accept_empty_id_csr {
            return Err(RequestError::EmptyIdCsr.into());
        }
        let mut dns: Vec<String> = dns_names.to_vec();
        for e in &csr.requested_extensions {
            if !profile.allows_csr_extension(&e.extn_id) {
                return Err(RequestError::ExtensionNotAllowed {
                    profile: profile.name.clone(),
                    oid: e.extn_id.to_string(),
                }
                .into());
            }
            if profile.kind == ProfileKind::ServerTls
                && e.extn_id == rfc5280::ID_CE_SUBJECT_ALT_NAME
            {
                let san = SubjectAltName::from_der(e.extn_value.as_bytes())
                    .map_err(|e| RequestError::malformed("requested subjectAltName", &e))?;
                for n in san.0 {
                    if let GeneralName::DnsName(d) = n {
                        dns.push(d.to_string());
                    }
                }
            }
        }
        let (device_id, subject) = if profile.kind.needs_device_id() {
            let id = self.device_id_for(profile, csr, device_id)?;
            let subject = ext::device_subject(id.as_str(), self.config.organization.as_deref())?;
            (Some(id), subject)
        } else {
            (device_id.cloned(), csr.subject.clone())
        };
        for d in &dns {
            if d.is_empty()
                || d.len() > 253
                || !d
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'*'))
            {
                return Err(RequestError::InvalidDnsName(d.chars().take(80).collect()).into());
            }
        }
        self.profile_extensions(profile, device_id.as_ref(), &dns)
            .map(|exts| PreparedCert {
                profile: profile.name.clone(),
                device_id,
                subject,
                spki: csr.spki.clone(),
                extensions_wo_keyid: exts,
                validity_secs: profile.validity_secs,
            })
    }

    fn device_id_for(
        &self,
        profile: &Profile,
        csr: &VerifiedCsr,
        given: Option<&DeviceId>,
    ) -> Result<DeviceId, Error> {
        let in_csr = ext::name_attr(&csr.subject, rfc4519::SERIAL_NUMBER)
            .or_else(|| ext::name_attr(&csr.subject, rfc4519::CN));
        let id = match (given, in_csr) {
            (Some(g), Some(c)) if g.as_str() != c => {
                return Err(RequestError::DeviceIdMismatch {
                    requested: g.to_string(),
                    in_csr: c.chars().take(80).collect(),
                }
                .into());
            }
            (Some(g), _) => g.clone(),
            (None, Some(c)) => DeviceId::new(&c)?,
            (None, None) => return Err(RequestError::MissingDeviceId(profile.name.clone()).into()),
        };
        self.check_namespace(&id)?;
        Ok(id)
    }

    /// Refuse a device ID outside this CA's namespace.
    pub fn check_namespace(&self, id: &DeviceId) -> Result<(), RequestError> {
        if self.config.namespace.contains(id) {
            Ok(())
        } else {
            Err(RequestError::OutsideNamespace {
                id: id.to_string(),
                prefix: self.config.namespace.prefix().to_owned(),
                issuer: self.config.label.clone(),
            })
        }
    }

    fn profile_extensions(
        &self,
        profile: &Profile,
        device_id: Option<&DeviceId>,
        dns: &[String],
    ) -> Result<Vec<Extension>, Error> {
        // Leaves carry no basicConstraints: RFC 5280 allows omitting it, and GmSSL rejects cA FALSE.
        let mut exts = vec![ext::ext(
            rfc5280::ID_CE_KEY_USAGE,
            true,
            &KeyUsage(profile.key_usage_flags()),
        )?];
        if !profile.extended_key_usage.is_empty() {
            let eku =
                ExtendedKeyUsage(profile.extended_key_usage.iter().map(|e| e.oid()).collect());
            exts.push(ext::ext(rfc5280::ID_CE_EXT_KEY_USAGE, false, &eku)?);
        }
        let fill = |t: &str| match device_id {
            Some(id) => t.replace("{device_id}", id.as_str()),
            None => t.to_owned(),
        };
        let mut names = Vec::new();
        for t in &profile.san_uri {
            if t.contains("{device_id}") && device_id.is_none() {
                continue;
            }
            names.push(ext::uri(&fill(t))?);
        }
        let mut all_dns: Vec<String> = profile
            .san_dns
            .iter()
            .filter(|t| !t.contains("{device_id}") || device_id.is_some())
            .map(|t| fill(t))
            .collect();
        all_dns.extend(dns.iter().cloned());
        all_dns.dedup();
        for d in all_dns {
            names.push(GeneralName::DnsName(der::asn1::Ia5String::new(&d)?));
        }
        if !names.is_empty() {
            exts.push(ext::ext(
                rfc5280::ID_CE_SUBJECT_ALT_NAME,
                false,
                &SubjectAltName(names),
            )?);
        }
        if profile.kind == ProfileKind::OcspSigner {
            exts.push(ext::ext(ext::OCSP_NOCHECK, false, &der::asn1::Null)?);
        } else {
            self.push_distribution(&mut exts)?;
        }
        Ok(exts)
    }

    /// Sign a prepared certificate with a reserved serial.
    pub fn sign(
        &self,
        prepared: &PreparedCert,
        serial: Serial,
        now: SystemTime,
    ) -> Result<IssuedCert, Error> {
        let mut extensions = prepared.extensions_wo_keyid.clone();
        extensions.push(ext::ski(&ext::key_identifier(&prepared.spki))?);
        extensions.push(ext::aki(&self.ski)?);
        let fixed = Fixed {
            subject: prepared.subject.clone(),
            issuer: self.subject().clone(),
            extensions,
        };
        let v = validity(now, prepared.validity_secs, Some(self.not_after))?;
        let not_after = unix(v.not_after.to_system_time());
        let b =
            CertificateBuilder::new(fixed, serial.to_serial_number()?, v, prepared.spki.clone())?;
        let cert = b.build::<_, DerSignature>(&X509Signer::new(self.signer.as_ref()))?;
        Ok(IssuedCert {
            serial,
            der: cert.to_der()?,
            device_id: prepared.device_id.clone(),
            profile: prepared.profile.clone(),
            not_after,
            issuer: self.config.label.clone(),
        })
    }

    /// Check, then sign: for callers that manage serials themselves (tests, offline tools).
    pub fn issue(
        &self,
        profile: &Profile,
        csr: &VerifiedCsr,
        device_id: Option<&DeviceId>,
        serial: Serial,
        now: SystemTime,
    ) -> Result<IssuedCert, Error> {
        let p = self.prepare(profile, csr, device_id, &[])?;
        self.sign(&p, serial, now)
    }
}
