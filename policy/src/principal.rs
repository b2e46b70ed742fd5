//! Who asks: a device (from its verified certificate and attestation result) or an admin.
//!
//! A [`Principal`] is built once per connection and kept by the caller. It caches the small
//! Cedar entity store a decision needs (its own entity, with its groups and their ancestors as
//! parents), so a decision never hands Cedar the whole fleet. The cache is keyed by bundle, so a
//! hot reload rebuilds it once, on the next decision.

use crate::Error;
use crate::bundle::Bundle;
use crate::fixed::{self, Outcomes};
use crate::mqtt::TopicFilter;
use crate::rule::{Bindings, Variable};
use arc_swap::ArcSwapOption;
use cedar_policy::{Entities, Entity, EntityId, EntityUid, RestrictedExpression};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, OnceLock};

/// The attestation state of a device, from the latest appraisal result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AttestationStatus {
    /// A fresh result says the device matches its reference values.
    Verified,
    /// The device has not attested (or attestation is not required for it).
    Unverified,
    /// The latest appraisal failed.
    Failed,
    /// The latest good result is too old.
    Expired,
}

impl AttestationStatus {
    /// The string Cedar policies see in `principal.attestation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Unverified => "unverified",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }
}

/// What the verified identity says about a device. The gateway fills this from the certificate
/// (device ID, product, factory) and the attestation result (firmware, status).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::exhaustive_structs)] // plain data, built with a struct literal by callers
pub struct DeviceAttributes {
    /// The device ID, e.g. `ctw-0000001234`.
    pub id: String,
    /// Product line.
    pub product: String,
    /// Factory that made the device.
    pub factory: String,
    /// Firmware version from the attestation evidence.
    pub firmware: String,
    /// Attestation state.
    pub attestation: AttestationStatus,
    /// Group ids (Cedar `Group` entities) the device is in; the bundle adds their ancestors.
    pub groups: Vec<String>,
}

/// The three separated admin roles (GB/T 39786-2021).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AdminRole {
    /// System administrator.
    System,
    /// Security administrator.
    Security,
    /// Audit administrator.
    Audit,
}

impl AdminRole {
    /// The string Cedar policies see in `principal.role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Security => "security",
            Self::Audit => "audit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Device(DeviceAttributes),
    Admin { id: String, role: AdminRole },
}

/// The per-bundle entity store of one principal.
pub(crate) struct Resolved {
    pub(crate) bundle_id: u64,
    pub(crate) uid: EntityUid,
    pub(crate) entities: Entities,
    /// The bundle's principal-only policies, decided for this principal.
    pub(crate) outcomes: Outcomes,
    /// Topic rules bound to this principal, filled on first use (the first rules only, so a
    /// bundle with many rules does not make every connection large).
    bound: Vec<OnceLock<Result<TopicFilter, Variable>>>,
}

/// How many topic rules a principal keeps bound.
const BOUND_CACHE: usize = 64;

impl Resolved {
    /// Rule `index` bound to the principal, from the cache when it has a place for it.
    pub(crate) fn bound(
        &self,
        index: usize,
        bind: impl FnOnce() -> Result<TopicFilter, Variable>,
    ) -> Result<Cow<'_, TopicFilter>, Variable> {
        match self.bound.get(index) {
            Some(cell) => cell
                .get_or_init(bind)
                .as_ref()
                .map(Cow::Borrowed)
                .map_err(|v| *v),
            None => bind().map(Cow::Owned),
        }
    }
}

/// The subject of a decision. Build once per connection (or session) and reuse it.
pub struct Principal {
    kind: Kind,
    client_id: String,
    cache: ArcSwapOption<Resolved>,
}

impl Principal {
    /// A device, with the MQTT ClientId of its connection (empty when not MQTT).
    pub fn device(attributes: DeviceAttributes, client_id: impl Into<String>) -> Self {
        Self {
            kind: Kind::Device(attributes),
            client_id: client_id.into(),
            cache: ArcSwapOption::empty(),
        }
    }

    /// An admin of the console or API.
    pub fn admin(id: impl Into<String>, role: AdminRole) -> Self {
        Self {
            kind: Kind::Admin {
                id: id.into(),
                role,
            },
            client_id: String::new(),
            cache: ArcSwapOption::empty(),
        }
    }

    /// The device attributes, when this is a device.
    pub fn device_attributes(&self) -> Option<&DeviceAttributes> {
        match &self.kind {
            Kind::Device(d) => Some(d),
            Kind::Admin { .. } => None,
        }
    }

    /// The MQTT ClientId given at construction.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub(crate) fn is_device(&self) -> bool {
        matches!(self.kind, Kind::Device(_))
    }

    /// The cached entity store for `bundle`, built on first use.
    pub(crate) fn resolve(&self, bundle: &Bundle) -> Result<Arc<Resolved>, Error> {
        if let Some(r) = self.cache.load_full()
            && r.bundle_id == bundle.instance_id()
        {
            return Ok(r);
        }
        let resolved = Arc::new(self.build(bundle)?);
        self.cache.store(Some(Arc::clone(&resolved)));
        Ok(resolved)
    }

    fn build(&self, bundle: &Bundle) -> Result<Resolved, Error> {
        let names = bundle.names();
        let store = bundle.entities();
        let (uid, attrs, mut parents) = match &self.kind {
            Kind::Device(d) => {
                let uid =
                    EntityUid::from_type_name_and_id(names.device.clone(), EntityId::new(&d.id));
                let attrs = HashMap::from([
                    (
                        "id".to_owned(),
                        RestrictedExpression::new_string(d.id.clone()),
                    ),
                    (
                        "product".to_owned(),
                        RestrictedExpression::new_string(d.product.clone()),
                    ),
                    (
                        "factory".to_owned(),
                        RestrictedExpression::new_string(d.factory.clone()),
                    ),
                    (
                        "firmware".to_owned(),
                        RestrictedExpression::new_string(d.firmware.clone()),
                    ),
                    (
                        "attestation".to_owned(),
                        RestrictedExpression::new_string(d.attestation.as_str().to_owned()),
                    ),
                    (
                        "attested".to_owned(),
                        RestrictedExpression::new_bool(
                            d.attestation == AttestationStatus::Verified,
                        ),
                    ),
                ]);
                let mut parents = HashSet::new();
                for g in &d.groups {
                    let guid =
                        EntityUid::from_type_name_and_id(names.group.clone(), EntityId::new(g));
                    if let Some(up) = store.ancestors(&guid) {
                        parents.extend(up.cloned());
                    }
                    parents.insert(guid);
                }
                (uid, attrs, parents)
            }
            Kind::Admin { id, role } => {
                let uid = EntityUid::from_type_name_and_id(names.admin.clone(), EntityId::new(id));
                let attrs = HashMap::from([(
                    "role".to_owned(),
                    RestrictedExpression::new_string(role.as_str().to_owned()),
                )]);
                (uid, attrs, HashSet::new())
            }
        };
        // Groups the bundle's own records give this principal (admin-managed membership).
        // Its attributes are not taken: the verified identity is the source of truth.
        if let Some(up) = store.ancestors(&uid) {
            parents.extend(up.cloned());
        }
        let entity = Entity::new(uid.clone(), attrs, parents)
            .map_err(|e| Error::PrincipalAttribute(Box::new(e)))?;
        let entities = Entities::from_entities([entity], Some(bundle.schema()))?;
        let outcomes = fixed::evaluate(&bundle.fixed, names, &bundle.authorizer, &uid, &entities);
        Ok(Resolved {
            bundle_id: bundle.instance_id(),
            uid,
            entities,
            outcomes,
            bound: (0..bundle.rules.len().min(BOUND_CACHE))
                .map(|_| OnceLock::new())
                .collect(),
        })
    }
}

impl Bindings for Principal {
    fn value(&self, var: Variable) -> Option<&str> {
        let device = self.device_attributes();
        match var {
            Variable::DeviceId => device.map(|d| d.id.as_str()),
            Variable::Product => device.map(|d| d.product.as_str()),
            Variable::Factory => device.map(|d| d.factory.as_str()),
            Variable::Firmware => device.map(|d| d.firmware.as_str()),
            Variable::ClientId => Some(self.client_id.as_str()).filter(|s| !s.is_empty()),
        }
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Clone for Principal {
    /// Clones the identity; the clone builds its own entity cache.
    fn clone(&self) -> Self {
        Self {
            kind: self.kind.clone(),
            client_id: self.client_id.clone(),
            cache: ArcSwapOption::empty(),
        }
    }
}
