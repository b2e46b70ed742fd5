//! The batch engine: plan (journal every device), issue in chunks on every core, publish, commit, report.

use std::path::{Path, PathBuf};

use smtrust_crypto::pkcs8::KdfPrf;
use smtrust_crypto::sm2::{Sm2PublicKey, Sm2SecretKey};
use zeroize::Zeroizing;

use super::FactoryError;
use super::issuer::Issuer;
use super::journal::{CaRows, Journal, NewItem, Outcome, Pending};
use super::manifest::{self, InputFormat};
use super::output::{self, OutDir, Staged};

/// Serial length: 16 random bytes, top bit clear (positive INTEGER, RFC 5280 §4.1.2.2).
pub const SERIAL_LEN: usize = 16;
/// Devices per chunk: one journal transaction and one `syncfs` each.
const CHUNK: usize = 2048;

/// CSR mode or key-generation mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Mode {
    /// The devices made their keys and sent CSRs.
    Csr,
    /// smtrust generates each device's key pair and writes a bundle.
    KeyGen,
}

/// How a generated private key is protected in its bundle.
#[non_exhaustive]
pub enum KeyProtection {
    /// Encrypted PKCS#8 (PBES2, PBKDF2-HMAC-SHA256, SM4-CBC) under the batch passphrase.
    Passphrase {
        /// The passphrase (from a file or the environment, never a flag value).
        passphrase: Zeroizing<Vec<u8>>,
        /// PBKDF2 iterations per bundle.
        iterations: u32,
    },
    /// The PKCS#8 DER encrypted with SM2 to the line's transport public key.
    Envelope(Sm2PublicKey),
}

impl std::fmt::Debug for KeyProtection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Passphrase { iterations, .. } => {
                write!(f, "Passphrase {{ iterations: {iterations}, .. }}")
            }
            Self::Envelope(_) => f.write_str("Envelope(..)"),
        }
    }
}

impl KeyProtection {
    fn kind(&self) -> String {
        match self {
            Self::Passphrase { iterations, .. } => format!("pkcs8-pbes2/{iterations}"),
            Self::Envelope(pk) => format!("sm2-envelope/{}", hex::encode(pk.sm3_fingerprint())),
        }
    }
}

/// What to issue.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BatchSpec {
    /// CSR or key generation.
    pub mode: Mode,
    /// The manifest file or CSR directory.
    pub input: PathBuf,
    /// How to read it.
    pub format: InputFormat,
    /// Where outputs go.
    pub out: PathBuf,
    /// Most devices this issuer may hold across all batches; those beyond are refused.
    pub quota: Option<u64>,
    /// Unix time of the plan (certificates start 5 minutes before it).
    pub now: u64,
}

impl BatchSpec {
    /// A spec without a quota.
    pub fn new(mode: Mode, input: PathBuf, format: InputFormat, out: PathBuf, now: u64) -> Self {
        Self {
            mode,
            input,
            format,
            out,
            quota: None,
            now,
        }
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Params {
    mode: Mode,
    format: InputFormat,
    out: PathBuf,
    now: u64,
    keys: String,
}

/// Progress after each chunk.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Progress {
    /// Devices settled (issued or refused) so far, refusals at planning included.
    pub done: u64,
    /// Devices in the batch.
    pub total: u64,
}

/// A device that was not issued, and why.
#[derive(Clone, Debug, serde::Serialize)]
#[non_exhaustive]
pub struct RefusedItem {
    /// `line N` or the file name.
    pub source: String,
    /// The device id, if one could be read.
    pub device_id: Option<String>,
    /// Why.
    pub reason: String,
}

/// The per-batch report (also written to `<out>/report.json`).
#[derive(Clone, Debug, serde::Serialize)]
#[non_exhaustive]
pub struct BatchReport {
    /// The batch id (from the SM3 of the manifest, issuer and mode).
    pub batch_id: String,
    /// CSR or key generation.
    pub mode: Mode,
    /// Lines or files in the manifest.
    pub total: u64,
    /// Certificates issued.
    pub issued: u64,
    /// Devices refused.
    pub refused: u64,
    /// Serials burned by resumes (reserved, possibly signed, never published).
    pub resumed: bool,
    /// Every refusal with its reason.
    pub refusals: Vec<RefusedItem>,
    /// The output directory.
    pub out: PathBuf,
}

/// The factory: a journal database and an issuer.
pub struct Factory {
    journal: Journal,
    issuer: Issuer,
    threads: usize,
}

impl std::fmt::Debug for Factory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factory")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Factory {
    /// Open (or create) the journal in the SQLite database at `db`, issuing with `issuer` on every core.
    pub fn open(db: &Path, issuer: Issuer) -> Result<Self, FactoryError> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Self {
            journal: Journal::open(db)?,
            issuer,
            threads,
        })
    }

    /// Use `n` worker threads instead of one per core.
    pub fn with_threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Plan and run a batch. The same manifest with the same issuer and mode yields the same batch id:
    /// a finished batch is reported again without issuing, an unfinished one is resumed.
    pub fn batch(
        &mut self,
        spec: &BatchSpec,
        keys: Option<&KeyProtection>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<BatchReport, FactoryError> {
        let m = manifest::read(&spec.input, spec.format)?;
        let issuer_fpr = self.issuer.fingerprint();
        let mode_tag = format!("{:?}", spec.mode);
        let id_hash = smtrust_crypto::sm3::digest_parts(&[
            &m.sm3,
            issuer_fpr.as_bytes(),
            mode_tag.as_bytes(),
        ]);
        let id = hex::encode(id_hash.get(..16).unwrap_or_default());
        if self.journal.batch(&id)?.is_some() {
            return self.resume(&id, keys, progress);
        }
        let params = Params {
            mode: spec.mode,
            format: spec.format,
            out: spec.out.clone(),
            now: spec.now,
            keys: keys.map(KeyProtection::kind).unwrap_or_default(),
        };
        check_keys(&id, spec.mode, keys)?;
        let mut held = self
            .journal
            .held_devices(&issuer_fpr, self.issuer.label())?;
        let mut count = held.len() as u64;
        let mut items = Vec::with_capacity(m.entries.len() + m.refusals.len());
        for e in m.entries {
            let refused = if let Some(b) = held.get(&e.device_id) {
                Some(format!("already issued by this CA ({b})"))
            } else if !e.device_id.starts_with(self.issuer.namespace()) {
                Some(format!(
                    "device id outside the issuer's namespace {:?}",
                    self.issuer.namespace()
                ))
            } else if spec.quota.is_some_and(|q| count >= q) {
                Some(format!(
                    "issuer quota of {} devices reached",
                    spec.quota.unwrap_or_default()
                ))
            } else {
                None
            };
            let serial = if refused.is_none() {
                count += 1;
                held.insert(e.device_id.clone(), format!("batch {id}"));
                Some(fresh_serial()?)
            } else {
                None
            };
            items.push(NewItem {
                source: e.source,
                device_id: Some(e.device_id),
                payload: refused.is_none().then_some(e.payload),
                refused,
                serial,
            });
        }
        for r in m.refusals {
            items.push(NewItem {
                source: r.source,
                device_id: r.device_id,
                refused: Some(r.reason),
                serial: None,
                payload: None,
            });
        }
        let params_json =
            serde_json::to_string(&params).map_err(|e| FactoryError::Manifest(e.to_string()))?;
        let rows = self.ca_rows(spec.now);
        self.journal
            .create(&id, &issuer_fpr, &rows, &params_json, items)?;
        tracing::info!(batch = %id, "factory batch planned");
        self.run(&id, &params, keys, false, progress)
    }

    /// Finish batch `id` after a crash (or report it again if it is done).
    pub fn resume(
        &mut self,
        id: &str,
        keys: Option<&KeyProtection>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<BatchReport, FactoryError> {
        let (issuer, params, state) = self
            .journal
            .batch(id)?
            .ok_or_else(|| FactoryError::UnknownBatch(id.to_owned()))?;
        if issuer != self.issuer.fingerprint() {
            return Err(FactoryError::Mismatch {
                batch: id.to_owned(),
                what: "issuer",
            });
        }
        let params: Params =
            serde_json::from_str(&params).map_err(|e| FactoryError::Manifest(e.to_string()))?;
        if state == "done" {
            return self.finish(id, &params, true, false);
        }
        check_keys(id, params.mode, keys)?;
        if params.keys != keys.map(KeyProtection::kind).unwrap_or_default() {
            return Err(FactoryError::Mismatch {
                batch: id.to_owned(),
                what: "key protection",
            });
        }
        self.run(id, &params, keys, true, progress)
    }

    fn run(
        &mut self,
        id: &str,
        params: &Params,
        keys: Option<&KeyProtection>,
        resumed: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<BatchReport, FactoryError> {
        let out = OutDir::prepare(&params.out)?;
        if resumed {
            self.recover(id, params, &out)?;
        }
        let (total, pending) = self.journal.counts(id)?;
        let mut done = total - pending;
        progress(Progress { done, total });
        loop {
            let chunk = self.journal.pending(id, CHUNK)?;
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len() as u64;
            let (outcomes, staged) = self.issue_chunk(&chunk, params, keys, &out)?;
            out.publish(&staged)?;
            let rows = self.ca_rows(params.now);
            self.journal.commit(id, &rows, &outcomes)?;
            done += n;
            progress(Progress { done, total });
        }
        self.finish(id, params, resumed, true)
    }

    /// After a crash: adopt bundles already renamed into place (they are whole: rename is the last step),
    /// then re-reserve serials for everything still pending.
    fn recover(&mut self, id: &str, params: &Params, out: &OutDir) -> Result<(), FactoryError> {
        if params.mode == Mode::KeyGen {
            let mut adopted = Vec::new();
            for p in self.journal.pending(id, usize::MAX)? {
                let path = out.bundle_path(&p.device_id);
                if path.exists() {
                    let cert = output::adopt_bundle(&path, &p.serial, self.issuer.public_key())?;
                    adopted.push(Outcome::Issued { seq: p.seq, cert });
                }
            }
            tracing::info!(batch = %id, adopted = adopted.len(), "adopted bundles written before the crash");
            let rows = self.ca_rows(params.now);
            self.journal.commit(id, &rows, &adopted)?;
        }
        let rows = self.ca_rows(params.now);
        let burned = self.journal.reserve_again(id, &rows, &mut fresh_serial)?;
        tracing::info!(batch = %id, burned, "re-reserved serials of unfinished devices");
        Ok(())
    }

    fn ca_rows(&self, now: u64) -> CaRows {
        CaRows {
            label: self.issuer.label().to_owned(),
            profile: self.issuer.profile_name().to_owned(),
            now: i64::try_from(now).unwrap_or(i64::MAX),
        }
    }

    fn issue_chunk(
        &self,
        chunk: &[Pending],
        params: &Params,
        keys: Option<&KeyProtection>,
        out: &OutDir,
    ) -> Result<(Vec<Outcome>, Vec<Staged>), FactoryError> {
        let per = chunk.len().div_ceil(self.threads).max(1);
        let results: Vec<WorkerResult> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .chunks(per)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|p| self.issue_one(p, params, keys, out))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(FactoryError::Issuer("worker thread panicked".into()))
                    })
                })
                .collect()
        });
        let mut outcomes = Vec::with_capacity(chunk.len());
        let mut staged = Vec::with_capacity(chunk.len());
        for r in results {
            for (o, st) in r? {
                outcomes.push(o);
                staged.extend(st);
            }
        }
        Ok((outcomes, staged))
    }

    fn issue_one(
        &self,
        p: &Pending,
        params: &Params,
        keys: Option<&KeyProtection>,
        out: &OutDir,
    ) -> Result<(Outcome, Option<Staged>), FactoryError> {
        let serial = hex::decode(&p.serial)
            .map_err(|_| FactoryError::Issuer("journal serial is not hex".into()))?;
        match (params.mode, keys) {
            (Mode::Csr, _) => {
                let outcome = match crate::csr::parse_and_verify(&p.payload) {
                    Err(e) => Outcome::Refused {
                        seq: p.seq,
                        reason: e.to_string(),
                    },
                    Ok(csr) => match self.issuer.issue(&p.device_id, &csr, &serial, params.now)? {
                        Ok(cert) => Outcome::Issued { seq: p.seq, cert },
                        Err(reason) => Outcome::Refused { seq: p.seq, reason },
                    },
                };
                Ok((outcome, None))
            }
            (Mode::KeyGen, Some(k)) => {
                let sk = Sm2SecretKey::generate()?;
                let req = super::issuer::generated_key_request(&p.device_id, &sk)?;
                let cert = match self.issuer.issue(&p.device_id, &req, &serial, params.now)? {
                    Ok(cert) => cert,
                    Err(reason) => return Ok((Outcome::Refused { seq: p.seq, reason }, None)),
                };
                let key_pem = protect(&sk, k)?;
                let text = output::bundle_text(&key_pem, &cert, self.issuer.chain_pem())?;
                let staged = out.stage(&out.bundle_path(&p.device_id), text.as_bytes())?;
                Ok((Outcome::Issued { seq: p.seq, cert }, Some(staged)))
            }
            (Mode::KeyGen, None) => Err(FactoryError::Issuer(
                "key-generation mode needs a key protection".into(),
            )),
        }
    }

    /// Write CSR-mode outputs and the report from the journal (idempotent), mark the batch done.
    fn finish(
        &mut self,
        id: &str,
        params: &Params,
        resumed: bool,
        write: bool,
    ) -> Result<BatchReport, FactoryError> {
        let items = self.journal.items(id)?;
        let out = OutDir::prepare(&params.out)?;
        let mut report = BatchReport {
            batch_id: id.to_owned(),
            mode: params.mode,
            total: items.len() as u64,
            issued: 0,
            refused: 0,
            resumed,
            refusals: Vec::new(),
            out: params.out.clone(),
        };
        let mut jsonl = String::new();
        let mut staged = Vec::new();
        for it in &items {
            match (it.state.as_str(), &it.cert, &it.device_id) {
                ("issued", Some(cert), Some(dev)) => {
                    report.issued += 1;
                    if params.mode == Mode::Csr && write {
                        let pem = smtrust_crypto::pem::encode("CERTIFICATE", cert)?;
                        if params.format == InputFormat::CsrDir {
                            let text = format!("{}{}", pem.as_str(), self.issuer.chain_pem());
                            staged.push(out.stage(&out.cert_path(dev), text.as_bytes())?);
                        } else {
                            let line = serde_json::json!({
                                "device_id": dev, "serial": it.serial, "cert": pem.as_str(),
                            });
                            jsonl.push_str(&line.to_string());
                            jsonl.push('\n');
                        }
                    }
                }
                _ => {
                    report.refused += 1;
                    report.refusals.push(RefusedItem {
                        source: it.source.clone(),
                        device_id: it.device_id.clone(),
                        reason: it.reason.clone().unwrap_or_else(|| {
                            format!("not finished (state {}, seq {})", it.state, it.seq)
                        }),
                    });
                }
            }
        }
        if write {
            out.publish(&staged)?;
            if params.mode == Mode::Csr && params.format == InputFormat::CsrJsonl {
                out.write_file(&out.root().join("certs.jsonl"), jsonl.as_bytes())?;
            }
            out.write_file(
                &out.root().join("chain.pem"),
                self.issuer.chain_pem().as_bytes(),
            )?;
            let json = serde_json::to_vec_pretty(&report)
                .map_err(|e| FactoryError::Manifest(e.to_string()))?;
            out.write_file(&out.root().join("report.json"), &json)?;
            self.journal.finish(id)?;
        }
        tracing::info!(batch = %id, issued = report.issued, refused = report.refused, "factory batch done");
        Ok(report)
    }
}

fn check_keys(id: &str, mode: Mode, keys: Option<&KeyProtection>) -> Result<(), FactoryError> {
    if mode == Mode::KeyGen && keys.is_none() {
        return Err(FactoryError::Mismatch {
            batch: id.to_owned(),
            what: "key protection (none given)",
        });
    }
    Ok(())
}

/// 16 random bytes, top bit clear, never all-zero leading byte issues (first byte forced non-zero).
fn fresh_serial() -> Result<String, FactoryError> {
    let mut s = smtrust_crypto::rng::bytes::<SERIAL_LEN>()?;
    if let Some(b) = s.first_mut() {
        *b = (*b & 0x7f) | 0x01;
    }
    Ok(hex::encode(s))
}

fn protect(sk: &Sm2SecretKey, k: &KeyProtection) -> Result<String, FactoryError> {
    Ok(match k {
        KeyProtection::Passphrase {
            passphrase,
            iterations,
        } => {
            let der = smtrust_crypto::pkcs8::encrypt_pkcs8_with_iterations(
                sk,
                passphrase,
                KdfPrf::HmacSha256,
                *iterations,
            )?;
            smtrust_crypto::pem::encode(output::KEY_LABEL_PKCS8, &der)?.to_string()
        }
        KeyProtection::Envelope(pk) => {
            let der = smtrust_crypto::pkcs8::encode_der(sk)?;
            let ct = smtrust_crypto::sm2::encrypt_der(pk, &der)?;
            smtrust_crypto::pem::encode(output::KEY_LABEL_ENVELOPE, &ct)?.to_string()
        }
    })
}

/// What one signing thread returns for its part of a chunk.
type WorkerResult = Result<Vec<(Outcome, Option<Staged>)>, FactoryError>;
