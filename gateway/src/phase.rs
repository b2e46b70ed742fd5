//! The per-connection phases, as hooks a deployment can extend (pingora's `ProxyHttp`, cut
//! down to what a device gateway needs). The gateway's own checks run first in each phase;
//! a hook can only refuse more, never admit what the gateway refused.

use crate::Refusal;
use smtrust_tls::DeviceIdentity;
use std::net::SocketAddr;

/// What is known about a connection so far.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnContext {
    /// Listener name.
    pub listener: String,
    /// The peer's address.
    pub peer: SocketAddr,
    /// The device, once the handshake is done.
    pub identity: Option<DeviceIdentity>,
    /// The MQTT client id, once CONNECT is read.
    pub client_id: Option<String>,
}

/// Hooks called at each phase: `accept` (before the handshake) → handshake → `admit` →
/// per request / packet (decided by policy inside the gateway) → upstream → `logging` (always,
/// even after a refusal).
pub trait Phases: Send + Sync + 'static {
    /// A TCP connection arrived; refuse before any TLS work.
    fn accept(&self, _ctx: &ConnContext) -> Result<(), Refusal> {
        Ok(())
    }
    /// The device passed the gateway's admission; refuse more if needed.
    fn admit(&self, _ctx: &ConnContext) -> Result<(), Refusal> {
        Ok(())
    }
    /// The connection ended; `refusal` says why when it was refused or cut.
    fn logging(&self, _ctx: &ConnContext, _refusal: Option<&Refusal>) {}
}

/// No extra behaviour.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl Phases for NoHooks {}
