//! Policy hot reload against a real Mosquitto broker: live MQTT sessions re-decide their granted
//! subscriptions; a withdrawn one ends the session (5.0: DISCONNECT 0x87, 3.1.1: close), the
//! others stay up and their next packets are decided by the new version.

use crate::mqtt::{
    broker, connect_packet, drive, frame, publish_packet, read_packet, send, string,
    subscribe_packet, unique, wait_for,
};
use crate::pki::Pki;
use crate::tcp::{connect, default_policy, start};
use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};
use smtrust_policy::{Bundle, BundleSources};
use std::time::{Duration, Instant};

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
    let version = gw.gateway().activate_policy(moved_policy());
    assert_eq!(version, 2);
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
    gw.gateway().activate_policy(moved_policy());
    send(&mut sb, &[0xC0, 0]).await;
    assert_eq!(read_packet(&mut sb).await.unwrap().0, 0xD0);
    assert_eq!(gw.gateway().metrics().refusals("policy_reload"), 2);
    gw.shutdown().await;
}
