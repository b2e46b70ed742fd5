//! Master rotation survives a crash at every step: the store then opens with the old or the new master,
//! never neither, and every key still signs with its old public key.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use smtrust_crypto::sm2::{CertId, Sm2PublicKey, Sm2Signer};
use smtrust_keystore::{Backend, Error, KeyId, Keystore, SealedDir, Unlock};

use super::{PASS, passphrase_store, shares_store};

/// Open, unseal, check every key is there with its public key and signs; returns the generation.
fn opens_with_all_keys(dir: &Path, unlock: Unlock<'_>, keys: &[(KeyId, Sm2PublicKey)]) -> u64 {
    let ks = Keystore::open_dir(dir).unwrap();
    ks.unseal(unlock).unwrap();
    assert_eq!(ks.list().unwrap().len(), keys.len());
    for (id, pk) in keys {
        assert_eq!(&ks.public_key(id).unwrap(), pk);
        if let Ok(h) = ks.signer_cert(id) {
            let sig = h.sign(b"after rotation").unwrap();
            pk.verifying_key(CertId)
                .unwrap()
                .verify(b"after rotation", &sig)
                .unwrap();
        }
    }
    // Nothing stale is left behind after open's clean-up.
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("gen-")).count(),
        1,
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    ks.status().unwrap().generation
}

fn keys_of(ks: &Keystore) -> Vec<(KeyId, Sm2PublicKey)> {
    ks.list()
        .unwrap()
        .into_iter()
        .map(|i| (i.id, i.public_key))
        .collect()
}

#[test]
fn rotation_completes_and_keeps_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let (ks, ids) = passphrase_store(dir.path());
    let keys = keys_of(&ks);
    let ca = ks.signer_cert(&ids[0]).unwrap();
    assert_eq!(ks.rotate_master().unwrap(), 2);
    assert_eq!(ks.rotate_master().unwrap(), 3);
    // Handles keep working across a rotation in the same process.
    ca.sign(b"m").unwrap();
    // A handle keeps the store (and its directory lock) alive: drop both before reopening.
    drop((ca, ks));
    assert_eq!(
        opens_with_all_keys(dir.path(), Unlock::Passphrase(PASS), &keys),
        3
    );
}

#[test]
fn crash_after_every_step_opens_old_or_new() {
    for shares in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (keys, share_texts) = if shares {
            let (ks, _, s) = shares_store(dir.path());
            ks.generate(smtrust_keystore::KeyPurpose::TlsServer, "tls")
                .unwrap();
            (keys_of(&ks), s)
        } else {
            let (ks, _) = passphrase_store(dir.path());
            (keys_of(&ks), Vec::new())
        };
        let unlock = || {
            if shares {
                Unlock::Shares(&share_texts[1..4])
            } else {
                Unlock::Passphrase(PASS)
            }
        };
        let mut generation = 1;
        let mut saw_old = false;
        let mut saw_new = false;
        let mut step = 1;
        loop {
            let store = SealedDir::open(dir.path()).unwrap();
            store.unseal(unlock()).unwrap();
            let r = store.rotate_master_until(Some(step));
            drop(store);
            let g = opens_with_all_keys(dir.path(), unlock(), &keys);
            match r {
                Err(Error::FaultInjected { step: s }) => {
                    assert_eq!(s, step);
                    assert!(
                        g == generation || g == generation + 1,
                        "step {step}: generation {g}"
                    );
                    saw_old |= g == generation;
                    saw_new |= g == generation + 1;
                    generation = g;
                    step += 1;
                }
                Ok(newg) => {
                    // `step` is past the last step: the rotation ran to the end.
                    assert_eq!(g, newg);
                    break;
                }
                Err(e) => panic!("step {step}: {e}"),
            }
        }
        // keys + master + staging + rename + switch + cleanup
        assert_eq!(step, keys.len() + 6, "every step was exercised");
        assert!(
            saw_old && saw_new,
            "crashes landed on both sides of the commit point"
        );
    }
}

/// The example binary: built by `cargo test` (which builds examples); when a filtered run did not build it,
/// build it here into a separate target directory, so this does not wait on the running cargo's lock.
fn rotate_example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join("rotate");
    if path.exists() {
        return path;
    }
    let target = profile_dir.parent().unwrap().join("keystore-example");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "smtrust-keystore", "--example", "rotate"])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(status.success(), "building the rotate example");
    target.join("debug").join("examples").join("rotate")
}

#[test]
fn kill_dash_nine_during_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let (ks, _) = passphrase_store(dir.path());
    for i in 0..20 {
        ks.generate(
            smtrust_keystore::KeyPurpose::AuditCheckpoint,
            &format!("k{i}"),
        )
        .unwrap();
    }
    let keys = keys_of(&ks);
    drop(ks);
    let exe = rotate_example();
    let mut last = 1;
    let mut moved = false;
    for round in 0..12u64 {
        let mut child = Command::new(&exe)
            .arg(dir.path())
            .env("SMTRUST_PASSPHRASE", "operator passphrase")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Different kill points: the child rotates in a loop, each rotation a few ms.
        std::thread::sleep(Duration::from_millis(40 + 17 * round));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "the child was killed, not finished");
        let g = opens_with_all_keys(dir.path(), Unlock::Passphrase(PASS), &keys);
        assert!(g >= last, "generation went backwards: {last} -> {g}");
        moved |= g > last;
        last = g;
    }
    assert!(moved, "the child rotated at least once before being killed");
}
