//! SM3 and SM4 (GCM, CCM, CBC) throughput over 16 KiB buffers. `scripts/bench-crypto` prints these beside
//! `openssl speed -evp sm3` / `-evp sm4-cbc`.
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smtrust_crypto::sm4::{AeadMode, Sm4Key, cbc_encrypt, seal};
use std::hint::black_box;

const BUF: usize = 16 * 1024;

fn symmetric(c: &mut Criterion) {
    let data = vec![0xa5u8; BUF];
    let key = Sm4Key::from_bytes([7; 16]);
    let nonce = [9u8; 12];
    let mut g = c.benchmark_group("symmetric");
    g.throughput(Throughput::Bytes(BUF as u64));
    g.bench_function("sm3_16KiB", |b| {
        b.iter(|| smtrust_crypto::sm3::digest(black_box(&data)))
    });
    g.bench_function("sm4_gcm_16KiB", |b| {
        b.iter(|| seal(AeadMode::Gcm, &key, &nonce, b"", black_box(&data)).expect("seal"));
    });
    g.bench_function("sm4_ccm_16KiB", |b| {
        b.iter(|| seal(AeadMode::Ccm, &key, &nonce, b"", black_box(&data)).expect("seal"));
    });
    g.bench_function("sm4_cbc_16KiB", |b| {
        b.iter(|| cbc_encrypt(&key, &[3; 16], black_box(&data)))
    });
    g.finish();
}

criterion_group!(benches, symmetric);
criterion_main!(benches);
