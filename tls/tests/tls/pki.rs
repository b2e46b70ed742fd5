//! Test PKI: SM2 roots, intermediates and leaves built with x509-cert 0.3's builder and the crypto crate's
//! X509Signer (DER signatures, GM/T 0009 ID). Leaves omit basicConstraints (GmSSL rejects cA FALSE).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::{Decode, Encode};
use rustls::pki_types::CertificateDer;
use smtrust_crypto::sm2::{CertId, Sm2SecretKey, Sm2Signer, Sm2SigningKey, Tls13Id};
use smtrust_crypto::x509::{DerSignature, X509Signer};
use spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    NameConstraints, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

pub const SERVER_AUTH: der::asn1::ObjectIdentifier = const_oid::db::rfc5280::ID_KP_SERVER_AUTH;
pub const CLIENT_AUTH: der::asn1::ObjectIdentifier = const_oid::db::rfc5280::ID_KP_CLIENT_AUTH;

/// Issuer and subject; SKI/AKI from the keys (SM3, first 20 bytes), non-critical.
struct Profile {
    issuer: Name,
    subject: Name,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &x509_cert::TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        use x509_cert::ext::ToExtension;
        let kid = |s: SubjectPublicKeyInfoRef<'_>| {
            let h = smtrust_crypto::sm3::digest(s.subject_public_key.raw_bytes());
            der::asn1::OctetString::new(h[..20].to_vec()).expect("20 bytes")
        };
        let ski = SubjectKeyIdentifier(kid(spk));
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(kid(issuer_spk)),
            ..Default::default()
        };
        let empty = x509_cert::ext::Extensions::default();
        Ok(vec![
            ski.to_extension(tbs.subject(), &empty)?,
            aki.to_extension(tbs.subject(), &empty)?,
        ])
    }
}

pub struct Ca {
    pub key: Sm2SigningKey<CertId>,
    pub name: Name,
    pub cert: CertificateDer<'static>,
}

pub struct Leaf {
    pub secret: Sm2SecretKey,
    pub cert: CertificateDer<'static>,
}

impl Leaf {
    pub fn signer(&self) -> Arc<dyn Sm2Signer<Tls13Id>> {
        Arc::new(self.secret.signing_key(Tls13Id).expect("signing key"))
    }
    pub fn credentials(&self, chain_tail: &[CertificateDer<'static>]) -> smtrust_tls::Credentials {
        let mut chain = vec![self.cert.clone()];
        chain.extend_from_slice(chain_tail);
        smtrust_tls::Credentials::new(self.signer(), chain).expect("credentials")
    }
    pub fn serial(&self) -> Vec<u8> {
        let c = x509_cert::Certificate::from_der(self.cert.as_ref()).expect("cert");
        c.tbs_certificate().serial_number().as_bytes().to_vec()
    }
    pub fn issuer_der(&self) -> Vec<u8> {
        let c = x509_cert::Certificate::from_der(self.cert.as_ref()).expect("cert");
        c.tbs_certificate().issuer().to_der().expect("der")
    }
}

fn spki(sk: &Sm2SecretKey) -> SubjectPublicKeyInfoOwned {
    let der = smtrust_crypto::x509::public_key_to_spki_der(sk.public_key()).expect("spki");
    SubjectPublicKeyInfoOwned::from_der(&der).expect("spki")
}

fn serial() -> SerialNumber {
    let mut b = smtrust_crypto::rng::bytes::<16>().expect("rng");
    b[0] &= 0x7f;
    b[0] |= 0x01;
    SerialNumber::new(&b).expect("serial")
}

fn time(t: SystemTime) -> Time {
    Time::try_from(t).expect("time")
}

#[allow(
    clippy::disallowed_methods,
    reason = "test certificates are dated from the wall clock"
)]
pub fn validity_days(before: i64, after: i64) -> Validity {
    let now = SystemTime::now();
    let at = |d: i64| {
        let secs = Duration::from_secs(d.unsigned_abs() * 86400);
        if d < 0 { now - secs } else { now + secs }
    };
    Validity::new(time(at(before)), time(at(after)))
}

/// How a certificate is made.
pub struct Spec {
    pub subject: String,
    pub validity: Validity,
    pub ca: Option<Option<u8>>,
    pub key_usage: der::flagset::FlagSet<KeyUsages>,
    pub eku: Vec<der::asn1::ObjectIdentifier>,
    pub dns: Vec<&'static str>,
    pub uris: Vec<String>,
    pub permitted_dns: Option<&'static str>,
    /// Sign with the empty ID instead of the GM/T one (OpenSSL 3 without -sigopt distid).
    pub empty_id: bool,
}

impl Spec {
    pub fn leaf(subject: &str, eku: der::asn1::ObjectIdentifier) -> Self {
        Self {
            subject: subject.into(),
            validity: validity_days(-1, 365),
            ca: None,
            key_usage: KeyUsages::DigitalSignature.into(),
            eku: vec![eku],
            dns: Vec::new(),
            uris: Vec::new(),
            permitted_dns: None,
            empty_id: false,
        }
    }
    pub fn server(dns: &'static str) -> Self {
        let mut s = Self::leaf(&format!("CN={dns},O=smtrust test"), SERVER_AUTH);
        s.dns = vec![dns];
        s
    }
    pub fn device(id: &str) -> Self {
        let mut s = Self::leaf(
            &format!("CN={id},serialNumber={id},O=smtrust test"),
            CLIENT_AUTH,
        );
        s.uris = vec![format!("urn:smtrust:device:{id}")];
        s
    }
    pub fn ca(subject: &str, path_len: Option<u8>) -> Self {
        Self {
            subject: subject.into(),
            validity: validity_days(-1, 3650),
            ca: Some(path_len),
            key_usage: KeyUsages::KeyCertSign | KeyUsages::CRLSign,
            eku: Vec::new(),
            dns: Vec::new(),
            uris: Vec::new(),
            permitted_dns: None,
            empty_id: false,
        }
    }
}

/// A signer with the empty ID, to make certificates OpenSSL 3 makes without `-sigopt distid`.
struct EmptyIdSigner<'a>(&'a Sm2SecretKey);

impl signature::Keypair for EmptyIdSigner<'_> {
    type VerifyingKey = smtrust_crypto::sm2::Sm2PublicKey;
    fn verifying_key(&self) -> smtrust_crypto::sm2::Sm2PublicKey {
        self.0.public_key().clone()
    }
}
impl signature::Signer<DerSignature> for EmptyIdSigner<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<DerSignature, signature::Error> {
        let key = smtrust_crypto::sm2::CustomId::new("").expect("empty id");
        let sig = self
            .0
            .signing_key(key)
            .expect("key")
            .sign(msg)
            .expect("sign");
        DerSignature::try_from(sig.as_der())
    }
}
impl spki::DynSignatureAlgorithmIdentifier for EmptyIdSigner<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<spki::AlgorithmIdentifierOwned> {
        Ok(smtrust_crypto::x509::sm2_with_sm3())
    }
}

fn build(
    spec: &Spec,
    subject_key: &Sm2SecretKey,
    issuer: Option<(&Name, &Sm2SecretKey)>,
) -> CertificateDer<'static> {
    let subject = Name::from_str(&spec.subject).expect("subject");
    let (issuer_name, issuer_key) = match issuer {
        Some((n, k)) => (n.clone(), k),
        None => (subject.clone(), subject_key),
    };
    let profile = Profile {
        issuer: issuer_name,
        subject,
    };
    let mut b = CertificateBuilder::new(profile, serial(), spec.validity, spki(subject_key))
        .expect("builder");
    if let Some(path_len) = spec.ca {
        b.add_extension(&BasicConstraints {
            ca: true,
            path_len_constraint: path_len,
        })
        .expect("bc");
    }
    b.add_extension(&KeyUsage(spec.key_usage)).expect("ku");
    if !spec.eku.is_empty() {
        b.add_extension(&ExtendedKeyUsage(spec.eku.clone()))
            .expect("eku");
    }
    let mut names: Vec<GeneralName> = spec
        .dns
        .iter()
        .map(|d| GeneralName::DnsName(der::asn1::Ia5String::new(d).expect("dns")))
        .collect();
    names.extend(spec.uris.iter().map(|u| {
        GeneralName::UniformResourceIdentifier(der::asn1::Ia5String::new(u).expect("uri"))
    }));
    if !names.is_empty() {
        b.add_extension(&SubjectAltName(names)).expect("san");
    }
    if let Some(dns) = spec.permitted_dns {
        let nc = NameConstraints {
            permitted_subtrees: Some(vec![
                x509_cert::ext::pkix::constraints::name::GeneralSubtree {
                    base: GeneralName::DnsName(der::asn1::Ia5String::new(dns).expect("dns")),
                    minimum: 0,
                    maximum: None,
                },
            ]),
            excluded_subtrees: None,
        };
        b.add_extension(&nc).expect("nc");
    }
    let cert = if spec.empty_id {
        b.build::<_, DerSignature>(&EmptyIdSigner(issuer_key))
            .expect("build")
    } else {
        let signer = issuer_key.signing_key(CertId).expect("key");
        b.build::<_, DerSignature>(&X509Signer::new(&signer))
            .expect("build")
    };
    CertificateDer::from(cert.to_der().expect("der"))
}

impl Ca {
    pub fn root(cn: &str) -> (Self, Sm2SecretKey) {
        let sk = Sm2SecretKey::generate().expect("key");
        let spec = Spec::ca(&format!("CN={cn},O=smtrust test"), None);
        let cert = build(&spec, &sk, None);
        let name = Name::from_str(&spec.subject).expect("name");
        (
            Self {
                key: sk.signing_key(CertId).expect("key"),
                name,
                cert,
            },
            sk,
        )
    }
}

/// A CA with its secret (the builder needs the secret to make signing keys with either ID).
pub struct Authority {
    pub ca: Ca,
    pub secret: Sm2SecretKey,
}

impl Authority {
    pub fn root(cn: &str) -> Self {
        let (ca, secret) = Ca::root(cn);
        Self { ca, secret }
    }
    pub fn cert(&self) -> CertificateDer<'static> {
        self.ca.cert.clone()
    }
    pub fn issue(&self, spec: &Spec) -> Leaf {
        let secret = Sm2SecretKey::generate().expect("key");
        let cert = build(spec, &secret, Some((&self.ca.name, &self.secret)));
        Leaf { secret, cert }
    }
    pub fn intermediate(&self, spec: &Spec) -> Authority {
        let secret = Sm2SecretKey::generate().expect("key");
        let cert = build(spec, &secret, Some((&self.ca.name, &self.secret)));
        let name = Name::from_str(&spec.subject).expect("name");
        let key = secret.signing_key(CertId).expect("key");
        Authority {
            ca: Ca { key, name, cert },
            secret,
        }
    }
}

pub fn pem_cert(c: &CertificateDer<'_>) -> String {
    smtrust_crypto::pem::encode("CERTIFICATE", c.as_ref())
        .expect("pem")
        .to_string()
}
