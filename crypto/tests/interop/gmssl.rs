//! GmSSL 3.1.1: encrypted PKCS#8 with its HMAC-SM3 PRF OID (the only key format it reads) both ways,
//! signatures and SM2 encryption.

use smtrust_crypto::pem::{
    decode_private_key, decode_public_key, encode_encrypted_private_key, encode_public_key,
};
use smtrust_crypto::pkcs8::{KdfPrf, inspect_encrypted};
use smtrust_crypto::sm2::{CertId, decrypt_der, encrypt_der};
use smtrust_test_support::{Gmssl, require, temp_dir};

use crate::{get, our_key, put, random, s};

#[test]
fn gmssl_keys_both_ways() {
    let Some(gmssl) = require(Gmssl) else { return };
    let dir = temp_dir().expect("dir");
    let (k, p) = (dir.path().join("k.pem"), dir.path().join("pub.pem"));
    gmssl
        .run_ok([
            "sm2keygen",
            "-pass",
            "gp",
            "-out",
            &s(&k),
            "-pubout",
            &s(&p),
        ])
        .expect("sm2keygen");
    let enc = get(&k);
    let blocks = smtrust_crypto::pem::blocks(&enc).expect("pem");
    let info = inspect_encrypted(&blocks[0].1).expect("inspect");
    assert_eq!(info.prf, KdfPrf::HmacSm3Gmssl);
    let sk = decode_private_key(&enc, Some(b"gp")).expect("we read GmSSL's key");
    assert_eq!(&decode_public_key(&get(&p)).expect("spki"), sk.public_key());

    // Ours → GmSSL: it signs with our key, and we verify; that proves it decrypted it.
    let (sk, _) = our_key();
    let ours = put(
        dir.path(),
        "ours.pem",
        encode_encrypted_private_key(&sk, b"gp", KdfPrf::HmacSm3Gmssl).expect("enc"),
    );
    let msg = random(200);
    let m = put(dir.path(), "msg", &msg);
    let sig = gmssl
        .run_ok(["sm2sign", "-key", &s(&ours), "-pass", "gp", "-in", &s(&m)])
        .expect("GmSSL reads our key and signs")
        .stdout;
    let vk = sk.public_key().verifying_key(CertId).expect("vk");
    vk.verify_der(&msg, &sig)
        .expect("we verify GmSSL's signature");
    let out = gmssl
        .run(["sm2sign", "-key", &s(&ours), "-pass", "nope", "-in", &s(&m)])
        .expect("runs");
    assert!(!out.success(), "GmSSL took a wrong passphrase");
}

#[test]
fn gmssl_verifies_our_signatures_and_encryption_both_ways() {
    let Some(gmssl) = require(Gmssl) else { return };
    let dir = temp_dir().expect("dir");
    let (sk, _) = our_key();
    let keyp = put(
        dir.path(),
        "k.pem",
        encode_encrypted_private_key(&sk, b"gp", KdfPrf::HmacSm3Gmssl).expect("enc"),
    );
    let pubp = put(
        dir.path(),
        "pub.pem",
        encode_public_key(sk.public_key()).expect("spki"),
    );
    let msg = random(77);
    let m = put(dir.path(), "msg", &msg);
    let sig = put(
        dir.path(),
        "sig",
        sk.signing_key(CertId)
            .expect("signer")
            .sign(&msg)
            .expect("sign")
            .as_der(),
    );
    let out = gmssl
        .run([
            "sm2verify",
            "-pubkey",
            &s(&pubp),
            "-in",
            &s(&m),
            "-sig",
            &s(&sig),
        ])
        .expect("runs");
    assert!(out.success(), "{}", out.combined());
    let other = put(dir.path(), "other", b"other");
    let out = gmssl
        .run([
            "sm2verify",
            "-pubkey",
            &s(&pubp),
            "-in",
            &s(&other),
            "-sig",
            &s(&sig),
        ])
        .expect("runs");
    assert!(
        !out.success(),
        "GmSSL verified a signature over other bytes"
    );

    let ct = put(
        dir.path(),
        "ct",
        encrypt_der(sk.public_key(), &msg).expect("encrypt"),
    );
    let pt = gmssl
        .run_ok([
            "sm2decrypt",
            "-key",
            &s(&keyp),
            "-pass",
            "gp",
            "-in",
            &s(&ct),
        ])
        .expect("GmSSL decrypts ours")
        .stdout;
    assert_eq!(pt, msg);
    let ct = gmssl
        .run_ok(["sm2encrypt", "-pubkey", &s(&pubp), "-in", &s(&m)])
        .expect("encrypt")
        .stdout;
    assert_eq!(
        decrypt_der(&sk, &ct)
            .expect("we decrypt GmSSL's")
            .as_slice(),
        msg.as_slice()
    );
}
