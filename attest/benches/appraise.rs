//! Appraisals per second and where the time goes: `cargo bench -p smtrust-attest --bench appraise`.
//!
//! - `appraise/service_sqlite/tasks=N`: the full service path the server runs
//!   ([`AttestationService::submit`]) on a SQLite file: evidence JWS verified with the device key, chain
//!   checked (leaf cached by the SM3 of its DER after a device's first appraisal, revocation asked every
//!   time), nonce consumed in the store, reference values read from the store and compared, EAR signed with
//!   SM2, result stored. N tasks submit concurrently on a tokio runtime with one worker per core, as the
//!   HTTP handlers do.
//! - `appraise/core_threads`: the sync core with in-memory stores, one thread per core (the upper bound).
//! - `stage/*`: one stage at a time on one thread, for the µs breakdown.
#![allow(missing_docs, reason = "criterion macros generate undocumented items")]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smtrust_attest::sql::SqlStore;
use smtrust_attest::{
    AppraisalConfig, Appraiser, AttestationService, Challenge, MemoryNonceStore,
    MemoryReferenceStore, NonceStore, ReferenceStore, ResultStore, ServiceConfig, Status,
    StoredResult,
};
use smtrust_crypto::sm2::{CertId, Sm2Signer};

#[path = "support/fleet.rs"]
#[allow(unreachable_pub, dead_code)]
mod fleet;
use fleet::{FIRMWARE, Fleet, Good, MODEL, now};

/// Devices in the pool: after the warm-up every leaf is cached, as for devices that attest periodically.
const DEVICES: usize = 64;

type Svc = AttestationService<SqlStore, SqlStore, SqlStore>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores())
        .enable_all()
        .build()
        .expect("runtime")
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

async fn sqlite(dir: &tempfile::TempDir) -> SqlStore {
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("attest.db").display()
    );
    SqlStore::connect(&url).await.expect("sqlite")
}

fn service(fleet: &Fleet, store: &SqlStore) -> Svc {
    let signer: Arc<dyn Sm2Signer<CertId>> =
        Arc::new(fleet.attestation_key.signing_key(CertId).expect("key"));
    AttestationService::new(
        Appraiser::new(fleet.anchors(), AppraisalConfig::default()),
        store.clone(),
        store.clone(),
        store.clone(),
        Arc::new(Good),
        signer,
        vec![fleet.intermediate.clone()],
        ServiceConfig::default(),
    )
}

/// `n` evidence tokens, each for a challenge the service minted and stored.
async fn pool(fleet: &Fleet, svc: &Svc, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let d = &fleet.devices[i % fleet.devices.len()];
        let ch = svc.challenge(&d.id, now()).await.expect("challenge");
        out.push(fleet.evidence(i, &ch.nonce));
    }
    out
}

fn service_sqlite(c: &mut Criterion) {
    let fleet = Arc::new(Fleet::new(DEVICES));
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rt.block_on(sqlite(&dir));
    let svc = Arc::new(service(&fleet, &store));
    rt.block_on(
        svc.references()
            .register(&fleet.references(), "admin", now()),
    )
    .expect("register");
    let mut g = c.benchmark_group("appraise");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for tasks in [1, 16] {
        g.bench_function(format!("service_sqlite/tasks={tasks}"), |b| {
            b.iter_custom(|iters| {
                let n = usize::try_from(iters).unwrap_or(usize::MAX);
                let evidence = Arc::new(rt.block_on(pool(&fleet, &svc, n)));
                let start = Instant::now();
                rt.block_on(async {
                    let mut set = tokio::task::JoinSet::new();
                    for t in 0..tasks {
                        let (svc, evidence) = (Arc::clone(&svc), Arc::clone(&evidence));
                        set.spawn(async move {
                            for ev in evidence.iter().skip(t).step_by(tasks) {
                                let s = svc.submit(ev.as_bytes(), now()).await.expect("submit");
                                assert_eq!(s.result.status, Status::Affirming);
                                assert!(s.stored);
                            }
                        });
                    }
                    while let Some(r) = set.join_next().await {
                        r.expect("task");
                    }
                });
                start.elapsed()
            })
        });
    }
    g.finish();
}

fn core_threads(c: &mut Criterion) {
    let fleet = Fleet::new(DEVICES);
    let appraiser = Appraiser::new(fleet.anchors(), AppraisalConfig::default());
    let att_k = fleet.attestation_key.signing_key(CertId).expect("key");
    let refs = MemoryReferenceStore::new();
    refs.register_now(&fleet.references(), "admin", now())
        .expect("register");
    let nonces = MemoryNonceStore::new();
    let make = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| {
                let id = fleet.devices[i % DEVICES].id.clone();
                let ch = Challenge::new(id, now(), Duration::from_secs(3600)).expect("challenge");
                nonces.insert_now(&ch);
                fleet.evidence(i, &ch.nonce)
            })
            .collect()
    };
    let appraise = |ev: &str| {
        let checked = appraiser.check(ev.as_bytes(), &Good, now());
        let n = checked
            .nonce()
            .map(|n| nonces.consume_now(n, now()).expect("consume"));
        let r = refs.latest_now(MODEL, FIRMWARE);
        let a = appraiser
            .finish(checked, n, r.as_ref(), now())
            .expect("finish");
        assert_eq!(a.result.status, Status::Affirming);
        black_box(
            a.result
                .sign(&att_k, std::slice::from_ref(&fleet.intermediate))
                .expect("sign"),
        )
    };
    let mut g = c.benchmark_group("appraise");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("core_threads", |b| {
        b.iter_custom(|iters| {
            let pool = make(usize::try_from(iters).unwrap_or(usize::MAX));
            let start = Instant::now();
            std::thread::scope(|s| {
                for part in pool.chunks(pool.len().div_ceil(cores()).max(1)) {
                    s.spawn(|| part.iter().for_each(|e| drop(appraise(e))));
                }
            });
            start.elapsed()
        })
    });
    g.finish();
}

/// One stage at a time, one thread: the µs breakdown of an appraisal.
fn stages(c: &mut Criterion) {
    let fleet = Fleet::new(DEVICES);
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rt.block_on(sqlite(&dir));
    let svc = service(&fleet, &store);
    rt.block_on(
        svc.references()
            .register(&fleet.references(), "admin", now()),
    )
    .expect("register");
    let appraiser = Appraiser::new(fleet.anchors(), AppraisalConfig::default());
    let att_k = fleet.attestation_key.signing_key(CertId).expect("key");
    let evidence = rt.block_on(pool(&fleet, &svc, DEVICES));
    // Warm the leaf cache, as for a device that attested before.
    for ev in &evidence {
        drop(appraiser.check(ev.as_bytes(), &Good, now()));
    }
    let refs = rt
        .block_on(ReferenceStore::latest(&store, MODEL, FIRMWARE))
        .expect("refs");
    let checked = || appraiser.check(evidence[0].as_bytes(), &Good, now());
    let fresh = rt
        .block_on(store.consume(checked().nonce().expect("nonce"), now()))
        .expect("consume");
    let finished = appraiser
        .finish(checked(), Some(fresh.clone()), refs.as_ref(), now())
        .expect("finish");
    let token = finished
        .result
        .sign(&att_k, std::slice::from_ref(&fleet.intermediate))
        .expect("sign");

    let mut g = c.benchmark_group("stage");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    g.bench_function("decode", |b| {
        b.iter(|| smtrust_attest::decode_evidence(black_box(evidence[0].as_bytes())))
    });
    g.bench_function(
        "check (decode, chain cached, evidence verify, status)",
        |b| b.iter(checked),
    );
    g.bench_function("finish (compare)", |b| {
        b.iter_batched(
            checked,
            |ch| appraiser.finish(ch, Some(fresh.clone()), refs.as_ref(), now()),
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("sign result", |b| {
        b.iter(|| {
            finished
                .result
                .sign(&att_k, std::slice::from_ref(&fleet.intermediate))
        })
    });
    g.bench_function("sqlite challenge insert", |b| {
        b.iter(|| {
            let ch = Challenge::new(fleet.devices[0].id.clone(), now(), Duration::from_secs(60))
                .expect("challenge");
            rt.block_on(store.insert(&ch)).expect("insert")
        })
    });
    g.bench_function("sqlite nonce consume", |b| {
        b.iter_custom(|iters| {
            let chs: Vec<Challenge> = (0..iters)
                .map(|_| {
                    let ch =
                        Challenge::new(fleet.devices[0].id.clone(), now(), Duration::from_secs(60))
                            .expect("challenge");
                    rt.block_on(store.insert(&ch)).expect("insert");
                    ch
                })
                .collect();
            let start = Instant::now();
            for ch in &chs {
                rt.block_on(store.consume(&ch.nonce, now()))
                    .expect("consume");
            }
            start.elapsed()
        })
    });
    g.bench_function("sqlite references latest", |b| {
        b.iter(|| rt.block_on(ReferenceStore::latest(&store, MODEL, FIRMWARE)))
    });
    let mut k = 0usize;
    g.bench_function("sqlite result put", |b| {
        b.iter(|| {
            k += 1;
            let stored = StoredResult::new(
                fleet.devices[k % DEVICES].id.clone(),
                "0102".into(),
                Status::Affirming,
                fleet::NOW,
                fleet::NOW + 3600,
                token.clone(),
            );
            rt.block_on(ResultStore::put(&store, &stored)).expect("put")
        })
    });
    g.finish();
}

criterion_group!(benches, service_sqlite, core_threads, stages);
criterion_main!(benches);
