//! In-memory handshake and bulk benchmarks: full mutual-auth handshakes, resumed handshakes (tickets), bulk
//! transfer per suite. `handshake/*` runs both endpoints on one thread; `handshake/*_server_side` times only the
//! server's calls (new, read_tls, process_new_packets, write_tls), i.e. what one server core spends per client.
#![allow(
    missing_docs,
    unreachable_pub,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

#[path = "../tests/tls/pair.rs"]
mod pair;
#[path = "../tests/tls/pki.rs"]
mod pki;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pair::Pair;
use pki::{Authority, Spec};
use smtrust_tls::{
    ClientAuth, Resumption, RevokedSet, Sm2ChainVerifier, TLS_SM4_CCM_SM3, TLS_SM4_GCM_SM3,
    TrustRoots, UnknownStatus,
};

struct Fixture {
    server: Arc<rustls::ServerConfig>,
    server_tickets: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

fn fixture(suite: rustls::SupportedCipherSuite) -> Fixture {
    let root = Authority::root("bench root");
    let server = root.issue(&Spec::server("localhost"));
    let device = root.issue(&Spec::device("bench-device"));
    let verifier = || {
        Sm2ChainVerifier::new(
            TrustRoots::new(&[root.cert()]).unwrap(),
            Arc::new(RevokedSet::new()),
            UnknownStatus::Refuse,
        )
    };
    let creds = server.credentials(&[]);
    let mk = |r| {
        Arc::new(smtrust_tls::server_config(&creds, ClientAuth::Required(verifier()), r).unwrap())
    };
    Fixture {
        server: mk(Resumption::Off),
        server_tickets: mk(Resumption::Tickets {
            lifetime_secs: 3600,
        }),
        client: Arc::new(
            smtrust_tls::client_config_with_suites(
                verifier(),
                Some(&device.credentials(&[])),
                &[suite],
            )
            .unwrap(),
        ),
    }
}

fn handshakes(c: &mut Criterion) {
    let f = fixture(TLS_SM4_GCM_SM3);
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    g.bench_function("full_mutual_auth", |b| {
        b.iter(|| {
            let mut p = Pair::new(f.client.clone(), f.server.clone(), "localhost");
            p.handshake().unwrap();
            black_box(p);
        })
    });
    // Prime the client's ticket cache, then every iteration resumes (and receives fresh tickets).
    Pair::new(f.client.clone(), f.server_tickets.clone(), "localhost")
        .handshake()
        .unwrap();
    g.bench_function("resumed", |b| {
        b.iter(|| {
            let mut p = Pair::new(f.client.clone(), f.server_tickets.clone(), "localhost");
            p.handshake().unwrap();
            assert_eq!(
                p.server.handshake_kind(),
                Some(rustls::HandshakeKind::Resumed)
            );
            black_box(p);
        })
    });
    g.bench_function("full_mutual_auth_server_side", |b| {
        b.iter_custom(|n| (0..n).map(|_| server_side(&f.client, &f.server)).sum())
    });
    g.bench_function("resumed_server_side", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| server_side(&f.client, &f.server_tickets))
                .sum()
        })
    });
    g.finish();
}

/// One handshake in memory; returns the time spent in the server's calls only.
fn server_side(client: &Arc<rustls::ClientConfig>, server: &Arc<rustls::ServerConfig>) -> Duration {
    let mut c =
        rustls::ClientConnection::new(client.clone(), "localhost".try_into().unwrap()).unwrap();
    let t = Instant::now();
    let mut s = rustls::ServerConnection::new(server.clone()).unwrap();
    let mut spent = t.elapsed();
    loop {
        let mut to_server = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut to_server).unwrap();
        }
        let t = Instant::now();
        let mut rd = &to_server[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
            s.process_new_packets().unwrap();
        }
        let mut to_client = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut to_client).unwrap();
        }
        spent += t.elapsed();
        let mut rd = &to_client[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets().unwrap();
        }
        if !c.is_handshaking() && !s.is_handshaking() && !c.wants_write() {
            return black_box(spent);
        }
    }
}

fn bulk(c: &mut Criterion) {
    let data = vec![0x5au8; 1 << 20];
    let mut g = c.benchmark_group("bulk");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(20);
    for (name, suite) in [
        ("sm4_gcm_sm3", TLS_SM4_GCM_SM3),
        ("sm4_ccm_sm3", TLS_SM4_CCM_SM3),
    ] {
        let f = fixture(suite);
        let mut p = Pair::new(f.client.clone(), f.server.clone(), "localhost");
        p.handshake().unwrap();
        g.bench_function(name, |b| b.iter(|| black_box(p.client_to_server(&data))));
    }
    g.finish();
}

criterion_group!(benches, handshakes, bulk);
criterion_main!(benches);
