//! One listener: accept → (limits) → handshake → admit → forward, and `logging` at the end.

use crate::config::{ListenerConfig, Mode};
use crate::event::{AttestationLookup, CertStatus};
use crate::gateway::Shared;
use crate::identity::DeviceIdentity;
use crate::phase::ConnContext;
use crate::{Refusal, mqtt, tcp};
use smtrust_policy::{AttestationStatus, DeviceAttributes, Principal};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Token bucket per source IP, checked before any TLS work.
pub(crate) struct RateLimiter {
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Above this many tracked sources, full buckets are pruned.
const MAX_TRACKED_SOURCES: usize = 100_000;

impl RateLimiter {
    pub(crate) fn new(per_second: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`; false when its bucket is empty.
    pub(crate) fn allow(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > MAX_TRACKED_SOURCES {
            let rate = self.per_second;
            buckets
                .retain(|_, (t, last)| *t + now.duration_since(*last).as_secs_f64() * rate < rate);
        }
        let (tokens, last) = buckets.entry(ip).or_insert((self.per_second, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second)
            .min(self.per_second);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Accepts until `stop` turns true.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    listener: Arc<ListenerConfig>,
    socket: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(Arc::clone(&shared.tls));
    loop {
        let (tcp, peer) = tokio::select! {
            r = socket.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(listener = %listener.name, error = %e, "accept failed");
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        shared
            .metrics
            .connections_total
            .fetch_add(1, Ordering::Relaxed);
        let mut ctx = ConnContext {
            listener: listener.name.clone(),
            peer,
            identity: None,
            client_id: None,
        };
        // Limits before the expensive handshake.
        let permit = match Arc::clone(&shared.connections).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                finish(&shared, &ctx, Some(Refusal::TooManyConnections));
                continue;
            }
        };
        if !shared.rate.allow(peer.ip()) {
            finish(&shared, &ctx, Some(Refusal::HandshakeRate));
            continue;
        }
        if let Err(r) = shared.hooks.accept(&ctx) {
            finish(&shared, &ctx, Some(r));
            continue;
        }
        let shared = Arc::clone(&shared);
        let listener = Arc::clone(&listener);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let outcome = connection(&shared, &listener, acceptor, tcp, &mut ctx, permit).await;
            finish(&shared, &ctx, outcome.err());
        });
    }
}

fn finish(shared: &Shared, ctx: &ConnContext, refusal: Option<Refusal>) {
    if let Some(r) = &refusal {
        shared.metrics.refused(r.as_str());
        let device = ctx.identity.as_ref().map(|i| i.device_id.as_str());
        tracing::debug!(listener = %ctx.listener, peer = %ctx.peer, device_id = device, reason = %r, source = ?r.source(), "connection refused or closed");
    }
    shared.hooks.logging(ctx, refusal.as_ref());
}

async fn connection(
    shared: &Arc<Shared>,
    listener: &ListenerConfig,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    ctx: &mut ConnContext,
    _permit: OwnedSemaphorePermit,
) -> Result<(), Refusal> {
    shared
        .metrics
        .connections_open
        .fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(shared);
    let _ = tcp.set_nodelay(true);
    let tls = handshake(shared, acceptor, tcp).await?;
    let identity = identity(&tls, listener)?;
    ctx.identity = Some(identity.clone());
    let attestation = match &shared.attestation {
        Some(lookup) => lookup.status(&identity.device_id),
        None => shared.attestation_events.status(&identity.device_id),
    };
    let principal = |client_id: &str| principal(&identity, attestation, client_id);
    admit(shared, &identity)?;
    let session = shared
        .registry
        .register(&identity.device_id, identity.cert.clone());
    // An event may have arrived between the set check and registration.
    admit(shared, &identity)?;
    match listener.mode {
        Mode::Tcp => {
            let p = principal("");
            decide_connect(shared, listener, &p)?;
            shared.hooks.admit(ctx)?;
            tracing::debug!(device_id = %identity.device_id, listener = %listener.name, "admitted");
            tcp::forward(shared, listener, tls, session.closed.clone()).await
        }
        Mode::Mqtt => {
            mqtt::proxy(
                shared,
                listener,
                tls,
                ctx,
                &principal,
                session.closed.clone(),
            )
            .await
        }
    }
}

struct OpenGuard<'a>(&'a Shared);
impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0
            .metrics
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

async fn handshake(
    shared: &Shared,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, Refusal> {
    let timeout = shared.config.limits.handshake_timeout;
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Err(_) => Err(Refusal::HandshakeTimeout),
        Ok(Err(e)) => Err(Refusal::Handshake(e.to_string())),
        Ok(Ok(tls)) => {
            shared
                .metrics
                .handshakes_total
                .fetch_add(1, Ordering::Relaxed);
            Ok(tls)
        }
    }
}

fn identity(
    tls: &TlsStream<TcpStream>,
    _listener: &ListenerConfig,
) -> Result<DeviceIdentity, Refusal> {
    // Anonymous clients (client_cert_required = false) are not admitted yet: every decision
    // needs a device principal.
    let end_entity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or(Refusal::NoClientCertificate)?;
    DeviceIdentity::from_certificate(end_entity.as_ref())
}

fn admit(shared: &Shared, identity: &DeviceIdentity) -> Result<(), Refusal> {
    match shared.revocations.status(&identity.cert) {
        CertStatus::Good => Ok(()),
        CertStatus::Suspended => Err(Refusal::Suspended),
        // Revoked, and anything a newer CA may add: fail closed.
        _ => Err(Refusal::Revoked),
    }
}

pub(crate) fn principal(
    identity: &DeviceIdentity,
    attestation: AttestationStatus,
    client_id: &str,
) -> Principal {
    Principal::device(
        DeviceAttributes {
            id: identity.device_id.clone(),
            product: String::new(),
            factory: String::new(),
            firmware: String::new(),
            attestation,
            groups: Vec::new(),
        },
        client_id,
    )
}

pub(crate) fn decide_connect(
    shared: &Shared,
    listener: &ListenerConfig,
    principal: &Principal,
) -> Result<(), Refusal> {
    let d = shared.policy.decide_connect(principal, &listener.name);
    if d.allowed {
        Ok(())
    } else {
        tracing::debug!(reasons = ?d.reasons, "connect denied by policy");
        Err(Refusal::PolicyConnect)
    }
}

/// Connects to the platform side.
pub(crate) async fn upstream(listener: &ListenerConfig) -> Result<TcpStream, Refusal> {
    let s = TcpStream::connect(listener.upstream)
        .await
        .map_err(|e| Refusal::Upstream(e.to_string()))?;
    let _ = s.set_nodelay(true);
    Ok(s)
}
