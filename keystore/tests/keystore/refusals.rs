//! Each attack or mistake is refused, nothing is decrypted (the store stays sealed) and nothing on disk
//! changes (directory snapshots before and after).

use std::fs;
use std::path::Path;

use smtrust_keystore::{Error, Keystore, Unlock, UnsealError};

use super::{PASS, passphrase_store, record_path, shares_store, snapshot};

/// Reopen `dir` sealed, try `unlock`, and check: refused as `check` says, still sealed, disk unchanged.
fn refused(dir: &Path, unlock: Unlock<'_>, check: impl Fn(&Error) -> bool) {
    let before = snapshot(dir);
    let ks = Keystore::open_dir(dir).unwrap();
    let err = ks.unseal(unlock).unwrap_err();
    assert!(check(&err), "unexpected error: {err}");
    assert!(ks.status().unwrap().sealed, "nothing may be decrypted");
    assert!(matches!(ks.list(), Err(Error::Sealed)));
    drop(ks);
    assert_eq!(snapshot(dir), before, "refusal changed the directory");
}

#[test]
fn wrong_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    drop(passphrase_store(dir.path()));
    refused(
        dir.path(),
        Unlock::Passphrase(b"operator passphrasE"),
        |e| matches!(e, Error::Unseal(UnsealError::WrongPassphrase)),
    );
    refused(dir.path(), Unlock::Shares(&[]), |e| {
        matches!(e, Error::Unseal(UnsealError::WrongMethod { .. }))
    });
}

#[test]
fn tampered_ciphertext_every_region() {
    let dir = tempfile::tempdir().unwrap();
    let (ks, ids) = passphrase_store(dir.path());
    drop(ks);
    let path = record_path(dir.path(), &ids[0]);
    let good = fs::read(&path).unwrap();
    // Flip one bit in every byte position in turn: header (AAD), wrapped data key, sealed key, tags.
    for pos in (0..good.len()).step_by(7).chain([good.len() - 1]) {
        let mut bad = good.clone();
        bad[pos] ^= 0x01;
        fs::write(&path, &bad).unwrap();
        refused(dir.path(), Unlock::Passphrase(PASS), |e| {
            matches!(e, Error::Tampered { .. } | Error::Malformed { .. })
        });
    }
    fs::write(&path, &good).unwrap();
    let ks = Keystore::open_dir(dir.path()).unwrap();
    ks.unseal(Unlock::Passphrase(PASS)).unwrap();
}

#[test]
fn swapped_records() {
    let dir = tempfile::tempdir().unwrap();
    let (ks, ids) = passphrase_store(dir.path());
    drop(ks);
    let a = record_path(dir.path(), &ids[0]);
    let b = record_path(dir.path(), &ids[1]);
    let (ga, gb) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
    // The CA record under the TLS key's name: id in the header disagrees with the file name.
    fs::write(&b, &ga).unwrap();
    refused(dir.path(), Unlock::Passphrase(PASS), |e| {
        matches!(
            e,
            Error::Tampered {
                what: "record id or generation",
                ..
            }
        )
    });
    // Now also rewrite the header's id to match: the AAD no longer matches, so GCM refuses.
    let mut forged = ga.clone();
    forged[8..24].copy_from_slice(&gb[8..24]);
    fs::write(&b, &forged).unwrap();
    refused(dir.path(), Unlock::Passphrase(PASS), |e| {
        matches!(e, Error::Tampered { what: "record", .. })
    });
    // Repurpose: the CA key relabelled as a TLS key (purpose byte at offset 24).
    fs::write(&b, &gb).unwrap();
    let mut repurposed = ga.clone();
    repurposed[24] = 5;
    fs::write(&a, &repurposed).unwrap();
    refused(dir.path(), Unlock::Passphrase(PASS), |e| {
        matches!(e, Error::Tampered { what: "record", .. })
    });
    fs::write(&a, &ga).unwrap();
    // A record carried from another generation: rotate, then put the old-generation file back.
    let ks = Keystore::open_dir(dir.path()).unwrap();
    ks.unseal(Unlock::Passphrase(PASS)).unwrap();
    ks.rotate_master().unwrap();
    drop(ks);
    let a2 = record_path(dir.path(), &ids[0]);
    fs::write(&a2, &ga).unwrap();
    refused(dir.path(), Unlock::Passphrase(PASS), |e| {
        matches!(e, Error::Tampered { .. })
    });
}

#[test]
fn truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    let (ks, ids) = passphrase_store(dir.path());
    drop(ks);
    let path = record_path(dir.path(), &ids[2]);
    let good = fs::read(&path).unwrap();
    for len in [0, 1, 8, 30, good.len() / 2, good.len() - 1] {
        fs::write(&path, &good[..len]).unwrap();
        refused(dir.path(), Unlock::Passphrase(PASS), |e| {
            matches!(e, Error::Malformed { .. })
        });
    }
    // Trailing garbage is refused too.
    fs::write(&path, [&good[..], b"x"].concat()).unwrap();
    refused(dir.path(), Unlock::Passphrase(PASS), |e| {
        matches!(
            e,
            Error::Malformed {
                what: "trailing bytes",
                ..
            }
        )
    });
    fs::write(&path, &good).unwrap();
    // A truncated sealed master.
    let master = path.parent().unwrap().join("master");
    let gm = fs::read(&master).unwrap();
    fs::write(&master, &gm[..gm.len() - 3]).unwrap();
    let before = snapshot(dir.path());
    assert!(matches!(
        Keystore::open_dir(dir.path()),
        Err(Error::Malformed { .. })
    ));
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn too_few_duplicated_corrupted_and_foreign_shares() {
    let dir = tempfile::tempdir().unwrap();
    let (ks, _, shares) = shares_store(dir.path());
    drop(ks);
    let d = dir.path();
    refused(d, Unlock::Shares(&shares[..2]), |e| {
        matches!(
            e,
            Error::Unseal(UnsealError::TooFewShares { got: 2, need: 3 })
        )
    });
    let dup = vec![shares[0].clone(), shares[1].clone(), shares[0].clone()];
    refused(d, Unlock::Shares(&dup), |e| {
        matches!(e, Error::Unseal(UnsealError::DuplicateShare { index: 1 }))
    });
    // One changed hex digit in the middle of share 2: the checksum catches it.
    let mut corrupted = shares[..3].to_vec();
    let mut bytes = corrupted[1].clone().into_bytes();
    let at = 30;
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    corrupted[1] = String::from_utf8(bytes).unwrap();
    refused(d, Unlock::Shares(&corrupted), |e| {
        matches!(
            e,
            Error::Unseal(UnsealError::CorruptedShare { position: 2 })
        )
    });
    // Printed index disagreeing with the checksummed one.
    let mut relabelled = shares[..3].to_vec();
    relabelled[2] = relabelled[2].replacen("smtrust-share-3-", "smtrust-share-4-", 1);
    refused(d, Unlock::Shares(&relabelled), |e| {
        matches!(
            e,
            Error::Unseal(UnsealError::CorruptedShare { position: 3 })
        )
    });
    refused(d, Unlock::Passphrase(PASS), |e| {
        matches!(e, Error::Unseal(UnsealError::WrongMethod { .. }))
    });
    // A share of another store with the same threshold.
    let other = tempfile::tempdir().unwrap();
    let (ks2, _, other_shares) = shares_store(other.path());
    drop(ks2);
    let mixed = vec![
        shares[0].clone(),
        other_shares[1].clone(),
        shares[2].clone(),
    ];
    refused(d, Unlock::Shares(&mixed), |e| {
        matches!(e, Error::Unseal(UnsealError::ForeignShare { position: 2 }))
    });
}
