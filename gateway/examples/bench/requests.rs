//! The `requests` arm of the gateway bench: HTTP/1.1 and HTTP/2 requests through an `http`
//! listener against the same requests to a direct TLS-SM server (no policy, no passport, no
//! proxying): the difference is what the gateway adds per request.

use super::{Pki, handshake_only};
use rustls::pki_types::CertificateDer;
use smtrust_crypto::sm2::Tls13Id;
use smtrust_tls::{
    ClientAuth, Credentials, Resumption, RevokedSet, Sm2ChainVerifier, TrustRoots, UnknownStatus,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

fn answer() -> hyper::Response<http_body_util::Full<hyper::body::Bytes>> {
    hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from_static(
        &[b'x'; 64],
    )))
}

/// A direct TLS 1.3-SM server (mutual auth, ALPN `h2`, `http/1.1`) answering 64 bytes.
async fn direct(p: &Pki) -> SocketAddr {
    let v = Sm2ChainVerifier::new(
        TrustRoots::new(std::slice::from_ref::<CertificateDer<'_>>(&p.device.root)).unwrap(),
        Arc::new(RevokedSet::new()),
        UnknownStatus::Refuse,
    );
    let creds = Credentials::new(
        Arc::new(p.server_key.signing_key(Tls13Id).unwrap()),
        p.server_chain.clone(),
    )
    .unwrap();
    let mut cfg =
        smtrust_tls::server_config(&creds, ClientAuth::Required(v), Resumption::Off).unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let a = acceptor.clone();
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                let Ok(tls) = a.accept(s).await else { return };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(answer())
                });
                let io = hyper_util::rt::TokioIo::new(tls);
                let _ = if h2 {
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(io, svc)
                        .await
                } else {
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await
                };
            });
        }
    });
    addr
}

/// A platform answering every request with 64 bytes (HTTP/1.1, as the gateway speaks upstream).
pub(crate) async fn platform() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(answer())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

type Get = http_body_util::Empty<hyper::body::Bytes>;

fn get() -> hyper::Request<Get> {
    hyper::Request::get("https://platform/bench/x")
        .body(Get::new())
        .unwrap()
}

/// Sequential GETs until `until`; each one's latency.
async fn h1_worker(
    tls: tokio_rustls::client::TlsStream<TcpStream>,
    until: Instant,
) -> Vec<Duration> {
    use http_body_util::BodyExt;
    let (mut tx, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut v = Vec::new();
    while Instant::now() < until {
        let t = Instant::now();
        let mut req = get();
        *req.uri_mut() = hyper::Uri::from_static("/bench/x");
        req.headers_mut()
            .insert("host", hyper::header::HeaderValue::from_static("platform"));
        let resp = tx.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.into_body().collect().await.unwrap();
        v.push(t.elapsed());
    }
    v
}

async fn h2_worker(
    mut tx: hyper::client::conn::http2::SendRequest<Get>,
    until: Instant,
) -> Vec<Duration> {
    use http_body_util::BodyExt;
    let mut v = Vec::new();
    while Instant::now() < until {
        let t = Instant::now();
        let resp = tx.send_request(get()).await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.into_body().collect().await.unwrap();
        v.push(t.elapsed());
    }
    v
}

/// Now and 3 s from now.
fn window() -> (Instant, Instant) {
    let now = Instant::now();
    (now, now + Duration::from_secs(3))
}

/// The `requests` arm: HTTP/1.1 and HTTP/2 through the gateway's `http` listener `gw`, and the
/// same against a direct TLS-SM server answering like the platform.
pub(crate) async fn run(p: &Pki, gw: smtrust_gateway::Running) {
    let via = gw.local_addr("main").unwrap();
    let direct = direct(p).await;
    for (h2, n) in [(false, 1), (false, 16), (true, 1), (true, 16)] {
        let g = measure(p, via, h2, n).await;
        let d = measure(p, direct, h2, n).await;
        let what = if h2 {
            format!("HTTP/2, {n} stream(s) on 1 connection")
        } else {
            format!("HTTP/1.1, {n} connection(s)")
        };
        println!(
            "requests {what}: gateway {:.0}/s p50 {:?} p99 {:?}; direct {:.0}/s p50 {:?} p99 {:?}",
            g.0, g.1, g.2, d.0, d.1, d.2
        );
    }
    gw.shutdown().await;
}

/// Requests/s, p50 and p99 of `n` HTTP/1.1 connections or HTTP/2 streams against `addr`.
async fn measure(p: &Pki, addr: SocketAddr, h2: bool, n: usize) -> (f64, Duration, Duration) {
    let mut cfg = (*p.device.client()).clone();
    if h2 {
        cfg.alpn_protocols = vec![b"h2".to_vec()];
    }
    let cfg = Arc::new(cfg);
    let mut set = tokio::task::JoinSet::new();
    // Connections first: the 3 s count requests only.
    let (start, until);
    if h2 {
        let tls = handshake_only(&cfg, addr).await;
        let (tx, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        (start, until) = window();
        for _ in 0..n {
            set.spawn(h2_worker(tx.clone(), until));
        }
    } else {
        let mut conns = Vec::new();
        for _ in 0..n {
            conns.push(handshake_only(&cfg, addr).await);
        }
        (start, until) = window();
        for tls in conns {
            set.spawn(h1_worker(tls, until));
        }
    }
    let mut v: Vec<Duration> = set.join_all().await.concat();
    let secs = start.elapsed().as_secs_f64();
    v.sort();
    (v.len() as f64 / secs, v[v.len() / 2], v[v.len() * 99 / 100])
}
