//! Issuance, checked by OpenSSL 3 (link by link with the GM/T ID), Tongsuo (whole chain), GmSSL and pkilint.

use smtrust_ca::{DeviceId, IssueRequest};
use smtrust_test_support::{
    GMT_DEFAULT_ID, Gmssl, Openssl, Tongsuo, Verdict, require, verify_link,
};

use crate::fixture::{make_csr, pki, s, signer};

#[tokio::test]
async fn openssl_csr_with_distid_is_issued_and_every_link_verifies() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let pki = pki().await;
    let key = pki.path("dev.key");
    openssl.genpkey_sm2(&key).unwrap();
    let csr = openssl
        .req_sm2(&key, "/CN=ctw-0000001234", GMT_DEFAULT_ID)
        .unwrap();
    let cert = pki
        .svc
        .issue("line7", "device", IssueRequest::new(csr, None))
        .await
        .unwrap();
    assert_eq!(
        cert.device_id.as_ref().map(DeviceId::as_str),
        Some("ctw-0000001234")
    );
    let leaf = pki.write("leaf.pem", cert.to_pem().as_bytes());
    for (issuer, cert, purpose) in [
        (&pki.root_der, &pki.inter_der, None),
        (&pki.inter_der, &cert.der, Some("sslclient")),
    ] {
        let v = verify_link(&openssl, issuer, cert, purpose).unwrap();
        assert_eq!(v, Verdict::Verified);
    }
    // The leaf's content as OpenSSL prints it.
    let text = openssl
        .run_ok(["x509", "-in", &s(&leaf), "-noout", "-text"])
        .unwrap()
        .stdout_str();
    assert!(
        text.contains("URI:urn:smtrust:device:ctw-0000001234"),
        "{text}"
    );
    assert!(text.contains("serialNumber = ctw-0000001234"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(
        text.contains("OCSP - URI:http://127.0.0.1:1/ocsp/line7"),
        "{text}"
    );
    assert!(text.contains("http://127.0.0.1:1/crl/line7.crl"), "{text}");
    assert!(
        !text.contains("Basic Constraints"),
        "leaves omit basicConstraints: {text}"
    );
    // The leaf's key matches the CSR's key.
    let a = openssl
        .run_ok(["pkey", "-in", &s(&key), "-pubout"])
        .unwrap()
        .stdout;
    let b = openssl
        .run_ok(["x509", "-in", &s(&leaf), "-noout", "-pubkey"])
        .unwrap()
        .stdout;
    assert_eq!(a, b);
}

#[tokio::test]
async fn tongsuo_and_gmssl_verify_the_whole_chain() {
    let pki = pki().await;
    let (_, sk) = signer();
    let cert = pki
        .svc
        .issue(
            "line7",
            "device",
            IssueRequest::new(make_csr(&sk, "CN=ctw-42"), None),
        )
        .await
        .unwrap();
    let root = pki.write_pem("root.pem", &pki.root_der);
    let inter = pki.write_pem("inter.pem", &pki.inter_der);
    let leaf = pki.write("leaf.pem", cert.to_pem().as_bytes());
    if let Some(t) = require(Tongsuo) {
        let out = t
            .run([
                "verify",
                "-CAfile",
                &s(&root),
                "-untrusted",
                &s(&inter),
                &s(&leaf),
            ])
            .unwrap();
        assert!(
            out.success() && out.stdout_str().contains(": OK"),
            "{}",
            out.combined()
        );
    }
    if let Some(g) = require(Gmssl) {
        let both = pki.write(
            "leaf-chain.pem",
            format!(
                "{}{}",
                cert.to_pem(),
                smtrust_ca::authority::pem_cert(&pki.inter_der)
            )
            .as_bytes(),
        );
        let out = g
            .run(["certverify", "-in", &s(&both), "-cacert", &s(&root)])
            .unwrap();
        assert!(out.success(), "gmssl certverify: {}", out.combined());
    }
}

#[tokio::test]
async fn pkilint_finds_nothing_at_warning_level() {
    let Some(home) = std::env::var_os("HOME") else {
        return;
    };
    let lint = std::path::Path::new(&home).join(".cache/smtrust/venv/bin/lint_pkix_cert");
    if !lint.exists() {
        assert!(!smtrust_test_support::is_ci(), "pkilint missing under CI");
        eprintln!("skipping: pkilint not installed (run scripts/test)");
        return;
    }
    let tool = smtrust_test_support::Tool::new(&lint);
    let pki = pki().await;
    let (_, sk) = signer();
    let cert = pki
        .svc
        .issue(
            "line7",
            "device",
            IssueRequest::new(make_csr(&sk, "CN=ctw-7"), None),
        )
        .await
        .unwrap();
    for (name, der) in [
        ("root.pem", pki.root_der.clone()),
        ("inter.pem", pki.inter_der.clone()),
        ("leaf.pem", cert.der.clone()),
        ("ocsp.pem", pki.ocsp_der.clone()),
    ] {
        let p = pki.write_pem(name, &der);
        let out = tool.run(["lint", "-s", "WARNING", &s(&p)]).unwrap();
        // Known finding: pkilint's URI validator rejects the design's `urn:smtrust:device:<id>` SAN (an
        // unregistered URN namespace). Every other finding fails the test.
        let findings: Vec<String> = out
            .stdout_str()
            .lines()
            .filter(|l| l.contains("(ERROR)") || l.contains("(WARNING)") || l.contains("(FATAL)"))
            .filter(|l| {
                !(l.contains("pkix.invalid_uri_syntax") && l.contains("urn:smtrust:device:"))
            })
            .map(str::to_owned)
            .collect();
        assert!(findings.is_empty(), "pkilint {name}: {}", out.combined());
    }
}

#[tokio::test]
async fn server_keygen_returns_an_encrypted_key_matching_the_certificate() {
    let pki = pki().await;
    let out = pki
        .svc
        .keygen(
            "line7",
            "device",
            DeviceId::new("ctw-keygen-1").unwrap(),
            zeroize::Zeroizing::new(b"correct horse".to_vec()),
            smtrust_crypto::pkcs8::KdfPrf::HmacSm3Gmssl,
        )
        .await;
    let out = match out {
        Ok(o) => o,
        // The PKCS#8 encryption is still being finished in the crypto crate; report, do not hide.
        Err(e) => panic!("keygen failed: {e}"),
    };
    assert!(out.encrypted_key_pem.contains("ENCRYPTED PRIVATE KEY"));
    let sk = smtrust_crypto::pem::decode_private_key(
        out.encrypted_key_pem.as_bytes(),
        Some(b"correct horse"),
    )
    .unwrap();
    let cert = <x509_cert::Certificate as der::Decode>::from_der(&out.cert.der).unwrap();
    let spki = der::Encode::to_der(cert.tbs_certificate().subject_public_key_info()).unwrap();
    assert_eq!(
        &smtrust_crypto::x509::public_key_from_spki_der(&spki).unwrap(),
        sk.public_key()
    );
    // Verified by the issuer's key over the exact TBS.
    let inter = <x509_cert::Certificate as der::Decode>::from_der(&pki.inter_der).unwrap();
    let ispki = der::Encode::to_der(inter.tbs_certificate().subject_public_key_info()).unwrap();
    smtrust_crypto::x509::verify_signed(
        &out.cert.der,
        &smtrust_crypto::x509::public_key_from_spki_der(&ispki).unwrap(),
    )
    .unwrap();
}
