//! A key generated here signs a certificate OpenSSL verifies, and an exported device key OpenSSL decrypts.

use std::str::FromStr;
use std::time::Duration;

use der::Encode;
use smtrust_crypto::x509::{DerSignature, X509Signer, split_signed};
use smtrust_keystore::{KeyId, KeyPurpose, Keystore};
use smtrust_test_support::{Openssl, require};
use x509_cert::builder::{Builder, CertificateBuilder, profile::cabf::Root};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

use super::passphrase_store;

/// A self-signed root certificate (DER) signed through a keystore handle.
pub(crate) fn self_signed(ks: &Keystore, id: &KeyId) -> Vec<u8> {
    let handle = ks.signer_cert(id).unwrap();
    let signer = X509Signer::new(&handle);
    let subject = Name::from_str("CN=smtrust keystore test root,O=smtrust,C=CN").unwrap();
    let profile = Root::new(false, subject).unwrap();
    let spki_der =
        smtrust_crypto::x509::public_key_to_spki_der(&ks.public_key(id).unwrap()).unwrap();
    let spki = spki::SubjectPublicKeyInfoOwned::try_from(spki_der.as_slice()).unwrap();
    let builder = CertificateBuilder::new(
        profile,
        SerialNumber::new(&[0x01, 0x23, 0x45, 0x67]).unwrap(),
        Validity::from_now(Duration::from_secs(3600)).unwrap(),
        spki,
    )
    .unwrap();
    let cert = builder.build::<_, DerSignature>(&signer).unwrap();
    cert.to_der().unwrap()
}

#[test]
fn openssl_verifies_a_certificate_signed_through_a_handle() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ks, ids) = passphrase_store(dir.path());
    let der = self_signed(&ks, &ids[0]);
    let work = tempfile::tempdir().unwrap();
    let w = |n: &str| work.path().join(n);
    std::fs::write(w("cert.der"), &der).unwrap();
    let text = openssl
        .run_ok([
            "x509".as_ref(),
            "-inform".as_ref(),
            "DER".as_ref(),
            "-in".as_ref(),
            w("cert.der").as_os_str(),
            "-noout".as_ref(),
            "-text".as_ref(),
        ])
        .unwrap()
        .stdout_str();
    assert!(text.contains("smtrust keystore test root"), "{text}");
    assert!(
        text.contains("SM2-with-SM3") || text.contains("1.2.156.10197.1.501"),
        "{text}"
    );

    let parts = split_signed(&der).unwrap();
    std::fs::write(w("tbs.der"), parts.tbs).unwrap();
    std::fs::write(w("sig.der"), parts.signature).unwrap();
    let pem = smtrust_crypto::pem::encode_public_key(&ks.public_key(&ids[0]).unwrap()).unwrap();
    std::fs::write(w("pub.pem"), pem).unwrap();
    let verify = |sig: &std::path::Path| {
        openssl
            .run([
                "dgst".as_ref(),
                "-sm3".as_ref(),
                "-verify".as_ref(),
                w("pub.pem").as_os_str(),
                "-sigopt".as_ref(),
                "distid:1234567812345678".as_ref(),
                "-signature".as_ref(),
                sig.as_os_str(),
                w("tbs.der").as_os_str(),
            ])
            .unwrap()
    };
    let out = verify(&w("sig.der"));
    assert!(
        out.success() && out.stdout_str().contains("Verified OK"),
        "{}",
        out.combined()
    );

    // The check has teeth: a signature by another keystore key over the same TBS is rejected.
    let other = ks.signer_cert(&ids[2]).unwrap();
    let bad = smtrust_crypto::sm2::Sm2Signer::sign(&other, parts.tbs).unwrap();
    std::fs::write(w("bad.der"), bad.as_der()).unwrap();
    assert!(!verify(&w("bad.der")).success());
}

#[test]
fn openssl_decrypts_an_exported_device_key() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ks, _) = passphrase_store(dir.path());
    let dev = ks.generate(KeyPurpose::DeviceExport, "device 42").unwrap();
    let der = ks.export_device_key(&dev, b"factory secret").unwrap();
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("dev.p8");
    std::fs::write(&key, der.as_slice()).unwrap();
    let run = |pass: &str| {
        openssl
            .run([
                "pkey".as_ref(),
                "-inform".as_ref(),
                "DER".as_ref(),
                "-in".as_ref(),
                key.as_os_str(),
                "-passin".as_ref(),
                format!("pass:{pass}").as_ref(),
                "-pubout".as_ref(),
            ])
            .unwrap()
    };
    let out = run("factory secret");
    assert!(out.success(), "{}", out.combined());
    let theirs = smtrust_crypto::pem::decode_public_key(&out.stdout).unwrap();
    assert_eq!(theirs, ks.public_key(&dev).unwrap());
    assert!(
        !run("wrong").success(),
        "OpenSSL must refuse a wrong passphrase"
    );
}
