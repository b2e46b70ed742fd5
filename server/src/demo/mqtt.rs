//! Devices on the gateway: MQTT over TLS 1.3-SM with their enrolled identities, the platform's commands
//! back to them, refusals where policy says no, HTTP with a device passport, and the revocation cut.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rumqttc::{
    AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode, TlsConfiguration, Transport,
};
use tokio::sync::mpsc;

use super::devices::Device;
use crate::node::Node;

/// What a device's connection reports to the demo.
#[derive(Debug)]
pub(crate) enum Seen {
    Connected,
    Refused,
    Command,
    SubAck(Vec<SubscribeReasonCode>),
    Closed(Instant),
}

/// One connected (or refused) device.
pub(crate) struct Conn {
    pub(crate) client: AsyncClient,
    pub(crate) events: mpsc::UnboundedReceiver<Seen>,
}

pub(crate) fn client_config(node: &Node, d: &Device) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let roots = smtrust_tls::TrustRoots::new(&crate::node::trust_certs(&node.trust_der))?;
    let verifier = smtrust_tls::Sm2ChainVerifier::new(
        roots,
        Arc::new(smtrust_tls::RevokedSet::new()),
        smtrust_tls::UnknownStatus::Refuse,
    );
    let creds = d.agent()?.credentials()?;
    Ok(Arc::new(smtrust_tls::client_config(
        verifier,
        Some(&creds),
    )?))
}

/// Connect `d` to the gateway's MQTT listener; its event loop runs in a task reporting to the returned queue.
pub(crate) fn connect(node: &Node, gateway: SocketAddr, d: &Device) -> anyhow::Result<Conn> {
    let mut opts = MqttOptions::new(&d.id, "localhost", gateway.port());
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        client_config(node, d)?,
    )));
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    let (tx, events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let seen = match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(a))) => {
                    if a.code == rumqttc::ConnectReturnCode::Success {
                        Seen::Connected
                    } else {
                        Seen::Refused
                    }
                }
                Ok(Event::Incoming(Packet::Publish(_))) => Seen::Command,
                Ok(Event::Incoming(Packet::SubAck(s))) => Seen::SubAck(s.return_codes),
                Ok(_) => continue,
                Err(_) => {
                    let _ = tx.send(Seen::Closed(Instant::now()));
                    break;
                }
            };
            if tx.send(seen).is_err() {
                break;
            }
        }
    });
    Ok(Conn { client, events })
}

/// Wait for the first event of a kind `want` accepts (or any close), up to `limit`.
pub(crate) async fn wait(
    conn: &mut Conn,
    limit: Duration,
    want: impl Fn(&Seen) -> bool,
) -> Option<Seen> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, conn.events.recv()).await {
            Ok(Some(s)) if want(&s) || matches!(s, Seen::Closed(_) | Seen::Refused) => {
                return Some(s);
            }
            Ok(Some(_)) => continue,
            _ => return None,
        }
    }
}

/// The platform's own client, straight to the broker: it reads telemetry and sends commands.
pub(crate) struct Platform {
    pub(crate) client: AsyncClient,
    pub(crate) telemetry: mpsc::UnboundedReceiver<String>,
}

pub(crate) async fn platform(broker: SocketAddr) -> anyhow::Result<Platform> {
    let mut opts = MqttOptions::new("platform", broker.ip().to_string(), broker.port());
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    let (tx, telemetry) = mpsc::unbounded_channel();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    client.subscribe("devices/+/up/#", QoS::AtLeastOnce).await?;
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(t) = ready_tx.take() {
                        let _ = t.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(p.topic).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "platform client");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .context("the platform's subscription was not acknowledged")??;
    Ok(Platform { client, telemetry })
}

/// Collect up to `n` telemetry topics within `limit`; returns the distinct devices seen.
pub(crate) async fn collect(
    platform: &mut Platform,
    n: usize,
    limit: Duration,
) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    let deadline = tokio::time::Instant::now() + limit;
    while seen.len() < n {
        match tokio::time::timeout_at(deadline, platform.telemetry.recv()).await {
            Ok(Some(topic)) => {
                let device = topic.split('/').nth(1).unwrap_or_default().to_owned();
                *seen.entry(device).or_insert(0) += 1;
            }
            _ => break,
        }
    }
    seen
}

/// GET `path` through the gateway's HTTP listener as device `d` (with a forged identity header the gateway
/// must strip); returns the status code and body.
pub(crate) async fn http_get(
    node: &Node,
    gateway: SocketAddr,
    d: &Device,
    path: &str,
) -> anyhow::Result<(u16, String)> {
    let forged = "X-Smtrust-Device-Id: forged\r\n";
    let (code, body) =
        super::https::request(client_config(node, d)?, gateway, "GET", path, None, forged).await?;
    Ok((code, String::from_utf8_lossy(&body).into_owned()))
}
