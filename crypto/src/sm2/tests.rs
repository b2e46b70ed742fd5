use super::*;
use crate::Error;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).expect("test vector hex")
}

// GB/T 32918.5-2017 Annex A (recommended curve): d, P and the signature example with the default ID
// 1234567812345678 over "message digest" (k = 59276E27...). We verify the standard's (r, s), since RFC 6979
// nonces cannot be injected into our signer.
const STD_D: &str = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8";
const STD_PX: &str = "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020";
const STD_PY: &str = "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13";

#[test]
fn gbt32918_5_key_derivation_and_signature() {
    let sk = Sm2SecretKey::from_bytes(&h(STD_D)).expect("standard key");
    let mut want = vec![0x04];
    want.extend(h(STD_PX));
    want.extend(h(STD_PY));
    assert_eq!(sk.public_key().to_sec1_uncompressed().to_vec(), want);

    let id = CertId;
    let r = h("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3");
    let s = h("B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA");
    let mut raw = r.clone();
    raw.extend(&s);
    let sig = Sm2Signature::from_raw(&raw).expect("standard signature");
    let vk = sk.public_key().verifying_key(id).expect("vk");
    vk.verify(b"message digest", &sig)
        .expect("standard signature verifies");
    assert_eq!(vk.verify(b"message digesT", &sig), Err(Error::BadSignature));
    // The same signature under another ID must fail: Z_A binds the ID.
    let custom = CustomId::new("ALICE123@YAHOO.COM").expect("short id");
    let vk_other = sk.public_key().verifying_key(custom).expect("vk");
    assert_eq!(
        vk_other.verify(b"message digest", &sig),
        Err(Error::BadSignature)
    );

    // Our own signature with the standard key and ID verifies, and is DER.
    let signer = sk.signing_key(CertId).expect("signer");
    let mine = signer.sign(b"message digest").expect("sign");
    assert_eq!(mine.as_der()[0], 0x30);
    vk.verify(b"message digest", &mine).expect("verifies");
}

// GB/T 32918.5-2017 Annex C: decryption of the standard ciphertext of "encryption standard".
#[test]
fn gbt32918_5_decryption() {
    let sk = Sm2SecretKey::from_bytes(&h(STD_D)).expect("standard key");
    // C1 = 04 || x1 || y1; x1 itself begins with the byte 04.
    let c1 = h(
        "0404EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0",
    );
    let c3 = h("59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766");
    let c2 = h("21886CA989CA9C7D58087307CA93092D651EFA");
    let ct = [c1, c3, c2].concat();
    let pt = decrypt_c1c3c2(&sk, &ct).expect("standard ciphertext");
    assert_eq!(pt.as_slice(), b"encryption standard");
    let mut bad = ct.clone();
    if let Some(b) = bad.last_mut() {
        *b ^= 1;
    }
    assert_eq!(decrypt_c1c3c2(&sk, &bad), Err(Error::DecryptFailed));
}

#[test]
fn ids_do_not_cross() {
    let sk = Sm2SecretKey::generate().expect("rng");
    let cert = sk.signing_key(CertId).expect("signer");
    let tls = sk.signing_key(Tls13Id).expect("signer");
    let s1 = cert.sign(b"m").expect("sign");
    let s2 = tls.sign(b"m").expect("sign");
    let pk = sk.public_key();
    pk.verifying_key(CertId)
        .expect("vk")
        .verify(b"m", &s1)
        .expect("cert id");
    pk.verifying_key(Tls13Id)
        .expect("vk")
        .verify(b"m", &s2)
        .expect("tls id");
    assert!(
        pk.verifying_key(Tls13Id)
            .expect("vk")
            .verify(b"m", &s1)
            .is_err()
    );
    assert!(
        pk.verifying_key(CertId)
            .expect("vk")
            .verify(b"m", &s2)
            .is_err()
    );
}

#[test]
fn strict_signature_parsing() {
    let sk = Sm2SecretKey::generate().expect("rng");
    let sig = sk
        .signing_key(CertId)
        .expect("signer")
        .sign(b"m")
        .expect("sign");
    let der = sig.as_der();
    assert!(Sm2Signature::from_der(der).is_ok());
    // trailing byte
    assert!(Sm2Signature::from_der(&[der, &[0]].concat()).is_err());
    // truncated
    for n in 0..der.len() {
        assert!(
            Sm2Signature::from_der(&der[..n]).is_err(),
            "prefix of {n} bytes"
        );
    }
    // r = 0, s = 0
    assert!(Sm2Signature::from_der(&h("3006020100020100")).is_err());
    // r = n (the group order), s = 1
    let n = "00FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123";
    assert!(Sm2Signature::from_der(&h(&format!("3026022100{}020101", &n[2..]))).is_err());
    // non-minimal INTEGER (leading zero on a positive value)
    assert!(Sm2Signature::from_der(&h("30070202000102010 1".replace(' ', "").as_str())).is_err());
    // long-form length where short form fits
    assert!(Sm2Signature::from_der(&h("308106020101020101")).is_err());
    // negative r
    assert!(Sm2Signature::from_der(&h("3006020181020101")).is_err());
    // raw r||s of wrong length
    assert!(Sm2Signature::from_raw(&[1u8; 63]).is_err());
}

#[test]
fn invalid_public_keys_rejected() {
    // the point at infinity
    assert!(Sm2PublicKey::from_sec1_bytes(&[0x00]).is_err());
    // off-curve: the standard point with y + 1
    let mut p = vec![0x04];
    p.extend(h(STD_PX));
    let mut y = h(STD_PY);
    if let Some(b) = y.last_mut() {
        *b ^= 1;
    }
    p.extend(y);
    assert!(Sm2PublicKey::from_sec1_bytes(&p).is_err());
    assert!(Sm2PublicKey::from_sec1_bytes(&[]).is_err());
    assert!(Sm2PublicKey::from_sec1_bytes(&p[..64]).is_err());
}

#[test]
fn invalid_private_scalars_rejected() {
    assert!(Sm2SecretKey::from_bytes(&[0u8; 32]).is_err());
    let n = h("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123");
    assert!(Sm2SecretKey::from_bytes(&n).is_err());
    let mut n_minus_1 = n.clone();
    if let Some(b) = n_minus_1.last_mut() {
        *b -= 1;
    }
    assert!(
        Sm2SecretKey::from_bytes(&n_minus_1).is_err(),
        "1 + d must be invertible"
    );
    let mut n_minus_2 = n;
    if let Some(b) = n_minus_2.last_mut() {
        *b -= 2;
    }
    assert!(Sm2SecretKey::from_bytes(&n_minus_2).is_ok());
    assert!(Sm2SecretKey::from_bytes(&[1u8; 31]).is_err());
}

#[test]
fn encryption_round_trips_both_forms() {
    let sk = Sm2SecretKey::generate().expect("rng");
    let msg = b"\x00\x00a data key with leading zeros";
    let der = encrypt_der(sk.public_key(), msg).expect("encrypt");
    assert_eq!(decrypt_der(&sk, &der).expect("decrypt").as_slice(), msg);
    let raw = encrypt_c1c3c2(sk.public_key(), msg).expect("encrypt");
    assert_eq!(raw.len(), 65 + 32 + msg.len());
    assert_eq!(decrypt_c1c3c2(&sk, &raw).expect("decrypt").as_slice(), msg);
    let other = Sm2SecretKey::generate().expect("rng");
    assert_eq!(decrypt_der(&other, &der), Err(Error::DecryptFailed));
    assert_eq!(decrypt_c1c3c2(&other, &raw), Err(Error::DecryptFailed));
    assert!(encrypt_der(sk.public_key(), b"").is_err());
}

#[test]
fn ecdh_agrees() {
    let a = EphemeralSecret::generate().expect("rng");
    let b = EphemeralSecret::generate().expect("rng");
    let s1 = a.agree(&b.public_bytes()).expect("agree");
    let s2 = b.agree(&a.public_bytes()).expect("agree");
    assert_eq!(*s1, *s2);
    assert!(a.agree(&[0u8; 65]).is_err());
    assert!(a.agree(&b.public_bytes()[..64]).is_err());
}

#[test]
fn debug_never_shows_secrets() {
    let sk = Sm2SecretKey::from_bytes(&h(STD_D)).expect("key");
    let dbg = format!("{sk:?} {:?}", sk.signing_key(CertId).expect("signer"));
    assert!(
        !dbg.to_lowercase().contains(&STD_D.to_lowercase()[..16]),
        "{dbg}"
    );
    assert!(dbg.contains("Sm2PublicKey"));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn sign_verify_round_trip(msg in proptest::collection::vec(any::<u8>(), 0..512)) {
            let sk = Sm2SecretKey::generate().expect("rng");
            let sig = sk.signing_key(CertId).expect("signer").sign(&msg).expect("sign");
            let parsed = Sm2Signature::from_der(sig.as_der()).expect("own DER parses");
            prop_assert!(sk.public_key().verifying_key(CertId).expect("vk").verify(&msg, &parsed).is_ok());
            let again = Sm2Signature::from_raw(&sig.to_raw()).expect("raw");
            prop_assert_eq!(again.as_der(), sig.as_der());
        }

        /// Our signer (precomputed (1 + d)⁻¹) makes byte-for-byte the signature the `sm2` crate makes, and our
        /// verifier (the fast path) gives the crate's verdict on it and on a corrupted copy, for several IDs.
        #[test]
        fn signer_and_verifier_match_the_sm2_crate(
            d in any::<[u8; 32]>(),
            msg in proptest::collection::vec(any::<u8>(), 0..300),
            which in 0usize..3,
        ) {
            use signature::{Signer, Verifier};
            let Ok(sk) = Sm2SecretKey::from_bytes(&d) else { return Ok(()) };
            let id = ["", CertId::VALUE, Tls13Id::VALUE][which];
            let custom = CustomId::new(id).expect("short");
            let reference = distid::signing_key(id, sk.inner()).expect("reference signer");
            let want: sm2::dsa::Signature = reference.try_sign(&msg).expect("reference sign");
            let ours = sk.signing_key(custom.clone()).expect("signer").sign(&msg).expect("sign");
            prop_assert_eq!(ours.to_raw(), <[u8; 64]>::from(want.to_bytes()));

            let vk = sk.public_key().verifying_key(custom).expect("vk");
            let ref_vk = distid::verifying_key(id, *sk.public_key().inner()).expect("reference vk");
            prop_assert!(vk.verify(&msg, &ours).is_ok());
            let mut raw = ours.to_raw();
            raw[7] ^= 0x40;
            if let Ok(bad) = Sm2Signature::from_raw(&raw) {
                prop_assert!(vk.verify(&msg, &bad).is_err());
                prop_assert!(ref_vk.verify(&msg, &bad.parsed_for_tests()).is_err());
            }
        }

        #[test]
        fn signature_parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = Sm2Signature::from_der(&data);
        }

        #[test]
        fn decrypt_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            fuzzing::decrypt_any(&data);
        }
    }
}
