//! `http` mode: per-request policy, identity headers, the signed passport (verified offline as a
//! platform would), forged headers stripped, keep-alive; and the admin `/metrics` endpoint.

use crate::pki::Pki;
use crate::tcp::start;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::UnixTime;
use smtrust_gateway::{ADMIN, PassportError, passport};
use smtrust_policy::{Bundle, BundleSources, Engine};
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A platform that answers with what it was told:
/// `device|forged|passport|version host target|body-length|connection-count`. `/api/slow*` answers after
/// 300 ms.
pub async fn platform() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let conns = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let n = conns.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                    let h = |name: &str| {
                        req.headers()
                            .get(name)
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default()
                    };
                    if req.uri().path().starts_with("/api/slow") {
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    }
                    let head = format!(
                        "{}|{}|{}|{:?} {} {}",
                        h("x-smtrust-device-id"),
                        h("x-smtrust-forged"),
                        h("x-smtrust-passport"),
                        req.version(),
                        h("host"),
                        req.uri()
                    );
                    let len = req.into_body().collect().await.unwrap().to_bytes().len();
                    let body = format!("{head}|{len}|{n}");
                    Ok::<_, Infallible>(Response::new(http_body_util::Full::new(Bytes::from(body))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

fn http_bundle() -> Bundle {
    let mut sources = BundleSources::default_bundle();
    sources.policies.push_str(
        "\n@id(\"device-api-get\")\npermit (principal is Device, action == Action::\"http_request\", resource)\n  when { (context.method == \"GET\" || context.method == \"POST\") && context.path like \"/api/*\" };\n",
    );
    Bundle::compile(sources).unwrap()
}

pub fn http_policy() -> Engine {
    Engine::new(http_bundle())
}

async fn get(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    path: &str,
    forged: bool,
) -> (StatusCode, String) {
    let mut req = Request::get(path).header("host", "platform");
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
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn http_policy_passport_header_stripping_keep_alive_and_metrics() {
    let pki = Pki::new("http").await;
    let gw = start(
        &pki,
        "http",
        platform().await,
        "[admin]\nbind = \"127.0.0.1:0\"\n",
        http_policy(),
    )
    .await;
    let addr = gw.local_addr("main").unwrap();
    let dev = pki.device("ctw-http-1").await;
    let tls = crate::tcp::connect(&pki, &dev, addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);

    // Allowed, with forged identity headers: stripped, ours added.
    let (status, body) = get(&mut sender, "/api/status", true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let parts: Vec<&str> = body.split('|').collect();
    assert_eq!(parts[0], "ctw-http-1");
    assert_eq!(parts[1], "", "forged header reached the platform");
    let token = parts[2];
    assert_ne!(token, "forged.token.here");
    let claims = passport::verify(token, &pki.verifier(), UnixTime::now()).unwrap();
    assert_eq!(claims.sub, "ctw-http-1");
    assert_eq!(claims.serial, dev.serial.to_hex());
    assert_eq!(claims.attestation, "unverified");
    assert!(claims.exp > claims.iat);
    assert_eq!(parts[3], "HTTP/1.1 platform /api/status");

    // Denied route: 403 from the gateway; the connection stays up (keep-alive).
    let (status, _) = get(&mut sender, "/admin/users", false).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = get(&mut sender, "/api/second", false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.ends_with("|1"),
        "one upstream connection for the device connection: {body}"
    );

    // The policy store's version N, activated live: the next passport carries N.
    let before = claims.policy_version;
    gw.gateway().activate_policy(http_bundle(), 42);
    let (status, body) = get(&mut sender, "/api/third", false).await;
    assert_eq!(status, StatusCode::OK);
    let token42 = body.split('|').nth(2).unwrap();
    let claims42 = passport::verify(token42, &pki.verifier(), UnixTime::now()).unwrap();
    assert_eq!((before, claims42.policy_version), (1, 42));

    // A passport is refused by another CA's platform, and when tampered with.
    let other = Pki::new("other").await;
    assert!(matches!(
        passport::verify(token, &other.verifier(), UnixTime::now()),
        Err(PassportError::Signer(_))
    ));
    let mut pieces: Vec<String> = token.split('.').map(str::to_owned).collect();
    pieces[1] = pieces[1].replace('A', "B");
    let tampered = pieces.join(".");
    assert!(passport::verify(&tampered, &pki.verifier(), UnixTime::now()).is_err());

    // /metrics scrapes.
    let admin = gw.local_addr(ADMIN).unwrap();
    let mut s = TcpStream::connect(admin).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    for needle in [
        "text/plain; version=0.0.4",
        "smtrust_gateway_connections_total 1",
        "smtrust_gateway_handshakes_total 1",
        "smtrust_gateway_http_requests_total 4",
        "smtrust_gateway_http_denied_total 1",
        "smtrust_gateway_handshake_seconds_count 1",
        "smtrust_gateway_http_request_seconds_bucket{le=\"+Inf\"} 4",
        "smtrust_gateway_policy_version 42",
        "smtrust_gateway_bytes_total{direction=\"upstream\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    gw.shutdown().await;
}

/// `http` listeners add passports: a gateway without a passport signer refuses them, at build
/// and at reload (which then changes nothing).
#[tokio::test]
async fn http_listener_needs_a_passport_signer() {
    use smtrust_gateway::{Config, Error, Gateway};
    let pki = Pki::new("http-no-passport").await;
    let listener = |mode: &str| {
        Config::from_toml(&format!(
            "[[listener]]\nname = \"main\"\nbind = \"127.0.0.1:0\"\nmode = \"{mode}\"\nupstream = \"127.0.0.1:9\"\n"
        ))
        .unwrap()
    };
    let policy = std::sync::Arc::new(Engine::with_default_bundle().unwrap());
    let built = Gateway::builder(listener("http"), std::sync::Arc::clone(&policy))
        .sm_tls(pki.sm_tls())
        .build();
    assert!(
        matches!(&built, Err(Error::NoPassportSigner { listener }) if listener == "main"),
        "{:?}",
        built.err()
    );
    let mut gw = Gateway::builder(listener("tcp"), policy)
        .sm_tls(pki.sm_tls())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let err = gw.reload(listener("http")).await.unwrap_err();
    assert!(
        matches!(&err, Error::NoPassportSigner { listener } if listener == "main"),
        "{err}"
    );
    assert_eq!(gw.gateway().config(), listener("tcp"));
    gw.shutdown().await;
}
