//! The batch engine: plan (journal every device), issue in chunks on every core, publish, commit, report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::FactoryError;
use super::issuer::Issuer;
use super::journal::{CaRows, Journal, NewItem, Outcome};
use super::keys::{KeyProtection, RunKeys};
use super::manifest::{self, InputFormat};
use super::output::{self, OutDir, Staged};
use super::timing::{Clock, Stage, Timings};
use super::worker::Worker;

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
pub(crate) struct Params {
    pub(crate) mode: Mode,
    pub(crate) format: InputFormat,
    pub(crate) out: PathBuf,
    pub(crate) now: u64,
    pub(crate) keys: String,
    /// Salt of the batch KDF (derived-passphrase bundles), hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) kdf_salt: Option<String>,
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
    /// Devices not yet settled (only while a batch is running or interrupted).
    pub pending: u64,
    /// Serials burned by resumes (reserved, possibly signed, never published).
    pub resumed: bool,
    /// Every refusal with its reason.
    pub refusals: Vec<RefusedItem>,
    /// The output directory.
    pub out: PathBuf,
    /// Where this run's time went (absent when a finished batch is only re-reported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
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
        let clock = Clock::default();
        let started = Instant::now();
        match self.plan_timed(spec, keys, &clock, started)? {
            (id, Some(params)) => self.run(&id, &params, keys, false, progress, &clock, started),
            (id, None) => self.resume_timed(&id, keys, progress, &clock, started),
        }
    }

    /// Plan a batch (every device journaled, serials reserved) without issuing, or find it planned; returns
    /// its id. [`Factory::resume`] then issues it.
    pub fn plan(
        &mut self,
        spec: &BatchSpec,
        keys: Option<&KeyProtection>,
    ) -> Result<String, FactoryError> {
        Ok(self
            .plan_timed(spec, keys, &Clock::default(), Instant::now())?
            .0)
    }

    /// (batch id, its parameters if planned now; `None` if it already existed).
    fn plan_timed(
        &mut self,
        spec: &BatchSpec,
        keys: Option<&KeyProtection>,
        clock: &Clock,
        started: Instant,
    ) -> Result<(String, Option<Params>), FactoryError> {
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
            return Ok((id, None));
        }
        let params = Params {
            mode: spec.mode,
            format: spec.format,
            out: spec.out.clone(),
            now: spec.now,
            keys: keys.map(KeyProtection::kind).unwrap_or_default(),
            kdf_salt: match keys {
                Some(KeyProtection::DerivedPassphrase { .. }) => Some(super::keys::fresh_salt()?),
                _ => None,
            },
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
        clock.add(Stage::Plan, started);
        tracing::info!(batch = %id, "factory batch planned");
        Ok((id, Some(params)))
    }

    /// Finish batch `id` after a crash (or report it again if it is done).
    pub fn resume(
        &mut self,
        id: &str,
        keys: Option<&KeyProtection>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<BatchReport, FactoryError> {
        self.resume_timed(id, keys, progress, &Clock::default(), Instant::now())
    }

    /// The batch's current report from the journal, without issuing or writing anything.
    pub fn report(&mut self, id: &str) -> Result<BatchReport, FactoryError> {
        let params = self.params(id)?;
        self.finish(id, &params, false, false, &Clock::default(), None)
    }

    /// The journaled parameters of batch `id`.
    fn params(&mut self, id: &str) -> Result<Params, FactoryError> {
        let (_, params, _) = self
            .journal
            .batch(id)?
            .ok_or_else(|| FactoryError::UnknownBatch(id.to_owned()))?;
        serde_json::from_str(&params).map_err(|e| FactoryError::Manifest(e.to_string()))
    }

    /// The issued certificates of batch `id` in journal order: (device id, serial hex, certificate DER).
    pub fn certificates(
        &mut self,
        id: &str,
    ) -> Result<Vec<(String, String, Vec<u8>)>, FactoryError> {
        Ok(self
            .journal
            .items(id)?
            .into_iter()
            .filter_map(
                |it| match (it.state.as_str(), it.device_id, it.serial, it.cert) {
                    ("issued", Some(d), Some(s), Some(c)) => Some((d, s, c)),
                    _ => None,
                },
            )
            .collect())
    }

    /// The batch KDF salt (hex) of a derived-passphrase batch, `None` for other batches. Not secret; lets an
    /// API check a resuming caller's passphrase against a bundle already written.
    pub fn kdf_salt(&mut self, id: &str) -> Result<Option<String>, FactoryError> {
        Ok(self.params(id)?.kdf_salt)
    }

    fn resume_timed(
        &mut self,
        id: &str,
        keys: Option<&KeyProtection>,
        progress: &mut dyn FnMut(Progress),
        clock: &Clock,
        started: Instant,
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
            return self.finish(id, &params, true, false, clock, None);
        }
        check_keys(id, params.mode, keys)?;
        if params.keys != keys.map(KeyProtection::kind).unwrap_or_default() {
            return Err(FactoryError::Mismatch {
                batch: id.to_owned(),
                what: "key protection",
            });
        }
        self.run(id, &params, keys, true, progress, clock, started)
    }

    #[allow(clippy::too_many_arguments)] // one private call chain; a struct would only rename them
    fn run(
        &mut self,
        id: &str,
        params: &Params,
        keys: Option<&KeyProtection>,
        resumed: bool,
        progress: &mut dyn FnMut(Progress),
        clock: &Clock,
        started: Instant,
    ) -> Result<BatchReport, FactoryError> {
        let out = OutDir::prepare(&params.out)?;
        if resumed {
            self.recover(id, params, &out)?;
        }
        let run_keys = keys
            .map(|k| k.prepare(params.kdf_salt.as_deref()))
            .transpose()?;
        let (total, pending) = self.journal.counts(id)?;
        let mut done = total - pending;
        progress(Progress { done, total });
        let rows = self.ca_rows(params.now);
        let Self {
            journal,
            issuer,
            threads,
        } = self;
        let worker = Worker {
            issuer,
            params,
            keys: run_keys.as_ref(),
            out: &out,
            clock,
            threads: *threads,
        };
        // Pipeline: the workers sign chunk N+1 while this thread publishes and commits chunk N. A crash in
        // between leaves chunk N+1 pending with files only under .tmp/: the resume burns its serials.
        let mut after = -1_i64;
        let mut issued_run = 0_u64;
        let mut chunk = journal.pending(id, after, CHUNK)?;
        let mut signed: Option<(Vec<Outcome>, Vec<Staged>)> = None;
        loop {
            after = chunk.last().map_or(after, |p| p.seq);
            let next = if chunk.is_empty() { None } else { Some(&chunk) };
            let (fresh, committed) = std::thread::scope(|s| {
                let h = next.map(|c| s.spawn(|| worker.issue_chunk(c)));
                let committed = match signed.take() {
                    Some((outcomes, staged)) => {
                        let t = Instant::now();
                        let r = out.publish(&staged);
                        clock.add(Stage::Publish, t);
                        r.and_then(|()| {
                            clock.time(Stage::DbCommit, || journal.commit(id, &rows, &outcomes))
                        })
                        .map(|()| {
                            let issued = outcomes
                                .iter()
                                .filter(|o| matches!(o, Outcome::Issued { .. }))
                                .count() as u64;
                            (outcomes.len() as u64, issued)
                        })
                    }
                    None => Ok((0, 0)),
                };
                let fresh = h.map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(FactoryError::Issuer("worker thread panicked".into()))
                    })
                });
                (fresh, committed)
            });
            let (n, issued) = committed?;
            issued_run += issued;
            if n > 0 {
                done += n;
                progress(Progress { done, total });
            }
            match fresh {
                None => break,
                Some(r) => signed = Some(r?),
            }
            chunk = journal.pending(id, after, CHUNK)?;
        }
        let mut report = self.finish(id, params, resumed, true, clock, run_keys.as_ref())?;
        report.timings = Some(clock.report(started.elapsed(), issued_run));
        Ok(report)
    }

    /// After a crash: adopt bundles already renamed into place (they are whole: rename is the last step),
    /// then re-reserve serials for everything still pending.
    fn recover(&mut self, id: &str, params: &Params, out: &OutDir) -> Result<(), FactoryError> {
        if params.mode == Mode::KeyGen {
            let mut adopted = Vec::new();
            for p in self.journal.pending(id, -1, usize::MAX)? {
                let path = out.bundle_path(&p.device_id);
                if path.exists() {
                    let cert = output::adopt_bundle(&path, &p.serial, self.issuer.public_key())?;
                    adopted.push(Outcome::Issued {
                        seq: p.seq,
                        serial: p.serial,
                        cert,
                    });
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

    /// Write CSR-mode outputs and the report from the journal (idempotent), mark the batch done.
    fn finish(
        &mut self,
        id: &str,
        params: &Params,
        resumed: bool,
        write: bool,
        clock: &Clock,
        keys: Option<&RunKeys<'_>>,
    ) -> Result<BatchReport, FactoryError> {
        let t = Instant::now();
        let items = self.journal.items(id)?;
        let mut report = BatchReport {
            batch_id: id.to_owned(),
            mode: params.mode,
            total: items.len() as u64,
            issued: 0,
            refused: 0,
            pending: 0,
            resumed,
            refusals: Vec::new(),
            out: params.out.clone(),
            timings: None,
        };
        let out = if write {
            Some(OutDir::prepare(&params.out)?)
        } else {
            None
        };
        let mut jsonl = String::new();
        let mut staged = Vec::new();
        for it in &items {
            match (it.state.as_str(), &it.cert, &it.device_id) {
                ("issued", Some(cert), Some(dev)) => {
                    report.issued += 1;
                    let Some(out) = out.as_ref().filter(|_| params.mode == Mode::Csr) else {
                        continue;
                    };
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
                ("pending", _, _) if !write => report.pending += 1,
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
        if let Some(out) = out {
            out.publish(&staged)?;
            if params.mode == Mode::Csr && params.format == InputFormat::CsrJsonl {
                out.write_file(&out.root().join("certs.jsonl"), jsonl.as_bytes())?;
            }
            out.write_file(
                &out.root().join("chain.pem"),
                self.issuer.chain_pem().as_bytes(),
            )?;
            if let Some(kdf) = keys.and_then(RunKeys::params_json) {
                let json = serde_json::to_vec_pretty(&kdf)
                    .map_err(|e| FactoryError::Manifest(e.to_string()))?;
                out.write_file(&out.root().join("bundle-kdf.json"), &json)?;
            }
            let json = serde_json::to_vec_pretty(&report)
                .map_err(|e| FactoryError::Manifest(e.to_string()))?;
            out.write_file(&out.root().join("report.json"), &json)?;
            self.journal.finish(id)?;
        }
        clock.add(Stage::Finish, t);
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

/// 16 random bytes, top bit clear, first byte non-zero (so the DER INTEGER keeps all 16 bytes).
fn fresh_serial() -> Result<String, FactoryError> {
    let mut s = smtrust_crypto::rng::bytes::<SERIAL_LEN>()?;
    if let Some(b) = s.first_mut() {
        *b = (*b & 0x7f) | 0x01;
    }
    Ok(hex::encode(s))
}
