//! The OpenSSL CLI checks our signatures over the exact signed bytes: evidence and results.

use std::fs;

use base64::Engine;
use smtrust_attest::device::sign_evidence;
use smtrust_test_support::{Openssl, require};

use crate::pki::*;

fn openssl_verifies(token: &str, public_pem: &str) -> (bool, String) {
    let Some(openssl) = require(Openssl) else {
        return (true, "skipped".into());
    };
    let dir = tempfile::tempdir().unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let der = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap();
    fs::write(dir.path().join("signed-bytes"), input).unwrap();
    fs::write(dir.path().join("sig.der"), der).unwrap();
    fs::write(dir.path().join("pub.pem"), public_pem).unwrap();
    let p = |f: &str| dir.path().join(f).display().to_string();
    let out = openssl
        .run([
            "dgst",
            "-sm3",
            "-verify",
            &p("pub.pem"),
            "-sigopt",
            "distid:1234567812345678",
            "-signature",
            &p("sig.der"),
            &p("signed-bytes"),
        ])
        .unwrap();
    (
        out.success() && out.stdout_str().contains("Verified OK"),
        out.combined(),
    )
}

#[test]
fn openssl_verifies_evidence_and_result_signatures() {
    let b = Bench::new();
    let d = b.pki.device("ctw-0000000200");
    let nonce = b.challenge(&d.id, 300);
    let ev = sign_evidence(&claims(&d, &nonce), &d.chain, &d.key).unwrap();
    let dev_pem = smtrust_crypto::pem::encode_public_key(d.key.public_key()).unwrap();
    let (ok, out) = openssl_verifies(&ev, &dev_pem);
    assert!(ok, "evidence: {out}");

    let a = b.appraise(ev.as_bytes(), &Statuses::default(), now());
    let token = a
        .result
        .sign(&b.pki.attest_key, &b.pki.attest_chain)
        .unwrap();
    let att_pem = smtrust_crypto::pem::encode_public_key(b.pki.attest_key.public_key()).unwrap();
    let (ok, out) = openssl_verifies(&token, &att_pem);
    assert!(ok, "result: {out}");
    // And refuses a wrong key (proves the check is real).
    let (ok, _) = openssl_verifies(&token, &dev_pem);
    assert!(!ok || require(Openssl).is_none());
}
