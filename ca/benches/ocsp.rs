//! OCSP responses served per second over loopback HTTP: the CA's own router (`smtrust_ca::http::ocsp_router`)
//! on a tokio `TcpListener`, keep-alive hyper HTTP/1.1 clients sending GET (RFC 6960 A.1) and POST requests
//! for a mix of good (3 in 4) and revoked serials, SHA-1 CertIDs as `openssl ocsp` sends them, on a SQLite
//! store in WAL mode, with the OCSP worker running (`CaService::spawn_ocsp`). `presigned` asks without a
//! nonce: every answer was signed by the worker when the certificate was issued or revoked, so serving is a
//! cache lookup (the bench asserts that no request signed); `nonce_signed` adds a nonce, so every response is
//! signed on the request path.
//!
//! `cargo bench -p smtrust-ca --bench ocsp` (short: `-- --warm-up-time 1 --measurement-time 3`).

#![allow(missing_docs)] // criterion_group! generates undocumented items
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a bench fails loudly

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use der::asn1::{Int, OctetString};
use der::{Decode, Encode};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use sha1::Digest;
use smtrust_ca::ocsp::asn1::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request,
    TbsRequest,
};
use smtrust_ca::{RevocationReason, Serial, SqlStore};
use x509_cert::ext::Extension;

#[path = "support/pki.rs"]
#[allow(unreachable_pub, dead_code)]
mod pki;

use pki::ISSUER;

/// Certificates in the store; one in four is revoked.
const CERTS: usize = 1000;
/// Keep-alive connections sending at once.
const CONNECTIONS: usize = 8;
/// Requests per timed iteration (spread over the connections).
const REQUESTS: usize = 2048;

/// One prepared request: GET path or POST body, and whether the serial is revoked.
#[derive(Clone)]
struct Ask {
    get_path: Option<String>,
    post_body: Bytes,
    revoked: bool,
}

fn cert_id(issuer: &x509_cert::Certificate, serial: &Serial) -> CertId {
    let tbs = issuer.tbs_certificate();
    let name = tbs.subject().to_der().expect("issuer name");
    let key = tbs.subject_public_key_info().subject_public_key.raw_bytes();
    CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ID_SHA_1,
            parameters: Some(der::asn1::Null.into()),
        },
        issuer_name_hash: OctetString::new(sha1::Sha1::digest(&name).to_vec()).expect("hash"),
        issuer_key_hash: OctetString::new(sha1::Sha1::digest(key).to_vec()).expect("hash"),
        serial_number: Int::new(serial.as_bytes()).expect("serial"),
    }
}

fn request_der(id: CertId, nonce: Option<[u8; 16]>) -> Vec<u8> {
    let request_extensions = nonce.map(|n| {
        vec![Extension {
            extn_id: smtrust_ca::ocsp::OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(
                OctetString::new(n.to_vec())
                    .expect("nonce")
                    .to_der()
                    .expect("nonce"),
            )
            .expect("nonce"),
        }]
    });
    OcspRequest {
        tbs_request: TbsRequest {
            version: None,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: id,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    }
    .to_der()
    .expect("OCSP request")
}

fn get_path(der_bytes: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der_bytes);
    let enc = b64
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    format!("/ocsp/{ISSUER}/{enc}")
}

/// The asks: every other one a GET; one serial in four revoked.
fn asks(
    issuer: &x509_cert::Certificate,
    good: &[Serial],
    revoked: &[Serial],
    nonce: bool,
) -> Vec<Ask> {
    let mut out = Vec::new();
    for i in 0..CERTS {
        let (serial, is_revoked) = if i % 4 == 3 {
            (revoked[(i / 4) % revoked.len()], true)
        } else {
            (good[i % good.len()], false)
        };
        let n = nonce.then(|| smtrust_crypto::rng::bytes::<16>().expect("rng"));
        let der_bytes = request_der(cert_id(issuer, &serial), n);
        out.push(Ask {
            get_path: (i % 2 == 0).then(|| get_path(&der_bytes)),
            post_body: Bytes::from(der_bytes),
            revoked: is_revoked,
        });
    }
    out
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

async fn ask(sender: &mut Sender, a: &Ask) -> Bytes {
    let req = match &a.get_path {
        Some(p) => hyper::Request::get(p.as_str())
            .header(hyper::header::HOST, "127.0.0.1")
            .body(Full::new(Bytes::new())),
        None => hyper::Request::post(format!("/ocsp/{ISSUER}"))
            .header(hyper::header::HOST, "127.0.0.1")
            .header(hyper::header::CONTENT_TYPE, "application/ocsp-request")
            .body(Full::new(a.post_body.clone())),
    }
    .expect("request");
    sender.ready().await.expect("connection ready");
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.status(), hyper::StatusCode::OK);
    resp.into_body().collect().await.expect("body").to_bytes()
}

/// Whether a response says revoked (checked once per ask before timing, not in the timed loop).
fn says_revoked(body: &[u8]) -> bool {
    let r = OcspResponse::from_der(body).expect("OCSP response");
    assert_eq!(r.response_status, OcspResponseStatus::Successful);
    let basic = BasicOcspResponse::from_der(r.response_bytes.expect("bytes").response.as_bytes())
        .expect("basic response");
    match &basic.tbs_response_data.responses[0].cert_status {
        CertStatus::Good(_) => false,
        CertStatus::Revoked(_) => true,
        CertStatus::Unknown(_) => panic!("a known serial answered unknown"),
    }
}

/// Wait until the worker has pre-signed `n` answers and every certificate's answer is cached.
fn presigned(svc: &smtrust_ca::CaService<SqlStore>, n: usize) {
    let t0 = Instant::now();
    loop {
        let st = svc.ocsp_stats(ISSUER).expect("stats");
        if st.presigned >= n as u64 && st.cached >= CERTS as u64 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "pre-signing stalled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ocsp(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = rt
        .block_on(SqlStore::open_sqlite(&dir.path().join("ca.db")))
        .expect("SQLite store");
    let svc = rt.block_on(pki::pki(store));
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let _worker = {
        let _rt = rt.enter();
        svc.spawn_ocsp(stop_rx)
    };
    let tag = pki::run_tag();
    let ids: Vec<String> = (0..CERTS).map(|i| format!("ctw-{tag}-{i}")).collect();
    let certs = rt
        .block_on(svc.issue_batch(ISSUER, "device", pki::requests(&ids)))
        .expect("issued");
    let serials: Vec<Serial> = certs
        .into_iter()
        .map(|r| r.expect("issued").serial)
        .collect();
    // One answer per issued certificate, signed by the worker.
    let t0 = Instant::now();
    presigned(&svc, CERTS);
    eprintln!(
        "ocsp: {CERTS} issued answers pre-signed {:.2} s after the batch",
        t0.elapsed().as_secs_f64()
    );
    let (revoked, good) = serials.split_at(CERTS / 4);
    rt.block_on(async {
        for s in revoked {
            svc.revoke(ISSUER, s, RevocationReason::KeyCompromise)
                .await
                .expect("revoke");
        }
    });
    // One answer per revocation (after the issuance ones, so no revocation overtakes a queued issuance).
    let t0 = Instant::now();
    presigned(&svc, CERTS + CERTS / 4);
    eprintln!(
        "ocsp: revocations re-signed {:.2} s after the last one",
        t0.elapsed().as_secs_f64()
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let app = smtrust_ca::http::ocsp_router(svc.clone());
    rt.spawn(async move { axum::serve(listener, app).await });
    let issuer = svc.issuer(ISSUER).expect("issuer").certificate().clone();

    eprintln!("ocsp: load average {}", pki::load());
    let mut g = c.benchmark_group("ocsp");
    g.throughput(Throughput::Elements(REQUESTS as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    for nonce in [false, true] {
        let all = asks(&issuer, good, revoked, nonce);
        // Every answer is checked once.
        rt.block_on(async {
            let mut s = connect(addr).await;
            let mut sizes = (usize::MAX, 0);
            for a in &all {
                let body = ask(&mut s, a).await;
                sizes = (sizes.0.min(body.len()), sizes.1.max(body.len()));
                assert_eq!(says_revoked(&body), a.revoked);
            }
            eprintln!("ocsp: responses of {}..{} bytes", sizes.0, sizes.1);
        });
        if !nonce {
            let st = svc.ocsp_stats(ISSUER).expect("stats");
            assert_eq!(st.signed_on_miss, 0, "a nonce-less request signed: {st:?}");
        }
        let name = if nonce { "nonce_signed" } else { "presigned" };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += rt.block_on(async {
                        let mut senders = Vec::new();
                        for _ in 0..CONNECTIONS {
                            senders.push(connect(addr).await);
                        }
                        let t0 = Instant::now();
                        let mut set = tokio::task::JoinSet::new();
                        for (k, mut s) in senders.into_iter().enumerate() {
                            let mine: Vec<Ask> = all
                                .iter()
                                .cycle()
                                .skip(k)
                                .step_by(CONNECTIONS)
                                .take(REQUESTS / CONNECTIONS)
                                .cloned()
                                .collect();
                            set.spawn(async move {
                                for a in &mine {
                                    std::hint::black_box(ask(&mut s, a).await);
                                }
                            });
                        }
                        while let Some(r) = set.join_next().await {
                            r.expect("client task");
                        }
                        t0.elapsed()
                    });
                }
                total
            })
        });
    }
    g.finish();
    let st = svc.ocsp_stats(ISSUER).expect("stats");
    eprintln!("ocsp counters: {st:?}");
    assert_eq!(
        st.signed_on_miss, 0,
        "the pre-signed run signed on the request path"
    );
    eprintln!("ocsp done: load average {}", pki::load());
}

criterion_group!(benches, ocsp);
criterion_main!(benches);
