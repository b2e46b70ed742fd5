use super::*;

fn key() -> Sm2SecretKey {
    Sm2SecretKey::from_bytes(&[0x42; 32]).expect("valid scalar")
}

#[test]
fn round_trip_each_prf() {
    let sk = key();
    for prf in [
        KdfPrf::HmacSha256,
        KdfPrf::HmacSm3Tongsuo,
        KdfPrf::HmacSm3Gmssl,
    ] {
        let der = encrypt_with_iterations(&sk, b"pass", prf, MIN_ITERATIONS).expect("encrypt");
        let info = inspect(&der).expect("inspect");
        assert_eq!(info.prf, prf);
        assert_eq!(info.iterations, MIN_ITERATIONS);
        let back = decrypt(&der, b"pass").expect("decrypt");
        assert!(back.ct_eq(&sk));
        assert_eq!(
            decrypt(&der, b"wrong").expect_err("wrong passphrase"),
            Error::Key(KeyError::WrongPassphrase)
        );
    }
}

#[test]
fn iteration_bounds_are_enforced_both_ways() {
    let sk = key();
    for bad in [0, 999, MAX_ITERATIONS + 1] {
        assert_eq!(
            encrypt_with_iterations(&sk, b"p", KdfPrf::HmacSha256, bad).expect_err("out of range"),
            Error::Key(KeyError::IterationCount {
                count: u64::from(bad),
                min: MIN_ITERATIONS,
                max: MAX_ITERATIONS
            })
        );
    }
    // Files claiming too many or too few iterations are refused by value before any work is done.
    for (count, want) in [
        (&[0x01, 0, 0, 0, 0][..], 1u64 << 32),
        (&[0x00, 0x98, 0x96, 0x81][..], 10_000_001),
        (&[0x03, 0xe7][..], 999),
        (&[0x01; 9][..], u64::MAX),
    ] {
        assert_eq!(
            decrypt(&epki_with_count(count), b"p").expect_err("refused"),
            Error::Key(KeyError::IterationCount {
                count: want,
                min: MIN_ITERATIONS,
                max: MAX_ITERATIONS
            })
        );
    }
}

/// An `EncryptedPrivateKeyInfo` with the given iterationCount content bytes and a dummy ciphertext.
fn epki_with_count(count: &[u8]) -> Vec<u8> {
    let kdf = Pbkdf2Params {
        salt: AnyRef::new(Tag::OctetString, &[7u8; 16]).expect("salt"),
        iteration_count: UintRef::new(count).expect("count"),
        key_length: None,
        prf: Some(AlgorithmIdentifierRef {
            oid: oid::HMAC_WITH_SHA256,
            parameters: Some(AnyRef::NULL),
        }),
    }
    .to_der()
    .expect("kdf");
    let iv = OctetStringRef::new(&[0u8; 16])
        .expect("iv")
        .to_der()
        .expect("iv der");
    let pbes2 = Pbes2Params {
        key_derivation_func: AlgorithmIdentifierRef {
            oid: oid::PBKDF2,
            parameters: Some(AnyRef::from_der(&kdf).expect("any")),
        },
        encryption_scheme: AlgorithmIdentifierRef {
            oid: sm_oid::SM4_CBC,
            parameters: Some(AnyRef::from_der(&iv).expect("any")),
        },
    }
    .to_der()
    .expect("pbes2");
    EncryptedPrivateKeyInfo {
        encryption_algorithm: AlgorithmIdentifierRef {
            oid: oid::PBES2,
            parameters: Some(AnyRef::from_der(&pbes2).expect("any")),
        },
        encrypted_data: OctetStringRef::new(&[0u8; 32]).expect("data"),
    }
    .to_der()
    .expect("epki")
}

#[test]
fn corrupted_ciphertext_is_wrong_passphrase_not_padding() {
    let sk = key();
    let der =
        encrypt_with_iterations(&sk, b"p", KdfPrf::HmacSm3Tongsuo, MIN_ITERATIONS).expect("enc");
    // Flip a bit in each of the last two ciphertext blocks (garbles the pad or the key's last bytes) and in
    // an early one (garbles DER): all must give the same error.
    let n = der.len();
    for i in (n - 32..n).chain([n - 100]) {
        let mut bad = der.to_vec();
        bad[i] ^= 0x01;
        assert_eq!(
            decrypt(&bad, b"p").expect_err("tampered"),
            Error::Key(KeyError::WrongPassphrase),
            "byte {i}"
        );
    }
}

#[test]
fn pkcs7_check_matches_the_definition() {
    for pad in 0u8..=255 {
        for fill in [0u8, 1, 16, 17, 255] {
            let mut buf = [fill; 32];
            buf[31] = pad;
            let valid =
                (1..=16).contains(&pad) && buf[32 - usize::from(pad)..].iter().all(|b| *b == pad);
            assert_eq!(
                pkcs7_pad_len(&buf),
                valid.then_some(usize::from(pad)),
                "pad {pad} fill {fill}"
            );
        }
    }
    let mut good = [16u8; 16];
    assert_eq!(pkcs7_pad_len(&good), Some(16));
    good[0] = 15;
    assert_eq!(pkcs7_pad_len(&good), None);
    assert_eq!(pkcs7_pad_len(&[1u8; 15]), None);
}

#[test]
fn other_schemes_are_named() {
    // PBES1 pbeWithSHA1AndDES-CBC, as `openssl pkcs8 -topk8 -v1 PBE-SHA1-DES` writes it (structure only).
    let alg = AlgorithmIdentifierRef {
        oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.10"),
        parameters: None,
    };
    let epki = EncryptedPrivateKeyInfo {
        encryption_algorithm: alg,
        encrypted_data: OctetStringRef::new(&[0u8; 16]).expect("octets"),
    }
    .to_der()
    .expect("der");
    match decrypt(&epki, b"p") {
        Err(Error::Key(KeyError::UnsupportedEncryption(m))) => {
            assert!(m.contains("1.2.840.113549.1.5.10"), "{m}");
        }
        other => panic!("expected UnsupportedEncryption, got {other:?}"),
    }
}
