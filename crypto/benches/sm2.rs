//! SM2 throughput: keygen, sign, verify (certificate ID), encrypt and decrypt (GM/T 0009 DER) of 32 bytes.
//! `scripts/bench-crypto` prints these beside `openssl speed sm2`. `sign_sm2_crate` / `verify_sm2_crate` run the
//! `sm2` crate's own signer and verifier on the same key and message: the peer our fast paths are measured against.
//! `verify_precomputed_key`: a key registered with `precompute_for_verification` (trust anchors).
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use smtrust_crypto::sm2::{CertId, Sm2SecretKey, decrypt_der, encrypt_der};
use std::hint::black_box;

fn sm2(c: &mut Criterion) {
    let sk = Sm2SecretKey::generate().expect("keygen");
    let signer = sk.signing_key(CertId).expect("signer");
    let vk = sk.public_key().verifying_key(CertId).expect("vk");
    let msg = [0x5au8; 32];
    let sig = signer.sign(&msg).expect("sign");
    let ct = encrypt_der(sk.public_key(), &msg).expect("encrypt");

    let mut g = c.benchmark_group("sm2");
    g.bench_function("keygen", |b| {
        b.iter(|| Sm2SecretKey::generate().expect("keygen"))
    });
    g.bench_function("sign", |b| {
        b.iter(|| signer.sign(black_box(&msg)).expect("sign"))
    });
    g.bench_function("verify", |b| {
        b.iter(|| vk.verify(black_box(&msg), black_box(&sig)).expect("verify"));
    });
    {
        use signature::{Signer, Verifier};
        let d = sk.to_bytes();
        let secret = sm2::SecretKey::from_slice(d.as_slice()).expect("secret");
        #[allow(clippy::disallowed_methods)] // the peer: the sm2 crate's own signer, on purpose
        let theirs = sm2::dsa::SigningKey::new(CertId::VALUE, &secret).expect("sm2 crate signer");
        let their_vk = theirs.verifying_key().clone();
        let their_sig: sm2::dsa::Signature = theirs.sign(&msg);
        g.bench_function("sign_sm2_crate", |b| {
            b.iter(|| -> sm2::dsa::Signature { theirs.sign(black_box(&msg)) })
        });
        g.bench_function("verify_sm2_crate", |b| {
            b.iter(|| {
                their_vk
                    .verify(black_box(&msg), black_box(&their_sig))
                    .expect("verify")
            })
        });
    }
    {
        // A key given the comb table (as trust anchors are): verification without doublings.
        let anchor = Sm2SecretKey::generate().expect("keygen");
        assert!(anchor.public_key().precompute_for_verification());
        let avk = anchor.public_key().verifying_key(CertId).expect("vk");
        let asig = anchor
            .signing_key(CertId)
            .expect("signer")
            .sign(&msg)
            .expect("sign");
        g.bench_function("verify_precomputed_key", |b| {
            b.iter(|| {
                avk.verify(black_box(&msg), black_box(&asig))
                    .expect("verify")
            });
        });
    }
    g.bench_function("encrypt_32B", |b| {
        b.iter(|| encrypt_der(sk.public_key(), black_box(&msg)).expect("encrypt"));
    });
    g.bench_function("decrypt_32B", |b| {
        b.iter(|| decrypt_der(&sk, black_box(&ct)).expect("decrypt"))
    });
    g.finish();
}

criterion_group!(benches, sm2);
criterion_main!(benches);
