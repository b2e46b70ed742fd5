//! What a keystore handle adds to one SM2 signature, and how long unsealing takes.
//!
//! `cargo bench -p smtrust-keystore --bench handle`

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use smtrust_crypto::sm2::{CertId, Sm2SecretKey, Sm2Signer};
use smtrust_keystore::{Argon2Params, InitMethod, KeyPurpose, Keystore, Unlock};

const MSG: &[u8] = b"a TBSCertificate of a typical device certificate, give or take";

fn sign(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let params = Argon2Params::new(1024, 1, 1).unwrap();
    Keystore::init_dir(
        dir.path(),
        InitMethod::Passphrase {
            passphrase: b"pw",
            params,
        },
    )
    .unwrap();
    let ks = Keystore::open_dir(dir.path()).unwrap();
    ks.unseal(Unlock::Passphrase(b"pw")).unwrap();
    for i in 0..50 {
        ks.generate(KeyPurpose::OcspSigning, &format!("filler {i}"))
            .unwrap();
    }
    let id = ks.generate(KeyPurpose::CaSigning, "bench").unwrap();
    let handle = ks.signer_cert(&id).unwrap();
    let direct = Sm2SecretKey::generate()
        .unwrap()
        .signing_key(CertId)
        .unwrap();

    let mut g = c.benchmark_group("sm2_sign");
    g.bench_function("direct Sm2SigningKey", |b| {
        b.iter(|| direct.sign(black_box(MSG)).unwrap())
    });
    g.bench_function("keystore handle", |b| {
        b.iter(|| Sm2Signer::sign(&handle, black_box(MSG)).unwrap())
    });
    g.finish();
}

fn unseal(c: &mut Criterion) {
    let mut g = c.benchmark_group("unseal");
    g.sample_size(10);
    let pdir = tempfile::tempdir().unwrap();
    Keystore::init_dir(
        pdir.path(),
        InitMethod::Passphrase {
            passphrase: b"pw",
            params: Argon2Params::DEFAULT,
        },
    )
    .unwrap();
    let ks = Keystore::open_dir(pdir.path()).unwrap();
    ks.unseal(Unlock::Passphrase(b"pw")).unwrap();
    for i in 0..10 {
        ks.generate(KeyPurpose::CaSigning, &format!("k{i}"))
            .unwrap();
    }
    ks.seal();
    g.bench_function("passphrase, Argon2id default (64 MiB, t=3), 10 keys", |b| {
        b.iter(|| {
            ks.unseal(Unlock::Passphrase(b"pw")).unwrap();
            ks.seal();
        })
    });

    let sdir = tempfile::tempdir().unwrap();
    let shares = Keystore::init_dir(
        sdir.path(),
        InitMethod::Shares {
            threshold: 3,
            count: 5,
        },
    )
    .unwrap();
    let shares: Vec<String> = shares.iter().take(3).map(|s| s.to_string()).collect();
    let ks = Keystore::open_dir(sdir.path()).unwrap();
    ks.unseal(Unlock::Shares(&shares)).unwrap();
    for i in 0..10 {
        ks.generate(KeyPurpose::CaSigning, &format!("k{i}"))
            .unwrap();
    }
    ks.seal();
    g.bench_function("3 of 5 shares, 10 keys", |b| {
        b.iter(|| {
            ks.unseal(Unlock::Shares(&shares)).unwrap();
            ks.seal();
        })
    });
    g.finish();
}

criterion_group!(benches, sign, unseal);
criterion_main!(benches);
