//! Tongsuo 8.5.0: encrypted PKCS#8 with its `hmacWithSM3` PRF both ways, and signatures with its default ID
//! (1234567812345678).

use smtrust_crypto::pem::{
    decode_private_key, decode_public_key, encode_encrypted_private_key, encode_public_key,
};
use smtrust_crypto::pkcs8::{KdfPrf, inspect_encrypted};
use smtrust_crypto::sm2::CertId;
use smtrust_test_support::{Tongsuo, require, temp_dir};

use crate::{get, our_key, put, random, s};

#[test]
fn tongsuo_hmac_sm3_pkcs8_both_ways() {
    let Some(tongsuo) = require(Tongsuo) else {
        return;
    };
    let dir = temp_dir().expect("dir");
    let key = dir.path().join("k.pem");
    let pubkey = tongsuo.genpkey_sm2(&key).expect("genpkey");
    let enc = tongsuo
        .run_ok([
            "pkcs8",
            "-topk8",
            "-v2",
            "sm4-cbc",
            "-v2prf",
            "hmacWithSM3",
            "-in",
            &s(&key),
            "-passout",
            "pass:tp",
        ])
        .expect("pkcs8 with hmacWithSM3")
        .stdout;
    let blocks = smtrust_crypto::pem::blocks(&enc).expect("pem");
    assert_eq!(
        inspect_encrypted(&blocks[0].1).expect("inspect").prf,
        KdfPrf::HmacSm3Tongsuo
    );
    let sk = decode_private_key(&enc, Some(b"tp")).expect("we read Tongsuo's key");
    assert_eq!(&decode_public_key(&pubkey).expect("spki"), sk.public_key());

    let (sk, _) = our_key();
    let ours = put(
        dir.path(),
        "ours.pem",
        encode_encrypted_private_key(&sk, b"tp", KdfPrf::HmacSm3Tongsuo).expect("enc"),
    );
    let out = tongsuo
        .run_ok(["pkey", "-in", &s(&ours), "-passin", "pass:tp", "-pubout"])
        .expect("Tongsuo reads our hmacWithSM3 key");
    assert_eq!(
        &decode_public_key(&out.stdout).expect("spki"),
        sk.public_key()
    );
    let out = tongsuo
        .run(["pkey", "-in", &s(&ours), "-passin", "pass:no", "-pubout"])
        .expect("runs");
    assert!(!out.success(), "Tongsuo took a wrong passphrase");
    drop(get(&ours));
}

#[test]
fn tongsuo_signatures_both_ways_with_default_id() {
    let Some(tongsuo) = require(Tongsuo) else {
        return;
    };
    let dir = temp_dir().expect("dir");
    let (sk, pem) = our_key();
    let keyp = put(dir.path(), "k.pem", &pem);
    let pubp = put(
        dir.path(),
        "pub.pem",
        encode_public_key(sk.public_key()).expect("spki"),
    );
    let msg = random(300);
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
    // No -sigopt: Tongsuo's default ID is the GM/T one.
    let out = tongsuo
        .run([
            "dgst",
            "-sm3",
            "-verify",
            &s(&pubp),
            "-signature",
            &s(&sig),
            &s(&m),
        ])
        .expect("runs");
    assert!(out.success(), "{}", out.combined());
    let theirs = tongsuo
        .run_ok(["dgst", "-sm3", "-sign", &s(&keyp), &s(&m)])
        .expect("sign")
        .stdout;
    let vk = sk.public_key().verifying_key(CertId).expect("vk");
    vk.verify_der(&msg, &theirs)
        .expect("we verify Tongsuo's signature");
}
