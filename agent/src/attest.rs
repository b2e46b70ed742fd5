//! Remote attestation from the device: ask for a challenge, measure, sign evidence with the identity key,
//! submit it, keep the signed result.
//!
//! Over the API listener (TLS 1.3-SM, the device certificate as client certificate):
//! 1. `POST /attest/v1/challenge` → `{"nonce", "expires_at"}` (a single-use nonce for this device);
//! 2. the measurements are taken (SM3 of each configured file) and the evidence is built and signed with the
//!    device key under the GM/T 0009 ID (`smtrust_attest::device::evidence_for_challenge`), with the device
//!    certificate and its intermediates as `x5c`;
//! 3. `POST /attest/v1/evidence` (`application/jose`) → the result JWS, whatever its status;
//! 4. the result is verified offline against the CA chain of the agent directory and stored in
//!    `attest/result.jws`.
//!
//! What to measure comes from `attest.json` in the agent directory ([`AttestConfig`]):
//! ```json
//! {
//!   "product_model": "ctw-sensor-3",
//!   "firmware_version": "1.4.2",
//!   "debug": 3,
//!   "measurements": [
//!     { "name": "bl2",      "kind": "boot-stage",    "path": "/boot/bl2.bin" },
//!     { "name": "firmware", "kind": "firmware",      "path": "/firmware/app.bin" },
//!     { "name": "config",   "kind": "configuration", "path": "etc/app.toml" }
//!   ]
//! }
//! ```
//! `debug` is the RFC 9711 `dbgstat` code (0 enabled, 1 disabled, 2 disabled since boot, 3 disabled
//! permanently, 4 disabled fully and permanently). `kind` is `boot-stage`, `firmware` or `configuration`.
//! A relative `path` is relative to the agent directory. Names must match the reference values the security
//! administrator registered for the model and firmware version.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hyper::body::Bytes;
use smtrust_attest::{AttestationResult, DebugState, MeasurementKind};
use smtrust_crypto::sm2::CertId;

use crate::est::Body;
use crate::{Agent, Error, EstServer, home};

/// The configuration file in the agent directory.
pub const CONFIG_FILE: &str = "attest.json";
/// The evidence media type (JWS compact serialization, RFC 7515 §9.2.1).
const JOSE: &str = "application/jose";
/// The last result, as the server signed it (JWS compact).
pub const RESULT_FILE: &str = "attest/result.jws";

/// What the device reports: model, firmware version, debug state and the files to measure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AttestConfig {
    /// Product model (evidence `hwmodel`).
    pub product_model: String,
    /// Firmware version (evidence `swversion`).
    pub firmware_version: String,
    /// RFC 9711 `dbgstat` code, 0..=4.
    pub debug: u8,
    /// The files to measure.
    pub measurements: Vec<MeasurementSpec>,
}

/// One file to measure with SM3.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MeasurementSpec {
    /// Name, unique within the evidence, as in the reference values.
    pub name: String,
    /// What it covers.
    pub kind: MeasurementKind,
    /// The file (relative: to the agent directory).
    pub path: PathBuf,
}

impl MeasurementSpec {
    /// A file to measure.
    pub fn new(name: impl Into<String>, kind: MeasurementKind, path: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            kind,
            path: path.into(),
        }
    }
}

impl AttestConfig {
    /// A configuration with no measurements yet (debug disabled permanently).
    pub fn new(product_model: impl Into<String>, firmware_version: impl Into<String>) -> Self {
        Self {
            product_model: product_model.into(),
            firmware_version: firmware_version.into(),
            debug: DebugState::DisabledPermanently.code(),
            measurements: Vec::new(),
        }
    }
}

/// What an attestation gave.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttestOutcome {
    /// The verified result (status, trust vector, reasons, validity).
    pub result: AttestationResult,
    /// Where the result JWS was stored.
    pub result_file: PathBuf,
    /// The names of the measurements sent.
    pub measured: Vec<String>,
}

impl serde::Serialize for AttestResultView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let r = self.0;
        let mut st = s.serialize_struct("AttestationResult", 9)?;
        st.serialize_field("status", &r.status)?;
        st.serialize_field("trust_vector", &r.trust_vector)?;
        st.serialize_field("reasons", &r.reasons)?;
        st.serialize_field("device_id", &r.device_id.as_ref().map(|d| d.as_str()))?;
        st.serialize_field("cert_serial", &r.cert_serial)?;
        st.serialize_field("policy_id", &r.policy_id)?;
        st.serialize_field("issued_at", &r.issued_at)?;
        st.serialize_field("expires_at", &r.expires_at)?;
        st.end()
    }
}

/// A JSON view of an [`AttestationResult`] (for `--json` output).
#[derive(Debug)]
pub struct AttestResultView<'a>(pub &'a AttestationResult);

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Agent {
    /// The attestation configuration (`attest.json` in the agent directory).
    pub fn attest_config(&self) -> Result<AttestConfig, Error> {
        let path = home::path(&self.dir, CONFIG_FILE);
        let text = home::read(&self.dir, CONFIG_FILE)?.ok_or(Error::Missing {
            what: "attestation configuration (attest.json)",
            dir: self.dir.clone(),
            hint: "write it (see the agent documentation) or pass the measurements on the command line",
        })?;
        serde_json::from_slice(&text).map_err(|e| Error::AttestConfig {
            path,
            message: e.to_string(),
        })
    }

    /// Store `cfg` as `attest.json`.
    pub fn set_attest_config(&self, cfg: &AttestConfig) -> Result<(), Error> {
        let text = serde_json::to_vec_pretty(cfg).map_err(|e| Error::AttestConfig {
            path: home::path(&self.dir, CONFIG_FILE),
            message: e.to_string(),
        })?;
        home::write(&self.dir, CONFIG_FILE, &text, false)
    }

    /// Attest to `server` (see the module documentation): challenge, measure, sign, submit, verify and store
    /// the result. `now` is the device's clock. A result that is not affirming is still `Ok`: read its
    /// `status` and `reasons`.
    pub async fn attest(
        &self,
        server: &EstServer,
        cfg: &AttestConfig,
        now: SystemTime,
    ) -> Result<AttestOutcome, Error> {
        let creds = self.credentials()?;
        let key = self.key()?;
        let device_id = smtrust_attest::DeviceId::new(self.device_id()?)?;
        let debug = DebugState::from_code(cfg.debug).ok_or_else(|| Error::AttestConfig {
            path: home::path(&self.dir, CONFIG_FILE),
            message: format!("debug must be 0..=4, not {}", cfg.debug),
        })?;
        let measurements = cfg
            .measurements
            .iter()
            .map(|m| {
                let path = self.resolve(&m.path);
                smtrust_attest::device::measure_file(m.name.clone(), m.kind, &path)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let measured = measurements.iter().map(|m| m.name.clone()).collect();
        let state = smtrust_attest::device::DeviceState {
            device_id,
            product_model: cfg.product_model.clone(),
            firmware_version: cfg.firmware_version.clone(),
            debug,
            measurements,
        };

        let challenge = server
            .request(
                Some(&creds),
                "attest challenge",
                "/attest/v1/challenge",
                None,
                Some(Body {
                    content_type: "application/json",
                    base64: false,
                    bytes: Bytes::new(),
                }),
            )
            .await?;
        let chain = self.chain()?;
        let mut x5c = vec![self.certificate()?.ok_or(Error::Missing {
            what: "device certificate (cert.pem)",
            dir: self.dir.clone(),
            hint: "enroll first",
        })?];
        x5c.extend(chain.iter().filter(|c| !crate::self_signed(c)).cloned());
        let signer = key.signing_key(CertId)?;
        let evidence = smtrust_attest::device::evidence_for_challenge(
            &challenge.body,
            &state,
            unix(now),
            &x5c,
            &signer,
        )?;
        let answer = server
            .request(
                Some(&creds),
                "attest evidence",
                "/attest/v1/evidence",
                None,
                Some(Body {
                    content_type: JOSE,
                    base64: false,
                    bytes: Bytes::from(evidence.into_bytes()),
                }),
            )
            .await?;
        // Check the signature before keeping it: a result is only worth storing if it verifies.
        let result = smtrust_attest::verify_result(&answer.body, &chain, now)?;
        home::write(&self.dir, RESULT_FILE, &answer.body, false)?;
        Ok(AttestOutcome {
            result,
            result_file: home::path(&self.dir, RESULT_FILE),
            measured,
        })
    }

    /// The last stored result, verified against the agent's CA chain at `now` (`None` if there is none).
    pub fn last_attestation(&self, now: SystemTime) -> Result<Option<AttestationResult>, Error> {
        match home::read(&self.dir, RESULT_FILE)? {
            Some(token) => Ok(Some(smtrust_attest::verify_result(
                &token,
                &self.chain()?,
                now,
            )?)),
            None => Ok(None),
        }
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }
}
