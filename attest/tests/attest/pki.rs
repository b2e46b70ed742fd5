//! A tiny CA built with x509-cert 0.3's builder: root → intermediate → device leaves and the attestation
//! service certificate, all SM2-with-SM3 with the GM/T 0009 ID.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::Encode;
use smtrust_attest::reference::{ReferenceMeasurement, ReferenceValues};
use smtrust_attest::{
    AppraisalConfig, Appraiser, CertRef, CertStatus, CertificateStatus, Claims, DebugState,
    DeviceId, Measurement, MeasurementKind, MemoryNonceStore, MemoryReferenceStore, Nonce,
    TrustAnchors,
};
use smtrust_crypto::sm2::{CertId, Sm2SecretKey, Sm2SigningKey};
use smtrust_crypto::x509::{DerSignature, X509Signer, public_key_to_spki_der};
use x509_cert::TbsCertificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::Extension;
use x509_cert::ext::ToExtension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{SubjectPublicKeyInfo, SubjectPublicKeyInfoRef};
use x509_cert::time::{Time, Validity};

/// 2025-11-24T16:00:00Z: every test runs at this instant.
pub const NOW_SECS: u64 = 1_764_000_000;
pub const DAY: u64 = 86_400;

pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}
pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

struct Profile {
    issuer: Name,
    subject: Name,
    ca: bool,
    uri: Option<String>,
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
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut out = vec![
            (&BasicConstraints {
                ca: self.ca,
                path_len_constraint: None,
            })
                .to_extension(&self.subject, &[])?,
        ];
        if let Some(uri) = &self.uri {
            let san = SubjectAltName(vec![GeneralName::UniformResourceIdentifier(
                der::asn1::Ia5String::new(uri).expect("ascii"),
            )]);
            out.push((&san).to_extension(&self.subject, &[])?);
        }
        Ok(out)
    }
}

/// Issue a certificate for `key` signed by `issuer_key`.
#[allow(clippy::too_many_arguments)]
pub fn issue(
    issuer: &str,
    issuer_key: &Sm2SigningKey<CertId>,
    subject: &str,
    key: &Sm2SecretKey,
    ca: bool,
    uri: Option<String>,
    not_before: u64,
    not_after: u64,
) -> Vec<u8> {
    let profile = Profile {
        issuer: Name::from_str(issuer).unwrap(),
        subject: Name::from_str(subject).unwrap(),
        ca,
        uri,
    };
    let spki = SubjectPublicKeyInfo::try_from(
        public_key_to_spki_der(key.public_key()).unwrap().as_slice(),
    )
    .unwrap();
    let serial = SerialNumber::new(&smtrust_crypto::rng::bytes::<15>().unwrap()).unwrap();
    let validity = Validity::new(
        Time::try_from(at(not_before)).unwrap(),
        Time::try_from(at(not_after)).unwrap(),
    );
    let builder = CertificateBuilder::new(profile, serial, validity, spki).unwrap();
    let signer = X509Signer::new(issuer_key);
    let cert = builder.build::<_, DerSignature>(&signer).unwrap();
    cert.to_der().unwrap()
}

pub struct Pki {
    pub root: Vec<u8>,
    pub intermediate: Vec<u8>,
    pub intermediate_key: Sm2SigningKey<CertId>,
    pub attest_key: Sm2SigningKey<CertId>,
    pub attest_chain: Vec<Vec<u8>>,
}

pub const ROOT_DN: &str = "CN=smtrust test root,O=smtrust";
pub const INT_DN: &str = "CN=smtrust test devices,O=smtrust";

impl Pki {
    pub fn new() -> Self {
        let root_sk = Sm2SecretKey::generate().unwrap();
        let root_key = root_sk.signing_key(CertId).unwrap();
        let valid = (NOW_SECS - 30 * DAY, NOW_SECS + 3650 * DAY);
        let root = issue(
            ROOT_DN, &root_key, ROOT_DN, &root_sk, true, None, valid.0, valid.1,
        );
        let int_sk = Sm2SecretKey::generate().unwrap();
        let intermediate = issue(
            ROOT_DN, &root_key, INT_DN, &int_sk, true, None, valid.0, valid.1,
        );
        let intermediate_key = int_sk.signing_key(CertId).unwrap();
        let att_sk = Sm2SecretKey::generate().unwrap();
        let att = issue(
            INT_DN,
            &intermediate_key,
            "CN=smtrust attestation",
            &att_sk,
            false,
            Some(smtrust_attest::ATTESTATION_SERVICE_URI.to_string()),
            valid.0,
            valid.1,
        );
        Self {
            root,
            intermediate: intermediate.clone(),
            intermediate_key,
            attest_key: att_sk.signing_key(CertId).unwrap(),
            attest_chain: vec![att, intermediate],
        }
    }

    pub fn anchors(&self) -> TrustAnchors {
        TrustAnchors::from_der(std::slice::from_ref(&self.root)).unwrap()
    }

    pub fn device(&self, id: &str) -> Device {
        self.device_valid(id, NOW_SECS - DAY, NOW_SECS + 365 * DAY)
    }

    pub fn device_valid(&self, id: &str, not_before: u64, not_after: u64) -> Device {
        let sk = Sm2SecretKey::generate().unwrap();
        let leaf = issue(
            INT_DN,
            &self.intermediate_key,
            &format!("CN={id},serialNumber={id}"),
            &sk,
            false,
            Some(format!("urn:smtrust:device:{id}")),
            not_before,
            not_after,
        );
        Device {
            id: DeviceId::new(id).unwrap(),
            key: sk.signing_key(CertId).unwrap(),
            chain: vec![leaf, self.intermediate.clone()],
        }
    }
}

pub struct Device {
    pub id: DeviceId,
    pub key: Sm2SigningKey<CertId>,
    pub chain: Vec<Vec<u8>>,
}

pub const MODEL: &str = "ctw-meter-3";
pub const FW: &str = "2.4.1";

pub fn measurements() -> Vec<Measurement> {
    vec![
        Measurement::of_bytes("bl2", MeasurementKind::BootStage, b"bootloader stage 2"),
        Measurement::of_bytes("kernel", MeasurementKind::BootStage, b"kernel image"),
        Measurement::of_bytes("firmware", MeasurementKind::Firmware, b"firmware 2.4.1"),
        Measurement::of_bytes(
            "config",
            MeasurementKind::Configuration,
            b"[app]\nmode=prod\n",
        ),
    ]
}

pub fn reference_values() -> ReferenceValues {
    ReferenceValues::new(
        MODEL,
        FW,
        false,
        measurements()
            .into_iter()
            .map(|m| ReferenceMeasurement::new(m.name, m.kind, vec![m.digest]))
            .collect(),
    )
    .unwrap()
}

pub fn claims(device: &Device, nonce: &Nonce) -> Claims {
    Claims::new(
        device.id.clone(),
        nonce.clone(),
        NOW_SECS,
        MODEL,
        FW,
        DebugState::DisabledPermanently,
        measurements(),
    )
}

/// A status oracle: listed serials are revoked or suspended, others good.
#[derive(Default)]
pub struct Statuses {
    pub revoked: Vec<Vec<u8>>,
    pub suspended: Vec<Vec<u8>>,
}

impl CertificateStatus for Statuses {
    fn status(&self, cert: &CertRef<'_>, _now: SystemTime) -> CertStatus {
        if self.revoked.iter().any(|s| s == cert.serial) {
            CertStatus::Revoked
        } else if self.suspended.iter().any(|s| s == cert.serial) {
            CertStatus::Suspended
        } else {
            CertStatus::Good
        }
    }
}

pub fn serial_of(cert_der: &[u8]) -> Vec<u8> {
    use der::Decode;
    let c = x509_cert::Certificate::from_der(cert_der).unwrap();
    c.tbs_certificate().serial_number().as_bytes().to_vec()
}

/// Everything a sync appraisal needs, with in-memory stores.
pub struct Bench {
    pub pki: Pki,
    pub appraiser: Arc<Appraiser>,
    pub nonces: MemoryNonceStore,
    pub refs: MemoryReferenceStore,
}

impl Bench {
    pub fn new() -> Self {
        let pki = Pki::new();
        let appraiser = Arc::new(Appraiser::new(pki.anchors(), AppraisalConfig::default()));
        let refs = MemoryReferenceStore::new();
        refs.register_now(&reference_values(), "secadmin-alice", now())
            .unwrap();
        Self {
            pki,
            appraiser,
            nonces: MemoryNonceStore::new(),
            refs,
        }
    }

    pub fn challenge(&self, device: &DeviceId, ttl: u64) -> Nonce {
        let c = smtrust_attest::Challenge::new(device.clone(), now(), Duration::from_secs(ttl))
            .unwrap();
        self.nonces.insert_now(&c);
        c.nonce
    }

    /// Run both phases with the memory stores, as the service does.
    pub fn appraise(
        &self,
        evidence: &[u8],
        status: &dyn CertificateStatus,
        when: SystemTime,
    ) -> smtrust_attest::Appraisal {
        let checked = self.appraiser.check(evidence, status, when);
        let nonce = checked
            .nonce()
            .map(|n| self.nonces.consume_now(n, when).unwrap());
        let refs = match checked.reference_key() {
            Some((m, f)) if checked.authenticated() => self.refs.latest_now(m, f),
            _ => None,
        };
        self.appraiser
            .finish(checked, nonce, refs.as_ref(), when)
            .unwrap()
    }
}
