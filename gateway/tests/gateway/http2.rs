//! `http` mode over HTTP/2 (ALPN `h2`): every stream decided by policy like an HTTP/1.1 request,
//! identity headers and passport added, forged ones stripped, a denied stream answered 403 while
//! another stream on the connection goes on; HTTP/1.1 clients keep working on the same listener;
//! other modes offer no ALPN.

use crate::http::{http_policy, platform};
use crate::pki::{Device, Pki};
use crate::tcp::{default_policy, echo_server, start};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{ServerName, UnixTime};
use smtrust_gateway::passport;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A TLS 1.3-SM connection offering `alpn`.
async fn connect_alpn(
    pki: &Pki,
    device: &Device,
    addr: SocketAddr,
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let mut cfg = (*pki.client_config(Some(device))).clone();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

type H2 = hyper::client::conn::http2::SendRequest<Empty<Bytes>>;

async fn h2_client(tls: TlsStream<TcpStream>) -> H2 {
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

/// One request on its own stream; the status, the body and when the response head arrived.
async fn get2(mut sender: H2, path: &str, forged: bool) -> (StatusCode, String, Instant) {
    let mut req = Request::get(format!("https://platform{path}"));
    if forged {
        req = req
            .header("x-smtrust-device-id", "someone-else")
            .header("X-Smtrust-Forged", "1")
            .header("x-smtrust-passport", "forged.token.here");
    }
    let resp = sender
        .send_request(req.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let at = Instant::now();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap(), at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_decided_one_by_one_with_identity_passport_and_stripping() {
    let pki = Pki::new("http2").await;
    let gw = start(&pki, "http", platform().await, "", http_policy()).await;
    let addr = gw.local_addr("main").unwrap();
    let dev = pki.device("ctw-h2-1").await;
    let tls = connect_alpn(&pki, &dev, addr, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    let sender = h2_client(tls).await;

    // Three streams at once on one connection: a slow allowed one, a denied one, a forged one.
    let started = Instant::now();
    let (slow, denied, forged) = tokio::join!(
        get2(sender.clone(), "/api/slow", false),
        get2(sender.clone(), "/admin/users", false),
        get2(sender.clone(), "/api/status?x=1", true),
    );
    assert_eq!(denied.0, StatusCode::FORBIDDEN, "{}", denied.1);
    assert_eq!(slow.0, StatusCode::OK, "{}", slow.1);
    assert!(
        denied.2 < slow.2,
        "the denied stream was answered while the slow one was still open ({:?} vs {:?})",
        denied.2 - started,
        slow.2 - started
    );
    assert_eq!(forged.0, StatusCode::OK, "{}", forged.1);
    let parts: Vec<&str> = forged.1.split('|').collect();
    assert_eq!(parts[0], "ctw-h2-1");
    assert_eq!(parts[1], "", "forged header reached the platform");
    assert_ne!(parts[2], "forged.token.here");
    // The platform got HTTP/1.1 in origin form, Host from :authority.
    assert_eq!(parts[3], "HTTP/1.1 platform /api/status?x=1");
    let claims = passport::verify(parts[2], &pki.verifier(), UnixTime::now()).unwrap();
    assert_eq!(claims.sub, "ctw-h2-1");
    assert_eq!(claims.serial, dev.serial.to_hex());
    assert_eq!(
        claims.policy_version,
        gw.gateway().policy().active_version()
    );
    let slow_parts: Vec<&str> = slow.1.split('|').collect();
    assert_eq!(slow_parts[0], "ctw-h2-1");

    // A request body larger than the initial flow-control window reaches the platform whole.
    let post = Request::post("https://platform/api/upload")
        .body(http_body_util::Full::new(Bytes::from(vec![
            7u8;
            200 * 1024
        ])))
        .unwrap();
    let (mut tx, conn) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        TokioIo::new(connect_alpn(&pki, &dev, addr, &[b"h2"]).await),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let resp = tx.send_request(post).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(body.split('|').nth(4), Some("204800"), "{body}");

    // The connection goes on after the refusal.
    let (status, body, _) = get2(sender.clone(), "/api/after", false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let m = gw.gateway().metrics();
    assert_eq!(
        m.http_requests.load(std::sync::atomic::Ordering::Relaxed),
        5
    );
    assert_eq!(m.http_denied.load(std::sync::atomic::Ordering::Relaxed), 1);

    // HTTP/1.1 on the same listener: by ALPN and without ALPN.
    for alpn in [&[b"http/1.1".as_slice()][..], &[]] {
        let tls = connect_alpn(&pki, &dev, addr, alpn).await;
        let chosen = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let resp = h1
            .send_request(
                Request::get("/api/h1")
                    .header("host", "platform")
                    .header("x-smtrust-device-id", "someone-else")
                    .body(Empty::<Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "ALPN {chosen:?}");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.starts_with("ctw-h2-1|"), "ALPN {chosen:?}: {body}");
        assert!(body.contains("|HTTP/1.1 platform /api/h1|"), "{body}");
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_concurrent_streams_each_reach_the_platform() {
    let pki = Pki::new("http2-many").await;
    let gw = start(&pki, "http", platform().await, "", http_policy()).await;
    let dev = pki.device("ctw-h2-2").await;
    let tls = connect_alpn(&pki, &dev, gw.local_addr("main").unwrap(), &[b"h2"]).await;
    let sender = h2_client(tls).await;
    // One stream after another: one platform connection, reused.
    for _ in 0..5 {
        let (status, body, _) = get2(sender.clone(), "/api/seq", false).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.ends_with("|1"), "a second platform connection: {body}");
    }
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        set.spawn(get2(
            sender.clone(),
            if i % 2 == 0 { "/api/slow" } else { "/api/fast" },
            false,
        ));
    }
    while let Some(r) = set.join_next().await {
        let (status, body, _) = r.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.starts_with("ctw-h2-2|"), "{body}");
    }
    // Ten 300 ms requests side by side: not one after another on a single platform connection.
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "{:?}",
        started.elapsed()
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn non_http_listeners_offer_no_alpn() {
    let pki = Pki::new("alpn-tcp").await;
    let gw = start(&pki, "tcp", echo_server().await, "", default_policy()).await;
    let dev = pki.device("ctw-alpn-1").await;
    // An MQTT client offering `mqtt` is not refused with no_application_protocol.
    let tls = connect_alpn(
        &pki,
        &dev,
        gw.local_addr("main").unwrap(),
        &[b"h2", b"mqtt"],
    )
    .await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
    gw.shutdown().await;
}

/// Tongsuo's `s_client` (strict TLS 1.3-SM, client certificate) as a non-Rust peer: offered `h2`, the
/// `http` listener selects it; offered `http/1.1`, a request goes through to the platform.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tongsuo_s_client_gets_h2_or_http11_by_alpn() {
    use crate::tongsuo::{pem, write_device};
    use smtrust_test_support::{ClientConfig, Tongsuo, require, temp_dir, tongsuo_client};
    let Some(t) = require(Tongsuo) else { return };
    let pki = Pki::new("http2-tongsuo").await;
    let gw = start(&pki, "http", platform().await, "", http_policy()).await;
    let port = gw.local_addr("main").unwrap().port();
    let dir = temp_dir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, pem(pki.root.as_ref())).unwrap();
    let dev = pki.device("ctw-h2-tongsuo").await;
    let (cert, chain, key) = write_device(dir.path(), "dev", &dev);
    let run = |alpn: &'static str, send: &'static [u8]| {
        let (t, root, cert, chain, key) = (
            t.clone(),
            root.clone(),
            cert.clone(),
            chain.clone(),
            key.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let mut cfg = ClientConfig::new(&root);
            cfg.cert = Some((cert, key));
            cfg.extra = vec![
                "-cert_chain".into(),
                chain.display().to_string(),
                "-alpn".into(),
                alpn.into(),
            ];
            tongsuo_client(&t, port, &cfg, send, Duration::from_millis(1500))
                .unwrap()
                .combined()
        })
    };
    // The HTTP/2 connection preface: the gateway answers with its SETTINGS.
    let out = run("h2", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    assert!(out.contains("ALPN protocol: h2"), "{out}");
    let out = run(
        "http/1.1",
        b"GET /api/tongsuo HTTP/1.1\r\nHost: platform\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
    assert!(out.contains("HTTP/1.1 200"), "{out}");
    assert!(out.contains("ctw-h2-tongsuo|"), "{out}");
    gw.shutdown().await;
}

/// An HTTP/2 connection whose client task ends when the gateway closes it; how long that took.
async fn h2_with_end(tls: TlsStream<TcpStream>) -> (H2, tokio::task::JoinHandle<Instant>) {
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    let ended = tokio::spawn(async move {
        let _ = conn.await;
        Instant::now()
    });
    (sender, ended)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_revocation_idle_timeout_and_header_limit() {
    let pki = Pki::new("http2-limits").await;
    let gw = start(
        &pki,
        "http",
        platform().await,
        "[limits]\nidle_timeout_s = 1\nmax_packet_size = 1024\n",
        http_policy(),
    )
    .await;
    let addr = gw.local_addr("main").unwrap();
    let (a, b) = (pki.device("ctw-h2-a").await, pki.device("ctw-h2-b").await);
    let (sa, ended_a) = h2_with_end(connect_alpn(&pki, &a, addr, &[b"h2"]).await).await;
    let (sb, ended_b) = h2_with_end(connect_alpn(&pki, &b, addr, &[b"h2"]).await).await;
    assert_eq!(get2(sa.clone(), "/api/a", false).await.0, StatusCode::OK);
    let idle_from = Instant::now();
    assert_eq!(get2(sb.clone(), "/api/b", false).await.0, StatusCode::OK);

    // A header list over the limit (8 KiB here) never reaches the platform; the connection goes on.
    let requests = || {
        gw.gateway()
            .metrics()
            .http_requests
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = requests();
    let big = Request::get("https://platform/api/big")
        .header("x-big", "v".repeat(12 * 1024))
        .body(Empty::new())
        .unwrap();
    match sb.clone().send_request(big).await {
        Ok(resp) => assert_eq!(resp.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(e) => eprintln!("oversized header list refused: {e}"),
    }
    assert_eq!(requests(), before, "the oversized request was decided");

    // Revoking a closes its HTTP/2 connection within a second.
    let revoked_at = Instant::now();
    gw.gateway()
        .handle_event(smtrust_gateway::GatewayEvent::CertStatus {
            cert: a.cert_key(),
            status: smtrust_gateway::CertStatus::Revoked,
        });
    let took = tokio::time::timeout(Duration::from_secs(3), ended_a)
        .await
        .expect("revoked connection still open")
        .unwrap()
        - revoked_at;
    eprintln!("revocation → HTTP/2 connection closed after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    // b goes idle: GOAWAY after the idle timeout (1 s), then the connection ends.
    let ended = tokio::time::timeout(Duration::from_secs(5), ended_b)
        .await
        .expect("idle connection still open after 5 s")
        .unwrap();
    let idle = ended - idle_from;
    assert!(idle >= Duration::from_millis(900), "{idle:?}");
    // The gateway's side ends right after its GOAWAY went out.
    let waited = Instant::now();
    while gw.gateway().metrics().refusals("idle") == 0 && waited.elapsed() < Duration::from_secs(2)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        gw.gateway().metrics().refusals("idle"),
        1,
        "{}",
        gw.gateway().metrics().render()
    );
    gw.shutdown().await;
}

/// A platform that closes every connection after one response, once with `Connection: close` and
/// once by just closing the socket a moment later (an idle keep-alive timeout).
async fn closing_platform(announce: bool) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && matches!(s.read(&mut b).await, Ok(1)) {
                    head.push(b[0]);
                }
                let close = if announce {
                    "connection: close\r\n"
                } else {
                    ""
                };
                let _ = s
                    .write_all(
                        format!("HTTP/1.1 200 OK\r\n{close}content-length: 2\r\n\r\nok").as_bytes(),
                    )
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_closing_kept_connections_costs_no_request() {
    let pki = Pki::new("http-closing").await;
    let dev = pki.device("ctw-close-1").await;
    for announce in [true, false] {
        let gw = start(
            &pki,
            "http",
            closing_platform(announce).await,
            "",
            http_policy(),
        )
        .await;
        let addr = gw.local_addr("main").unwrap();
        let sender = h2_client(connect_alpn(&pki, &dev, addr, &[b"h2"]).await).await;
        let tls = connect_alpn(&pki, &dev, addr, &[]).await;
        let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        for i in 0..3 {
            let (status, body, _) = get2(sender.clone(), "/api/x", false).await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::OK, "ok"),
                "h2 #{i}, announce {announce}"
            );
            let resp = h1
                .send_request(
                    Request::get("/api/x")
                        .header("host", "platform")
                        .body(Empty::<Bytes>::new())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::OK,
                "h1 #{i}, announce {announce}"
            );
            resp.into_body().collect().await.unwrap();
            // Past the platform's close.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        gw.shutdown().await;
    }
}

/// An idle timeout as large as the config allows: a finished stream restarts the idle timer
/// without overflowing the clock, and the connection serves the next stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_huge_idle_timeout_keeps_serving() {
    let pki = Pki::new("http2-huge-idle").await;
    let limits = format!("[limits]\nidle_timeout_s = {}\n", u64::MAX);
    let gw = start(&pki, "http", platform().await, &limits, http_policy()).await;
    let addr = gw.local_addr("main").unwrap();
    let dev = pki.device("ctw-h2-huge").await;
    let sender = h2_client(connect_alpn(&pki, &dev, addr, &[b"h2"]).await).await;
    for i in 0..2 {
        let (status, body, _) = get2(sender.clone(), "/api/x", false).await;
        assert_eq!(status, StatusCode::OK, "stream #{i}");
        assert!(body.starts_with("ctw-h2-huge|"), "stream #{i}: {body}");
    }
    gw.shutdown().await;
}
