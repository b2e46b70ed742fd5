//! `tcp` mode: forwarding, admission refusals, limits, and revocation cutting live sessions.

use crate::pki::{Device, Pki};
use smtrust_gateway::{CertStatus, Config, Gateway, GatewayEvent, Running};
use smtrust_policy::{Bundle, BundleSources, Engine};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// An upstream that echoes every byte back.
pub async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

pub async fn start(
    pki: &Pki,
    mode: &str,
    upstream: SocketAddr,
    limits: &str,
    policy: Engine,
) -> Running {
    let config = Config::from_toml(&format!(
        "[[listener]]\nname = \"main\"\nbind = \"127.0.0.1:0\"\nmode = \"{mode}\"\nupstream = \"{upstream}\"\n{limits}"
    ))
    .unwrap();
    Gateway::builder(config, Arc::new(policy))
        .sm_tls(pki.sm_tls())
        .passport(pki.passport_signer())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap()
}

pub fn default_policy() -> Engine {
    Engine::with_default_bundle().unwrap()
}

pub async fn connect(
    pki: &Pki,
    device: &Device,
    addr: SocketAddr,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    TlsConnector::from(pki.client_config(Some(device)))
        .connect(name, tcp)
        .await
}

/// Sends `msg` and expects it back; false when the connection is refused or closed.
pub async fn echoes(s: &mut TlsStream<TcpStream>, msg: &[u8]) -> bool {
    if s.write_all(msg).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; msg.len()];
    matches!(
        tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut buf)).await,
        Ok(Ok(_))
    ) && buf == msg
}

/// Waits until the peer closes; returns how long it took.
pub async fn time_to_close(s: &mut TlsStream<TcpStream>) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("connection still open after 5 s"),
        }
    }
}

#[tokio::test]
async fn forwards_both_ways_and_counts_bytes() {
    let pki = Pki::new("test").await;
    let gw = start(&pki, "tcp", echo_server().await, "", default_policy()).await;
    let addr = gw.local_addr("main").unwrap();
    let dev = pki.device("dev-1").await;
    let mut s = connect(&pki, &dev, addr).await.unwrap();
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert!(echoes(&mut s, &payload).await);
    let m = gw.gateway().metrics();
    assert!(m.bytes_upstream.load(std::sync::atomic::Ordering::Relaxed) >= 100_000);
    assert!(
        m.bytes_downstream
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 100_000
    );
    assert_eq!(gw.gateway().session_count(), 1);
    assert!(m.render().contains("smtrust_gateway_handshakes_total 1"));
    drop(s);
    gw.shutdown().await;
}

#[tokio::test]
async fn revocation_cuts_the_device_within_one_second_and_spares_others() {
    let pki = Pki::new("test").await;
    let gw = start(&pki, "tcp", echo_server().await, "", default_policy()).await;
    let addr = gw.local_addr("main").unwrap();
    let (a, b) = (pki.device("dev-a").await, pki.device("dev-b").await);
    let mut sa = connect(&pki, &a, addr).await.unwrap();
    let mut sb = connect(&pki, &b, addr).await.unwrap();
    assert!(echoes(&mut sa, b"hello a").await);
    assert!(echoes(&mut sb, b"hello b").await);

    let (events, rx) = tokio::sync::broadcast::channel(16);
    let _follow = gw.gateway().follow(rx);
    let revoked_at = Instant::now();
    events
        .send(GatewayEvent::CertStatus {
            cert: a.cert_key(),
            status: CertStatus::Revoked,
        })
        .unwrap();
    let took = time_to_close(&mut sa).await;
    let total = revoked_at.elapsed();
    eprintln!("revocation → socket closed: {took:?} (from event send: {total:?})");
    assert!(total < Duration::from_secs(1), "took {total:?}");
    assert!(echoes(&mut sb, b"still here").await, "other device was cut");

    // A new connection with the revoked certificate is refused.
    let mut again = connect(&pki, &a, addr).await.unwrap();
    assert!(!echoes(&mut again, b"x").await);
    assert_eq!(gw.gateway().metrics().refusals("revoked"), 2); // the cut session + the refusal
    gw.shutdown().await;
}

#[tokio::test]
async fn suspension_and_attestation_downgrade_close_sessions() {
    let pki = Pki::new("test").await;
    let gw = start(&pki, "tcp", echo_server().await, "", default_policy()).await;
    let addr = gw.local_addr("main").unwrap();
    let (a, b) = (pki.device("dev-s").await, pki.device("dev-t").await);
    let mut sa = connect(&pki, &a, addr).await.unwrap();
    let mut sb = connect(&pki, &b, addr).await.unwrap();
    assert!(echoes(&mut sa, b"1").await && echoes(&mut sb, b"2").await);
    assert_eq!(
        gw.gateway().handle_event(GatewayEvent::CertStatus {
            cert: a.cert_key(),
            status: CertStatus::Suspended
        }),
        1
    );
    assert!(time_to_close(&mut sa).await < Duration::from_secs(1));
    assert_eq!(
        gw.gateway()
            .handle_event(GatewayEvent::AttestationDowngraded {
                device_id: "dev-t".into()
            }),
        1
    );
    assert!(time_to_close(&mut sb).await < Duration::from_secs(1));
    // Reinstated: admitted again.
    gw.gateway().handle_event(GatewayEvent::CertStatus {
        cert: a.cert_key(),
        status: CertStatus::Good,
    });
    let mut sa = connect(&pki, &a, addr).await.unwrap();
    assert!(echoes(&mut sa, b"back").await);
    let m = gw.gateway().metrics();
    assert_eq!(m.refusals("suspended"), 1);
    assert_eq!(m.refusals("attestation_downgraded"), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn refuses_unknown_ca_expired_revoked_suspended_and_anonymous_in_the_handshake() {
    let pki = Pki::new("test").await;
    let other = Pki::new("rogue").await;
    let revoked = pki.device("dev-r").await;
    let suspended = pki.device("dev-h").await;
    let config = Config::from_toml(&format!(
        "[[listener]]\nname = \"main\"\nbind = \"127.0.0.1:0\"\nmode = \"tcp\"\nupstream = \"{}\"\n",
        echo_server().await
    ))
    .unwrap();
    let gw = Gateway::builder(config, Arc::new(default_policy()))
        .sm_tls(pki.sm_tls())
        .revoked([
            (revoked.cert_key(), CertStatus::Revoked),
            (suspended.cert_key(), CertStatus::Suspended),
        ])
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let addr = gw.local_addr("main").unwrap();

    // Unknown CA: the client trusts our server, but presents a rogue-CA certificate.
    let rogue = other.device("dev-x").await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let cfg = smtrust_tls::client_config(pki.verifier(), Some(&rogue.credentials())).unwrap();
    let mut s = TlsConnector::from(Arc::new(cfg))
        .connect(name.clone(), tcp)
        .await
        .unwrap();
    assert!(!echoes(&mut s, b"x").await);

    for dev in [&pki.expired_device("dev-old"), &revoked, &suspended] {
        let mut s = connect(&pki, dev, addr).await.unwrap();
        assert!(!echoes(&mut s, b"x").await, "{} was let through", dev.id);
    }

    // No client certificate at all.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut s = TlsConnector::from(pki.client_config(None))
        .connect(name, tcp)
        .await
        .unwrap();
    assert!(!echoes(&mut s, b"x").await);

    let m = gw.gateway().metrics();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for reason in [
        "unknown_ca",
        "expired",
        "revoked",
        "suspended",
        "no_client_certificate",
    ] {
        assert_eq!(m.refusals(reason), 1, "{reason}: {}", m.render());
    }
    // All refused by the verifier: none got as far as a finished handshake.
    assert_eq!(
        m.handshakes_total
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(gw.gateway().session_count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn contraindicated_attestation_is_refused_at_admission() {
    let pki = Pki::new("test").await;
    let gw = start(&pki, "tcp", echo_server().await, "", default_policy()).await;
    let addr = gw.local_addr("main").unwrap();
    let dev = pki.device("dev-bad").await;
    gw.gateway().handle_event(GatewayEvent::Attestation {
        device_id: "dev-bad".into(),
        status: smtrust_policy::AttestationStatus::Failed,
    });
    let mut s = connect(&pki, &dev, addr).await.unwrap();
    assert!(!echoes(&mut s, b"x").await);
    assert_eq!(
        gw.gateway()
            .metrics()
            .refusals("attestation_contraindicated"),
        1
    );
    // Appraised again and verified: admitted.
    gw.gateway().handle_event(GatewayEvent::Attestation {
        device_id: "dev-bad".into(),
        status: smtrust_policy::AttestationStatus::Verified,
    });
    let mut s = connect(&pki, &dev, addr).await.unwrap();
    assert!(echoes(&mut s, b"ok").await);
    gw.shutdown().await;
}

#[tokio::test]
async fn policy_can_refuse_connect() {
    let pki = Pki::new("test").await;
    let mut sources = BundleSources::default_bundle();
    sources.policies = sources.policies.replace(
        "permit (principal is Device, action == Action::\"connect\", resource);",
        "permit (principal is Device, action == Action::\"connect\", resource) when { principal.attested };",
    );
    let engine = Engine::new(Bundle::compile(sources).unwrap());
    let gw = start(&pki, "tcp", echo_server().await, "", engine).await;
    let addr = gw.local_addr("main").unwrap();
    let dev = pki.device("dev-u").await;
    let mut s = connect(&pki, &dev, addr).await.unwrap();
    assert!(!echoes(&mut s, b"x").await);
    assert_eq!(gw.gateway().metrics().refusals("policy_connect"), 1);
    // Attested now: admitted.
    gw.gateway().handle_event(GatewayEvent::Attestation {
        device_id: "dev-u".into(),
        status: smtrust_policy::AttestationStatus::Verified,
    });
    let mut s = connect(&pki, &dev, addr).await.unwrap();
    assert!(echoes(&mut s, b"ok").await);
    gw.shutdown().await;
}

#[tokio::test]
async fn limits_max_connections_and_slow_handshake() {
    let pki = Pki::new("test").await;
    let limits = "[limits]\nmax_connections = 2\nhandshake_timeout_ms = 300\n";
    let gw = start(&pki, "tcp", echo_server().await, limits, default_policy()).await;
    let addr = gw.local_addr("main").unwrap();
    let dev = pki.device("dev-l").await;

    // Slow handshake: a TCP connection that never speaks is closed after 300 ms.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(3), slow.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)));
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    drop(slow);
    tokio::time::sleep(Duration::from_millis(50)).await;

    let mut s1 = connect(&pki, &dev, addr).await.unwrap();
    let mut s2 = connect(&pki, &dev, addr).await.unwrap();
    assert!(echoes(&mut s1, b"1").await && echoes(&mut s2, b"2").await);
    // A third at once: refused before TLS (max_connections = 2).
    assert!(connect(&pki, &dev, addr).await.is_err());
    drop((s1, s2));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut s3 = connect(&pki, &dev, addr).await.unwrap();
    assert!(echoes(&mut s3, b"3").await, "a slot was not released");
    let m = gw.gateway().metrics();
    assert_eq!(m.refusals("handshake_timeout"), 1);
    assert_eq!(m.refusals("max_connections"), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn handshake_rate_per_source_is_limited_before_tls() {
    let pki = Pki::new("test").await;
    let gw = start(
        &pki,
        "tcp",
        echo_server().await,
        "[limits]\nhandshakes_per_source = 1\n",
        default_policy(),
    )
    .await;
    let addr = gw.local_addr("main").unwrap();
    let dev = pki.device("dev-r1").await;
    let mut s1 = connect(&pki, &dev, addr).await.unwrap();
    assert!(echoes(&mut s1, b"1").await);
    // The one-token bucket is empty; the next handshake is not even started.
    assert!(connect(&pki, &dev, addr).await.is_err());
    assert_eq!(gw.gateway().metrics().refusals("handshake_rate"), 1);
    assert_eq!(
        gw.gateway()
            .metrics()
            .handshakes_total
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    gw.shutdown().await;
}
