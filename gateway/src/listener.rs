//! One listener: accept → (limits) → handshake → admit → forward, and `logging` at the end.

use crate::config::{ListenerConfig, Mode};
use crate::event::{AttestationLookup, CertStatus};
use crate::gateway::{Current, Shared, load};
use crate::identity::CertKey;
use crate::phase::ConnContext;
use crate::{Refusal, http, mqtt, tcp};
use smtrust_policy::{AttestationStatus, DeviceAttributes, Principal};
use smtrust_tls::DeviceIdentity;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

/// Token bucket per source IP, checked before any TLS work. The rate comes with each call, so a
/// reload changes it without forgetting the buckets.
#[derive(Default)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Above this many tracked sources, full buckets are pruned.
const MAX_TRACKED_SOURCES: usize = 100_000;

impl RateLimiter {
    /// Takes one token for `ip` at `per_second` (burst the same); false when its bucket is empty.
    pub(crate) fn allow(&self, ip: IpAddr, per_second: u32) -> bool {
        let rate = f64::from(per_second);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > MAX_TRACKED_SOURCES {
            buckets
                .retain(|_, (t, last)| *t + now.duration_since(*last).as_secs_f64() * rate < rate);
        }
        let (tokens, last) = buckets.entry(ip).or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Open connections across all listeners and generations; the maximum comes with each call, so
/// a lowered `max_connections` counts the sessions admitted before the reload too.
#[derive(Default)]
pub(crate) struct ConnectionCount(AtomicUsize);

/// One counted connection; dropping it frees the slot.
pub(crate) struct Slot(Arc<ConnectionCount>);

impl ConnectionCount {
    /// A slot when fewer than `max` are open.
    pub(crate) fn try_acquire(self: &Arc<Self>, max: usize) -> Option<Slot> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(self)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts until `stop` (the gateway stops) or `retired` (a reload removed or moved this
/// listener) turns true. Each connection takes the generation in force when it is accepted
/// (`current`) and keeps it to its end, so a reload changes only what comes after it.
pub(crate) async fn serve(
    current: Current,
    name: String,
    socket: TcpListener,
    mut stop: watch::Receiver<bool>,
    mut retired: watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            r = socket.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(listener = %name, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
            _ = retired.changed() => break,
        };
        let shared = load(&current);
        // Retired between the swap and the signal: this socket is no longer configured.
        let Some(listener) = shared.listener(&name) else {
            break;
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
        let limits = shared.config.limits;
        // Limits before the expensive handshake.
        let Some(permit) = shared.connections.try_acquire(limits.max_connections) else {
            finish(&shared, &ctx, Some(Refusal::TooManyConnections));
            continue;
        };
        if !shared.rate.allow(peer.ip(), limits.handshakes_per_source) {
            finish(&shared, &ctx, Some(Refusal::HandshakeRate));
            continue;
        }
        if let Err(r) = shared.hooks.accept(&ctx) {
            finish(&shared, &ctx, Some(r));
            continue;
        }
        tokio::spawn(async move {
            let outcome = connection(&shared, &listener, tcp, &mut ctx, permit).await;
            finish(&shared, &ctx, outcome.err());
        });
    }
    tracing::info!(listener = %name, "gateway listener stopped accepting");
}

fn finish(shared: &Shared, ctx: &ConnContext, refusal: Option<Refusal>) {
    if let Some(r) = &refusal {
        shared.metrics.refused(r.as_str());
        let device = ctx.identity.as_ref().map(|i| i.device_id.as_str());
        let serial = ctx.identity.as_ref().map(DeviceIdentity::serial_hex);
        tracing::debug!(listener = %ctx.listener, peer = %ctx.peer, device_id = device, serial, reason = %r, source = ?r.source(), "connection refused or closed");
    }
    shared.hooks.logging(ctx, refusal.as_ref());
}

async fn connection(
    shared: &Arc<Shared>,
    listener: &ListenerConfig,
    tcp: TcpStream,
    ctx: &mut ConnContext,
    _permit: Slot,
) -> Result<(), Refusal> {
    shared
        .metrics
        .connections_open
        .fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(shared);
    let _ = tcp.set_nodelay(true);
    let tls = handshake(shared, listener, tcp).await?;
    let identity = identity(&tls)?;
    ctx.identity = Some(identity.clone());
    let cert = CertKey::of_identity(&identity);
    let device_id = identity.device_id.as_str().to_owned();
    let attestation = attestation(shared, &device_id);
    let principal = |client_id: &str| principal(&identity, attestation, client_id);
    admit(shared, &cert, attestation)?;
    let session = shared.registry.register(&device_id, cert.clone());
    // An event may have arrived between the set check and registration.
    admit(shared, &cert, attestation)?;
    match listener.mode {
        Mode::Tcp => {
            let p = principal("");
            decide_connect(shared, listener, &p)?;
            shared.hooks.admit(ctx)?;
            tracing::debug!(device_id = %device_id, listener = %listener.name, "admitted");
            tcp::forward(shared, listener, tls, session.closed.clone()).await
        }
        Mode::Http => {
            let p = principal("");
            decide_connect(shared, listener, &p)?;
            shared.hooks.admit(ctx)?;
            tracing::debug!(device_id = %device_id, listener = %listener.name, "admitted");
            let device = http::Device {
                identity: &identity,
                principal: p,
                attestation,
            };
            http::serve(shared, listener, tls, device, session.closed.clone()).await
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

/// ClientHello first (SM or international, `smtrust_tls::DualConfig`), then the handshake with
/// the chosen config; the whole exchange within the handshake deadline.
async fn handshake(
    shared: &Shared,
    listener: &ListenerConfig,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, Refusal> {
    let (dual, sm) = shared
        .tls
        .for_listener(listener.client_cert_required, listener.mode == Mode::Http);
    let started = Instant::now();
    let run = async {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp)
            .await
            .map_err(|e| tls_refusal(&e))?;
        match dual.choose(&start.client_hello()) {
            Ok((_stack, config)) => start.into_stream(config).await.map_err(|e| tls_refusal(&e)),
            Err(refusal) => {
                // The SM-only config shares nothing with this client: rustls sends the alert.
                let _ = start.into_stream(Arc::clone(sm)).await;
                Err(Refusal::Tls(refusal))
            }
        }
    };
    match tokio::time::timeout(shared.config.limits.handshake_timeout, run).await {
        Err(_) => Err(Refusal::HandshakeTimeout),
        Ok(Err(r)) => Err(r),
        Ok(Ok(tls)) => {
            shared.metrics.handshake_done(started.elapsed());
            Ok(tls)
        }
    }
}

/// The typed refusal inside a tokio-rustls I/O error, when our verifier or listener made one.
fn tls_refusal(e: &std::io::Error) -> Refusal {
    let Some(err) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return Refusal::Handshake(e.to_string());
    };
    if let Some(r) = smtrust_tls::Refusal::from_rustls(err) {
        return Refusal::Tls(r);
    }
    match err {
        rustls::Error::NoCertificatesPresented => Refusal::NoClientCertificate,
        other => Refusal::Handshake(other.to_string()),
    }
}

/// The identity of the verified client certificate (`smtrust_tls::DeviceIdentity`).
fn identity(tls: &TlsStream<TcpStream>) -> Result<DeviceIdentity, Refusal> {
    // Anonymous clients (client_cert_required = false) are not admitted yet: every decision
    // needs a device principal.
    DeviceIdentity::from_connection(tls.get_ref().1).map_err(|e| match e {
        smtrust_tls::IdentityError::NoPeerCertificate => Refusal::NoClientCertificate,
        _ => Refusal::NoDeviceId,
    })
}

fn attestation(shared: &Shared, device_id: &str) -> AttestationStatus {
    match &shared.attestation {
        Some(lookup) => lookup.status(device_id),
        None => shared.attestation_events.status(device_id),
    }
}

/// The in-memory checks after the handshake: the set may have changed since the verifier ran,
/// and a contraindicated attestation is refused whatever the policy says.
fn admit(shared: &Shared, cert: &CertKey, attestation: AttestationStatus) -> Result<(), Refusal> {
    match shared.revocations.status(cert) {
        CertStatus::Good => {}
        CertStatus::Suspended => return Err(Refusal::Suspended),
        // Revoked, and anything a newer CA may add: fail closed.
        _ => return Err(Refusal::Revoked),
    }
    if attestation == AttestationStatus::Failed {
        return Err(Refusal::AttestationContraindicated);
    }
    Ok(())
}

pub(crate) fn principal(
    identity: &DeviceIdentity,
    attestation: AttestationStatus,
    client_id: &str,
) -> Principal {
    Principal::device(
        DeviceAttributes {
            id: identity.device_id.as_str().to_owned(),
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
