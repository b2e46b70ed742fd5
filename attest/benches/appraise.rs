//! Appraisals per second on all cores, one thread each: decode, chain (intermediate and, after the first
//! appraisal of a device, its leaf cached), evidence verify, nonce consume, reference compare, result sign.
#![allow(missing_docs, reason = "criterion macros generate undocumented items")]

use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use der::Encode;
use smtrust_attest::device::sign_evidence;
use smtrust_attest::reference::{ReferenceMeasurement, ReferenceValues};
use smtrust_attest::{
    AppraisalConfig, Appraiser, CertRef, CertStatus, CertificateStatus, Challenge, Claims,
    DebugState, DeviceId, Measurement, MeasurementKind, MemoryNonceStore, MemoryReferenceStore,
    Status, TrustAnchors,
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

const NOW: u64 = 1_764_000_000;

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
) -> Vec<u8> {
    let spki = SubjectPublicKeyInfo::try_from(
        public_key_to_spki_der(k.public_key())
            .expect("spki")
            .as_slice(),
    )
    .expect("spki");
    let t = |s| Time::try_from(UNIX_EPOCH + Duration::from_secs(s)).expect("time");
    let b = CertificateBuilder::new(
        P(
            Name::from_str(i).expect("dn"),
            Name::from_str(s).expect("dn"),
            ca,
            uri,
        ),
        SerialNumber::new(&[1, 2, 3, 4, 5, 6, 7, 8]).expect("serial"),
        Validity::new(t(NOW - 86_400), t(NOW + 86_400 * 365)),
        spki,
    )
    .expect("builder");
    b.build::<_, DerSignature>(&X509Signer::new(ik))
        .expect("build")
        .to_der()
        .expect("der")
}

struct Good;
impl CertificateStatus for Good {
    fn status(&self, _: &CertRef<'_>, _: SystemTime) -> CertStatus {
        CertStatus::Good
    }
}

fn bench(c: &mut Criterion) {
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let root_sk = Sm2SecretKey::generate().expect("key");
    let root_k = root_sk.signing_key(CertId).expect("key");
    let root = issue("CN=root", &root_k, "CN=root", &root_sk, true, None);
    let int_sk = Sm2SecretKey::generate().expect("key");
    let int = issue("CN=root", &root_k, "CN=int", &int_sk, true, None);
    let int_k = int_sk.signing_key(CertId).expect("key");
    let dev_sk = Sm2SecretKey::generate().expect("key");
    let id = DeviceId::new("ctw-0000000001").expect("id");
    let leaf = issue(
        "CN=int",
        &int_k,
        "CN=dev",
        &dev_sk,
        false,
        Some(id.san_uri()),
    );
    let dev_k = dev_sk.signing_key(CertId).expect("key");
    let att_k = Sm2SecretKey::generate()
        .expect("key")
        .signing_key(CertId)
        .expect("key");
    let chain = vec![leaf, int.clone()];
    let ms: Vec<Measurement> = ["bl1", "bl2", "kernel", "firmware", "config"]
        .iter()
        .map(|n| Measurement::of_bytes(*n, MeasurementKind::BootStage, n.as_bytes()))
        .collect();
    let refs = MemoryReferenceStore::new();
    let rv = ReferenceValues::new(
        "m",
        "1",
        false,
        ms.iter()
            .map(|m| ReferenceMeasurement::new(m.name.clone(), m.kind, vec![m.digest]))
            .collect(),
    )
    .expect("refs");
    refs.register_now(&rv, "admin", now).expect("register");
    let appraiser = Arc::new(Appraiser::new(
        TrustAnchors::from_der(&[root]).expect("anchor"),
        AppraisalConfig::default(),
    ));
    let nonces = MemoryNonceStore::new();
    // Evidence signing is the device's cost, not the verifier's: make a pool up front.
    let make = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                let ch =
                    Challenge::new(id.clone(), now, Duration::from_secs(3600)).expect("challenge");
                nonces.insert_now(&ch);
                let cl = Claims::new(
                    id.clone(),
                    ch.nonce,
                    NOW,
                    "m",
                    "1",
                    DebugState::DisabledPermanently,
                    ms.clone(),
                );
                sign_evidence(&cl, &chain, &dev_k).expect("sign")
            })
            .collect()
    };
    let appraise = |ev: &str| {
        let checked = appraiser.check(ev.as_bytes(), &Good, now);
        let n = checked
            .nonce()
            .map(|n| nonces.consume_now(n, now).expect("consume"));
        let r = checked
            .reference_key()
            .and_then(|(m, f)| refs.latest_now(m, f));
        let a = appraiser
            .finish(checked, n, r.as_ref(), now)
            .expect("finish");
        assert_eq!(a.result.status, Status::Affirming);
        black_box(
            a.result
                .sign(&att_k, std::slice::from_ref(&int))
                .expect("sign"),
        )
    };
    let mut g = c.benchmark_group("appraise");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    // One thread per core: the service appraises concurrent submissions on every tokio worker.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    g.bench_function("all_cores", |b| {
        b.iter_custom(|iters| {
            let pool = make(usize::try_from(iters).unwrap_or(usize::MAX));
            let start = Instant::now();
            std::thread::scope(|s| {
                for part in pool.chunks(pool.len().div_ceil(threads).max(1)) {
                    s.spawn(|| {
                        part.iter().for_each(|e| {
                            appraise(e);
                        })
                    });
                }
            });
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
