//! Generate, sign, purposes, seal/unseal, certificates, import, export, destroy, threads.

use smtrust_crypto::sm2::{CertId, Sm2SecretKey, Sm2Signer, Tls13Id};
use smtrust_keystore::{Error, KeyPurpose, KeyUse, Keystore, Unlock, UnsealMethod};

use super::{PASS, passphrase_store, shares_store};

#[test]
fn handles_sign_with_the_id_their_purpose_requires() {
    let dir = tempfile::tempdir().unwrap();
    let (ks, ids) = passphrase_store(dir.path());
    let ca = ks.signer_cert(&ids[0]).unwrap();
    let sig = ca.sign(b"tbs").unwrap();
    let pk = ks.public_key(&ids[0]).unwrap();
    pk.verifying_key(CertId)
        .unwrap()
        .verify(b"tbs", &sig)
        .unwrap();
    // The same signature does not verify under the TLS ID: the handle really used the certificate ID.
    assert!(
        pk.verifying_key(Tls13Id)
            .unwrap()
            .verify(b"tbs", &sig)
            .is_err()
    );

    let tls = ks.signer_tls(&ids[1]).unwrap();
    let sig = tls.sign(b"cv").unwrap();
    tls.public_key()
        .verifying_key(Tls13Id)
        .unwrap()
        .verify(b"cv", &sig)
        .unwrap();

    for (id, want) in [
        (&ids[0], KeyUse::SignTls13Id),
        (&ids[1], KeyUse::SignCertId),
    ] {
        let err = if want == KeyUse::SignTls13Id {
            ks.signer_tls(id).map(|_| ()).unwrap_err()
        } else {
            ks.signer_cert(id).map(|_| ()).unwrap_err()
        };
        assert!(
            matches!(err, Error::PurposeForbids { requested, .. } if requested == want),
            "{err}"
        );
    }
}

#[test]
fn sealed_refuses_everything_but_status_and_unseal_restores() {
    let dir = tempfile::tempdir().unwrap();
    let (ks, ids) = passphrase_store(dir.path());
    let handle = ks.signer_cert(&ids[0]).unwrap();
    ks.seal();
    let st = ks.status().unwrap();
    assert!(st.sealed);
    assert_eq!(st.keys, None);
    assert!(matches!(st.method, UnsealMethod::Passphrase(_)));
    assert!(matches!(ks.list(), Err(Error::Sealed)));
    assert!(matches!(
        ks.generate(KeyPurpose::CaSigning, "x"),
        Err(Error::Sealed)
    ));
    assert!(matches!(ks.signer_cert(&ids[0]), Err(Error::Sealed)));
    assert!(matches!(ks.rotate_master(), Err(Error::Sealed)));
    assert!(matches!(ks.destroy(&ids[0]), Err(Error::Sealed)));
    assert!(
        handle.sign(b"m").is_err(),
        "an old handle must not sign while sealed"
    );

    ks.unseal(Unlock::Passphrase(PASS)).unwrap();
    assert!(matches!(
        ks.unseal(Unlock::Passphrase(PASS)),
        Err(Error::AlreadyUnsealed)
    ));
    assert_eq!(ks.status().unwrap().keys, Some(3));
    handle.sign(b"m").unwrap();
}

#[test]
fn keys_survive_reopen_with_same_public_keys_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (ks, ids) = passphrase_store(dir.path());
    let before = ks.list().unwrap();
    assert_eq!(before.len(), 3);
    drop(ks);
    let ks = Keystore::open_dir(dir.path()).unwrap();
    assert!(matches!(
        Keystore::open_dir(dir.path()),
        Err(Error::Locked { .. })
    ));
    ks.unseal(Unlock::Passphrase(PASS)).unwrap();
    assert_eq!(ks.list().unwrap(), before);
    let info = ks.info(&ids[1]).unwrap();
    assert_eq!(info.label, "gateway tls");
    assert_eq!(info.purpose, KeyPurpose::TlsServer);
}

#[test]
fn shares_store_unseals_with_any_threshold_subset() {
    let dir = tempfile::tempdir().unwrap();
    let (ks, id, shares) = shares_store(dir.path());
    let pk = ks.public_key(&id).unwrap();
    assert_eq!(
        ks.status().unwrap().method,
        UnsealMethod::Shares {
            threshold: 3,
            count: 5
        }
    );
    for subset in [[4, 1, 2], [0, 3, 4], [2, 3, 1]] {
        ks.seal();
        let given: Vec<String> = subset.iter().map(|&i| shares[i].clone()).collect();
        ks.unseal(Unlock::Shares(&given)).unwrap();
        assert_eq!(ks.public_key(&id).unwrap(), pk);
    }
    // All five also work, and whitespace/case typed by an operator is ignored.
    ks.seal();
    let mut typed = shares.clone();
    typed[0] = typed[0].to_uppercase().replace("-", " - ");
    typed[0] = typed[0].replacen("SMTRUST - SHARE", "smtrust-share", 1);
    ks.unseal(Unlock::Shares(&typed)).unwrap();
}

#[test]
fn share_text_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (_ks, _id, shares) = shares_store(dir.path());
    for (i, s) in shares.iter().enumerate() {
        let parts: Vec<&str> = s.split('-').collect();
        assert_eq!(parts.len(), 5, "{s}");
        assert_eq!(parts[0..2], ["smtrust", "share"]);
        assert_eq!(parts[2], (i + 1).to_string());
        assert_eq!(parts[3].len(), 72);
        assert_eq!(parts[4].len(), 8);
    }
}

#[test]
fn certificate_association_checks_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let (ks, ids) = passphrase_store(dir.path());
    let der = super::openssl::self_signed(&ks, &ids[0]);
    ks.set_certificate(&ids[0], &der).unwrap();
    assert_eq!(ks.certificate(&ids[0]).unwrap().as_deref(), Some(&der[..]));
    let err = ks.set_certificate(&ids[2], &der).unwrap_err();
    assert!(matches!(err, Error::CertificateMismatch { .. }), "{err}");
    assert!(matches!(
        ks.set_certificate(&ids[2], b"not der"),
        Err(Error::InvalidCertificate(_))
    ));
    // Persisted and authenticated: survives a reseal and still signs.
    ks.seal();
    ks.unseal(Unlock::Passphrase(PASS)).unwrap();
    assert_eq!(ks.certificate(&ids[0]).unwrap().as_deref(), Some(&der[..]));
    ks.signer_cert(&ids[0]).unwrap().sign(b"m").unwrap();
}

#[test]
fn import_keeps_the_key_and_destroy_forgets_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ks, _) = passphrase_store(dir.path());
    let offline = Sm2SecretKey::generate().unwrap();
    let pem = smtrust_crypto::pem::encode_private_key(&offline).unwrap();
    let id = ks
        .import_pkcs8(KeyPurpose::CaSigning, "offline root", pem.as_bytes(), None)
        .unwrap();
    assert_eq!(&ks.public_key(&id).unwrap(), offline.public_key());
    let der = smtrust_crypto::pkcs8::encode_der(&offline).unwrap();
    let id2 = ks
        .import_pkcs8(KeyPurpose::AuditCheckpoint, "audit", &der, None)
        .unwrap();
    let h = ks.signer_cert(&id2).unwrap();
    let sig = h.sign(b"m").unwrap();
    offline
        .public_key()
        .verifying_key(CertId)
        .unwrap()
        .verify(b"m", &sig)
        .unwrap();

    ks.destroy(&id2).unwrap();
    assert!(matches!(ks.info(&id2), Err(Error::NotFound { .. })));
    assert!(
        h.sign(b"m").is_err(),
        "handle of a destroyed key must not sign"
    );
    assert!(!super::record_path(dir.path(), &id2).exists());
    ks.seal();
    ks.unseal(Unlock::Passphrase(PASS)).unwrap();
    assert!(matches!(ks.info(&id2), Err(Error::NotFound { .. })));
    assert!(ks.info(&id).is_ok());
}

#[test]
fn labels_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (ks, _) = passphrase_store(dir.path());
    for bad in ["", "a\nb", &"x".repeat(201)] {
        assert!(matches!(
            ks.generate(KeyPurpose::CaSigning, bad),
            Err(Error::InvalidLabel { .. })
        ));
    }
}

#[test]
fn export_only_for_device_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (ks, ids) = passphrase_store(dir.path());
    let err = ks.export_device_key(&ids[0], b"pw").unwrap_err();
    assert!(
        matches!(
            err,
            Error::PurposeForbids {
                requested: KeyUse::Export,
                ..
            }
        ),
        "{err}"
    );
    let dev = ks
        .generate(KeyPurpose::DeviceExport, "device 0001")
        .unwrap();
    assert!(ks.signer_cert(&dev).is_err() && ks.signer_tls(&dev).is_err());
    let der = ks.export_device_key(&dev, b"factory pw").unwrap();
    assert_eq!(der.first(), Some(&0x30));
    // PBES2 (1.2.840.113549.1.5.13) wraps it; OpenSSL decrypts it in openssl.rs.
    let pbes2 = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d,
    ];
    assert!(der.windows(pbes2.len()).any(|w| w == pbes2));
}

#[test]
fn keystore_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Keystore>();
    assert_send_sync::<smtrust_keystore::KeyHandle<CertId>>();
    let dir = tempfile::tempdir().unwrap();
    let (ks, ids) = passphrase_store(dir.path());
    let handle = ks.signer_cert(&ids[0]).unwrap();
    let vk = handle.public_key().verifying_key(CertId).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let h = handle.clone();
            let ks = ks.clone();
            let vk = vk.clone();
            s.spawn(move || {
                for i in 0..25u8 {
                    let msg = [t, i];
                    vk.verify(&msg, &h.sign(&msg).unwrap()).unwrap();
                }
                ks.generate(KeyPurpose::OcspSigning, &format!("thread {t}"))
                    .unwrap();
            });
        }
    });
    assert_eq!(ks.list().unwrap().len(), 7);
}
