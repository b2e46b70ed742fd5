//! Certificates issued per second with persistence, from SM2 PKCS#10 CSRs made as the agent makes them:
//! through `CaService::issue` (many concurrent callers, as EST clients are) and `CaService::issue_batch`
//! (as the factory calls it), on SQLite (a WAL file in a temporary directory, the production setting) and on
//! PostgreSQL when `SMTRUST_TEST_POSTGRES_URL` is set. The `parts` group times one certificate's pieces on
//! one core (CSR parse + verify, prepare + sign) and the store's share per certificate.
//!
//! `cargo bench -p smtrust-ca --bench issue` (short: `-- --warm-up-time 1 --measurement-time 3`).
//! CSRs are made outside the timed region; each timed iteration issues [`BATCH`] certificates.

#![allow(missing_docs)] // criterion_group! generates undocumented items
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench fails loudly

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use smtrust_ca::{CaService, Serial, SqlStore, Store};

#[path = "support/pki.rs"]
#[allow(unreachable_pub, dead_code)]
mod pki;

use pki::ISSUER;

/// Certificates per timed iteration (and per `issue_batch` call).
const BATCH: usize = 512;

struct Ids {
    tag: String,
    next: AtomicU64,
}

impl Ids {
    fn new() -> Self {
        Self {
            tag: pki::run_tag(),
            next: AtomicU64::new(0),
        }
    }

    fn take(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let i = self.next.fetch_add(1, Ordering::Relaxed);
                format!("ctw-{}-{i}", self.tag)
            })
            .collect()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// `issue` and `issue_batch` on one store.
fn through_service(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
    svc: &CaService<SqlStore>,
    ids: &Ids,
    name: &str,
) {
    let cpu = pki::CpuPerItem::default();
    g.bench_function("issue_concurrent", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let reqs = pki::requests(&ids.take(BATCH));
                let (wall, ()) = cpu.measure(BATCH, || {
                    rt.block_on(async {
                        let mut set = tokio::task::JoinSet::new();
                        for r in reqs {
                            let svc = svc.clone();
                            set.spawn(async move { svc.issue(ISSUER, "device", r).await });
                        }
                        while let Some(r) = set.join_next().await {
                            r.expect("task").expect("issued");
                        }
                    })
                });
                total += wall;
            }
            total
        })
    });
    cpu.report(&format!("{name}/issue_concurrent"));
    let cpu = pki::CpuPerItem::default();
    g.bench_function("issue_batch", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let reqs = pki::requests(&ids.take(BATCH));
                let (wall, out) = cpu.measure(BATCH, || {
                    rt.block_on(svc.issue_batch(ISSUER, "device", reqs))
                        .expect("batch")
                });
                total += wall;
                assert!(out.iter().all(Result::is_ok), "every request issued");
            }
            total
        })
    });
    cpu.report(&format!("{name}/issue_batch"));
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g
}

fn sqlite(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = rt
        .block_on(SqlStore::open_sqlite(&dir.path().join("ca.db")))
        .expect("SQLite store");
    let svc = rt.block_on(pki::pki(store));
    let ids = Ids::new();
    eprintln!("issue/sqlite: load average {}", pki::load());
    let mut g = group(c, "issue/sqlite");
    through_service(&mut g, &rt, &svc, &ids, "issue/sqlite");
    g.finish();
    eprintln!("issue/sqlite done: load average {}", pki::load());
}

fn postgres(c: &mut Criterion) {
    let Ok(url) = std::env::var("SMTRUST_TEST_POSTGRES_URL") else {
        eprintln!("issue/postgres: skipped, SMTRUST_TEST_POSTGRES_URL is not set");
        return;
    };
    let rt = runtime();
    let store = rt
        .block_on(SqlStore::open_postgres(&url, 8))
        .expect("PostgreSQL store");
    let svc = rt.block_on(pki::pki(store));
    let ids = Ids::new();
    eprintln!("issue/postgres: load average {}", pki::load());
    let mut g = group(c, "issue/postgres");
    through_service(&mut g, &rt, &svc, &ids, "issue/postgres");
    g.finish();
    eprintln!("issue/postgres done: load average {}", pki::load());
}

/// One certificate's pieces on one core, and the SQLite store's share.
fn parts(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = rt
        .block_on(SqlStore::open_sqlite(&dir.path().join("ca.db")))
        .expect("SQLite store");
    let svc = rt.block_on(pki::pki(store));
    let iss = svc.issuer(ISSUER).expect("issuer");
    let profile = smtrust_ca::Profiles::default()
        .get("device")
        .expect("device profile")
        .clone();
    let ids = Ids::new();
    let csr = pki::device_csr(&ids.take(1)[0]);
    let verified = smtrust_ca::csr::parse_and_verify(&csr).expect("CSR");
    let mut g = c.benchmark_group("issue/parts");
    g.bench_function("csr_parse_verify", |b| {
        b.iter(|| smtrust_ca::csr::parse_and_verify(black_box(&csr)).expect("CSR"))
    });
    let t = pki::now();
    g.bench_function("prepare_sign", |b| {
        b.iter(|| {
            let p = iss
                .prepare(&profile, black_box(&verified), None, &[])
                .expect("prepare");
            iss.sign(&p, Serial::random().expect("serial"), t)
                .expect("sign")
        })
    });
    // The store per certificate: reserve serials, then record signed certificates, BATCH at a time.
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    let p = iss
        .prepare(&profile, &verified, None, &[])
        .expect("prepare");
    let template = iss
        .sign(&p, Serial::random().expect("serial"), t)
        .expect("sign");
    let cpu = pki::CpuPerItem::default();
    g.bench_function("sqlite_reserve_record", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Store cost only: one signed certificate's row, under fresh serials and device IDs.
                let certs: Vec<_> = ids
                    .take(BATCH)
                    .iter()
                    .map(|id| {
                        let mut c = template.clone();
                        c.serial = Serial::random().expect("serial");
                        c.device_id = Some(smtrust_ca::DeviceId::new(id).expect("device id"));
                        c
                    })
                    .collect();
                let serials: Vec<Serial> = certs.iter().map(|c| c.serial).collect();
                let (wall, ()) = cpu.measure(BATCH, || {
                    rt.block_on(async {
                        svc.store().reserve_serials(ISSUER, &serials, 0).await?;
                        svc.store().record_issued(&certs, 0).await
                    })
                    .expect("store")
                });
                total += wall;
            }
            total
        })
    });
    g.finish();
    cpu.report("issue/parts/sqlite_reserve_record");
}

criterion_group!(benches, parts, sqlite, postgres);
criterion_main!(benches);
