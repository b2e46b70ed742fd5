use std::fs;

use smtrust_test_support::{
    GMT_DEFAULT_ID, Openssl, SM2_WITH_SM3, SignerKey, Verdict, require, sm2sigcheck,
    sm2sigcheck_with_id, verify_link,
};
use smtrust_test_support::{split_signed, temp_dir};

use crate::{DISTID, s, sm2_key, sm2_leaf, sm2_root};

fn read(p: &std::path::Path) -> Vec<u8> {
    fs::read(p).expect("read")
}

/// Flips one bit inside the TBS of a DER object, keeping it well-formed.
fn tamper(der: &[u8]) -> Vec<u8> {
    let parts = split_signed(der).expect("split");
    let offset = parts.tbs.as_ptr() as usize - der.as_ptr() as usize + parts.tbs.len() - 1;
    let mut out = der.to_vec();
    if let Some(b) = out.get_mut(offset) {
        *b ^= 0x01;
    }
    out
}

fn pem_to_der(openssl: &smtrust_test_support::Tool, kind: &str, pem: &std::path::Path) -> Vec<u8> {
    openssl
        .run_ok([kind, "-in", &s(pem), "-outform", "DER"])
        .expect("to DER")
        .stdout
}

#[test]
fn certificate_and_csr_signatures_check_under_gmt_id() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let dir = temp_dir().expect("temp dir");
    let (root, root_key) = sm2_root(&openssl, dir.path());
    let (leaf, _) = sm2_leaf(
        &openssl,
        dir.path(),
        &root,
        &root_key,
        "leaf",
        "keyUsage=digitalSignature\n",
    );
    let root_pem = read(&root);

    let leaf_der = pem_to_der(&openssl, "x509", &leaf);
    let parts = split_signed(&leaf_der).expect("split leaf");
    assert_eq!(parts.algorithm, SM2_WITH_SM3);
    for signed in [read(&root), read(&leaf), leaf_der.clone()] {
        let v =
            sm2sigcheck(&openssl, &signed, SignerKey::Certificate(&root_pem)).expect("check runs");
        assert_eq!(v, Verdict::Verified, "{}", String::from_utf8_lossy(&signed));
    }
    let csr = dir.path().join("leaf.csr");
    let csr_pub = openssl
        .run_ok(["req", "-in", &s(&csr), "-pubkey", "-noout"])
        .expect("csr pubkey")
        .stdout;
    let v = sm2sigcheck(&openssl, &read(&csr), SignerKey::PublicKey(&csr_pub)).expect("check runs");
    assert_eq!(v, Verdict::Verified);

    let bad = sm2sigcheck(
        &openssl,
        &tamper(&leaf_der),
        SignerKey::Certificate(&root_pem),
    )
    .expect("runs");
    assert!(matches!(bad, Verdict::Rejected(_)), "tampered TBS verified");
    let other = sm2_key(&openssl, dir.path(), "other.key");
    let other_pub = openssl
        .run_ok(["pkey", "-in", &s(&other), "-pubout"])
        .expect("pubout")
        .stdout;
    let wrong = sm2sigcheck(&openssl, &leaf_der, SignerKey::PublicKey(&other_pub)).expect("runs");
    assert!(matches!(wrong, Verdict::Rejected(_)), "wrong key verified");
}

/// A CSR made without `-sigopt` is signed under the empty ID: only `sm2sigcheck_with_id(.., "")` accepts it;
/// `Tool::req_sm2` under the GM/T ID makes one `sm2sigcheck` accepts.
#[test]
fn empty_id_csr_is_told_apart() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let dir = temp_dir().expect("temp dir");
    let key = sm2_key(&openssl, dir.path(), "k.pem");
    let csr = openssl.req_sm2(&key, "/CN=no distid", "").expect("csr");
    let pubkey = openssl
        .run_ok(["pkey", "-in", &s(&key), "-pubout", "-outform", "DER"])
        .expect("pub")
        .stdout;
    let gmt = sm2sigcheck(&openssl, &csr, SignerKey::PublicKey(&pubkey)).expect("runs");
    assert!(matches!(gmt, Verdict::Rejected(_)));
    let empty =
        sm2sigcheck_with_id(&openssl, &csr, SignerKey::PublicKey(&pubkey), "").expect("runs");
    assert_eq!(empty, Verdict::Verified);
    let with_id = openssl
        .req_sm2(&key, "/CN=with distid", GMT_DEFAULT_ID)
        .expect("csr");
    let v = sm2sigcheck(&openssl, &with_id, SignerKey::PublicKey(&pubkey)).expect("runs");
    assert_eq!(v, Verdict::Verified);
}

/// CRLs and OCSP responses, which `openssl crl`/`ocsp` cannot check under the GM/T ID.
#[test]
fn crl_and_ocsp_response_signatures_check() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let dir = temp_dir().expect("temp dir");
    let d = dir.path();
    let (root, root_key) = sm2_root(&openssl, d);
    let (leaf, _) = sm2_leaf(
        &openssl,
        d,
        &root,
        &root_key,
        "leaf",
        "keyUsage=digitalSignature\n",
    );
    fs::create_dir(d.join("db")).expect("db dir");
    fs::write(
        d.join("db/index.txt"),
        "V\t300101000000Z\t\t07\tunknown\t/CN=leaf\n",
    )
    .expect("index");
    fs::write(d.join("db/crlnumber"), "01\n").expect("crlnumber");
    let cnf = format!(
        "[ca]\ndefault_ca = c\n[c]\ndatabase = {0}/db/index.txt\ncrlnumber = {0}/db/crlnumber\n\
         default_md = sm3\ndefault_crl_days = 7\n",
        d.display()
    );
    fs::write(d.join("ca.cnf"), cnf).expect("ca.cnf");
    let crl = d.join("crl.pem");
    openssl
        .run_ok([
            "ca",
            "-config",
            &s(&d.join("ca.cnf")),
            "-gencrl",
            "-cert",
            &s(&root),
            "-keyfile",
            &s(&root_key),
            "-sigopt",
            DISTID,
            "-out",
            &s(&crl),
        ])
        .expect("gencrl");
    let root_pem = read(&root);
    let v =
        sm2sigcheck(&openssl, &read(&crl), SignerKey::Certificate(&root_pem)).expect("crl check");
    assert_eq!(v, Verdict::Verified);

    // `openssl ocsp` signs with the empty ID (it has no -sigopt): a full OCSPResponse, unwrapped by the helper.
    let (req, resp) = (d.join("req.der"), d.join("resp.der"));
    openssl
        .run_ok([
            "ocsp",
            "-issuer",
            &s(&root),
            "-cert",
            &s(&leaf),
            "-no_nonce",
            "-reqout",
            &s(&req),
        ])
        .expect("ocsp request");
    openssl
        .run_ok([
            "ocsp",
            "-index",
            &s(&d.join("db/index.txt")),
            "-rsigner",
            &s(&root),
            "-rkey",
            &s(&root_key),
            "-CA",
            &s(&root),
            "-reqin",
            &s(&req),
            "-respout",
            &s(&resp),
            "-ndays",
            "1",
        ])
        .expect("ocsp response");
    let resp = read(&resp);
    let empty =
        sm2sigcheck_with_id(&openssl, &resp, SignerKey::Certificate(&root_pem), "").expect("runs");
    assert_eq!(empty, Verdict::Verified);
    let gmt = sm2sigcheck(&openssl, &resp, SignerKey::Certificate(&root_pem)).expect("runs");
    assert!(matches!(gmt, Verdict::Rejected(_)));
}

#[test]
fn verify_link_checks_one_certificate_against_its_issuer() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let dir = temp_dir().expect("temp dir");
    let (root, root_key) = sm2_root(&openssl, dir.path());
    let (leaf, _) = sm2_leaf(
        &openssl,
        dir.path(),
        &root,
        &root_key,
        "leaf",
        "keyUsage=digitalSignature\n",
    );
    let (root_pem, leaf_pem) = (read(&root), read(&leaf));
    let leaf_der = pem_to_der(&openssl, "x509", &leaf);
    for (cert, purpose) in [(&leaf_pem, None), (&leaf_der, Some("any"))] {
        let v = verify_link(&openssl, &root_pem, cert, purpose).expect("verify runs");
        assert_eq!(v, Verdict::Verified);
    }
    // Another root under the same name: found as the issuer, its key does not check the signature.
    let other_dir = dir.path().join("other");
    fs::create_dir(&other_dir).expect("mkdir");
    let (other, _) = sm2_root(&openssl, &other_dir);
    let wrong_issuer = verify_link(&openssl, &read(&other), &leaf_pem, None).expect("verify runs");
    assert!(
        matches!(wrong_issuer, Verdict::Rejected(_)),
        "{wrong_issuer:?}"
    );
    let tampered = verify_link(&openssl, &root_pem, &tamper(&leaf_der), None).expect("verify runs");
    assert!(matches!(tampered, Verdict::Rejected(_)), "{tampered:?}");
}
