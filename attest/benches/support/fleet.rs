//! A small PKI for the appraisal benches: root → intermediate → device leaves, an attestation key, the
//! measurements every device reports and the reference values that match them.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::Encode;
use smtrust_attest::reference::{ReferenceMeasurement, ReferenceValues};
use smtrust_attest::{
    CertRef, CertStatus, CertificateStatus, Claims, DebugState, DeviceId, Measurement,
    MeasurementKind, Nonce, TrustAnchors,
};
use smtrust_crypto::sm2::{CertId, Sm2SecretKey, Sm2SigningKey};
use smtrust_crypto::x509::{DerSignature, X509Signer, public_key_to_spki_der};
use x509_cert::TbsCertificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, SubjectAltName};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{SubjectPublicKeyInfo, SubjectPublicKeyInfoRef};
use x509_cert::time::{Time, Validity};

pub const NOW: u64 = 1_764_000_000;
pub const MODEL: &str = "m";
pub const FIRMWARE: &str = "1";

pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

struct P(Name, Name, bool, Option<String>);
impl BuilderProfile for P {
    fn get_issuer(&self, _: &Name) -> Name {
        self.0.clone()
    }
    fn get_subject(&self) -> Name {
        self.1.clone()
    }
    fn build_extensions(
        &self,
        _: SubjectPublicKeyInfoRef<'_>,
        _: SubjectPublicKeyInfoRef<'_>,
        _: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let bc = BasicConstraints {
            ca: self.2,
            path_len_constraint: None,
        };
        let mut v = vec![(&bc).to_extension(&self.1, &[])?];
        if let Some(u) = &self.3 {
            let san = SubjectAltName(vec![GeneralName::UniformResourceIdentifier(
                der::asn1::Ia5String::new(u).expect("ascii"),
            )]);
            v.push((&san).to_extension(&self.1, &[])?);
        }
        Ok(v)
    }
}

fn issue(
    i: &str,
    ik: &Sm2SigningKey<CertId>,
    s: &str,
    k: &Sm2SecretKey,
    ca: bool,
    uri: Option<String>,
    serial: u32,
) -> Vec<u8> {
    let spki = SubjectPublicKeyInfo::try_from(
        public_key_to_spki_der(k.public_key())
            .expect("spki")
            .as_slice(),
    )
    .expect("spki");
    let t = |s| Time::try_from(UNIX_EPOCH + Duration::from_secs(s)).expect("time");
    let mut sn = [1u8; 8];
    sn[4..].copy_from_slice(&serial.to_be_bytes());
    let b = CertificateBuilder::new(
        P(
            Name::from_str(i).expect("dn"),
            Name::from_str(s).expect("dn"),
            ca,
            uri,
        ),
        SerialNumber::new(&sn).expect("serial"),
        Validity::new(t(NOW - 86_400), t(NOW + 86_400 * 365)),
        spki,
    )
    .expect("builder");
    b.build::<_, DerSignature>(&X509Signer::new(ik))
        .expect("build")
        .to_der()
        .expect("der")
}

/// Revocation as the server asks it: a lookup per appraisal (here: nothing is revoked).
pub struct Good;
impl CertificateStatus for Good {
    fn status(&self, _: &CertRef<'_>, _: SystemTime) -> CertStatus {
        CertStatus::Good
    }
}

pub struct Device {
    pub id: DeviceId,
    pub chain: Vec<Vec<u8>>,
    pub key: Sm2SigningKey<CertId>,
}

pub struct Fleet {
    pub root: Vec<u8>,
    pub intermediate: Vec<u8>,
    pub attestation_key: Sm2SecretKey,
    pub devices: Vec<Device>,
    pub measurements: Vec<Measurement>,
}

impl Fleet {
    pub fn new(devices: usize) -> Self {
        let root_sk = Sm2SecretKey::generate().expect("key");
        let root_k = root_sk.signing_key(CertId).expect("key");
        let root = issue("CN=root", &root_k, "CN=root", &root_sk, true, None, 1);
        let int_sk = Sm2SecretKey::generate().expect("key");
        let intermediate = issue("CN=root", &root_k, "CN=int", &int_sk, true, None, 2);
        let int_k = int_sk.signing_key(CertId).expect("key");
        let devices = (0..devices)
            .map(|i| {
                let sk = Sm2SecretKey::generate().expect("key");
                let id = DeviceId::new(format!("ctw-{i:010}")).expect("id");
                let serial = u32::try_from(i + 100).expect("serial");
                let leaf = issue(
                    "CN=int",
                    &int_k,
                    "CN=dev",
                    &sk,
                    false,
                    Some(id.san_uri()),
                    serial,
                );
                Device {
                    id,
                    chain: vec![leaf, intermediate.clone()],
                    key: sk.signing_key(CertId).expect("key"),
                }
            })
            .collect();
        let measurements = ["bl1", "bl2", "kernel", "firmware", "config"]
            .iter()
            .map(|n| Measurement::of_bytes(*n, MeasurementKind::BootStage, n.as_bytes()))
            .collect();
        Self {
            root,
            intermediate,
            attestation_key: Sm2SecretKey::generate().expect("key"),
            devices,
            measurements,
        }
    }

    pub fn anchors(&self) -> TrustAnchors {
        TrustAnchors::from_der(std::slice::from_ref(&self.root)).expect("anchor")
    }

    pub fn references(&self) -> ReferenceValues {
        ReferenceValues::new(
            MODEL,
            FIRMWARE,
            false,
            self.measurements
                .iter()
                .map(|m| ReferenceMeasurement::new(m.name.clone(), m.kind, vec![m.digest]))
                .collect(),
        )
        .expect("refs")
    }

    /// Evidence for `nonce` signed by device `i` (the device's cost, made before timing).
    pub fn evidence(&self, i: usize, nonce: &Nonce) -> String {
        let d = &self.devices[i % self.devices.len()];
        let claims = Claims::new(
            d.id.clone(),
            nonce.clone(),
            NOW,
            MODEL,
            FIRMWARE,
            DebugState::DisabledPermanently,
            self.measurements.clone(),
        );
        smtrust_attest::device::sign_evidence(&claims, &d.chain, &d.key).expect("sign")
    }
}
