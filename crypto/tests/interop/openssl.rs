//! The OpenSSL 3 CLI: keys, signatures, SM2 encryption and certificates, both ways.

use std::str::FromStr;
use std::time::Duration;

use der::{Decode, Encode};
use smtrust_crypto::pem::{decode_private_key, decode_public_key, encode_public_key};
use smtrust_crypto::pkcs8::{KdfPrf, inspect_encrypted};
use smtrust_crypto::sm2::{CertId, Sm2SecretKey, danger, decrypt_der, encrypt_der};
use smtrust_crypto::x509::{DerSignature, X509Signer, split_signed, verify_signed};
use smtrust_crypto::{Error, KeyError};
use smtrust_test_support::{Openssl, SignerKey, Verdict, require, sm2sigcheck, temp_dir};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfo;
use x509_cert::time::Validity;

use crate::{DISTID, get, our_key, put, random, s};

/// OpenSSL generates an SM2 key (PKCS#8 PEM) and its SPKI; returns (key path, public key PEM).
fn openssl_key(
    openssl: &smtrust_test_support::Tool,
    dir: &std::path::Path,
) -> (std::path::PathBuf, Vec<u8>) {
    let key = dir.join("ossl.pem");
    let pubkey = openssl.genpkey_sm2(&key).expect("genpkey");
    (key, pubkey)
}

#[test]
fn openssl_plain_pkcs8_both_ways() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let dir = temp_dir().expect("dir");
    // Theirs → ours: the private key we read yields the public key OpenSSL derives.
    let (key, pubkey) = openssl_key(&openssl, dir.path());
    let sk = decode_private_key(&get(&key), None).expect("we read OpenSSL's PKCS#8");
    assert_eq!(&decode_public_key(&pubkey).expect("SPKI"), sk.public_key());
    // Ours → theirs.
    let (sk, pem) = our_key();
    let ours = put(dir.path(), "ours.pem", &pem);
    let out = openssl
        .run_ok(["pkey", "-in", &s(&ours), "-pubout"])
        .expect("OpenSSL reads ours");
    assert_eq!(
        &decode_public_key(&out.stdout).expect("SPKI"),
        sk.public_key()
    );
    // And OpenSSL reads our SPKI.
    let spki = put(
        dir.path(),
        "pub.pem",
        encode_public_key(sk.public_key()).expect("spki"),
    );
    let text = openssl
        .run_ok(["pkey", "-pubin", "-in", &s(&spki), "-text", "-noout"])
        .expect("OpenSSL reads our SPKI")
        .stdout_str();
    assert!(text.contains("SM2"), "{text}");
}

#[test]
fn openssl_encrypted_pkcs8_both_ways() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let dir = temp_dir().expect("dir");
    let (key, pubkey) = openssl_key(&openssl, dir.path());
    let enc = dir.path().join("enc.pem");
    openssl
        .run_ok([
            "pkcs8",
            "-topk8",
            "-v2",
            "sm4-cbc",
            "-in",
            &s(&key),
            "-passout",
            "pass:correct horse",
            "-out",
            &s(&enc),
        ])
        .expect("pkcs8 -topk8");
    let pem = get(&enc);
    let sk = decode_private_key(&pem, Some(b"correct horse")).expect("we read OpenSSL's PBES2 key");
    assert_eq!(&decode_public_key(&pubkey).expect("SPKI"), sk.public_key());
    let blocks = smtrust_crypto::pem::blocks(&pem).expect("pem");
    assert_eq!(
        inspect_encrypted(&blocks[0].1).expect("inspect").prf,
        KdfPrf::HmacSha256
    );
    assert_eq!(
        decode_private_key(&pem, Some(b"wrong")).expect_err("wrong passphrase"),
        Error::Key(KeyError::WrongPassphrase)
    );
    assert_eq!(
        decode_private_key(&pem, None).expect_err("no passphrase"),
        Error::Key(KeyError::Encrypted)
    );

    // Ours (OpenSSL's default PRF) → theirs.
    let (sk, _) = our_key();
    let ours = smtrust_crypto::pem::encode_encrypted_private_key(&sk, b"pw", KdfPrf::HmacSha256)
        .expect("enc");
    let p = put(dir.path(), "ours-enc.pem", &ours);
    let out = openssl
        .run_ok(["pkey", "-in", &s(&p), "-passin", "pass:pw", "-pubout"])
        .expect("OpenSSL reads our encrypted PKCS#8");
    assert_eq!(
        &decode_public_key(&out.stdout).expect("SPKI"),
        sk.public_key()
    );
    let bad = openssl
        .run(["pkey", "-in", &s(&p), "-passin", "pass:nope", "-pubout"])
        .expect("runs");
    assert!(
        !bad.success(),
        "OpenSSL must refuse the wrong passphrase too"
    );
    // OpenSSL 3.0 does not know the HMAC-SM3 PRFs: this is why HmacSha256 is what we write by default.
    let sm3 = smtrust_crypto::pem::encode_encrypted_private_key(&sk, b"pw", KdfPrf::HmacSm3Tongsuo)
        .expect("enc");
    let p = put(dir.path(), "ours-sm3.pem", &sm3);
    let out = openssl
        .run(["pkey", "-in", &s(&p), "-passin", "pass:pw", "-pubout"])
        .expect("runs");
    assert!(
        !out.success(),
        "OpenSSL 3.0 unexpectedly read an HMAC-SM3 PBKDF2 key: {}",
        out.combined()
    );
}

#[test]
fn openssl_sec1_keys_with_sm2_label_and_ec_parameters() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let dir = temp_dir().expect("dir");
    let (key, pubkey) = openssl_key(&openssl, dir.path());
    let want = decode_public_key(&pubkey).expect("SPKI");
    // `openssl ec` writes SEC1 under the label `SM2 PRIVATE KEY`.
    let sec1 = openssl.run_ok(["ec", "-in", &s(&key)]).expect("ec").stdout;
    assert!(String::from_utf8_lossy(&sec1).contains("BEGIN SM2 PRIVATE KEY"));
    assert_eq!(
        decode_private_key(&sec1, None).expect("SEC1").public_key(),
        &want
    );
    // SEC1 DER as well.
    let der = openssl
        .run_ok(["ec", "-in", &s(&key), "-outform", "DER"])
        .expect("ec der")
        .stdout;
    assert_eq!(
        decode_private_key(&der, None)
            .expect("SEC1 DER")
            .public_key(),
        &want
    );
    // `openssl ecparam -genkey` puts an EC PARAMETERS block first.
    let gen_key = openssl
        .run_ok(["ecparam", "-name", "SM2", "-genkey"])
        .expect("ecparam")
        .stdout;
    let text = String::from_utf8_lossy(&gen_key);
    assert!(
        text.contains("BEGIN EC PARAMETERS") || text.contains("BEGIN SM2 PARAMETERS"),
        "{text}"
    );
    let sk = decode_private_key(&gen_key, None).expect("ecparam -genkey output");
    let p = put(dir.path(), "gen.pem", &gen_key);
    let pubout = openssl
        .run_ok(["pkey", "-in", &s(&p), "-pubout"])
        .expect("pubout")
        .stdout;
    assert_eq!(&decode_public_key(&pubout).expect("SPKI"), sk.public_key());
}

#[test]
fn openssl_verifies_our_signatures_and_we_verify_theirs() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let dir = temp_dir().expect("dir");
    let (sk, _) = our_key();
    let signer = sk.signing_key(CertId).expect("signer");
    let pubp = put(
        dir.path(),
        "pub.pem",
        encode_public_key(sk.public_key()).expect("spki"),
    );
    for len in [0, 1, 55, 64, 1000] {
        let msg = random(len);
        let m = put(dir.path(), "msg", &msg);
        let sig = put(
            dir.path(),
            "sig.der",
            signer.sign(&msg).expect("sign").as_der(),
        );
        let out = openssl
            .run([
                "dgst",
                "-sm3",
                "-verify",
                &s(&pubp),
                "-sigopt",
                DISTID,
                "-signature",
                &s(&sig),
                &s(&m),
            ])
            .expect("runs");
        assert!(
            out.success() && out.stdout_str().contains("Verified OK"),
            "len {len}: {}",
            out.combined()
        );
    }
    // Without the ID OpenSSL uses an empty one, and our signature must not verify there.
    let m = put(dir.path(), "msg", b"id matters");
    let sig = put(
        dir.path(),
        "sig.der",
        signer.sign(b"id matters").expect("sign").as_der(),
    );
    let out = openssl
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
    assert!(
        !out.success(),
        "verified with the empty ID: {}",
        out.combined()
    );

    // Theirs → ours, with their key as OpenSSL wrote it.
    let (key, pubkey) = openssl_key(&openssl, dir.path());
    let vk = decode_public_key(&pubkey)
        .expect("SPKI")
        .verifying_key(CertId)
        .expect("vk");
    for len in [0, 3, 64, 4096] {
        let msg = random(len);
        let m = put(dir.path(), "m2", &msg);
        let sig = openssl
            .run_ok(["dgst", "-sm3", "-sign", &s(&key), "-sigopt", DISTID, &s(&m)])
            .expect("OpenSSL signs")
            .stdout;
        vk.verify_der(&msg, &sig)
            .expect("we verify OpenSSL's signature");
        assert_eq!(vk.verify_der(b"other", &sig), Err(Error::BadSignature));
    }
}

#[test]
fn sm2_encryption_with_pkeyutl_both_ways() {
    let Some(openssl) = require(Openssl) else {
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
    for len in [1, 16, 33, 1000] {
        let msg = random(len);
        // Ours → theirs.
        let ct = put(
            dir.path(),
            "ct",
            encrypt_der(sk.public_key(), &msg).expect("encrypt"),
        );
        let pt = openssl
            .run_ok(["pkeyutl", "-decrypt", "-inkey", &s(&keyp), "-in", &s(&ct)])
            .expect("OpenSSL decrypts ours")
            .stdout;
        assert_eq!(pt, msg);
        // Theirs → ours.
        let m = put(dir.path(), "m", &msg);
        let ct = openssl
            .run_ok([
                "pkeyutl",
                "-encrypt",
                "-pubin",
                "-inkey",
                &s(&pubp),
                "-in",
                &s(&m),
            ])
            .expect("OpenSSL encrypts")
            .stdout;
        assert_eq!(
            decrypt_der(&sk, &ct)
                .expect("we decrypt OpenSSL's")
                .as_slice(),
            msg.as_slice()
        );
        let mut bad = ct.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            decrypt_der(&sk, &bad).expect_err("tampered"),
            Error::DecryptFailed
        );
    }
}

/// A minimal profile: CA or leaf, with basicConstraints and keyUsage.
struct Profile {
    issuer: Name,
    subject: Name,
    ca: bool,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &x509_cert::TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        use const_oid::AssociatedOid;
        let bc = BasicConstraints {
            ca: self.ca,
            path_len_constraint: None,
        };
        let ku = if self.ca {
            KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
        } else {
            KeyUsage(KeyUsages::DigitalSignature.into())
        };
        Ok(vec![
            Extension {
                extn_id: BasicConstraints::OID,
                critical: true,
                extn_value: der::asn1::OctetString::new(bc.to_der()?)?,
            },
            Extension {
                extn_id: KeyUsage::OID,
                critical: true,
                extn_value: der::asn1::OctetString::new(ku.to_der()?)?,
            },
        ])
    }
}

fn build_cert(
    issuer_key: &Sm2SecretKey,
    issuer: &str,
    subject: &str,
    subject_key: &Sm2SecretKey,
    ca: bool,
) -> Vec<u8> {
    let spki_der =
        smtrust_crypto::x509::public_key_to_spki_der(subject_key.public_key()).expect("spki");
    let profile = Profile {
        issuer: Name::from_str(issuer).expect("issuer"),
        subject: Name::from_str(subject).expect("subject"),
        ca,
    };
    let mut serial = random(16);
    serial[0] &= 0x7f;
    let builder = CertificateBuilder::new(
        profile,
        SerialNumber::new(&serial).expect("serial"),
        Validity::from_now(Duration::from_secs(3600)).expect("validity"),
        SubjectPublicKeyInfo::from_der(&spki_der).expect("spki"),
    )
    .expect("builder");
    let signer = issuer_key.signing_key(CertId).expect("signer");
    let cert = builder
        .build::<_, DerSignature>(&X509Signer::new(&signer))
        .expect("build");
    cert.to_der().expect("cert der")
}

#[test]
fn openssl_verifies_certificates_we_build() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let dir = temp_dir().expect("dir");
    let ca_key = Sm2SecretKey::generate().expect("ca key");
    let leaf_key = Sm2SecretKey::generate().expect("leaf key");
    let root_name = "CN=smtrust interop root,O=smtrust,C=CN";
    let root = build_cert(&ca_key, root_name, root_name, &ca_key, true);
    let leaf = build_cert(
        &ca_key,
        root_name,
        "CN=leaf,O=smtrust,C=CN",
        &leaf_key,
        false,
    );
    verify_signed(&root, ca_key.public_key()).expect("we verify our root");
    verify_signed(&leaf, ca_key.public_key()).expect("we verify our leaf");
    let rootp = put(dir.path(), "root.der", &root);
    let leafp = put(dir.path(), "leaf.der", &leaf);
    let root_pem = openssl
        .run_ok(["x509", "-inform", "DER", "-in", &s(&rootp)])
        .expect("x509")
        .stdout;
    let leaf_pem = openssl
        .run_ok(["x509", "-inform", "DER", "-in", &s(&leafp)])
        .expect("x509")
        .stdout;
    let rootp = put(dir.path(), "root.pem", &root_pem);
    let leafp = put(dir.path(), "leaf.pem", &leaf_pem);
    let text = openssl
        .run_ok(["x509", "-in", &s(&rootp), "-text", "-noout"])
        .expect("text")
        .stdout_str();
    assert!(text.contains("SM2-with-SM3"), "{text}");
    // The leaf's signature is checked by `verify` with the GM/T ID (vfyopt reaches the leaf only) ...
    let out = openssl
        .run([
            "verify",
            "-vfyopt",
            DISTID,
            "-CAfile",
            &s(&rootp),
            &s(&leafp),
        ])
        .expect("runs");
    assert!(out.success(), "{}", out.combined());
    // ... and fails with the empty ID, proving the signature was checked at all.
    let out = openssl
        .run(["verify", "-CAfile", &s(&rootp), &s(&leafp)])
        .expect("runs");
    assert!(
        !out.success(),
        "verified with the empty ID: {}",
        out.combined()
    );
    // `-check_ss_sig` ignores vfyopt: check the root's self-signature over its TBS with dgst instead.
    let verdict =
        sm2sigcheck(&openssl, &root, SignerKey::Certificate(&root_pem)).expect("sigcheck");
    assert_eq!(verdict, Verdict::Verified);
}

#[test]
fn we_verify_certificates_openssl_makes() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let dir = temp_dir().expect("dir");
    let (key, pubkey) = openssl_key(&openssl, dir.path());
    let pk = decode_public_key(&pubkey).expect("SPKI");
    let key_s = s(&key);
    let make = |extra: &[&str]| {
        let mut args = vec![
            "req",
            "-x509",
            "-new",
            "-key",
            &key_s,
            "-sm3",
            "-subj",
            "/CN=openssl-made",
            "-days",
            "1",
            "-outform",
            "DER",
        ];
        args.extend_from_slice(extra);
        openssl.run_ok(args).expect("req -x509").stdout
    };
    let with_id = make(&["-sigopt", DISTID]);
    verify_signed(&with_id, &pk).expect("we verify OpenSSL's certificate made with the GM/T ID");
    // Made without the ID: fails our verification, passes only the explicit empty-ID escape hatch.
    let without = make(&[]);
    assert_eq!(verify_signed(&without, &pk), Err(Error::BadSignature));
    let parts = split_signed(&without).expect("split");
    danger::verify_with_empty_id(&pk, parts.tbs, parts.signature).expect("empty ID");
}

#[test]
fn foreign_and_broken_keys_get_clear_errors() {
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let rsa = openssl
        .run_ok([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
        ])
        .expect("rsa")
        .stdout;
    assert_eq!(
        decode_private_key(&rsa, None).expect_err("RSA"),
        Error::Key(KeyError::NotSm2 {
            oid: "1.2.840.113549.1.1.1".into()
        })
    );
    let p256 = openssl
        .run_ok([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .expect("p256")
        .stdout;
    let p256_oid = KeyError::WrongCurve {
        oid: "1.2.840.10045.3.1.7".into(),
    };
    assert_eq!(
        decode_private_key(&p256, None).expect_err("P-256"),
        Error::Key(p256_oid.clone())
    );
    let dir = temp_dir().expect("dir");
    let p = put(dir.path(), "p256.pem", &p256);
    let sec1 = openssl.run_ok(["ec", "-in", &s(&p)]).expect("ec").stdout;
    assert_eq!(
        decode_private_key(&sec1, None).expect_err("P-256 SEC1"),
        Error::Key(p256_oid.clone())
    );
    let pubp = openssl
        .run_ok(["pkey", "-in", &s(&p), "-pubout"])
        .expect("pub")
        .stdout;
    assert_eq!(
        decode_public_key(&pubp).expect_err("P-256 SPKI"),
        Error::Key(p256_oid)
    );
    let enc = openssl
        .run_ok([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-128-cbc",
            "-in",
            &s(&p),
            "-passout",
            "pass:x",
        ])
        .expect("aes pkcs8")
        .stdout;
    match decode_private_key(&enc, Some(b"x")) {
        Err(Error::Key(KeyError::UnsupportedEncryption(m))) => {
            assert!(m.contains("2.16.840.1.101.3.4.1.2"), "{m}")
        }
        other => panic!("AES-encrypted key: {other:?}"),
    }

    // Truncated and trailing bytes, PEM and DER, on an OpenSSL-written SM2 key.
    let (key, _) = openssl_key(&openssl, dir.path());
    let der = openssl
        .run_ok(["pkey", "-in", &s(&key), "-outform", "DER"])
        .expect("der")
        .stdout;
    decode_private_key(&der, None).expect("intact DER");
    for cut in [1, 10, der.len() / 2, der.len() - 1] {
        assert!(
            matches!(
                decode_private_key(&der[..cut], None),
                Err(Error::Der { .. })
            ),
            "cut {cut}"
        );
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(matches!(
        decode_private_key(&trailing, None),
        Err(Error::Der { .. })
    ));
    let pem = get(&key);
    let half = &pem[..pem.len() / 2];
    assert!(matches!(decode_private_key(half, None), Err(Error::Pem(_))));
    let mut junk_body = String::from_utf8(pem.clone()).expect("utf8");
    junk_body.insert_str(30, "!!!!");
    assert!(matches!(
        decode_private_key(junk_body.as_bytes(), None),
        Err(Error::Pem(_))
    ));
}
