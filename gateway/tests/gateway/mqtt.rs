//! `mqtt` mode against a real Mosquitto broker (`SMTRUST_TEST_MQTT`, scripts/peers/start-mosquitto.sh).
//! The end-to-end flow uses `rumqttc` over our rustls client config; reason-code tests write
//! raw MQTT 3.1.1 / 5.0 packets so every byte the gateway answers is checked.

use crate::pki::Pki;
use crate::tcp::{connect, default_policy, start};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use smtrust_gateway::{CertStatus, GatewayEvent};
use smtrust_test_support::{Mosquitto, require};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

pub fn broker() -> Option<SocketAddr> {
    require(Mosquitto).map(|b| b.addr)
}

/// Runs a rumqttc event loop, sending incoming packets to a channel.
pub fn drive(mut el: rumqttc::EventLoop) -> mpsc::UnboundedReceiver<Packet> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(ev) = el.poll().await {
            if let Event::Incoming(p) = ev {
                if tx.send(p).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

pub async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<Packet>,
    mut pred: impl FnMut(&Packet) -> bool,
) -> Packet {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let p = rx.recv().await.expect("event loop ended");
            if pred(&p) {
                return p;
            }
        }
    })
    .await
    .expect("timed out waiting for packet")
}

#[tokio::test]
async fn rumqttc_device_publishes_and_subscribes_through_the_gateway() {
    let Some(broker) = broker() else { return };
    let pki = Pki::new("test").await;
    let gw = start(&pki, "mqtt", broker, "", default_policy()).await;
    let addr = gw.local_addr("main").unwrap();
    let id = format!("dev-e2e-{}", std::process::id());
    let dev = pki.device(&id).await;

    let observer_opts = MqttOptions::new(
        format!("observer-{}", std::process::id()),
        broker.ip().to_string(),
        broker.port(),
    );
    let (observer, el) = AsyncClient::new(observer_opts, 16);
    let mut obs_rx = drive(el);
    observer
        .subscribe(format!("devices/{id}/up/#"), QoS::AtLeastOnce)
        .await
        .unwrap();
    wait_for(&mut obs_rx, |p| matches!(p, Packet::SubAck(_))).await;

    let mut opts = MqttOptions::new(&id, "localhost", addr.port());
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        pki.client_config(Some(&dev)),
    )));
    let (device, el) = AsyncClient::new(opts, 16);
    let mut dev_rx = drive(el);
    wait_for(&mut dev_rx, |p| matches!(p, Packet::ConnAck(_))).await;
    device
        .subscribe(format!("devices/{id}/down/#"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let ack = wait_for(&mut dev_rx, |p| matches!(p, Packet::SubAck(_))).await;
    let Packet::SubAck(ack) = ack else {
        unreachable!()
    };
    assert_eq!(
        ack.return_codes,
        vec![rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );

    device
        .publish(
            format!("devices/{id}/up/temp"),
            QoS::AtLeastOnce,
            false,
            "21.5",
        )
        .await
        .unwrap();
    let got = wait_for(&mut obs_rx, |p| matches!(p, Packet::Publish(_))).await;
    let Packet::Publish(got) = got else {
        unreachable!()
    };
    assert_eq!(got.topic, format!("devices/{id}/up/temp"));
    assert_eq!(&got.payload[..], b"21.5");

    observer
        .publish(
            format!("devices/{id}/down/cmd"),
            QoS::AtLeastOnce,
            false,
            "reboot",
        )
        .await
        .unwrap();
    let got = wait_for(&mut dev_rx, |p| matches!(p, Packet::Publish(_))).await;
    let Packet::Publish(got) = got else {
        unreachable!()
    };
    assert_eq!(&got.payload[..], b"reboot");
    gw.shutdown().await;
}

// --- raw packets -------------------------------------------------------------------------

pub fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let b = (n % 128) as u8;
        n /= 128;
        out.push(if n > 0 { b | 0x80 } else { b });
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

pub fn string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub fn connect_packet(v5: bool, client_id: &str) -> Vec<u8> {
    let mut b = Vec::new();
    string(&mut b, "MQTT");
    b.push(if v5 { 5 } else { 4 });
    b.push(0x02); // clean session / clean start
    b.extend_from_slice(&30u16.to_be_bytes());
    if v5 {
        b.push(0);
    }
    string(&mut b, client_id);
    frame(0x10, &b)
}

pub fn publish_packet(v5: bool, topic: &str, qos: u8, id: u16) -> Vec<u8> {
    let mut b = Vec::new();
    string(&mut b, topic);
    if qos > 0 {
        b.extend_from_slice(&id.to_be_bytes());
    }
    if v5 {
        b.push(0);
    }
    b.extend_from_slice(b"payload");
    frame(0x30 | (qos << 1), &b)
}

pub fn subscribe_packet(v5: bool, id: u16, filters: &[(&str, u8)]) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    if v5 {
        b.push(0);
    }
    for (f, o) in filters {
        string(&mut b, f);
        b.push(*o);
    }
    frame(0x82, &b)
}

/// Reads one packet: (first byte, body).
pub async fn read_packet<S: AsyncRead + Unpin>(s: &mut S) -> Option<(u8, Vec<u8>)> {
    let fut = async {
        let first = s.read_u8().await.ok()?;
        let mut len = 0usize;
        for i in 0..4 {
            let b = s.read_u8().await.ok()?;
            len |= usize::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await.ok()?;
        Some((first, body))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
}

pub async fn send<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) {
    s.write_all(bytes).await.unwrap();
}

struct Setup {
    pki: Pki,
    gw: smtrust_gateway::Running,
    addr: SocketAddr,
}

async fn setup(limits: &str) -> Option<Setup> {
    let broker = broker()?;
    let pki = Pki::new("test").await;
    let gw = start(&pki, "mqtt", broker, limits, default_policy()).await;
    let addr = gw.local_addr("main").unwrap();
    Some(Setup { pki, gw, addr })
}

pub fn unique(base: &str) -> String {
    format!("{base}-{}", std::process::id())
}

#[tokio::test]
async fn mqtt5_denied_publish_and_subscribe_get_0x87() {
    let Some(t) = setup("").await else { return };
    let id = unique("dev-v5");
    let dev = t.pki.device(&id).await;
    let mut s = connect(&t.pki, &dev, t.addr).await.unwrap();
    send(&mut s, &connect_packet(true, &id)).await;
    let (first, body) = read_packet(&mut s).await.unwrap();
    assert_eq!(
        (first, body.get(1).copied()),
        (0x20, Some(0x00)),
        "CONNACK success from the broker"
    );

    // QoS 1 and 2 to someone else's topic: PUBACK / PUBREC with 0x87.
    send(&mut s, &publish_packet(true, "devices/other/up/x", 1, 7)).await;
    let (first, body) = read_packet(&mut s).await.unwrap();
    assert_eq!(first, 0x40);
    assert_eq!(&body[..3], &[0, 7, 0x87]);
    send(&mut s, &publish_packet(true, "devices/other/up/x", 2, 8)).await;
    let (first, body) = read_packet(&mut s).await.unwrap();
    assert_eq!(first, 0x50);
    assert_eq!(&body[..3], &[0, 8, 0x87]);

    // Mixed SUBSCRIBE: the allowed filter reaches the broker, the denied one gets 0x87, in order.
    let own = format!("devices/{id}/down/#");
    send(
        &mut s,
        &subscribe_packet(true, 9, &[("devices/#", 0), (&own, 1)]),
    )
    .await;
    let (first, body) = read_packet(&mut s).await.unwrap();
    assert_eq!(first, 0x90);
    assert_eq!(body, vec![0, 9, 0, 0x87, 0x01]);
    // All denied: the gateway answers alone.
    send(&mut s, &subscribe_packet(true, 10, &[("#", 0), ("+/+", 1)])).await;
    let (_, body) = read_packet(&mut s).await.unwrap();
    assert_eq!(body, vec![0, 10, 0, 0x87, 0x87]);

    // Denied QoS 0 is dropped (default); the connection lives: PINGREQ → PINGRESP.
    send(&mut s, &publish_packet(true, "devices/other/up/x", 0, 0)).await;
    send(&mut s, &[0xC0, 0]).await;
    let (first, _) = read_packet(&mut s).await.unwrap();
    assert_eq!(first, 0xD0);
    let m = t.gw.gateway().metrics();
    assert_eq!(
        m.mqtt_publish_denied
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    assert_eq!(
        m.mqtt_subscribe_denied
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    t.gw.shutdown().await;
}

#[tokio::test]
async fn mqtt311_denied_subscribe_gets_0x80_and_denied_publish_closes() {
    let Some(t) = setup("").await else { return };
    let id = unique("dev-v4");
    let dev = t.pki.device(&id).await;
    let mut s = connect(&t.pki, &dev, t.addr).await.unwrap();
    send(&mut s, &connect_packet(false, &id)).await;
    let (first, body) = read_packet(&mut s).await.unwrap();
    assert_eq!((first, body), (0x20, vec![0, 0]));
    let own = format!("devices/{id}/down/+");
    send(
        &mut s,
        &subscribe_packet(false, 3, &[(&own, 1), ("devices/other/down/#", 1)]),
    )
    .await;
    let (first, body) = read_packet(&mut s).await.unwrap();
    assert_eq!(first, 0x90);
    assert_eq!(body, vec![0, 3, 0x01, 0x80]);
    send(&mut s, &publish_packet(false, "devices/other/up/x", 1, 4)).await;
    assert!(
        read_packet(&mut s).await.is_none(),
        "3.1.1 has no reason code: the connection closes"
    );
    assert_eq!(t.gw.gateway().metrics().refusals("policy_publish"), 1);
    t.gw.shutdown().await;
}

#[tokio::test]
async fn wrong_client_id_is_refused_in_connack() {
    let Some(t) = setup("").await else { return };
    let dev = t.pki.device(&unique("dev-id")).await;
    for (v5, code) in [(true, 0x85u8), (false, 0x02)] {
        let mut s = connect(&t.pki, &dev, t.addr).await.unwrap();
        send(&mut s, &connect_packet(v5, "someone-else")).await;
        let (first, body) = read_packet(&mut s).await.unwrap();
        assert_eq!(first, 0x20);
        assert_eq!(body.get(1), Some(&code), "v5={v5}");
        assert!(read_packet(&mut s).await.is_none());
    }
    assert_eq!(t.gw.gateway().metrics().refusals("client_id_mismatch"), 2);
    t.gw.shutdown().await;
}

#[tokio::test]
async fn denied_qos0_can_disconnect_and_oversized_packets_close() {
    let Some(broker) = broker() else { return };
    let pki = Pki::new("test").await;
    let gw = start(
        &pki,
        "mqtt",
        broker,
        "denied_qos0 = \"disconnect\"\n[limits]\nmax_packet_size = 1024\n",
        default_policy(),
    )
    .await;
    let addr = gw.local_addr("main").unwrap();
    let id = unique("dev-q0");
    let dev = pki.device(&id).await;
    let mut s = connect(&pki, &dev, addr).await.unwrap();
    send(&mut s, &connect_packet(true, &id)).await;
    read_packet(&mut s).await.unwrap();
    send(&mut s, &publish_packet(true, "devices/other/up/x", 0, 0)).await;
    let (first, body) = read_packet(&mut s).await.unwrap();
    assert_eq!((first, body), (0xE0, vec![0x87]));
    assert!(read_packet(&mut s).await.is_none());

    let mut s = connect(&pki, &dev, addr).await.unwrap();
    send(&mut s, &connect_packet(true, &id)).await;
    read_packet(&mut s).await.unwrap();
    let big = format!("devices/{id}/up/{}", "x".repeat(2000));
    send(&mut s, &publish_packet(true, &big, 0, 0)).await;
    assert!(read_packet(&mut s).await.is_none());
    assert_eq!(gw.gateway().metrics().refusals("oversized"), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn revocation_disconnects_an_mqtt5_session_with_0x87() {
    let Some(t) = setup("").await else { return };
    let id = unique("dev-rv");
    let dev = t.pki.device(&id).await;
    let mut s = connect(&t.pki, &dev, t.addr).await.unwrap();
    send(&mut s, &connect_packet(true, &id)).await;
    read_packet(&mut s).await.unwrap();
    let at = Instant::now();
    t.gw.gateway().handle_event(GatewayEvent::CertStatus {
        cert: dev.cert_key(),
        status: CertStatus::Revoked,
    });
    let (first, body) = read_packet(&mut s).await.unwrap();
    assert_eq!((first, body), (0xE0, vec![0x87]));
    assert!(read_packet(&mut s).await.is_none());
    assert!(at.elapsed() < Duration::from_secs(1), "{:?}", at.elapsed());
    t.gw.shutdown().await;
}
