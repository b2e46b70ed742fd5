//! The gateway: shared state, start and shutdown, and the event entry point.

use crate::config::{Config, Mode};
use crate::event::{AttestationLookup, AttestationTable, CertStatus, GatewayEvent, RevocationSet};
use crate::metrics::Metrics;
use crate::phase::{NoHooks, Phases};
use crate::registry::{CloseReason, Registry};
use crate::{Error, listener};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::task::JoinSet;

/// State shared by all listeners and connections.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) tls: Arc<rustls::ServerConfig>,
    pub(crate) policy: Arc<smtrust_policy::Engine>,
    pub(crate) revocations: RevocationSet,
    pub(crate) attestation_events: AttestationTable,
    pub(crate) attestation: Option<Arc<dyn AttestationLookup>>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) metrics: Metrics,
    pub(crate) hooks: Arc<dyn Phases>,
    pub(crate) connections: Arc<Semaphore>,
    pub(crate) rate: listener::RateLimiter,
}

/// A configured gateway. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) shared: Arc<Shared>,
}

/// Builds a [`Gateway`]: config and policy first, then TLS, then optional parts.
pub struct GatewayBuilder {
    config: Config,
    policy: Arc<smtrust_policy::Engine>,
    tls: Arc<rustls::ServerConfig>,
    revoked: Vec<(crate::CertKey, CertStatus)>,
    attestation: Option<Arc<dyn AttestationLookup>>,
    hooks: Arc<dyn Phases>,
}

/// Where to put the TLS server config: the `tls` crate's builder with the keystore signer and
/// trust roots makes it (client auth per listener is the verifier's job).
pub struct NeedsTls {
    config: Config,
    policy: Arc<smtrust_policy::Engine>,
}

impl Gateway {
    /// Starts building from a validated config and the policy engine.
    pub fn builder(config: Config, policy: Arc<smtrust_policy::Engine>) -> NeedsTls {
        NeedsTls { config, policy }
    }

    /// Binds every listener and starts serving.
    pub async fn start(&self) -> Result<Running, Error> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut addrs = Vec::new();
        for l in &self.shared.config.listeners {
            let socket = tokio::net::TcpListener::bind(l.bind)
                .await
                .map_err(|source| Error::Bind {
                    addr: l.bind,
                    source,
                })?;
            let addr = socket.local_addr().map_err(|source| Error::Bind {
                addr: l.bind,
                source,
            })?;
            addrs.push((l.name.clone(), addr));
            tracing::info!(listener = %l.name, %addr, mode = ?l.mode, "gateway listening");
            tasks.spawn(listener::serve(
                Arc::clone(&self.shared),
                Arc::new(l.clone()),
                socket,
                stop_rx.clone(),
            ));
        }
        Ok(Running {
            gateway: self.clone(),
            addrs,
            stop: stop_tx,
            tasks,
        })
    }

    /// Applies an event: updates the revocation set or attestation table and closes the
    /// affected sessions at once. Returns how many sessions were closed.
    pub fn handle_event(&self, event: GatewayEvent) -> usize {
        let s = &self.shared;
        let closed = match event {
            GatewayEvent::CertStatus { cert, status } => {
                s.revocations.apply(cert.clone(), status);
                match status {
                    CertStatus::Revoked => s.registry.close_cert(&cert, CloseReason::Revoked),
                    CertStatus::Suspended => s.registry.close_cert(&cert, CloseReason::Suspended),
                    CertStatus::Good => 0,
                }
            }
            GatewayEvent::Attestation { device_id, status } => {
                s.attestation_events.set(&device_id, status);
                0
            }
            GatewayEvent::AttestationDowngraded { device_id } => s
                .registry
                .close_device(&device_id, CloseReason::AttestationDowngraded),
        };
        s.metrics
            .sessions_closed_by_event
            .fetch_add(closed as u64, Ordering::Relaxed);
        closed
    }

    /// Applies every event from a broadcast channel (the in-process feed) until it closes.
    /// A lagging receiver logs and carries on: the set it missed is reloaded by the caller.
    pub fn follow(
        &self,
        mut events: broadcast::Receiver<GatewayEvent>,
    ) -> tokio::task::JoinHandle<()> {
        let gateway = self.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(e) => {
                        gateway.handle_event(e);
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "gateway event feed lagged");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }

    /// Counters, for `/metrics` and tests.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Number of admitted sessions now.
    pub fn session_count(&self) -> usize {
        self.shared.registry.len()
    }

    /// Whether any listener uses `mode`.
    pub fn has_mode(&self, mode: Mode) -> bool {
        self.shared.config.listeners.iter().any(|l| l.mode == mode)
    }
}

impl NeedsTls {
    /// The TLS server config (the `tls` crate's SM server config in production).
    pub fn tls(self, config: Arc<rustls::ServerConfig>) -> GatewayBuilder {
        GatewayBuilder {
            config: self.config,
            policy: self.policy,
            tls: config,
            revoked: Vec::new(),
            attestation: None,
            hooks: Arc::new(NoHooks),
        }
    }
}

impl GatewayBuilder {
    /// The revoked and suspended certificates at start.
    pub fn revoked(
        mut self,
        initial: impl IntoIterator<Item = (crate::CertKey, CertStatus)>,
    ) -> Self {
        self.revoked.extend(initial);
        self
    }

    /// Where attestation status is read (default: only what [`GatewayEvent::Attestation`] says).
    pub fn attestation(mut self, lookup: Arc<dyn AttestationLookup>) -> Self {
        self.attestation = Some(lookup);
        self
    }

    /// Extra phase hooks.
    pub fn hooks(mut self, hooks: Arc<dyn Phases>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Builds the gateway.
    pub fn build(self) -> Gateway {
        let limits = self.config.limits;
        let tls = self.tls;
        Gateway {
            shared: Arc::new(Shared {
                connections: Arc::new(Semaphore::new(limits.max_connections)),
                rate: listener::RateLimiter::new(limits.handshakes_per_source),
                config: self.config,
                tls,
                policy: self.policy,
                revocations: RevocationSet::from_initial(self.revoked),
                attestation_events: AttestationTable::default(),
                attestation: self.attestation,
                registry: Arc::new(Registry::default()),
                metrics: Metrics::default(),
                hooks: self.hooks,
            }),
        }
    }
}

/// A started gateway.
pub struct Running {
    gateway: Gateway,
    addrs: Vec<(String, SocketAddr)>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// The bound address of a listener (useful with port 0).
    pub fn local_addr(&self, listener: &str) -> Option<SocketAddr> {
        self.addrs
            .iter()
            .find(|(n, _)| n == listener)
            .map(|(_, a)| *a)
    }

    /// The gateway.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// Graceful shutdown: stop accepting, close admitted sessions, wait for listeners.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.gateway
            .shared
            .registry
            .close_all(CloseReason::Shutdown);
        while self.tasks.join_next().await.is_some() {}
    }
}
