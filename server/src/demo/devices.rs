//! The device side of the demo: factory bootstrap identities, EST enrollment over TLS 1.3-SM through the
//! agent SDK, and attestation evidence signed with each device's identity key.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use der::{Decode, Encode};
use smtrust_agent::{Agent, EstServer};
use smtrust_attest::{Claims, DebugState, Measurement, MeasurementKind, ReferenceStore, Status};
use smtrust_ca::IssueRequest;
use smtrust_crypto::sm2::{CertId, Sm2SecretKey};
use tokio::sync::Semaphore;

use super::world::{LABEL, NAMESPACE};
use crate::node::Node;

/// The product the demo's devices are, and what their firmware measures to.
pub(crate) const MODEL: &str = "ctw-sensor-3";
pub(crate) const FIRMWARE: &str = "1.4.2";
const STAGES: [(&str, MeasurementKind, &[u8]); 3] = [
    (
        "bootloader",
        MeasurementKind::BootStage,
        b"ctw bootloader 2.1",
    ),
    (
        "firmware",
        MeasurementKind::Firmware,
        b"ctw-sensor-3 firmware 1.4.2",
    ),
    (
        "config",
        MeasurementKind::Configuration,
        b"telemetry_interval=10s",
    ),
];
/// Parallel EST enrollments and appraisals (a line controller's worth of devices at once).
const CONCURRENCY: usize = 32;

/// One simulated device: its ID and its agent directory.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub(crate) id: String,
    pub(crate) dir: PathBuf,
}

impl Device {
    pub(crate) fn agent(&self) -> anyhow::Result<Agent> {
        Ok(Agent::open(&self.dir)?)
    }

    /// The device's identity key as its firmware reads it from the agent directory.
    pub(crate) fn key(&self) -> anyhow::Result<Sm2SecretKey> {
        let pem = zeroize::Zeroizing::new(std::fs::read(self.dir.join("key.pem"))?);
        Ok(smtrust_crypto::pem::decode_private_key(&pem, None)?)
    }
}

pub(crate) fn device_id(i: usize) -> String {
    format!("{NAMESPACE}{i:010}")
}

/// Factory: each device makes a bootstrap key and CSR; the CA issues bootstrap certificates in batches;
/// the line installs them in the devices' agent directories. Returns the devices.
pub(crate) async fn factory(node: &Node, root: &Path, n: usize) -> anyhow::Result<Vec<Device>> {
    let reqs = super::steps::par_map(n, |i| {
        let sk = Sm2SecretKey::generate()?;
        let csr = csr(&sk, &format!("CN={}", device_id(i)))?;
        Ok((sk, csr))
    })?;
    let mut devices = Vec::with_capacity(n);
    let chain_pem = node.ca.chain_pem.clone();
    for (chunk_no, chunk) in reqs.chunks(1000).enumerate() {
        let batch: Vec<IssueRequest> = chunk
            .iter()
            .enumerate()
            .map(|(j, (_, csr))| {
                let id = smtrust_ca::DeviceId::new(&device_id(chunk_no * 1000 + j))?;
                Ok(IssueRequest::new(csr.clone(), Some(id)))
            })
            .collect::<anyhow::Result<_>>()?;
        let issued = node.ca().issue_batch(LABEL, "est-bootstrap", batch).await?;
        for (j, (result, (sk, _))) in issued.into_iter().zip(chunk).enumerate() {
            let cert = result.context("bootstrap certificate")?;
            let id = device_id(chunk_no * 1000 + j);
            let dir = root.join(&id);
            let agent = Agent::open(&dir)?;
            let mut pem = smtrust_ca::authority::pem_cert(&cert.der);
            pem.push_str(&chain_pem);
            let key = smtrust_crypto::pem::encode_private_key(sk)?;
            agent.install_bootstrap(pem.as_bytes(), key.as_bytes())?;
            devices.push(Device { id, dir });
        }
    }
    Ok(devices)
}

fn csr(sk: &Sm2SecretKey, subject: &str) -> anyhow::Result<Vec<u8>> {
    use x509_cert::builder::{Builder, RequestBuilder};
    let signing = sk.signing_key(CertId)?;
    let signer = smtrust_crypto::x509::X509Signer::new(&signing);
    let req = RequestBuilder::new(subject.parse()?)?
        .build::<_, smtrust_crypto::x509::DerSignature>(&signer)?;
    Ok(req.to_der()?)
}

/// Field enrollment: every device enrolls over EST on TLS 1.3-SM with its bootstrap certificate and gets
/// its operational identity under a new key. Returns how many enrolled.
pub(crate) async fn enroll(node: &Node, devices: &[Device]) -> anyhow::Result<usize> {
    let server = Arc::new(EstServer::new(
        &node.api_addr.to_string(),
        "localhost",
        node.trust_der.clone(),
    )?);
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for d in devices.iter().cloned() {
        let (server, gate) = (Arc::clone(&server), Arc::clone(&gate));
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let agent = d.agent()?;
            agent
                .enroll_with_bootstrap(&server, &d.id)
                .await
                .with_context(|| format!("{} enrolls", d.id))?;
            anyhow::Ok(())
        });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        match r? {
            Ok(()) => ok += 1,
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "enrollment failed"),
        }
    }
    Ok(ok)
}

/// The security administrator registers the firmware's reference values.
#[allow(clippy::disallowed_methods)] // the demo reads the clock
pub(crate) async fn register_references(node: &Node) -> anyhow::Result<()> {
    let measurements = STAGES
        .iter()
        .map(|(name, kind, bytes)| {
            smtrust_attest::reference::ReferenceMeasurement::new(
                *name,
                *kind,
                vec![Measurement::of_bytes(*name, *kind, bytes).digest],
            )
        })
        .collect();
    let values = smtrust_attest::ReferenceValues::new(MODEL, FIRMWARE, false, measurements)?;
    node.attest
        .references()
        .register(&values, "security-admin", SystemTime::now())
        .await?;
    Ok(())
}

/// Every device attests over the API (TLS 1.3-SM, its identity certificate): a fresh challenge, evidence with
/// its measurements signed by its identity key, the service's signed result, verified offline against the CA
/// chain. Device `tampered` reports a changed firmware image. Returns each status.
#[allow(clippy::disallowed_methods)] // the demo reads the clock
pub(crate) async fn attest(
    node: &Node,
    devices: &[Device],
    tampered: usize,
) -> anyhow::Result<Vec<Status>> {
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    let api = node.api_addr;
    for (i, d) in devices.iter().cloned().enumerate() {
        let gate = Arc::clone(&gate);
        let trust = node.trust_der.clone();
        let config = super::mqtt::client_config(node, &d)?;
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let https = |method, path, body| {
                super::https::request(Arc::clone(&config), api, method, path, body, "")
            };
            let (code, body) = https("POST", "/attest/v1/challenge", None).await?;
            anyhow::ensure!(code == 200, "challenge: HTTP {code}");
            let challenge: serde_json::Value = serde_json::from_slice(&body)?;
            let nonce = challenge["nonce"]
                .as_str()
                .context("challenge without nonce")?;
            let nonce =
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, nonce)?;
            let nonce = smtrust_attest::Nonce::from_slice(&nonce)
                .map_err(|e| anyhow::anyhow!("challenge nonce: {e}"))?;
            let measurements = STAGES
                .iter()
                .map(|(name, kind, bytes)| {
                    let image: &[u8] = if i == tampered && *name == "firmware" {
                        b"ctw-sensor-3 firmware 1.4.2 + implant"
                    } else {
                        bytes
                    };
                    Measurement::of_bytes(*name, *kind, image)
                })
                .collect();
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)?
                .as_secs();
            let claims = Claims::new(
                smtrust_attest::DeviceId::new(&d.id)?,
                nonce,
                now,
                MODEL,
                FIRMWARE,
                DebugState::DisabledPermanently,
                measurements,
            );
            let key = d.key()?;
            let signer = key.signing_key(CertId)?;
            let cert = d.agent()?.certificate()?.context("device certificate")?;
            let mut x5c = vec![cert];
            x5c.extend(trust.first().cloned());
            let evidence = smtrust_attest::device::sign_evidence(&claims, &x5c, &signer)?;
            let (code, token) = https(
                "POST",
                "/attest/v1/evidence",
                Some(("application/jose", evidence.as_bytes())),
            )
            .await?;
            anyhow::ensure!(code == 200, "evidence: HTTP {code}");
            // The device checks the signed result offline, as the platform would.
            let result = smtrust_attest::verify_result(&token, &trust, SystemTime::now())?;
            anyhow::Ok((i, result.status))
        });
    }
    let mut out = vec![Status::Contraindicated; devices.len()];
    while let Some(r) = tasks.join_next().await {
        let (i, s) = r??;
        if let Some(slot) = out.get_mut(i) {
            *slot = s;
        }
    }
    Ok(out)
}

/// The serial of a DER certificate, as the CA names it.
pub(crate) fn serial_of(cert_der: &[u8]) -> anyhow::Result<smtrust_ca::Serial> {
    let cert = x509_cert::Certificate::from_der(cert_der)?;
    smtrust_ca::Serial::from_slice(cert.tbs_certificate().serial_number().as_bytes())
        .context("a serial this CA did not make")
}
