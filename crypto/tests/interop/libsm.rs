//! The `libsm` crate (0.6.1, an independent Rust implementation): SM2 signatures both ways (its default ID is
//! 1234567812345678), SM3 digests and SM4 blocks.

use libsm::sm2::signature::{SigCtx, Signature};
use libsm::sm3::hash::Sm3Hash;
use libsm::sm4::cipher::Sm4Cipher;
use smtrust_crypto::sm2::{CertId, Sm2PublicKey};
use smtrust_crypto::sm4::{Sm4Key, decrypt_block, encrypt_block};

use crate::{our_key, random};

#[test]
fn libsm_verifies_our_signatures_and_we_verify_theirs() {
    let ctx = SigCtx::new();
    for i in 0..20 {
        let msg = random(i * 7);
        let (sk, _) = our_key();
        let sig = sk
            .signing_key(CertId)
            .expect("signer")
            .sign(&msg)
            .expect("sign");
        let pk = ctx
            .load_pubkey(&sk.public_key().to_sec1_uncompressed())
            .expect("libsm loads our point");
        let theirs = Signature::der_decode(sig.as_der()).expect("libsm parses our DER");
        assert!(
            ctx.verify(&msg, &pk, &theirs).expect("verify runs"),
            "libsm rejected ours ({i})"
        );
        assert!(!ctx.verify(b"other", &pk, &theirs).expect("verify runs"));

        let (pk, d) = ctx.new_keypair().expect("libsm keygen");
        let point = ctx.serialize_pubkey(&pk, false).expect("point");
        let ours = Sm2PublicKey::from_sec1_bytes(&point).expect("we read libsm's point");
        let sig = ctx.sign(&msg, &d, &pk).expect("libsm signs");
        let vk = ours.verifying_key(CertId).expect("vk");
        vk.verify_der(&msg, &sig.der_encode())
            .expect("we verify libsm's DER signature");
        // Its secret key bytes are a valid key for us, with the same public key.
        let d_bytes = ctx.serialize_seckey(&d).expect("seckey");
        let sk = smtrust_crypto::sm2::Sm2SecretKey::from_bytes(&d_bytes).expect("scalar");
        assert_eq!(sk.public_key(), &ours);
    }
}

#[test]
fn libsm_sm3_and_sm4_blocks_agree() {
    for len in [0, 1, 55, 56, 63, 64, 65, 1000, 4097] {
        let data = random(len);
        assert_eq!(
            Sm3Hash::new(&data).get_hash(),
            smtrust_crypto::sm3::digest(&data),
            "SM3 len {len}"
        );
    }
    for _ in 0..50 {
        let key: [u8; 16] = random(16).try_into().expect("16");
        let block: [u8; 16] = random(16).try_into().expect("16");
        let theirs = Sm4Cipher::new(&key).expect("key");
        let mut ours = block;
        encrypt_block(&Sm4Key::from_bytes(key), &mut ours);
        assert_eq!(theirs.encrypt(&block).expect("block"), ours);
        assert_eq!(theirs.decrypt(&ours).expect("block"), block);
        decrypt_block(&Sm4Key::from_bytes(key), &mut ours);
        assert_eq!(ours, block);
    }
}
