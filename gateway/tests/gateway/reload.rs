//! Policy hot reload against a real Mosquitto broker: live MQTT sessions re-decide their granted
//! subscriptions; a withdrawn one ends the session (5.0: DISCONNECT 0x87, 3.1.1: close), the
//! others stay up and their next packets are decided by the new version. Then the gateway's own
//! config (`Running::reload`) and server certificate (`ServerCert::replace`) reloaded live.

use crate::mqtt::{
    broker, connect_packet, drive, frame, publish_packet, read_packet, send, string,
    subscribe_packet, unique, wait_for,
};
use crate::pki::{Pki, csr};
use crate::tcp::{connect, default_policy, echo_server, echoes, start, time_to_close};
use der::Decode;
use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};
use rustls::pki_types::CertificateDer;
use smtrust_ca::IssueRequest;
use smtrust_crypto::sm2::{Sm2SecretKey, Tls13Id};
use smtrust_gateway::{Config, Gateway, Running};
use smtrust_policy::{Bundle, BundleSources};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;

/// The default bundle with subscriptions moved from `down/#` to `cfg/#` and publishing also
/// allowed under `telemetry/#`.
fn moved_policy() -> Bundle {
    let mut sources = BundleSources::default_bundle();
    sources.policies = sources
        .policies
        .replace("devices/{device.id}/down/#", "devices/{device.id}/cfg/#");
    sources.policies.push_str(
        "\n@id(\"device-publish-telemetry\")\n@topic(\"devices/{device.id}/telemetry/#\")\n\
         permit (principal is Device, action == Action::\"publish\", resource);\n",
    );
    Bundle::compile(sources).unwrap()
}

#[tokio::test]
async fn policy_reload_withdraws_live_subscriptions_and_spares_the_rest() {
    let Some(broker) = broker() else { return };
    let pki = Pki::new("reload").await;
    let gw = start(&pki, "mqtt", broker, "", default_policy()).await;
    let addr = gw.local_addr("main").unwrap();
    let (a, b, c) = (unique("rl-a5"), unique("rl-b5"), unique("rl-c4"));

    // a (5.0) and c (3.1.1) hold subscriptions the old policy allows; b (5.0) holds none.
    let dev_a = pki.device(&a).await;
    let mut sa = connect(&pki, &dev_a, addr).await.unwrap();
    send(&mut sa, &connect_packet(true, &a)).await;
    assert_eq!(read_packet(&mut sa).await.unwrap().0, 0x20);
    let a_down = format!("devices/{a}/down/#");
    send(&mut sa, &subscribe_packet(true, 1, &[(&a_down, 0)])).await;
    assert_eq!(
        read_packet(&mut sa).await.unwrap(),
        (0x90, vec![0, 1, 0, 0])
    );
    let mut sc = connect(&pki, &pki.device(&c).await, addr).await.unwrap();
    send(&mut sc, &connect_packet(false, &c)).await;
    assert_eq!(read_packet(&mut sc).await.unwrap(), (0x20, vec![0, 0]));
    let c_down = format!("devices/{c}/down/+");
    send(&mut sc, &subscribe_packet(false, 2, &[(&c_down, 0)])).await;
    assert_eq!(read_packet(&mut sc).await.unwrap(), (0x90, vec![0, 2, 0]));
    let mut sb = connect(&pki, &pki.device(&b).await, addr).await.unwrap();
    send(&mut sb, &connect_packet(true, &b)).await;
    assert_eq!(read_packet(&mut sb).await.unwrap().0, 0x20);
    // b subscribed and unsubscribed again: nothing left for the reload to withdraw.
    let b_down = format!("devices/{b}/down/#");
    send(&mut sb, &subscribe_packet(true, 1, &[(&b_down, 0)])).await;
    assert_eq!(
        read_packet(&mut sb).await.unwrap(),
        (0x90, vec![0, 1, 0, 0])
    );
    let mut unsub = vec![0, 2, 0];
    string(&mut unsub, &b_down);
    send(&mut sb, &frame(0xA2, &unsub)).await;
    assert_eq!(read_packet(&mut sb).await.unwrap().0, 0xB0, "UNSUBACK");
    let telemetry = format!("devices/{b}/telemetry/t");
    send(&mut sb, &publish_packet(true, &telemetry, 1, 3)).await;
    let (first, body) = read_packet(&mut sb).await.unwrap();
    assert_eq!(
        (first, &body[..3]),
        (0x40, &[0, 3, 0x87][..]),
        "denied before"
    );

    // a receives its commands through the gateway before the reload.
    let (observer, el) = AsyncClient::new(
        MqttOptions::new(
            unique("rl-observer"),
            broker.ip().to_string(),
            broker.port(),
        ),
        16,
    );
    let mut obs_rx = drive(el);
    wait_for(&mut obs_rx, |p| matches!(p, Packet::ConnAck(_))).await;
    let cmd = format!("devices/{a}/down/cmd");
    observer
        .publish(&cmd, QoS::AtMostOnce, false, "before")
        .await
        .unwrap();
    let (first, body) = read_packet(&mut sa).await.unwrap();
    assert_eq!(first & 0xF0, 0x30);
    assert!(body.ends_with(b"before"));

    let at = Instant::now();
    gw.gateway().activate_policy(moved_policy(), 2);
    assert_eq!(gw.gateway().policy().active_version(), 2);
    // a: DISCONNECT 0x87 (not authorized), then the connection ends.
    assert_eq!(read_packet(&mut sa).await.unwrap(), (0xE0, vec![0x87]));
    assert!(read_packet(&mut sa).await.is_none());
    let took = at.elapsed();
    eprintln!("policy reload → withdrawn MQTT 5.0 session closed: {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    // c: 3.1.1 has no server DISCONNECT; the connection just ends.
    assert!(read_packet(&mut sc).await.is_none());

    // b stays up, and its next PUBLISH is decided by version 2.
    send(&mut sb, &[0xC0, 0]).await;
    assert_eq!(read_packet(&mut sb).await.unwrap().0, 0xD0, "PINGRESP");
    send(&mut sb, &publish_packet(true, &telemetry, 1, 4)).await;
    let (first, body) = read_packet(&mut sb).await.unwrap();
    assert_eq!(first, 0x40);
    assert_eq!(&body[..2], &[0, 4]);
    assert!(
        body.get(2).is_none_or(|c| *c < 0x80),
        "allowed now: {body:?}"
    );

    // a comes back: the withdrawn filter is refused in SUBACK, the new one granted.
    let mut sa = connect(&pki, &dev_a, addr).await.unwrap();
    send(&mut sa, &connect_packet(true, &a)).await;
    assert_eq!(read_packet(&mut sa).await.unwrap().0, 0x20);
    let a_cfg = format!("devices/{a}/cfg/#");
    send(
        &mut sa,
        &subscribe_packet(true, 5, &[(&a_down, 0), (&a_cfg, 0)]),
    )
    .await;
    assert_eq!(
        read_packet(&mut sa).await.unwrap(),
        (0x90, vec![0, 5, 0, 0x87, 0])
    );
    observer
        .publish(&cmd, QoS::AtMostOnce, false, "after")
        .await
        .unwrap();
    observer
        .publish(format!("devices/{a}/cfg/x"), QoS::AtMostOnce, false, "cfg")
        .await
        .unwrap();
    let (first, body) = read_packet(&mut sa).await.unwrap();
    assert_eq!(first & 0xF0, 0x30);
    assert!(body.ends_with(b"cfg"), "only cfg/ arrives: {body:?}");

    // A reload that changes nothing for b keeps it connected.
    gw.gateway().activate_policy(moved_policy(), 3);
    send(&mut sb, &[0xC0, 0]).await;
    assert_eq!(read_packet(&mut sb).await.unwrap().0, 0xD0);
    assert_eq!(gw.gateway().metrics().refusals("policy_reload"), 2);
    gw.shutdown().await;
}

// ---- Config and certificate reload (`Running::reload`, `ServerCert::replace`) ----

/// A gateway from a whole TOML text.
async fn start_toml(pki: &Pki, toml: &str) -> Running {
    Gateway::builder(Config::from_toml(toml).unwrap(), Arc::new(default_policy()))
        .sm_tls(pki.sm_tls())
        .passport(pki.passport_signer())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap()
}

fn tcp_listener(name: &str, bind: &str, upstream: SocketAddr) -> String {
    format!(
        "[[listener]]\nname = \"{name}\"\nbind = \"{bind}\"\nmode = \"tcp\"\nupstream = \"{upstream}\"\n"
    )
}

/// An upstream that answers every byte with `tag` (tells which upstream a session reached).
async fn tag_server(tag: u8) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = s.read(&mut buf).await {
                    if s.write_all(&vec![tag; n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Sends `msg` and reads as many bytes back.
async fn answer(s: &mut TlsStream<TcpStream>, msg: &[u8]) -> Option<Vec<u8>> {
    s.write_all(msg).await.ok()?;
    let mut buf = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(buf)
}

/// The serial of the certificate the server presented, read by the client.
fn server_serial(s: &TlsStream<TcpStream>) -> Vec<u8> {
    let leaf = &s.get_ref().1.peer_certificates().unwrap()[0];
    let cert = x509_cert::Certificate::from_der(leaf.as_ref()).unwrap();
    unsigned(cert.tbs_certificate().serial_number().as_bytes())
}

/// A serial as an unsigned number's bytes (DER drops a leading zero byte).
fn unsigned(b: &[u8]) -> Vec<u8> {
    b.iter().copied().skip_while(|b| *b == 0).collect()
}

/// Waits until nothing listens on `addr` any more (the retired listener's task has ended).
async fn refused(addr: SocketAddr) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        if TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn config_reload_keeps_sessions_and_applies_new_settings_to_new_connections() {
    let pki = Pki::new("cfg-reload").await;
    let (echo, tagged) = (echo_server().await, tag_server(b'B').await);
    let mut gw = start_toml(&pki, &tcp_listener("main", "127.0.0.1:0", echo)).await;
    let main = gw.local_addr("main").unwrap();
    let dev = pki.device("ctw-cfg-reload").await;
    let mut old = connect(&pki, &dev, main).await.unwrap();
    assert!(echoes(&mut old, b"before").await);

    // main: same bind, new upstream; a second listener; at most two connections.
    let second_echo = echo_server().await;
    let next = Config::from_toml(&format!(
        "{}{}[limits]\nmax_connections = 2\n",
        tcp_listener("main", "127.0.0.1:0", tagged),
        tcp_listener("second", "127.0.0.1:0", second_echo),
    ))
    .unwrap();
    let report = gw.reload(next.clone()).await.unwrap();
    assert_eq!(report.added, ["second"]);
    assert_eq!(report.changed, ["main"]);
    assert!(report.removed.is_empty() && report.moved.is_empty());
    assert!(report.limits_changed);
    assert_eq!(gw.local_addr("main"), Some(main), "main keeps its socket");
    assert_eq!(gw.gateway().config(), next);

    // The admitted session still reaches its old upstream.
    assert!(echoes(&mut old, b"after the reload").await);
    // The new listener accepts; that makes two connections, the new limit.
    let second = gw.local_addr("second").unwrap();
    let mut s2 = connect(&pki, &dev, second).await.unwrap();
    assert!(echoes(&mut s2, b"second").await);
    let mut third = connect(&pki, &dev, main).await;
    let refused_third = match &mut third {
        Err(_) => true,
        Ok(s) => answer(s, b"x").await.is_none(),
    };
    assert!(
        refused_third,
        "a third connection exceeds max_connections = 2"
    );
    assert_eq!(gw.gateway().metrics().refusals("max_connections"), 1);
    // With a slot free, a new main connection reaches the new upstream.
    drop(s2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut new = connect(&pki, &dev, main).await.unwrap();
    assert_eq!(answer(&mut new, b"hi").await.unwrap(), b"BB");
    assert!(echoes(&mut old, b"old still echoes").await);
    gw.shutdown().await;
}

#[tokio::test]
async fn removed_listener_stops_accepting_and_keeps_its_admitted_session() {
    let pki = Pki::new("cfg-remove").await;
    let echo = echo_server().await;
    let both = format!(
        "{}{}",
        tcp_listener("main", "127.0.0.1:0", echo),
        tcp_listener("extra", "127.0.0.1:0", echo)
    );
    let mut gw = start_toml(&pki, &both).await;
    let (main, extra) = (
        gw.local_addr("main").unwrap(),
        gw.local_addr("extra").unwrap(),
    );
    let dev = pki.device("ctw-cfg-remove").await;
    let mut kept = connect(&pki, &dev, extra).await.unwrap();
    assert!(echoes(&mut kept, b"on extra").await);

    let report = gw
        .reload(Config::from_toml(&tcp_listener("main", "127.0.0.1:0", echo)).unwrap())
        .await
        .unwrap();
    assert_eq!(report.removed, ["extra"]);
    assert!(report.added.is_empty() && report.changed.is_empty() && !report.limits_changed);
    assert_eq!(gw.local_addr("extra"), None);
    assert!(refused(extra).await, "the removed listener still accepts");
    // Its admitted session is kept until it ends (documented in docs/operations.md).
    assert!(echoes(&mut kept, b"still served").await);
    assert_eq!(gw.gateway().session_count(), 1);
    let mut s = connect(&pki, &dev, main).await.unwrap();
    assert!(echoes(&mut s, b"main").await);
    // A drain ends it like any other session.
    assert_eq!(gw.drain(Duration::from_millis(200)).await, 2);
    time_to_close(&mut kept).await;
}

#[tokio::test]
async fn invalid_reload_is_refused_and_changes_nothing() {
    let pki = Pki::new("cfg-invalid").await;
    let (echo, tagged) = (echo_server().await, tag_server(b'B').await);
    let first = Config::from_toml(&format!(
        "{}[admin]\nbind = \"127.0.0.1:0\"\n",
        tcp_listener("main", "127.0.0.1:0", echo)
    ))
    .unwrap();
    let mut gw = start_toml(
        &pki,
        &format!(
            "{}[admin]\nbind = \"127.0.0.1:0\"\n",
            tcp_listener("main", "127.0.0.1:0", echo)
        ),
    )
    .await;
    let main = gw.local_addr("main").unwrap();
    let dev = pki.device("ctw-cfg-invalid").await;

    // A new listener on an address already taken: the whole reload fails, main's new upstream too.
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let busy = Config::from_toml(&format!(
        "{}{}[limits]\nmax_connections = 1\n[admin]\nbind = \"127.0.0.1:0\"\n",
        tcp_listener("main", "127.0.0.1:0", tagged),
        tcp_listener("second", &taken.local_addr().unwrap().to_string(), echo),
    ))
    .unwrap();
    let err = gw.reload(busy).await.unwrap_err();
    assert!(matches!(err, smtrust_gateway::Error::Bind { .. }), "{err}");
    // The admin endpoint cannot move at run time.
    let moved_admin = Config::from_toml(&tcp_listener("main", "127.0.0.1:0", tagged)).unwrap();
    let err = gw.reload(moved_admin).await.unwrap_err();
    assert!(err.to_string().contains("admin endpoint"), "{err}");
    // A text that does not validate never reaches the gateway.
    assert!(
        Config::from_toml(&format!(
            "{0}{0}",
            tcp_listener("main", "127.0.0.1:0", echo)
        ))
        .is_err()
    );

    assert_eq!(gw.gateway().config(), first);
    assert_eq!(gw.local_addr("main"), Some(main));
    assert_eq!(gw.local_addr("second"), None);
    // Still the old upstream and the old limit (more than one connection).
    let mut a = connect(&pki, &dev, main).await.unwrap();
    let mut b = connect(&pki, &dev, main).await.unwrap();
    assert!(echoes(&mut a, b"old upstream").await && echoes(&mut b, b"two at once").await);
    gw.shutdown().await;
}

#[tokio::test]
async fn certificate_swap_reaches_new_handshakes_and_spares_old_sessions() {
    let pki = Pki::new("cert-swap").await;
    let gw = start_toml(
        &pki,
        &tcp_listener("main", "127.0.0.1:0", echo_server().await),
    )
    .await;
    let main = gw.local_addr("main").unwrap();
    let dev = pki.device("ctw-cert-swap").await;
    let mut old = connect(&pki, &dev, main).await.unwrap();
    let cert = gw.gateway().server_certificate();
    let first_chain = cert.chain();
    let first = x509_cert::Certificate::from_der(first_chain[0].as_ref()).unwrap();
    assert_eq!(
        server_serial(&old),
        unsigned(first.tbs_certificate().serial_number().as_bytes())
    );

    // A renewed certificate for a new key, from the same CA.
    let sk = Sm2SecretKey::generate().unwrap();
    let mut req = IssueRequest::new(csr(&sk, "CN=gateway,O=smtrust test"), None);
    req.dns_names = vec!["localhost".into()];
    let renewed = pki.svc.issue(&pki.label, "server", req).await.unwrap();
    let chain = vec![CertificateDer::from(renewed.der), pki.inter.clone()];
    // The wrong key for the chain is refused and changes nothing.
    let wrong = Arc::new(
        Sm2SecretKey::generate()
            .unwrap()
            .signing_key(Tls13Id)
            .unwrap(),
    );
    assert!(cert.replace(wrong, chain.clone()).is_err());
    assert_eq!(cert.chain(), first_chain);
    cert.replace(Arc::new(sk.signing_key(Tls13Id).unwrap()), chain.clone())
        .unwrap();
    assert_eq!(cert.chain(), chain);

    let mut new = connect(&pki, &dev, main).await.unwrap();
    assert_eq!(server_serial(&new), unsigned(renewed.serial.as_bytes()));
    assert_ne!(server_serial(&new), server_serial(&old));
    assert!(echoes(&mut new, b"new handshake").await);
    assert!(echoes(&mut old, b"old session").await);
    gw.shutdown().await;
}

/// A QoS 1 PUBLISH of about `size` bytes (MQTT 5.0).
fn big_publish(topic: &str, id: u16, size: usize) -> Vec<u8> {
    let mut b = Vec::new();
    string(&mut b, topic);
    b.extend_from_slice(&id.to_be_bytes());
    b.push(0);
    b.resize(size, b'x');
    frame(0x32, &b)
}

fn mqtt_listener(name: &str, upstream: SocketAddr) -> String {
    format!(
        "[[listener]]\nname = \"{name}\"\nbind = \"127.0.0.1:0\"\nmode = \"mqtt\"\nupstream = \"{upstream}\"\n"
    )
}

#[tokio::test]
async fn mqtt_session_survives_a_reload_that_lowers_its_packet_limit() {
    let Some(broker) = broker() else { return };
    let pki = Pki::new("mqtt-cfg-reload").await;
    let mut gw = start_toml(&pki, &mqtt_listener("main", broker)).await;
    let main = gw.local_addr("main").unwrap();
    let (a, b) = (unique("cfg-mqtt-a"), unique("cfg-mqtt-b"));
    let dev_a = pki.device(&a).await;
    let mut sa = connect(&pki, &dev_a, main).await.unwrap();
    send(&mut sa, &connect_packet(true, &a)).await;
    assert_eq!(read_packet(&mut sa).await.unwrap().0, 0x20);
    let a_down = format!("devices/{a}/down/#");
    send(&mut sa, &subscribe_packet(true, 1, &[(&a_down, 0)])).await;
    assert_eq!(
        read_packet(&mut sa).await.unwrap(),
        (0x90, vec![0, 1, 0, 0])
    );

    let report = gw
        .reload(
            Config::from_toml(&format!(
                "{}{}[limits]\nmax_packet_size = 1024\n",
                mqtt_listener("main", broker),
                mqtt_listener("second", broker)
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(report.added, ["second"]);
    assert!(report.limits_changed && report.changed.is_empty());

    // a keeps its session, its subscription and the limit it was admitted with.
    send(&mut sa, &[0xC0, 0]).await;
    assert_eq!(read_packet(&mut sa).await.unwrap().0, 0xD0, "PINGRESP");
    let up = format!("devices/{a}/up/big");
    send(&mut sa, &big_publish(&up, 7, 2000)).await;
    let (first, body) = read_packet(&mut sa).await.unwrap();
    assert_eq!(
        (first, &body[..2]),
        (0x40, &[0, 7][..]),
        "a PUBACK, not a close"
    );
    let (observer, el) = AsyncClient::new(
        MqttOptions::new(
            unique("cfg-mqtt-obs"),
            broker.ip().to_string(),
            broker.port(),
        ),
        16,
    );
    let mut obs_rx = drive(el);
    wait_for(&mut obs_rx, |p| matches!(p, Packet::ConnAck(_))).await;
    observer
        .publish(
            format!("devices/{a}/down/cmd"),
            QoS::AtMostOnce,
            false,
            "after reload",
        )
        .await
        .unwrap();
    let (first, body) = read_packet(&mut sa).await.unwrap();
    assert_eq!(first & 0xF0, 0x30);
    assert!(body.ends_with(b"after reload"));

    // The new listener admits b; b's connection has the new limit.
    let second = gw.local_addr("second").unwrap();
    let mut sb = connect(&pki, &pki.device(&b).await, second).await.unwrap();
    send(&mut sb, &connect_packet(true, &b)).await;
    assert_eq!(read_packet(&mut sb).await.unwrap().0, 0x20);
    send(
        &mut sb,
        &big_publish(&format!("devices/{b}/up/big"), 8, 2000),
    )
    .await;
    // Refused: at most a DISCONNECT, then the connection ends (read_packet: None).
    while let Some((first, _)) = read_packet(&mut sb).await {
        assert_ne!(first, 0x40, "a 2000-byte packet passed a 1024-byte limit");
    }
    send(&mut sa, &[0xC0, 0]).await;
    assert_eq!(read_packet(&mut sa).await.unwrap().0, 0xD0, "a is still up");
    gw.shutdown().await;
}

#[tokio::test]
async fn moved_listener_accepts_on_the_new_address_only() {
    let pki = Pki::new("cfg-move").await;
    let echo = echo_server().await;
    let mut gw = start_toml(&pki, &tcp_listener("main", "127.0.0.1:0", echo)).await;
    let old_addr = gw.local_addr("main").unwrap();
    let dev = pki.device("ctw-cfg-move").await;
    let mut kept = connect(&pki, &dev, old_addr).await.unwrap();
    let report = gw
        .reload(Config::from_toml(&tcp_listener("main", "127.0.0.2:0", echo)).unwrap())
        .await
        .unwrap();
    assert_eq!(report.moved, ["main"]);
    assert!(report.added.is_empty() && report.removed.is_empty());
    let new_addr = gw.local_addr("main").unwrap();
    assert_eq!(new_addr.ip().to_string(), "127.0.0.2");
    assert!(refused(old_addr).await);
    let mut s = connect(&pki, &dev, new_addr).await.unwrap();
    assert!(echoes(&mut s, b"new address").await);
    assert!(echoes(&mut kept, b"old session").await);
    gw.shutdown().await;
}

type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Empty<hyper::body::Bytes>>;

/// An HTTP/1.1 client on a new gateway connection.
async fn http_client(pki: &Pki, device: &crate::pki::Device, addr: SocketAddr) -> Sender {
    let tls = connect(pki, device, addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// One `GET /api/x`: the passport the platform received must verify offline; returns the DER of
/// its signer's certificate (the token header's `x5c[0]`).
async fn passport_signer_of(pki: &Pki, sender: &mut Sender) -> Vec<u8> {
    use base64::Engine as _;
    use http_body_util::BodyExt;
    let req = hyper::Request::get("/api/x")
        .header("host", "platform")
        .body(http_body_util::Empty::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let token = body.split('|').nth(2).unwrap();
    smtrust_gateway::passport::verify(token, &pki.verifier(), rustls::pki_types::UnixTime::now())
        .unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(header["x5c"][0].as_str().unwrap())
        .unwrap()
}

#[tokio::test]
async fn replaced_passport_signer_signs_for_new_connections() {
    let pki = Pki::new("passport-swap").await;
    let gw = start(
        &pki,
        "http",
        crate::http::platform().await,
        "",
        crate::http::http_policy(),
    )
    .await;
    let main = gw.local_addr("main").unwrap();
    let dev = pki.device("ctw-passport-swap").await;
    let mut old = http_client(&pki, &dev, main).await;
    let first = passport_signer_of(&pki, &mut old).await;

    let sk = Sm2SecretKey::generate().unwrap();
    let mut req = IssueRequest::new(csr(&sk, "CN=gateway passports,O=smtrust test"), None);
    req.dns_names = vec!["localhost".into()];
    let renewed = pki.svc.issue(&pki.label, "server", req).await.unwrap();
    let chain = [CertificateDer::from(renewed.der.clone()), pki.inter.clone()];
    gw.gateway()
        .replace_passport_signer(smtrust_gateway::PassportSigner::new(
            Arc::new(sk.signing_key(smtrust_crypto::sm2::CertId).unwrap()),
            &chain,
        ));

    let mut new = http_client(&pki, &dev, main).await;
    assert_eq!(passport_signer_of(&pki, &mut new).await, renewed.der);
    assert_ne!(first, renewed.der);
    // The admitted connection keeps the signer it was accepted with.
    assert_eq!(passport_signer_of(&pki, &mut old).await, first);
    gw.shutdown().await;
}
