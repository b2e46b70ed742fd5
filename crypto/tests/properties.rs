//! Property tests: every decoder of untrusted bytes returns an error instead of panicking, and every encoding
//! round-trips. Strategies draw keys from arbitrary 32-byte strings (rejecting the few invalid scalars).

use proptest::prelude::*;
use smtrust_crypto::pkcs8::{self, KdfPrf, MIN_ITERATIONS};
use smtrust_crypto::sm2::{
    CertId, Sm2PublicKey, Sm2SecretKey, Sm2Signature, Tls13Id, decrypt_c1c3c2, decrypt_der,
    encrypt_c1c3c2, encrypt_der,
};
use smtrust_crypto::sm4::{self, AeadMode, Sm4Key};
use smtrust_crypto::{Error, KeyError, pem, x509};

fn secret_key() -> impl Strategy<Value = Sm2SecretKey> {
    any::<[u8; 32]>().prop_filter_map("valid SM2 scalar", |b| Sm2SecretKey::from_bytes(&b).ok())
}

fn prf() -> impl Strategy<Value = KdfPrf> {
    prop_oneof![
        Just(KdfPrf::HmacSha256),
        Just(KdfPrf::HmacSm3Tongsuo),
        Just(KdfPrf::HmacSm3Gmssl)
    ]
}

fn mode() -> impl Strategy<Value = AeadMode> {
    prop_oneof![Just(AeadMode::Gcm), Just(AeadMode::Ccm)]
}

/// Flip one bit of `data` chosen by `at`.
fn flip(data: &[u8], at: usize) -> Vec<u8> {
    let mut v = data.to_vec();
    let n = v.len();
    if n > 0 {
        v[at % n] ^= 1 << (at % 8);
    }
    v
}

proptest! {
    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = pkcs8::decode_der(&data);
        let _ = pkcs8::decode_sec1_der(&data);
        let _ = pkcs8::inspect_encrypted(&data);
        let _ = pem::decode_private_key(&data, Some(b"p"));
        let _ = pem::decode_public_key(&data);
        let _ = pem::blocks(&data);
        let _ = x509::public_key_from_spki_der(&data);
        let _ = x509::split_signed(&data);
        let _ = Sm2PublicKey::from_sec1_bytes(&data);
        smtrust_crypto::fuzzing::decrypt_any(&data);
        // A signature that parses is canonical: its encoding is exactly the input.
        if let Ok(sig) = Sm2Signature::from_der(&data) {
            prop_assert_eq!(sig.as_der(), data.as_slice());
        }
    }

    #[test]
    fn pkcs8_sec1_spki_pem_round_trip(sk in secret_key()) {
        let der = pkcs8::encode_der(&sk).expect("encode");
        prop_assert!(pkcs8::decode_der(&der).expect("decode").ct_eq(&sk));
        let sec1 = pkcs8::encode_sec1_der(&sk).expect("sec1");
        prop_assert!(pkcs8::decode_sec1_der(&sec1).expect("decode sec1").ct_eq(&sk));
        let spki = x509::public_key_to_spki_der(sk.public_key()).expect("spki");
        prop_assert_eq!(&x509::public_key_from_spki_der(&spki).expect("spki"), sk.public_key());
        let text = pem::encode_private_key(&sk).expect("pem");
        prop_assert!(pem::decode_private_key(text.as_bytes(), None).expect("pem decode").ct_eq(&sk));
        let text = pem::encode_public_key(sk.public_key()).expect("pem");
        prop_assert_eq!(&pem::decode_public_key(text.as_bytes()).expect("pem decode"), sk.public_key());
        // Truncation and trailing bytes are errors, never another key.
        for cut in [1, der.len() / 2, der.len() - 1] {
            prop_assert!(pkcs8::decode_der(&der[..cut]).is_err());
        }
        let mut long = der.to_vec();
        long.push(0);
        prop_assert!(pkcs8::decode_der(&long).is_err());
    }

    #[test]
    fn pkcs8_bit_flips_never_panic_and_never_yield_a_mismatched_key(sk in secret_key(), at in any::<usize>()) {
        let der = pkcs8::encode_der(&sk).expect("encode");
        // A flip in the scalar gives another valid key only if the embedded public key still matches: never.
        if let Ok(other) = pkcs8::decode_der(&flip(&der, at)) {
            prop_assert!(other.ct_eq(&sk));
        }
    }

    #[test]
    fn pem_framing_round_trips(label in "[A-Z]{1,10}( [A-Z]{1,10}){0,2}", der in proptest::collection::vec(any::<u8>(), 1..300)) {
        let text = pem::encode(&label, &der).expect("encode");
        let blocks = pem::blocks(text.as_bytes()).expect("blocks");
        prop_assert_eq!(blocks.len(), 1);
        prop_assert_eq!(&blocks[0].0, &label);
        prop_assert_eq!(blocks[0].1.as_slice(), der.as_slice());
    }

    #[test]
    fn signatures_round_trip_and_bind_message_and_id(
        sk in secret_key(),
        msg in proptest::collection::vec(any::<u8>(), 0..200),
        at in any::<usize>(),
    ) {
        let sig = sk.signing_key(CertId).expect("signer").sign(&msg).expect("sign");
        let parsed = Sm2Signature::from_der(sig.as_der()).expect("parse our DER");
        prop_assert_eq!(&parsed, &sig);
        prop_assert_eq!(&Sm2Signature::from_raw(&sig.to_raw()).expect("raw"), &sig);
        let vk = sk.public_key().verifying_key(CertId).expect("vk");
        prop_assert_eq!(vk.verify(&msg, &sig), Ok(()));
        let mut other = msg.clone();
        other.push(0);
        prop_assert_eq!(vk.verify(&other, &sig), Err(Error::BadSignature));
        let tls = sk.public_key().verifying_key(Tls13Id).expect("vk");
        prop_assert_eq!(tls.verify(&msg, &sig), Err(Error::BadSignature));
        // A flipped bit in the DER is either refused as malformed or fails verification.
        prop_assert!(vk.verify_der(&msg, &flip(sig.as_der(), at)).is_err());
    }

    #[test]
    fn sm2_ciphertexts_round_trip_and_reject_tampering(
        sk in secret_key(),
        msg in proptest::collection::vec(any::<u8>(), 1..200),
        at in any::<usize>(),
    ) {
        let ct = encrypt_der(sk.public_key(), &msg).expect("encrypt");
        prop_assert_eq!(&**decrypt_der(&sk, &ct).expect("decrypt"), msg.as_slice());
        prop_assert!(decrypt_der(&sk, &flip(&ct, at)).is_err());
        let raw = encrypt_c1c3c2(sk.public_key(), &msg).expect("encrypt");
        prop_assert_eq!(raw.len(), 65 + 32 + msg.len());
        prop_assert_eq!(&**decrypt_c1c3c2(&sk, &raw).expect("decrypt"), msg.as_slice());
        prop_assert_eq!(decrypt_c1c3c2(&sk, &flip(&raw, at)).expect_err("tampered"), Error::DecryptFailed);
    }

    #[test]
    fn aead_round_trips_with_random_aad_and_nonce(
        mode in mode(),
        key in any::<[u8; 16]>(),
        nonce in any::<[u8; 12]>(),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        pt in proptest::collection::vec(any::<u8>(), 0..300),
        at in any::<usize>(),
    ) {
        let key = Sm4Key::from_bytes(key);
        let ct = sm4::seal(mode, &key, &nonce, &aad, &pt).expect("seal");
        prop_assert_eq!(ct.len(), pt.len() + sm4::TAG_LEN);
        prop_assert_eq!(sm4::open(mode, &key, &nonce, &aad, &ct).expect("open"), pt);
        prop_assert_eq!(sm4::open(mode, &key, &nonce, &aad, &flip(&ct, at)), Err(Error::DecryptFailed));
        let mut aad2 = aad.clone();
        aad2.push(1);
        prop_assert_eq!(sm4::open(mode, &key, &nonce, &aad2, &ct), Err(Error::DecryptFailed));
        let mut nonce2 = nonce;
        nonce2[at % 12] ^= 1;
        prop_assert_eq!(sm4::open(mode, &key, &nonce2, &aad, &ct), Err(Error::DecryptFailed));
    }

    #[test]
    fn cbc_round_trips(key in any::<[u8; 16]>(), iv in any::<[u8; 16]>(), pt in proptest::collection::vec(any::<u8>(), 0..300)) {
        let key = Sm4Key::from_bytes(key);
        let ct = sm4::cbc_encrypt(&key, &iv, &pt);
        prop_assert_eq!(ct.len(), (pt.len() / 16 + 1) * 16);
        prop_assert_eq!(sm4::cbc_decrypt(&key, &iv, &ct).expect("decrypt"), pt);
    }
}

proptest! {
    // PBKDF2 makes each case cost ~1-3 ms even at the minimum count.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn encrypted_pkcs8_round_trips(
        sk in secret_key(),
        prf in prf(),
        pass in proptest::collection::vec(any::<u8>(), 0..40),
        at in any::<usize>(),
    ) {
        let der = pkcs8::encrypt_pkcs8_with_iterations(&sk, &pass, prf, MIN_ITERATIONS).expect("encrypt");
        let info = pkcs8::inspect_encrypted(&der).expect("inspect");
        prop_assert_eq!(info.prf, prf);
        prop_assert!(pkcs8::decrypt_encrypted(&der, &pass).expect("decrypt").ct_eq(&sk));
        let mut wrong = pass.clone();
        wrong.push(b'x');
        prop_assert_eq!(
            pkcs8::decrypt_encrypted(&der, &wrong).expect_err("wrong passphrase"),
            Error::Key(KeyError::WrongPassphrase)
        );
        // Any single flipped bit is an error (or, if it hit nothing that matters, the same key).
        if let Ok(k) = pkcs8::decrypt_encrypted(&flip(&der, at), &pass) {
            prop_assert!(k.ct_eq(&sk));
        }
        let text = pem::encode_encrypted_private_key(&sk, &pass, prf).expect("pem");
        prop_assert!(pem::decode_private_key(text.as_bytes(), Some(&pass)).expect("pem").ct_eq(&sk));
    }
}
