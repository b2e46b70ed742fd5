//! The gateway: shared state, start and shutdown, and the event entry point.

use crate::config::{Config, Mode};
use crate::event::{AttestationLookup, AttestationTable, CertStatus, GatewayEvent, RevocationSet};
use crate::metrics::Metrics;
use crate::passport::PassportSigner;
use crate::phase::{NoHooks, Phases};
use crate::registry::{CloseReason, Registry};
use crate::tls::{ListenerTls, SmTls};
use crate::{Error, admin, listener};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::task::JoinSet;

/// State shared by all listeners and connections.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) tls: ListenerTls,
    pub(crate) policy: Arc<smtrust_policy::Engine>,
    /// Bumped after every policy change; live MQTT sessions re-decide their subscriptions.
    pub(crate) policy_epoch: watch::Sender<u64>,
    pub(crate) revocations: Arc<RevocationSet>,
    pub(crate) passport: Option<PassportSigner>,
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
    tls: SmTls,
    passport: Option<PassportSigner>,
    revoked: Vec<(crate::CertKey, CertStatus)>,
    attestation: Option<Arc<dyn AttestationLookup>>,
    hooks: Arc<dyn Phases>,
}

/// The second step of [`Gateway::builder`]: give the TLS 1.3-SM material ([`SmTls`]).
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
        if let Some(bind) = self.shared.config.admin {
            let socket = tokio::net::TcpListener::bind(bind)
                .await
                .map_err(|source| Error::Bind { addr: bind, source })?;
            let addr = socket
                .local_addr()
                .map_err(|source| Error::Bind { addr: bind, source })?;
            addrs.push((ADMIN.to_owned(), addr));
            tracing::info!(%addr, "gateway admin (/metrics) listening");
            tasks.spawn(admin::serve(
                Arc::clone(&self.shared),
                socket,
                stop_rx.clone(),
            ));
        }
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

    /// The policy engine every decision is asked of.
    pub fn policy(&self) -> &Arc<smtrust_policy::Engine> {
        &self.shared.policy
    }

    /// Policy hot reload: activates `bundle` as the engine's next version (new connections,
    /// requests and packets are decided by it at once; passports carry its version), then has
    /// every live MQTT session re-decide its connect permission and granted subscriptions.
    /// A session that lost either is closed: MQTT 5.0 gets DISCONNECT 0x87 first (see
    /// `docs/operations.md`, "Policy reload"). Sessions the new policy still allows stay up.
    /// Returns the new version.
    pub fn activate_policy(&self, bundle: smtrust_policy::Bundle) -> u64 {
        let version = self.shared.policy.activate(bundle);
        self.policy_changed();
        version
    }

    /// Tells live sessions that the engine's active version changed; call it after changing the
    /// engine directly (`Engine::activate_version`, `Engine::rollback`).
    pub fn policy_changed(&self) {
        self.shared.policy_epoch.send_modify(|e| *e += 1);
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

/// The name [`Running::local_addr`] knows the admin endpoint by.
pub const ADMIN: &str = "admin";

impl NeedsTls {
    /// The TLS 1.3-SM material: server signer + chain, device trust roots.
    pub fn sm_tls(self, tls: SmTls) -> GatewayBuilder {
        GatewayBuilder {
            config: self.config,
            policy: self.policy,
            tls,
            passport: None,
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

    /// The signer of device passports (required by `http` listeners).
    pub fn passport(mut self, signer: PassportSigner) -> Self {
        self.passport = Some(signer);
        self
    }

    /// Extra phase hooks.
    pub fn hooks(mut self, hooks: Arc<dyn Phases>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Builds the TLS configs (the revocation set becomes the verifier's hook) and the gateway.
    pub fn build(self) -> Result<Gateway, Error> {
        if self.passport.is_none()
            && let Some(l) = self.config.listeners.iter().find(|l| l.mode == Mode::Http)
        {
            return Err(Error::NoPassportSigner {
                listener: l.name.clone(),
            });
        }
        let limits = self.config.limits;
        let revocations = Arc::new(RevocationSet::from_initial(self.revoked));
        let tls = self.tls.build(Arc::clone(&revocations))?;
        Ok(Gateway {
            shared: Arc::new(Shared {
                connections: Arc::new(Semaphore::new(limits.max_connections)),
                rate: listener::RateLimiter::new(limits.handshakes_per_source),
                config: self.config,
                tls,
                policy: self.policy,
                policy_epoch: watch::Sender::new(0),
                passport: self.passport,
                revocations,
                attestation_events: AttestationTable::default(),
                attestation: self.attestation,
                registry: Arc::new(Registry::default()),
                metrics: Metrics::default(),
                hooks: self.hooks,
            }),
        })
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
    /// The bound address of a listener, or of the admin endpoint as [`ADMIN`] (useful with port 0).
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

    /// Draining shutdown: stop accepting at once, let admitted sessions go on until they end by
    /// themselves or `grace` passes, then close the rest as [`Running::shutdown`] does. Returns
    /// how many sessions were still open at the deadline.
    pub async fn drain(self, grace: std::time::Duration) -> usize {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        let registry = &self.gateway.shared.registry;
        while registry.len() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let left = registry.len();
        self.shutdown().await;
        left
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
