//! The gateway: shared state, start and shutdown, and the event entry point.

use crate::config::{Config, ListenerConfig, Mode};
use crate::event::{AttestationLookup, AttestationTable, CertStatus, GatewayEvent, RevocationSet};
use crate::metrics::Metrics;
use crate::passport::PassportSigner;
use crate::phase::{NoHooks, Phases};
use crate::registry::{CloseReason, Registry};
use crate::reload::ServerCert;
use crate::tls::{ListenerTls, SmTls};
use crate::{Error, admin, listener};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;

/// The settings in force (config, TLS) and handles to the state every generation shares
/// (registry, revocations, metrics, counters). A reload makes a new `Shared` with the new config
/// and the same handles; a connection keeps the one it was accepted with to its end.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) listeners: Vec<Arc<ListenerConfig>>,
    pub(crate) tls: Arc<ListenerTls>,
    pub(crate) policy: Arc<smtrust_policy::Engine>,
    /// Bumped after every policy change; live MQTT sessions re-decide their subscriptions.
    pub(crate) policy_epoch: Arc<watch::Sender<u64>>,
    pub(crate) revocations: Arc<RevocationSet>,
    pub(crate) passport: Option<Arc<PassportSigner>>,
    pub(crate) attestation_events: Arc<AttestationTable>,
    pub(crate) attestation: Option<Arc<dyn AttestationLookup>>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) hooks: Arc<dyn Phases>,
    pub(crate) connections: Arc<listener::ConnectionCount>,
    pub(crate) rate: Arc<listener::RateLimiter>,
}

impl Shared {
    /// The next generation: `config` with every shared handle of this one.
    pub(crate) fn with_config(&self, config: Config) -> Self {
        Self {
            listeners: config.listeners.iter().cloned().map(Arc::new).collect(),
            config,
            tls: Arc::clone(&self.tls),
            policy: Arc::clone(&self.policy),
            policy_epoch: Arc::clone(&self.policy_epoch),
            revocations: Arc::clone(&self.revocations),
            passport: self.passport.clone(),
            attestation_events: Arc::clone(&self.attestation_events),
            attestation: self.attestation.clone(),
            registry: Arc::clone(&self.registry),
            metrics: Arc::clone(&self.metrics),
            hooks: Arc::clone(&self.hooks),
            connections: Arc::clone(&self.connections),
            rate: Arc::clone(&self.rate),
        }
    }

    /// A listener of this generation by name.
    pub(crate) fn listener(&self, name: &str) -> Option<Arc<ListenerConfig>> {
        self.listeners.iter().find(|l| l.name == name).cloned()
    }
}

/// Where listeners find the generation in force when they accept.
pub(crate) type Current = Arc<RwLock<Arc<Shared>>>;

/// The generation in force.
pub(crate) fn load(current: &Current) -> Arc<Shared> {
    Arc::clone(&current.read().unwrap_or_else(|p| p.into_inner()))
}

/// A configured gateway. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) current: Current,
    metrics: Arc<Metrics>,
    policy: Arc<smtrust_policy::Engine>,
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
        let shared = self.shared();
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut admin_addr = None;
        if let Some(bind) = shared.config.admin {
            let (socket, addr) = bind_tcp(bind).await?;
            admin_addr = Some(addr);
            tracing::info!(%addr, "gateway admin (/metrics) listening");
            tasks.spawn(admin::serve(Arc::clone(&shared), socket, stop_rx.clone()));
        }
        let mut running = Running {
            gateway: self.clone(),
            admin: admin_addr,
            listeners: Vec::new(),
            stop: stop_tx,
            tasks,
        };
        let mut bound = Vec::new();
        for l in &shared.config.listeners {
            bound.push((l.clone(), bind_tcp(l.bind).await?));
        }
        for (l, socket) in bound {
            running.spawn_listener(&l, socket);
        }
        Ok(running)
    }

    /// The generation in force.
    pub(crate) fn shared(&self) -> Arc<Shared> {
        load(&self.current)
    }

    /// Applies an event: updates the revocation set or attestation table and closes the
    /// affected sessions at once. Returns how many sessions were closed.
    pub fn handle_event(&self, event: GatewayEvent) -> usize {
        let s = self.shared();
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
        &self.policy
    }

    /// Policy hot reload: activates `bundle` as `version`, its number in the policy store
    /// (`smtrust policy versions`; `Engine::activate_as`). New connections, requests and packets
    /// are decided by it at once; passports and `/metrics` carry `version`. Then every live MQTT
    /// session re-decides its connect permission and granted subscriptions. A session that lost
    /// either is closed: MQTT 5.0 gets DISCONNECT 0x87 first (see `docs/operations.md`, "Policy
    /// reload"). Sessions the new policy still allows stay up.
    pub fn activate_policy(&self, bundle: smtrust_policy::Bundle, version: u64) {
        self.policy.activate_as(bundle, version);
        self.policy_changed();
    }

    /// Tells live sessions that the engine's active version changed; call it after changing the
    /// engine directly (`Engine::activate_version`, `Engine::rollback`).
    pub fn policy_changed(&self) {
        self.shared().policy_epoch.send_modify(|e| *e += 1);
    }

    /// Counters, for `/metrics` and tests.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Number of admitted sessions now.
    pub fn session_count(&self) -> usize {
        self.shared().registry.len()
    }

    /// Whether any listener in force uses `mode`.
    pub fn has_mode(&self, mode: Mode) -> bool {
        self.shared()
            .config
            .listeners
            .iter()
            .any(|l| l.mode == mode)
    }

    /// The config in force (the last one [`Running::reload`] applied).
    pub fn config(&self) -> Config {
        self.shared().config.clone()
    }

    /// Replaces the passport signer (a renewed passport certificate): requests on connections
    /// accepted from now on get passports from `signer`; admitted connections keep the signer
    /// they were accepted with until they end. A gateway built without one gets one.
    pub fn replace_passport_signer(&self, signer: PassportSigner) {
        let signer = Arc::new(signer);
        self.update(|s| {
            let mut next = s.with_config(s.config.clone());
            next.passport = Some(signer);
            next
        });
    }

    /// Swaps in the generation `f` makes from the one in force, under the write lock, so two
    /// updates (a reload and a signer change) cannot lose each other.
    pub(crate) fn update(&self, f: impl FnOnce(&Shared) -> Shared) -> Arc<Shared> {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        let next = Arc::new(f(&current));
        *current = Arc::clone(&next);
        next
    }

    /// The server certificate new handshakes present. [`ServerCert::replace`] renews it at run
    /// time; established sessions are not affected.
    pub fn server_certificate(&self) -> Arc<ServerCert> {
        Arc::clone(&self.shared().tls.cert)
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
        require_passport(&self.config, self.passport.is_some())?;
        let revocations = Arc::new(RevocationSet::from_initial(self.revoked));
        let tls = self.tls.build(Arc::clone(&revocations))?;
        let metrics = Arc::new(Metrics::default());
        let shared = Shared {
            listeners: self
                .config
                .listeners
                .iter()
                .cloned()
                .map(Arc::new)
                .collect(),
            config: self.config,
            tls: Arc::new(tls),
            policy: Arc::clone(&self.policy),
            policy_epoch: Arc::new(watch::Sender::new(0)),
            passport: self.passport.map(Arc::new),
            revocations,
            attestation_events: Arc::new(AttestationTable::default()),
            attestation: self.attestation,
            registry: Arc::new(Registry::default()),
            metrics: Arc::clone(&metrics),
            hooks: self.hooks,
            connections: Arc::new(listener::ConnectionCount::default()),
            rate: Arc::new(listener::RateLimiter::default()),
        };
        Ok(Gateway {
            current: Arc::new(RwLock::new(Arc::new(shared))),
            metrics,
            policy: self.policy,
        })
    }
}

/// `http` listeners add passports: `config` needs a signer when it has one.
pub(crate) fn require_passport(config: &Config, has_signer: bool) -> Result<(), Error> {
    match config.listeners.iter().find(|l| l.mode == Mode::Http) {
        Some(l) if !has_signer => Err(Error::NoPassportSigner {
            listener: l.name.clone(),
        }),
        _ => Ok(()),
    }
}

/// Binds a listening socket and reads back its address (the port when 0 was asked).
pub(crate) async fn bind_tcp(bind: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let socket = TcpListener::bind(bind)
        .await
        .map_err(|source| Error::Bind { addr: bind, source })?;
    let addr = socket
        .local_addr()
        .map_err(|source| Error::Bind { addr: bind, source })?;
    Ok((socket, addr))
}

/// A started gateway.
pub struct Running {
    pub(crate) gateway: Gateway,
    admin: Option<SocketAddr>,
    pub(crate) listeners: Vec<Bound>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// A listener with its socket: the bind address as configured, the one bound, and the switch
/// that retires it on a reload.
pub(crate) struct Bound {
    pub(crate) name: String,
    pub(crate) configured: SocketAddr,
    pub(crate) addr: SocketAddr,
    pub(crate) retire: watch::Sender<bool>,
}

impl Running {
    /// The bound address of a listener, or of the admin endpoint as [`ADMIN`] (useful with port 0).
    pub fn local_addr(&self, listener: &str) -> Option<SocketAddr> {
        if listener == ADMIN {
            return self.admin;
        }
        self.listeners
            .iter()
            .find(|b| b.name == listener)
            .map(|b| b.addr)
    }

    /// Every listener in force with its bound address (kept ones first, then those a reload added).
    pub fn listener_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.listeners
            .iter()
            .map(|b| (b.name.clone(), b.addr))
            .collect()
    }

    /// Reaps the tasks of listeners a reload retired.
    pub(crate) fn reap(&mut self) {
        while self.tasks.try_join_next().is_some() {}
    }

    /// Starts accepting on `socket` for the listener named like `l`.
    pub(crate) fn spawn_listener(
        &mut self,
        l: &ListenerConfig,
        (socket, addr): (TcpListener, SocketAddr),
    ) {
        let (retire, retired) = watch::channel(false);
        tracing::info!(listener = %l.name, %addr, mode = ?l.mode, "gateway listening");
        self.tasks.spawn(listener::serve(
            Arc::clone(&self.gateway.current),
            l.name.clone(),
            socket,
            self.stop.subscribe(),
            retired,
        ));
        self.listeners.push(Bound {
            name: l.name.clone(),
            configured: l.bind,
            addr,
            retire,
        });
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
        // None: a grace past the clock's range (`Instant + Duration` would panic), so no deadline.
        let deadline = tokio::time::Instant::now().checked_add(grace);
        let shared = self.gateway.shared();
        let registry = &shared.registry;
        while registry.len() > 0 && deadline.is_none_or(|d| tokio::time::Instant::now() < d) {
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
            .shared()
            .registry
            .close_all(CloseReason::Shutdown);
        while self.tasks.join_next().await.is_some() {}
    }
}
