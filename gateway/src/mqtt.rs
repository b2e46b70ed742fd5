//! `mqtt` mode: CONNECT client id bound to the certificate, every PUBLISH and SUBSCRIBE decided
//! by policy in both directions, everything else passed through frame by frame.
//!
//! Codec choice: the gateway forwards frames verbatim and rewrites only SUBSCRIBE/SUBACK when a
//! filter is denied, so it needs a frame splitter and a few field readers that keep the raw
//! bytes, for 3.1.1 and 5.0 in both directions. `mqttbytes` (unmaintained since 2021) and
//! `rumqttc`'s `mqttbytes` decode into owned structs per version and re-encode, which would
//! silently change 5.0 properties we do not model; hence the small codec in `mqtt/codec.rs`.

pub(crate) mod codec;

use crate::Refusal;
use crate::config::{DeniedQos0, ListenerConfig};
use crate::gateway::Shared;
use crate::listener::{decide_connect, upstream};
use crate::phase::ConnContext;
use crate::registry::CloseReason;
use crate::tcp::closed_refusal;
use codec::{ParseError, Version, kind, reason};
use smtrust_policy::{Principal, TopicFilter, TopicName};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// Splits a byte stream into whole MQTT frames. Cancel-safe: state lives in `buf`.
pub(crate) struct FrameReader {
    buf: Vec<u8>,
    max: usize,
}

impl FrameReader {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            buf: Vec::with_capacity(4096),
            max,
        }
    }

    /// The next whole frame; `Ok(None)` at a clean end of stream.
    pub(crate) async fn next<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
    ) -> Result<Option<(codec::Header, Vec<u8>)>, Refusal> {
        loop {
            if let Some(h) = codec::header(&self.buf, self.max).map_err(refusal)?
                && self.buf.len() >= h.frame_len()
            {
                let rest = self.buf.split_off(h.frame_len());
                let frame = std::mem::replace(&mut self.buf, rest);
                return Ok(Some((h, frame)));
            }
            let mut chunk = [0u8; 8192];
            let n = r.read(&mut chunk).await.map_err(|_| Refusal::Malformed)?;
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(Refusal::Malformed)
                };
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

fn refusal(e: ParseError) -> Refusal {
    match e {
        ParseError::TooLarge { .. } => Refusal::Oversized,
        _ => Refusal::Malformed,
    }
}

fn body(h: &codec::Header, frame: &[u8]) -> Vec<u8> {
    frame.get(h.header_len..).unwrap_or_default().to_vec()
}

/// Per-connection MQTT state.
struct Session<'a> {
    shared: &'a Shared,
    listener: &'a ListenerConfig,
    principal: Principal,
    version: Version,
    /// SUBSCRIBEs waiting for the broker's SUBACK, by packet id.
    pending_subs: HashMap<u16, PendingSub>,
    /// Filters the broker granted (SUBACK code below 0x80) and the device has not unsubscribed:
    /// what a policy reload re-decides.
    subscriptions: HashSet<String>,
    /// QoS 2 PUBLISH ids from the broker the gateway refused (so it answers their PUBREL).
    refused_qos2: HashSet<u16>,
}

/// A SUBSCRIBE forwarded to the broker.
struct PendingSub {
    /// Per requested filter, `Some(code)` when the gateway denied it.
    verdicts: Vec<Option<u8>>,
    /// The filters sent to the broker, in order (its SUBACK codes follow this order).
    forwarded: Vec<String>,
}

/// What to do after looking at one frame.
enum Action {
    /// Forward these bytes to the other side.
    Forward(Vec<u8>),
    /// Answer the sender with these bytes.
    Reply(Vec<u8>),
    /// Drop silently.
    Drop,
    /// Send these bytes to the sender, then close.
    Close(Option<Vec<u8>>, Refusal),
}

pub(crate) async fn proxy<D>(
    shared: &Shared,
    listener: &ListenerConfig,
    device: D,
    ctx: &mut ConnContext,
    principal: &(dyn Fn(&str) -> Principal + Sync),
    mut closed: watch::Receiver<Option<CloseReason>>,
) -> Result<(), Refusal>
where
    D: AsyncRead + AsyncWrite + Unpin,
{
    let limits = shared.config.limits;
    let (mut dev_rd, mut dev_wr) = tokio::io::split(device);
    let mut dev_frames = FrameReader::new(limits.max_packet_size);
    // CONNECT comes first, within the handshake deadline.
    let (h, connect_frame) =
        match tokio::time::timeout(limits.handshake_timeout, dev_frames.next(&mut dev_rd)).await {
            Err(_) => return Err(Refusal::HandshakeTimeout),
            Ok(r) => r?.ok_or(Refusal::Malformed)?,
        };
    if h.kind != kind::CONNECT {
        return Err(Refusal::Malformed);
    }
    let b = body(&h, &connect_frame);
    let connect = codec::connect(h.flags, &b).map_err(refusal)?;
    let version = connect.version;
    let device_id = ctx
        .identity
        .as_ref()
        .map(|i| i.device_id.as_str().to_owned())
        .unwrap_or_default();
    ctx.client_id = Some(connect.client_id.to_owned());
    if connect.client_id != device_id {
        let code = match version {
            Version::V311 => reason::V311_ID_REJECTED,
            Version::V5 => reason::V5_CLIENT_ID_INVALID,
        };
        let _ = dev_wr
            .write_all(&codec::encode_connack(version, code))
            .await;
        let _ = dev_wr.shutdown().await;
        return Err(Refusal::ClientIdMismatch);
    }
    let principal = principal(connect.client_id);
    // Watch for policy changes from before the connect decision, so none is missed.
    let mut policy = shared.policy_epoch.subscribe();
    let mut policy_live = true;
    let admitted =
        decide_connect(shared, listener, &principal).and_then(|()| shared.hooks.admit(ctx));
    if let Err(r) = admitted {
        let code = match version {
            Version::V311 => reason::V311_NOT_AUTHORIZED,
            Version::V5 => reason::V5_NOT_AUTHORIZED,
        };
        let _ = dev_wr
            .write_all(&codec::encode_connack(version, code))
            .await;
        let _ = dev_wr.shutdown().await;
        return Err(r);
    }
    tracing::debug!(device_id = %device_id, listener = %listener.name, ?version, "mqtt admitted");
    let platform = upstream(listener).await?;
    let (mut up_rd, mut up_wr) = platform.into_split();
    up_wr
        .write_all(&connect_frame)
        .await
        .map_err(|e| Refusal::Upstream(e.to_string()))?;
    shared
        .metrics
        .bytes_upstream
        .fetch_add(connect_frame.len() as u64, Ordering::Relaxed);
    let mut up_frames = FrameReader::new(limits.max_packet_size);
    let mut s = Session {
        shared,
        listener,
        principal,
        version,
        pending_subs: HashMap::new(),
        subscriptions: HashSet::new(),
        refused_qos2: HashSet::new(),
    };
    let result = loop {
        let idle = tokio::time::sleep(limits.idle_timeout);
        tokio::select! {
            r = dev_frames.next(&mut dev_rd) => {
                let (h, frame) = match r { Ok(Some(f)) => f, Ok(None) => break Ok(()), Err(e) => break Err(e) };
                match s.on_device_frame(&h, frame) {
                    Action::Forward(bytes) => {
                        if up_wr.write_all(&bytes).await.is_err() { break Ok(()) }
                        shared.metrics.bytes_upstream.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    }
                    Action::Reply(bytes) => if dev_wr.write_all(&bytes).await.is_err() { break Ok(()) },
                    Action::Drop => {}
                    Action::Close(bytes, why) => {
                        if let Some(bytes) = bytes { let _ = dev_wr.write_all(&bytes).await; }
                        break Err(why);
                    }
                }
            }
            r = up_frames.next(&mut up_rd) => {
                let (h, frame) = match r { Ok(Some(f)) => f, Ok(None) => break Ok(()), Err(_) => break Err(Refusal::Upstream("malformed MQTT from broker".into())) };
                match s.on_broker_frame(&h, frame) {
                    Action::Forward(bytes) => {
                        if dev_wr.write_all(&bytes).await.is_err() { break Ok(()) }
                        shared.metrics.bytes_downstream.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    }
                    Action::Reply(bytes) => if up_wr.write_all(&bytes).await.is_err() { break Ok(()) },
                    Action::Drop => {}
                    Action::Close(_, why) => break Err(why),
                }
            }
            _ = closed.changed() => {
                let why = closed_refusal(*closed.borrow());
                if version == Version::V5 {
                    // 0x87 for a revoked/suspended/downgraded device; 0x8B server shutting down.
                    let code = if why == Refusal::Shutdown { 0x8B } else { reason::V5_NOT_AUTHORIZED };
                    let _ = dev_wr.write_all(&codec::encode_disconnect_v5(code)).await;
                }
                break Err(why);
            }
            r = policy.changed(), if policy_live => {
                policy_live = r.is_ok();
                if let Err(why) = s.recheck() {
                    // MQTT has no server-initiated UNSUBSCRIBE: tell a 5.0 device why it goes.
                    if version == Version::V5 {
                        let _ = dev_wr.write_all(&codec::encode_disconnect_v5(reason::V5_NOT_AUTHORIZED)).await;
                    }
                    break Err(why);
                }
            }
            () = idle => break Err(Refusal::Idle),
        }
    };
    let _ = dev_wr.shutdown().await;
    let _ = up_wr.shutdown().await;
    result
}

impl Session<'_> {
    /// After a policy change: may this session stay? It must still be allowed to connect and
    /// to hold every subscription the broker granted it.
    fn recheck(&self) -> Result<(), Refusal> {
        if decide_connect(self.shared, self.listener, &self.principal).is_err() {
            tracing::info!(
                client_id = self.principal.client_id(),
                "policy reload: connect no longer allowed"
            );
            return Err(Refusal::PolicyReload);
        }
        let withdrawn = self.subscriptions.iter().find(|f| !self.may_subscribe(f));
        match withdrawn {
            Some(filter) => {
                tracing::info!(client_id = self.principal.client_id(), filter = %filter, "policy reload: subscription withdrawn");
                Err(Refusal::PolicyReload)
            }
            None => Ok(()),
        }
    }

    fn may_subscribe(&self, filter: &str) -> bool {
        TopicFilter::parse(filter).is_ok_and(|f| {
            self.shared
                .policy
                .decide_subscribe(&self.principal, &f)
                .allowed
        })
    }

    fn on_device_frame(&mut self, h: &codec::Header, frame: Vec<u8>) -> Action {
        let b = body(h, &frame);
        match h.kind {
            kind::CONNECT => Action::Close(None, Refusal::Malformed), // a second CONNECT
            kind::PUBLISH => {
                let p = match codec::publish(h.flags, &b, self.version) {
                    Ok(p) => p,
                    Err(e) => return Action::Close(None, refusal(e)),
                };
                // An empty topic (5.0 topic alias) cannot be decided: refuse it.
                let allowed = TopicName::parse(p.topic).is_ok_and(|t| {
                    self.shared
                        .policy
                        .decide_publish(&self.principal, &t)
                        .allowed
                });
                if allowed {
                    return Action::Forward(frame);
                }
                self.shared
                    .metrics
                    .mqtt_publish_denied
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(topic = p.topic, qos = p.qos, "publish denied");
                match (self.version, p.qos, p.packet_id) {
                    (Version::V311, _, _) => Action::Close(None, Refusal::PolicyPublish),
                    (Version::V5, 1 | 2, Some(id)) => {
                        Action::Reply(codec::encode_ack_v5(p.qos, id, reason::V5_NOT_AUTHORIZED))
                    }
                    (Version::V5, _, _) => match self.listener.denied_qos0 {
                        DeniedQos0::Drop => Action::Drop,
                        DeniedQos0::Disconnect => Action::Close(
                            Some(codec::encode_disconnect_v5(reason::V5_NOT_AUTHORIZED)),
                            Refusal::PolicyPublish,
                        ),
                    },
                }
            }
            kind::SUBSCRIBE => {
                let sub = match codec::subscribe(h.flags, &b, self.version) {
                    Ok(s) => s,
                    Err(e) => return Action::Close(None, refusal(e)),
                };
                let deny = match self.version {
                    Version::V311 => reason::V311_SUBACK_FAILURE,
                    Version::V5 => reason::V5_NOT_AUTHORIZED,
                };
                let verdicts: Vec<Option<u8>> = sub
                    .filters
                    .iter()
                    .map(|(f, _)| (!self.may_subscribe(f)).then_some(deny))
                    .collect();
                let denied = verdicts.iter().filter(|v| v.is_some()).count();
                self.shared
                    .metrics
                    .mqtt_subscribe_denied
                    .fetch_add(denied as u64, Ordering::Relaxed);
                if denied == verdicts.len() {
                    let codes: Vec<u8> = verdicts.iter().map(|v| v.unwrap_or(deny)).collect();
                    return Action::Reply(codec::encode_suback(
                        sub.packet_id,
                        codec::empty_properties(self.version),
                        &codes,
                    ));
                }
                let allowed: Vec<(&str, u8)> = sub
                    .filters
                    .iter()
                    .zip(&verdicts)
                    .filter(|(_, v)| v.is_none())
                    .map(|(f, _)| *f)
                    .collect();
                let out = (denied > 0)
                    .then(|| codec::encode_subscribe(sub.packet_id, sub.properties, &allowed));
                let forwarded = allowed.iter().map(|(f, _)| (*f).to_owned()).collect();
                self.pending_subs.insert(
                    sub.packet_id,
                    PendingSub {
                        verdicts,
                        forwarded,
                    },
                );
                Action::Forward(out.unwrap_or(frame))
            }
            kind::UNSUBSCRIBE => {
                // Unparsable: the broker judges it; the filters stay on the re-decide list.
                if let Ok(filters) = codec::unsubscribe(h.flags, &b, self.version) {
                    for f in filters {
                        self.subscriptions.remove(f);
                    }
                }
                Action::Forward(frame)
            }
            _ => Action::Forward(frame),
        }
    }

    fn on_broker_frame(&mut self, h: &codec::Header, frame: Vec<u8>) -> Action {
        let b = body(h, &frame);
        match h.kind {
            kind::PUBLISH => {
                let Ok(p) = codec::publish(h.flags, &b, self.version) else {
                    return Action::Close(
                        None,
                        Refusal::Upstream("malformed PUBLISH from broker".into()),
                    );
                };
                // Receiving a topic is allowed when subscribing to exactly that topic would be.
                let allowed = TopicFilter::parse(p.topic).is_ok_and(|f| {
                    self.shared
                        .policy
                        .decide_subscribe(&self.principal, &f)
                        .allowed
                });
                if allowed {
                    return Action::Forward(frame);
                }
                self.shared
                    .metrics
                    .mqtt_publish_denied
                    .fetch_add(1, Ordering::Relaxed);
                // Complete the broker's flow ourselves so it does not retry.
                match (p.qos, p.packet_id) {
                    (1, Some(id)) => Action::Reply(codec::encode_ack_ok(1, id)),
                    (2, Some(id)) => {
                        self.refused_qos2.insert(id);
                        Action::Reply(codec::encode_ack_ok(2, id))
                    }
                    _ => Action::Drop,
                }
            }
            kind::PUBREL => match codec::pubrel_id(&b) {
                Ok(id) if self.refused_qos2.remove(&id) => Action::Reply(codec::encode_pubcomp(id)),
                _ => Action::Forward(frame),
            },
            kind::SUBACK => {
                let Ok(ack) = codec::suback(&b, self.version) else {
                    return Action::Forward(frame);
                };
                let Some(pending) = self.pending_subs.remove(&ack.packet_id) else {
                    return Action::Forward(frame);
                };
                for (filter, code) in pending.forwarded.into_iter().zip(ack.codes) {
                    if *code < 0x80 {
                        self.subscriptions.insert(filter);
                    }
                }
                if pending.verdicts.iter().all(Option::is_none) {
                    return Action::Forward(frame);
                }
                let mut from_broker = ack.codes.iter();
                let codes: Vec<u8> = pending
                    .verdicts
                    .iter()
                    .map(|v| v.or_else(|| from_broker.next().copied()).unwrap_or(0x80))
                    .collect();
                Action::Forward(codec::encode_suback(ack.packet_id, ack.properties, &codes))
            }
            _ => Action::Forward(frame),
        }
    }
}
