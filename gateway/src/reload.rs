//! Live reload of the gateway's own configuration ([`Running::reload`]) and of its server
//! certificate ([`ServerCert`]), without dropping admitted sessions.
//!
//! A reload is all or nothing: the new config is checked against what cannot change at run time
//! and every new socket is bound before anything is switched; any failure leaves the running
//! gateway exactly as it was. Then the new generation is swapped in whole. What that means per
//! listener (by name):
//! - same bind address: the socket is kept (no moment where connections are refused); new
//!   connections use the new mode, upstream, client-certificate rule and limits;
//! - added, or moved to another bind address: bound anew before the swap;
//! - removed (or the old address of a moved one): stops accepting at once.
//!
//! Admitted sessions are never touched by a reload: each keeps the settings it was accepted with
//! (upstream, idle timeout, packet size) until it ends by itself, is closed by an event
//! (revocation, suspension, attestation, policy), or the gateway shuts down or drains. This holds
//! for the sessions of a removed listener too. `max_connections` counts every open connection,
//! those admitted before the reload included.

mod certificate;

use crate::Error;
use crate::config::Config;
use crate::gateway::{Running, bind_tcp, require_passport};
pub use certificate::ServerCert;

/// What a [`Running::reload`] changed, by listener name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadReport {
    /// New listeners, now accepting.
    pub added: Vec<String>,
    /// Listeners gone: no longer accepting; their admitted sessions go on.
    pub removed: Vec<String>,
    /// Listeners on a new bind address: the new socket accepts, the old one no longer does.
    pub moved: Vec<String>,
    /// Listeners on the same socket whose settings changed (for new connections).
    pub changed: Vec<String>,
    /// Whether `[limits]` changed (for new connections).
    pub limits_changed: bool,
}

impl ReloadReport {
    /// Whether the new config was the same as the old one.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Running {
    /// Applies `config` to the running gateway: see the [module docs](crate::reload) for what
    /// changes and what does not. An error changes nothing: the admin endpoint cannot move at
    /// run time; an `http` listener needs the passport signer the gateway was built with; and a
    /// socket that cannot be bound fails the whole reload.
    pub async fn reload(&mut self, config: Config) -> Result<ReloadReport, Error> {
        self.reap();
        let old = self.gateway.shared();
        if config.admin != old.config.admin {
            return Err(Error::ConfigValue {
                listener: crate::ADMIN.to_owned(),
                problem: "the admin endpoint does not change at run time (restart the gateway)",
            });
        }
        require_passport(&config, old.passport.is_some())?;
        let mut report = ReloadReport {
            limits_changed: config.limits != old.config.limits,
            ..ReloadReport::default()
        };
        // Bind first: a failure here drops the new sockets and leaves everything as it was.
        let mut fresh = Vec::new();
        for l in &config.listeners {
            let kept = self
                .listeners
                .iter()
                .find(|b| b.name == l.name && b.configured == l.bind);
            match kept {
                Some(_) => {
                    if old.config.listener(&l.name) != Some(l) {
                        report.changed.push(l.name.clone());
                    }
                }
                None => {
                    fresh.push((l.clone(), bind_tcp(l.bind).await?));
                    if self.listeners.iter().any(|b| b.name == l.name) {
                        report.moved.push(l.name.clone());
                    } else {
                        report.added.push(l.name.clone());
                    }
                }
            }
        }
        let next = self.gateway.update(|s| s.with_config(config));
        // Retire the sockets no longer configured: gone, or moved elsewhere.
        let (keep, retire): (Vec<_>, Vec<_>) = std::mem::take(&mut self.listeners)
            .into_iter()
            .partition(|b| {
                next.config
                    .listener(&b.name)
                    .is_some_and(|l| l.bind == b.configured)
            });
        self.listeners = keep;
        for b in retire {
            let _ = b.retire.send(true);
            if next.config.listener(&b.name).is_none() {
                report.removed.push(b.name.clone());
            }
            tracing::info!(listener = %b.name, addr = %b.addr, "gateway listener retired by reload");
        }
        for (l, socket) in fresh {
            self.spawn_listener(&l, socket);
        }
        tracing::info!(?report, "gateway config reloaded");
        Ok(report)
    }
}
