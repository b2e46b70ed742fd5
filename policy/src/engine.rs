//! The engine the gateway asks: the active bundle behind an atomic pointer (hot reload without
//! locks on the decision path or dropped connections), an in-memory version history with
//! activate / rollback / diff, and dry runs of a candidate bundle.

use crate::Error;
use crate::bundle::Bundle;
use crate::decision::{Decision, Operation};
use crate::history::BundleDiff;
use crate::mqtt::{TopicFilter, TopicName};
use crate::principal::Principal;
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex, PoisonError};

struct Active {
    version: u64,
    bundle: Arc<Bundle>,
}

/// One entry of the version history.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VersionInfo {
    /// Version number: from 1 in activation order of new bundles, or the caller's own
    /// ([`Engine::with_version`], [`Engine::activate_as`]).
    pub version: u64,
    /// The bundle.
    pub bundle: Arc<Bundle>,
}

/// A decision that a candidate bundle would change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecisionChange {
    /// Index of the request in the dry-run input.
    pub index: usize,
    /// The active bundle's decision.
    pub active: Decision,
    /// The candidate's decision.
    pub candidate: Decision,
}

/// Policy decisions for the gateway; share it (`Arc<Engine>`) between connections.
pub struct Engine {
    active: ArcSwap<Active>,
    history: Mutex<Vec<VersionInfo>>,
}

impl Engine {
    /// An engine with `bundle` active as version 1.
    pub fn new(bundle: Bundle) -> Self {
        Self::with_version(bundle, 1)
    }

    /// An engine with `bundle` active as `version`: the number a version store gave it (the
    /// server's `smtrust policy` history, where 0 is the shipped default). Decisions carry it.
    pub fn with_version(bundle: Bundle, version: u64) -> Self {
        let bundle = Arc::new(bundle);
        Self {
            active: ArcSwap::from_pointee(Active {
                version,
                bundle: Arc::clone(&bundle),
            }),
            history: Mutex::new(vec![VersionInfo { version, bundle }]),
        }
    }

    /// An engine with the shipped default bundle.
    pub fn with_default_bundle() -> Result<Self, Error> {
        Ok(Self::new(Bundle::default_bundle()?))
    }

    fn history(&self) -> std::sync::MutexGuard<'_, Vec<VersionInfo>> {
        // The history is only appended to, so a panic elsewhere cannot leave it inconsistent.
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `bundle` to the history as a new version (one above the highest so far) and makes
    /// it active at once; decisions already running finish on the old one. Returns the new
    /// version.
    pub fn activate(&self, bundle: Bundle) -> u64 {
        let mut history = self.history();
        let version = history.iter().map(|v| v.version).max().map_or(1, |v| v + 1);
        Self::store(&self.active, &mut history, bundle, version);
        version
    }

    /// Makes `bundle` active at once as `version`, a number the caller's version store owns
    /// (the server's policy history): decisions, passports and metrics carry it. A history entry
    /// with that number is replaced (a store rollback re-activates its own older number).
    pub fn activate_as(&self, bundle: Bundle, version: u64) {
        let mut history = self.history();
        history.retain(|v| v.version != version);
        Self::store(&self.active, &mut history, bundle, version);
    }

    fn store(
        active: &ArcSwap<Active>,
        history: &mut Vec<VersionInfo>,
        bundle: Bundle,
        version: u64,
    ) {
        let bundle = Arc::new(bundle);
        history.push(VersionInfo {
            version,
            bundle: Arc::clone(&bundle),
        });
        active.store(Arc::new(Active { version, bundle }));
        tracing::info!(version, "policy bundle activated");
    }

    /// Makes an earlier (or later) version in the history active again.
    pub fn activate_version(&self, version: u64) -> Result<(), Error> {
        let history = self.history();
        let entry = history
            .iter()
            .find(|v| v.version == version)
            .ok_or(Error::UnknownVersion { version })?;
        self.active.store(Arc::new(Active {
            version,
            bundle: Arc::clone(&entry.bundle),
        }));
        tracing::info!(version, "policy bundle re-activated");
        Ok(())
    }

    /// Activates the version before the active one. Returns it.
    pub fn rollback(&self) -> Result<u64, Error> {
        let current = self.active_version();
        let previous = self
            .history()
            .iter()
            .map(|v| v.version)
            .filter(|v| *v < current)
            .max()
            .ok_or(Error::NoEarlierVersion { version: current })?;
        self.activate_version(previous)?;
        Ok(previous)
    }

    /// The active version.
    pub fn active_version(&self) -> u64 {
        self.active.load().version
    }

    /// The active bundle.
    pub fn active_bundle(&self) -> Arc<Bundle> {
        Arc::clone(&self.active.load().bundle)
    }

    /// Every version activated so far, in activation order (oldest first).
    pub fn versions(&self) -> Vec<VersionInfo> {
        self.history().clone()
    }

    /// What changed from version `from` to version `to`.
    pub fn diff(&self, from: u64, to: u64) -> Result<BundleDiff, Error> {
        let history = self.history();
        let get = |version| {
            history
                .iter()
                .find(|v| v.version == version)
                .map(|v| Arc::clone(&v.bundle))
                .ok_or(Error::UnknownVersion { version })
        };
        let (a, b) = (get(from)?, get(to)?);
        Ok(BundleDiff::between(&a, &b))
    }

    /// Decides every request with the active bundle and with `candidate`, and returns the ones
    /// whose outcome (allowed or not) would change.
    pub fn dry_run<'a>(
        &self,
        candidate: &Bundle,
        requests: impl IntoIterator<Item = (&'a Principal, &'a Operation)>,
    ) -> Vec<DecisionChange> {
        let active = self.active.load_full();
        requests
            .into_iter()
            .enumerate()
            .filter_map(|(index, (principal, op))| {
                let now = active.bundle.decide(principal, op, active.version);
                let then = candidate.decide(principal, op, 0);
                (now.allowed != then.allowed).then_some(DecisionChange {
                    index,
                    active: now,
                    candidate: then,
                })
            })
            .collect()
    }

    /// Decides any operation with the active bundle.
    pub fn decide(&self, principal: &Principal, op: &Operation) -> Decision {
        let active = self.active.load();
        active.bundle.decide(principal, op, active.version)
    }

    /// May this device connect on `listener` (the listener's configured name)?
    pub fn decide_connect(&self, principal: &Principal, listener: &str) -> Decision {
        self.decide(
            principal,
            &Operation::Connect {
                listener: listener.to_owned(),
            },
        )
    }

    /// May this principal call `method path`?
    pub fn decide_http(&self, principal: &Principal, method: &str, path: &str) -> Decision {
        self.decide(
            principal,
            &Operation::Http {
                method: method.to_owned(),
                path: path.to_owned(),
            },
        )
    }

    /// May this device PUBLISH to `topic`?
    pub fn decide_publish(&self, principal: &Principal, topic: &TopicName) -> Decision {
        self.decide(principal, &Operation::Publish(topic.clone()))
    }

    /// May this device SUBSCRIBE to `filter` (every topic it could ever receive)?
    pub fn decide_subscribe(&self, principal: &Principal, filter: &TopicFilter) -> Decision {
        self.decide(principal, &Operation::Subscribe(filter.clone()))
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("active_version", &self.active_version())
            .finish_non_exhaustive()
    }
}
