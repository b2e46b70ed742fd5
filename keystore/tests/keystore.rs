//! Integration tests of the keystore: one binary, submodules per concern.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use smtrust_keystore::{Argon2Params, InitMethod, KeyId, KeyPurpose, Keystore, Unlock};

#[path = "keystore/lifecycle.rs"]
mod lifecycle;
#[path = "keystore/openssl.rs"]
mod openssl;
#[path = "keystore/props.rs"]
mod props;
#[path = "keystore/refusals.rs"]
mod refusals;
#[path = "keystore/rotation.rs"]
mod rotation;

pub(crate) const PASS: &[u8] = b"operator passphrase";

/// Small Argon2 costs so the suite stays fast; production uses `Argon2Params::DEFAULT`.
pub(crate) fn test_params() -> Argon2Params {
    Argon2Params::new(1024, 1, 1).unwrap()
}

/// A passphrase store with one key of each signing purpose, unsealed.
pub(crate) fn passphrase_store(dir: &Path) -> (Keystore, Vec<KeyId>) {
    Keystore::init_dir(
        dir,
        InitMethod::Passphrase {
            passphrase: PASS,
            params: test_params(),
        },
    )
    .unwrap();
    let ks = Keystore::open_dir(dir).unwrap();
    ks.unseal(Unlock::Passphrase(PASS)).unwrap();
    let ids = vec![
        ks.generate(KeyPurpose::CaSigning, "root").unwrap(),
        ks.generate(KeyPurpose::TlsServer, "gateway tls").unwrap(),
        ks.generate(KeyPurpose::OcspSigning, "ocsp").unwrap(),
    ];
    (ks, ids)
}

/// A 3-of-5 shares store with one CA key, unsealed; returns the share texts.
pub(crate) fn shares_store(dir: &Path) -> (Keystore, KeyId, Vec<String>) {
    let shares = Keystore::init_dir(
        dir,
        InitMethod::Shares {
            threshold: 3,
            count: 5,
        },
    )
    .unwrap();
    let shares: Vec<String> = shares.iter().map(|s| s.to_string()).collect();
    let ks = Keystore::open_dir(dir).unwrap();
    ks.unseal(Unlock::Shares(&shares[..3])).unwrap();
    let id = ks.generate(KeyPurpose::CaSigning, "root").unwrap();
    (ks, id, shares)
}

/// Every file under `dir` with its bytes: "nothing changed on disk" compares two of these.
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), Vec::new());
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// The record file of `id` in the current generation.
pub(crate) fn record_path(dir: &Path, id: &KeyId) -> PathBuf {
    let current = std::fs::read_to_string(dir.join("current")).unwrap();
    let g = current.trim().rsplit(' ').next().unwrap().to_owned();
    dir.join(format!("gen-{g}")).join(format!("{id}.key"))
}
