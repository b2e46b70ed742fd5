use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).expect("test vector hex")
}

// GB/T 32907-2016 Appendix A, example 1 and 2 (1,000,000 encryptions).
#[test]
fn gbt32907_examples() {
    let key = Sm4Key::from_slice(&h("0123456789abcdeffedcba9876543210")).expect("16 bytes");
    let mut b: [u8; 16] = h("0123456789abcdeffedcba9876543210")
        .try_into()
        .expect("16");
    encrypt_block(&key, &mut b);
    assert_eq!(hex::encode(b), "681edf34d206965e86b3e94f536e4246");
    decrypt_block(&key, &mut b);
    assert_eq!(hex::encode(b), "0123456789abcdeffedcba9876543210");

    let c = Sm4Block::new(&key.0.into());
    let mut blk = h("0123456789abcdeffedcba9876543210");
    let mut a: cipher::Block<Sm4Block> = blk.as_slice().try_into().expect("16");
    for _ in 0..1_000_000 {
        c.encrypt_block(&mut a);
    }
    blk.copy_from_slice(&a);
    assert_eq!(hex::encode(blk), "595298c7c6fd271f0402f804c33d3f66");
}

// RFC 8998 Appendix A.1 (SM4-GCM) and A.2 (SM4-CCM).
const KEY: &str = "0123456789ABCDEFFEDCBA9876543210";
const NONCE: &str = "00001234567800000000ABCD";
const AAD: &str = "FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2";
const PT: &str = "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDDEEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA";

#[test]
fn rfc8998_a1_gcm() {
    let key = Sm4Key::from_slice(&h(KEY)).expect("16");
    let ct = seal(AeadMode::Gcm, &key, &h(NONCE), &h(AAD), &h(PT)).expect("seal");
    let want_ct = h(
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D",
    );
    let want_tag = h("83DE3541E4C2B58177E065A9BF7B62EC");
    assert_eq!(&ct[..ct.len() - 16], &want_ct[..]);
    assert_eq!(&ct[ct.len() - 16..], &want_tag[..]);
    assert_eq!(
        open(AeadMode::Gcm, &key, &h(NONCE), &h(AAD), &ct).expect("open"),
        h(PT)
    );
}

#[test]
fn rfc8998_a2_ccm() {
    let key = Sm4Key::from_slice(&h(KEY)).expect("16");
    let ct = seal(AeadMode::Ccm, &key, &h(NONCE), &h(AAD), &h(PT)).expect("seal");
    let want_ct = h(
        "48AF93501FA62ADBCD414CCE6034D895DDA1BF8F132F042098661572E7483094FD12E518CE062C98ACEE28D95DF4416BED31A2F04476C18BB40C84A74B97DC5B",
    );
    let want_tag = h("16842D4FA186F56AB33256971FA110F4");
    assert_eq!(&ct[..ct.len() - 16], &want_ct[..]);
    assert_eq!(&ct[ct.len() - 16..], &want_tag[..]);
    assert_eq!(
        open(AeadMode::Ccm, &key, &h(NONCE), &h(AAD), &ct).expect("open"),
        h(PT)
    );
}

#[test]
fn aead_rejects_tampering() {
    let key = Sm4Key::from_slice(&h(KEY)).expect("16");
    for mode in [AeadMode::Gcm, AeadMode::Ccm] {
        let ct = seal(mode, &key, &h(NONCE), b"aad", b"secret").expect("seal");
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 0x80;
            assert_eq!(
                open(mode, &key, &h(NONCE), b"aad", &bad),
                Err(Error::DecryptFailed)
            );
        }
        assert_eq!(
            open(mode, &key, &h(NONCE), b"aaD", &ct),
            Err(Error::DecryptFailed)
        );
        assert_eq!(
            open(mode, &key, &h(NONCE), b"aad", &ct[..15]),
            Err(Error::DecryptFailed)
        );
        assert!(matches!(
            open(mode, &key, &[0u8; 16], b"aad", &ct),
            Err(Error::InvalidLength { .. })
        ));
    }
}

#[test]
fn cbc_round_trip_and_padding() {
    let key = Sm4Key::generate().expect("rng");
    let iv = [7u8; 16];
    for len in [0usize, 1, 15, 16, 17, 100] {
        let pt = vec![0x5a; len];
        let ct = cbc_encrypt(&key, &iv, &pt);
        assert_eq!(ct.len(), (len / 16 + 1) * 16);
        assert_eq!(cbc_decrypt(&key, &iv, &ct).expect("decrypt"), pt);
    }
    assert_eq!(
        cbc_decrypt(&key, &iv, &[0u8; 15]),
        Err(Error::DecryptFailed)
    );
    assert_eq!(cbc_decrypt(&key, &iv, &[]), Err(Error::DecryptFailed));
}

#[test]
fn key_debug_hides_bytes() {
    let key = Sm4Key::from_bytes([0xab; 16]);
    assert_eq!(format!("{key:?}"), "Sm4Key(..)");
}
