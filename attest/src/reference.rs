//! Reference values: what a product model running a firmware version must measure, registered by a security
//! administrator, versioned with who and when. The JSON document is CoRIM-like (draft-ietf-rats-corim: an
//! environment, then reference-value triples of name → accepted digests); docs/attestation.md shows it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::Error;
use crate::evidence::{MAX_MEASUREMENTS, MeasurementKind, check_text, parse_digest};
use crate::identity::unix;

/// `profile` of reference-value documents.
pub const CORIM_PROFILE: &str = "urn:smtrust:corim:v1";
/// Largest document accepted by [`import`].
pub const MAX_DOCUMENT: usize = 1024 * 1024;

/// One expected measurement: any of `digests` is accepted (e.g. two signed builds of one config).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReferenceMeasurement {
    /// Measurement name, as the device reports it.
    pub name: String,
    /// What it covers.
    pub kind: MeasurementKind,
    /// Accepted SM3 digests.
    pub digests: Vec<[u8; 32]>,
}

impl ReferenceMeasurement {
    /// An expected measurement.
    pub fn new(name: impl Into<String>, kind: MeasurementKind, digests: Vec<[u8; 32]>) -> Self {
        Self {
            name: name.into(),
            kind,
            digests,
        }
    }
}

/// Who registered a version, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Registration {
    /// 1 for the first registration of a model and firmware version, then +1.
    pub version: u32,
    /// The security administrator's identity.
    pub registered_by: String,
    /// Unix seconds.
    pub registered_at: u64,
}

impl Registration {
    /// A registration record.
    pub fn new(version: u32, registered_by: impl Into<String>, registered_at: u64) -> Self {
        Self {
            version,
            registered_by: registered_by.into(),
            registered_at,
        }
    }
}

/// Reference values for one product model and firmware version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReferenceValues {
    /// Product model (evidence `hwmodel`).
    pub product_model: String,
    /// Firmware version (evidence `swversion`).
    pub firmware_version: String,
    /// Whether `dbgstat` 0 (enabled) is acceptable (development boards).
    pub debug_allowed: bool,
    /// Expected measurements; the evidence must report each, and nothing else.
    pub measurements: Vec<ReferenceMeasurement>,
    /// Set by the store when registered.
    pub registration: Option<Registration>,
}

impl ReferenceValues {
    /// Unregistered reference values; checked here.
    pub fn new(
        product_model: impl Into<String>,
        firmware_version: impl Into<String>,
        debug_allowed: bool,
        measurements: Vec<ReferenceMeasurement>,
    ) -> Result<Self, Error> {
        let v = Self {
            product_model: product_model.into(),
            firmware_version: firmware_version.into(),
            debug_allowed,
            measurements,
            registration: None,
        };
        v.check()?;
        Ok(v)
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |e: crate::jws::DecodeError| Error::InvalidReference(e.to_string());
        check_text(&self.product_model, "model").map_err(bad)?;
        check_text(&self.firmware_version, "firmware-version").map_err(bad)?;
        if self.measurements.is_empty() || self.measurements.len() > MAX_MEASUREMENTS {
            return Err(Error::InvalidReference("1 to 64 measurements".into()));
        }
        for (i, m) in self.measurements.iter().enumerate() {
            check_text(&m.name, "name").map_err(bad)?;
            if m.digests.is_empty() {
                return Err(Error::InvalidReference(format!("{}: no digests", m.name)));
            }
            if self
                .measurements
                .iter()
                .skip(i + 1)
                .any(|o| o.name == m.name)
            {
                return Err(Error::InvalidReference(format!("{}: duplicate", m.name)));
            }
        }
        Ok(())
    }

    /// The appraisal policy id results carry: `model/firmware/vN`.
    pub fn policy_id(&self) -> String {
        let v = self.registration.as_ref().map_or(0, |r| r.version);
        format!("{}/{}/v{v}", self.product_model, self.firmware_version)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct DocWire {
    profile: String,
    environment: EnvWire,
    #[serde(default)]
    debug_allowed: bool,
    reference_values: Vec<RefWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    registration: Option<RegWire>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct EnvWire {
    model: String,
    firmware_version: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RefWire {
    name: String,
    kind: MeasurementKind,
    digests: Vec<DigestWire>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DigestWire {
    alg: String,
    value: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RegWire {
    version: u32,
    registered_by: String,
    registered_at: u64,
}

/// Parse a JSON array of reference-value documents. A `registration` member, if present, is ignored on
/// import: the store assigns version, who and when.
pub fn import(json: &[u8]) -> Result<Vec<ReferenceValues>, Error> {
    if json.len() > MAX_DOCUMENT {
        return Err(Error::InvalidReference(format!(
            "{} bytes, limit 1 MiB",
            json.len()
        )));
    }
    let docs: Vec<DocWire> =
        serde_json::from_slice(json).map_err(|e| Error::InvalidReference(e.to_string()))?;
    docs.into_iter().map(from_wire).collect()
}

fn from_wire(d: DocWire) -> Result<ReferenceValues, Error> {
    if d.profile != CORIM_PROFILE {
        return Err(Error::InvalidReference(format!(
            "profile must be {CORIM_PROFILE}"
        )));
    }
    let mut measurements = Vec::with_capacity(d.reference_values.len());
    for r in d.reference_values {
        let mut digests = Vec::with_capacity(r.digests.len());
        for dg in r.digests {
            if dg.alg != "sm3" {
                return Err(Error::InvalidReference(format!("{}: only sm3", r.name)));
            }
            digests.push(
                parse_digest(&dg.value, "digests.value")
                    .map_err(|e| Error::InvalidReference(e.to_string()))?,
            );
        }
        measurements.push(ReferenceMeasurement::new(r.name, r.kind, digests));
    }
    ReferenceValues::new(
        d.environment.model,
        d.environment.firmware_version,
        d.debug_allowed,
        measurements,
    )
}

/// Write reference values as a JSON array of documents, registrations included.
pub fn export(values: &[ReferenceValues]) -> Result<String, Error> {
    let docs: Vec<DocWire> = values
        .iter()
        .map(|v| DocWire {
            profile: CORIM_PROFILE.to_string(),
            environment: EnvWire {
                model: v.product_model.clone(),
                firmware_version: v.firmware_version.clone(),
            },
            debug_allowed: v.debug_allowed,
            reference_values: v
                .measurements
                .iter()
                .map(|m| RefWire {
                    name: m.name.clone(),
                    kind: m.kind,
                    digests: m
                        .digests
                        .iter()
                        .map(|d| DigestWire {
                            alg: "sm3".to_string(),
                            value: hex::encode(d),
                        })
                        .collect(),
                })
                .collect(),
            registration: v.registration.as_ref().map(|r| RegWire {
                version: r.version,
                registered_by: r.registered_by.clone(),
                registered_at: r.registered_at,
            }),
        })
        .collect();
    Ok(serde_json::to_string_pretty(&docs)?)
}

/// Where reference values live. `register` assigns the next version atomically.
pub trait ReferenceStore: Send + Sync {
    /// Register `values` (its `registration` is ignored) as the next version; returns them registered.
    fn register(
        &self,
        values: &ReferenceValues,
        by: &str,
        now: SystemTime,
    ) -> impl Future<Output = Result<ReferenceValues, Error>> + Send;
    /// The latest version for a model and firmware version.
    fn latest(
        &self,
        product_model: &str,
        firmware_version: &str,
    ) -> impl Future<Output = Result<Option<ReferenceValues>, Error>> + Send;
    /// Every version for a model and firmware version, oldest first.
    fn history(
        &self,
        product_model: &str,
        firmware_version: &str,
    ) -> impl Future<Output = Result<Vec<ReferenceValues>, Error>> + Send;
    /// The latest version of every model and firmware version (for export).
    fn all_latest(&self) -> impl Future<Output = Result<Vec<ReferenceValues>, Error>> + Send;
}

type Key = (String, String);

/// A single-process [`ReferenceStore`].
#[derive(Debug, Default)]
pub struct MemoryReferenceStore {
    inner: Mutex<HashMap<Key, Vec<ReferenceValues>>>,
}

impl MemoryReferenceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`ReferenceStore::register`] without a runtime.
    pub fn register_now(
        &self,
        values: &ReferenceValues,
        by: &str,
        now: SystemTime,
    ) -> Result<ReferenceValues, Error> {
        values.check()?;
        let at = unix(now)?;
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let list = map
            .entry((
                values.product_model.clone(),
                values.firmware_version.clone(),
            ))
            .or_default();
        let mut v = values.clone();
        v.registration = Some(Registration {
            version: u32::try_from(list.len())
                .unwrap_or(u32::MAX)
                .saturating_add(1),
            registered_by: by.to_string(),
            registered_at: at,
        });
        list.push(v.clone());
        Ok(v)
    }

    /// [`ReferenceStore::latest`] without a runtime.
    pub fn latest_now(&self, model: &str, firmware: &str) -> Option<ReferenceValues> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(model.to_string(), firmware.to_string()))
            .and_then(|l| l.last().cloned())
    }
}

impl ReferenceStore for MemoryReferenceStore {
    async fn register(
        &self,
        values: &ReferenceValues,
        by: &str,
        now: SystemTime,
    ) -> Result<ReferenceValues, Error> {
        self.register_now(values, by, now)
    }

    async fn latest(&self, model: &str, firmware: &str) -> Result<Option<ReferenceValues>, Error> {
        Ok(self.latest_now(model, firmware))
    }

    async fn history(&self, model: &str, firmware: &str) -> Result<Vec<ReferenceValues>, Error> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map
            .get(&(model.to_string(), firmware.to_string()))
            .cloned()
            .unwrap_or_default())
    }

    async fn all_latest(&self) -> Result<Vec<ReferenceValues>, Error> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<ReferenceValues> =
            map.values().filter_map(|l| l.last().cloned()).collect();
        out.sort_by(|a, b| {
            (&a.product_model, &a.firmware_version).cmp(&(&b.product_model, &b.firmware_version))
        });
        Ok(out)
    }
}
