//! Factory batches through the library: both modes, every input format, bad lines reported precisely,
//! idempotent re-runs, bundles that decrypt to the key their certificate names, OpenSSL verification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures fail loudly

use std::collections::HashSet;
use std::path::Path;

use base64::Engine as _;
use smtrust_ca::factory::{
    BatchReport, BatchSpec, Factory, InputFormat, Issuer, KeyProtection, Mode, make_csr,
    self_signed_issuer,
};
use smtrust_crypto::sm2::Sm2SecretKey;
use x509_cert::der::{self, Decode, DecodePem};
use zeroize::Zeroizing;

const NOW: u64 = 1_764_000_000; // 2025-11-24
/// `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=ctw-p256 -outform DER | base64`
const P256_CSR_B64: &str = "MIHNMHUCAQAwEzERMA8GA1UEAwwIY3R3LXAyNTYwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATTdosRDzpscbsNEHl/8mSdHe4wGzed1TIHq0helbtb1up51y/v56U6aGOKN7htsUNYcwhhab1l9VZzQoeo4jpOoAAwCgYIKoZIzj0EAwIDSAAwRQIgAd9tYrfy27EJvHUoA27KUiuaAm4zT9/BmtTMl1INdA0CIQDoV2ileI6ZLEXbNQJLtz4qdnZTuQLZVvXaeFGIngcT9Q==";

struct Env {
    dir: tempfile::TempDir,
    cert_pem: String,
    key_pem: String,
}

fn env() -> Env {
    let (cert_pem, key_pem) = self_signed_issuer("factory test CA", NOW).expect("issuer");
    Env {
        dir: tempfile::tempdir().expect("tempdir"),
        cert_pem,
        key_pem,
    }
}

impl Env {
    fn factory(&self) -> Factory {
        let issuer = Issuer::from_pem(&self.cert_pem, self.key_pem.as_bytes(), None, "ctw-", 3650)
            .expect("issuer");
        Factory::open(&self.dir.path().join("smtrust.db"), issuer).expect("open")
    }
    fn path(&self, p: &str) -> std::path::PathBuf {
        self.dir.path().join(p)
    }
}

fn passphrase() -> KeyProtection {
    KeyProtection::Passphrase {
        passphrase: Zeroizing::new(b"line-7 secret".to_vec()),
        iterations: 1000,
    }
}

fn reason_for<'a>(r: &'a BatchReport, source: &str) -> &'a str {
    r.refusals
        .iter()
        .find(|x| x.source == source)
        .map(|x| x.reason.as_str())
        .unwrap_or_else(|| panic!("no refusal for {source}: {:?}", r.refusals))
}

fn issuer_pk(e: &Env) -> smtrust_crypto::sm2::Sm2PublicKey {
    let cert = x509_cert::Certificate::from_pem(e.cert_pem.as_bytes()).expect("cert");
    let spki = der::Encode::to_der(cert.tbs_certificate().subject_public_key_info()).expect("spki");
    smtrust_crypto::x509::public_key_from_spki_der(&spki).expect("pk")
}

/// Check one bundle: key block opens with `open`, its public key is the certificate's, the certificate is
/// signed by the issuer and names the device; returns the serial.
fn check_bundle(
    e: &Env,
    out: &Path,
    id: &str,
    open: &dyn Fn(&str, &[u8]) -> Sm2SecretKey,
) -> Vec<u8> {
    let text = std::fs::read(out.join("bundles").join(format!("{id}.pem"))).expect("bundle");
    let blocks = smtrust_crypto::pem::blocks(&text).expect("pem");
    assert_eq!(blocks.len(), 3, "key, device cert, issuer");
    let (label, key_der) = &blocks[0];
    let sk = open(label, key_der);
    let cert_der = &blocks[1].1;
    let cert = x509_cert::Certificate::from_der(cert_der).expect("cert");
    let spki = der::Encode::to_der(cert.tbs_certificate().subject_public_key_info()).expect("spki");
    assert_eq!(
        &smtrust_crypto::x509::public_key_from_spki_der(&spki).expect("pk"),
        sk.public_key()
    );
    smtrust_crypto::x509::verify_signed(cert_der, &issuer_pk(e)).expect("signed by issuer");
    assert!(cert.tbs_certificate().subject().to_string().contains(id));
    assert_eq!(blocks[2].0, "CERTIFICATE");
    cert.tbs_certificate().serial_number().as_bytes().to_vec()
}

#[test]
fn keygen_csv_reports_bad_lines_and_issues_the_rest() {
    let e = env();
    let mut csv = String::from("device_id,model\n");
    for i in 0..40 {
        csv.push_str(&format!("ctw-{i:06},m1\n"));
    }
    csv.push_str("ctw-000003,dup\n"); // line 42: duplicate of line 5
    csv.push_str("abc-000001,m1\n"); // line 43: outside namespace
    csv.push_str("ctw-000100\n"); // line 44: one field
    csv.push_str("ctw/000101,m1\n"); // line 45: bad character
    csv.push_str("\"ctw-000102,m1\n"); // line 46: unterminated quote
    std::fs::write(e.path("m.csv"), &csv).expect("write");
    let out = e.path("out");
    let spec = BatchSpec::new(
        Mode::KeyGen,
        e.path("m.csv"),
        InputFormat::KeysCsv,
        out.clone(),
        NOW,
    );
    let r = e
        .factory()
        .batch(&spec, Some(&passphrase()), &mut |_| {})
        .expect("batch");
    assert_eq!((r.issued, r.refused, r.total), (40, 5, 45));
    assert!(reason_for(&r, "line 42").contains("duplicate device id (first at line 5)"));
    assert!(reason_for(&r, "line 43").contains("outside the issuer's namespace"));
    assert!(reason_for(&r, "line 44").contains("1 fields, header has 2"));
    assert!(reason_for(&r, "line 45").contains("'/'"));
    assert!(reason_for(&r, "line 46").contains("unterminated"));
    let mut serials = HashSet::new();
    for i in 0..40 {
        let s = check_bundle(&e, &out, &format!("ctw-{i:06}"), &|label, der| {
            assert_eq!(label, "ENCRYPTED PRIVATE KEY");
            smtrust_crypto::pkcs8::decrypt_encrypted(der, b"line-7 secret").expect("decrypt")
        });
        assert!(serials.insert(s), "serial reused");
    }
    assert!(!out.join("bundles/abc-000001.pem").exists());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report"))
            .expect("json");
    assert_eq!(report["issued"], 40);

    // Same manifest again: same batch, nothing new issued, bundles untouched.
    let before = std::fs::read(out.join("bundles/ctw-000007.pem")).expect("read");
    let again = e
        .factory()
        .batch(&spec, Some(&passphrase()), &mut |_| {})
        .expect("again");
    assert_eq!(again.batch_id, r.batch_id);
    assert_eq!((again.issued, again.refused), (40, 5));
    assert_eq!(
        std::fs::read(out.join("bundles/ctw-000007.pem")).expect("read"),
        before
    );

    // A different manifest naming an issued device: refused as already issued.
    std::fs::write(e.path("m2.csv"), "device_id\nctw-000001\nctw-900000\n").expect("write");
    let spec2 = BatchSpec::new(
        Mode::KeyGen,
        e.path("m2.csv"),
        InputFormat::KeysCsv,
        e.path("out2"),
        NOW,
    );
    let r2 = e
        .factory()
        .batch(&spec2, Some(&passphrase()), &mut |_| {})
        .expect("batch 2");
    assert_eq!((r2.issued, r2.refused), (1, 1));
    assert!(
        reason_for(&r2, "line 2")
            .contains(&format!("already issued by this CA (batch {}", r.batch_id))
    );
}

#[test]
fn keygen_jsonl_envelope_opens_with_the_transport_key() {
    let e = env();
    let transport = Sm2SecretKey::generate().expect("transport");
    let lines: String = (0..12)
        .map(|i| format!("{{\"device_id\":\"ctw-e{i}\",\"lot\":7}}\n"))
        .collect();
    std::fs::write(
        e.path("m.jsonl"),
        format!("{lines}not json\n{{\"lot\":1}}\n"),
    )
    .expect("write");
    let out = e.path("out");
    let spec = BatchSpec::new(
        Mode::KeyGen,
        e.path("m.jsonl"),
        InputFormat::KeysJsonl,
        out.clone(),
        NOW,
    );
    let prot = KeyProtection::Envelope(transport.public_key().clone());
    let r = e
        .factory()
        .with_threads(3)
        .batch(&spec, Some(&prot), &mut |_| {})
        .expect("batch");
    assert_eq!((r.issued, r.refused), (12, 2));
    assert!(reason_for(&r, "line 13").starts_with("not JSON"));
    assert!(reason_for(&r, "line 14").contains("no \"device_id\""));
    for i in 0..12 {
        check_bundle(&e, &out, &format!("ctw-e{i}"), &|label, der| {
            assert_eq!(label, "SM2 ENVELOPED PRIVATE KEY");
            let pkcs8 = smtrust_crypto::sm2::decrypt_der(&transport, der).expect("envelope");
            smtrust_crypto::pkcs8::decode_der(&pkcs8).expect("pkcs8")
        });
    }
}

#[test]
fn csr_jsonl_refuses_bad_csrs_precisely() {
    let e = env();
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let mut lines = String::new();
    for i in 0..10 {
        let sk = Sm2SecretKey::generate().expect("key");
        let csr = make_csr(&format!("ctw-c{i}"), &sk).expect("csr");
        lines.push_str(&format!(
            "{{\"device_id\":\"ctw-c{i}\",\"csr\":\"{}\"}}\n",
            b64(&csr.der)
        ));
    }
    let sk = Sm2SecretKey::generate().expect("key");
    let mut tampered = make_csr("ctw-t", &sk).expect("csr").der;
    let n = tampered.len();
    tampered[n - 5] ^= 0x01; // inside the signature
    lines.push_str(&format!(
        "{{\"device_id\":\"ctw-t\",\"csr\":\"{}\"}}\n",
        b64(&tampered)
    )); // line 11
    lines.push_str(&format!(
        "{{\"device_id\":\"ctw-p256\",\"csr\":\"{P256_CSR_B64}\"}}\n"
    )); // line 12
    lines.push_str("{\"device_id\":\"ctw-x\",\"csr\":\"%%%\"}\n"); // line 13
    lines.push_str("{\"device_id\":\"ctw-c1\",\"csr\":\"AAAA\"}\n"); // line 14: duplicate
    let other = make_csr("abc-1", &sk).expect("csr");
    lines.push_str(&format!(
        "{{\"device_id\":\"abc-1\",\"csr\":\"{}\"}}\n",
        b64(&other.der)
    )); // line 15
    let mismatch = make_csr("ctw-someone-else", &sk).expect("csr");
    lines.push_str(&format!(
        "{{\"device_id\":\"ctw-m\",\"csr\":\"{}\"}}\n",
        b64(&mismatch.der)
    )); // line 16
    std::fs::write(e.path("csrs.jsonl"), lines).expect("write");
    let out = e.path("out");
    let spec = BatchSpec::new(
        Mode::Csr,
        e.path("csrs.jsonl"),
        InputFormat::CsrJsonl,
        out.clone(),
        NOW,
    );
    let r = e.factory().batch(&spec, None, &mut |_| {}).expect("batch");
    assert_eq!((r.issued, r.refused), (10, 6), "{:?}", r.refusals);
    assert!(
        reason_for(&r, "line 11")
            .to_lowercase()
            .contains("signature"),
        "{}",
        reason_for(&r, "line 11")
    );
    assert!(
        reason_for(&r, "line 12").contains("wrong key type"),
        "{}",
        reason_for(&r, "line 12")
    );
    assert!(reason_for(&r, "line 13").contains("neither PEM nor base64"));
    assert!(reason_for(&r, "line 14").contains("duplicate device id (first at line 2)"));
    assert!(reason_for(&r, "line 15").contains("namespace"));
    assert!(
        reason_for(&r, "line 16").contains("ctw-someone-else"),
        "{}",
        reason_for(&r, "line 16")
    );
    let text = std::fs::read_to_string(out.join("certs.jsonl")).expect("certs");
    let pk = issuer_pk(&e);
    let mut n = 0;
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("json");
        let cert = x509_cert::Certificate::from_pem(v["cert"].as_str().expect("pem").as_bytes())
            .expect("cert");
        let der = der::Encode::to_der(&cert).expect("der");
        smtrust_crypto::x509::verify_signed(&der, &pk).expect("signed");
        n += 1;
    }
    assert_eq!(n, 10);
}

#[test]
fn csr_directory_writes_certs_and_openssl_verifies_them() {
    let e = env();
    let dir = e.path("csrs");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for i in 0..6 {
        let sk = Sm2SecretKey::generate().expect("key");
        let csr = make_csr(&format!("ctw-d{i}"), &sk).expect("csr");
        if i % 2 == 0 {
            std::fs::write(dir.join(format!("ctw-d{i}.der")), &csr.der).expect("write");
        } else {
            let pem = smtrust_crypto::pem::encode("CERTIFICATE REQUEST", &csr.der).expect("pem");
            std::fs::write(dir.join(format!("ctw-d{i}.csr")), pem.as_bytes()).expect("write");
        }
    }
    std::fs::write(dir.join("ctw-junk.csr"), b"hello").expect("write");
    let out = e.path("out");
    let spec = BatchSpec::new(Mode::Csr, dir, InputFormat::CsrDir, out.clone(), NOW);
    let r = e.factory().batch(&spec, None, &mut |_| {}).expect("batch");
    assert_eq!((r.issued, r.refused), (6, 1));
    assert!(reason_for(&r, "ctw-junk.csr").contains("CSR DER"));
    let Some(openssl) = smtrust_test_support::require(smtrust_test_support::Openssl) else {
        return;
    };
    for i in 0..6 {
        let cert = std::fs::read(out.join("certs").join(format!("ctw-d{i}.pem"))).expect("cert");
        let v = smtrust_test_support::verify_link(&openssl, e.cert_pem.as_bytes(), &cert, None)
            .expect("run openssl");
        assert_eq!(v, smtrust_test_support::Verdict::Verified, "ctw-d{i}");
    }
}
