//! `smtrust factory batch|resume`: bulk device identities at manufacture (see docs/factory.md).

pub(crate) mod batch;
pub(crate) mod resume;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use smtrust_ca::factory::{BatchReport, Factory, Issuer, KeyProtection, Progress};
use zeroize::Zeroizing;

/// Factory provisioning.
#[derive(Debug, Args)]
pub(crate) struct FactoryArgs {
    #[command(subcommand)]
    command: FactoryCommand,
}

#[derive(Debug, Subcommand)]
enum FactoryCommand {
    /// Issue a batch: one certificate per CSR, or one key bundle per manifest line.
    Batch(batch::BatchArgs),
    /// Finish a batch interrupted by a crash or power loss.
    Resume(resume::ResumeArgs),
    /// (test fixture) Write a self-signed development issuer: issuer.pem, issuer.key.
    #[command(hide = true)]
    DevIssuer(DevIssuerArgs),
    /// (test fixture) Write COUNT device CSRs as JSON Lines {device_id, csr}.
    #[command(hide = true)]
    DevCsrs(DevCsrsArgs),
}

pub(crate) fn run(
    args: &FactoryArgs,
    data_dir: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match &args.command {
        FactoryCommand::Batch(a) => batch::run(a, data_dir, json),
        FactoryCommand::Resume(a) => resume::run(a, data_dir, json),
        FactoryCommand::DevIssuer(a) => dev_issuer(a),
        FactoryCommand::DevCsrs(a) => dev_csrs(a),
    }
}

/// The issuing CA and the journal, shared by `batch` and `resume`. By default the CA of `smtrust ca init` in
/// the data directory (keystore unsealed with --passphrase-file / SMTRUST_PASSPHRASE); --issuer-cert and
/// --issuer-key name a CA outside it (development and tests).
#[derive(Debug, Args)]
pub(crate) struct IssuerArgs {
    /// Issuing CA certificate (PEM; certificates above it may follow and go into each chain).
    #[arg(long, requires = "issuer_key")]
    issuer_cert: Option<PathBuf>,
    /// Issuing CA private key (PKCS#8 or SEC1; if encrypted, the passphrase comes from
    /// --issuer-passphrase-file or SMTRUST_PASSPHRASE).
    #[arg(long, requires = "issuer_cert")]
    issuer_key: Option<PathBuf>,
    /// Keystore passphrase file (CA of the data directory; else SMTRUST_PASSPHRASE).
    #[arg(long = "keystore-passphrase-file")]
    keystore_passphrase_file: Option<PathBuf>,
    /// File holding the issuer key's passphrase.
    #[arg(long)]
    issuer_passphrase_file: Option<PathBuf>,
    /// The issuer's device-ID namespace: ids must start with this prefix (empty: any).
    #[arg(long, default_value = "")]
    namespace: String,
    /// Certificate lifetime in days.
    #[arg(long, default_value_t = 3650)]
    days: u32,
    /// Journal database (SQLite). Default: <data-dir>/smtrust.db, or ./smtrust.db.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

impl IssuerArgs {
    /// The factory, and the opened CA when it signs with the data directory's CA (keep it alive while the
    /// factory runs: dropping it seals the keystore).
    pub(crate) fn open(
        &self,
        data_dir: Option<&Path>,
    ) -> anyhow::Result<(Factory, Option<super::ca::CaContext>)> {
        let (Some(cert), Some(key)) = (&self.issuer_cert, &self.issuer_key) else {
            let (f, ctx) = self.open_ca(data_dir)?;
            return Ok((f, Some(ctx)));
        };
        let chain =
            std::fs::read_to_string(cert).with_context(|| format!("reading {}", cert.display()))?;
        let key = Zeroizing::new(
            std::fs::read(key).with_context(|| format!("reading {}", key.display()))?,
        );
        let pass = secret(self.issuer_passphrase_file.as_deref(), "SMTRUST_PASSPHRASE")?;
        let issuer = Issuer::from_pem(
            &chain,
            &key,
            pass.as_ref().map(|p| p.as_slice()),
            &self.namespace,
            self.days,
        )?;
        let db = match (&self.db, data_dir) {
            (Some(p), _) => p.clone(),
            (None, Some(d)) => {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                d.join("smtrust.db")
            }
            (None, None) => PathBuf::from("smtrust.db"),
        };
        Ok((self.factory(&db, issuer)?, None))
    }

    /// The CA of `smtrust ca init` in the data directory; the journal shares its database.
    fn open_ca(&self, data_dir: Option<&Path>) -> anyhow::Result<(Factory, super::ca::CaContext)> {
        anyhow::ensure!(
            self.namespace.is_empty(),
            "--namespace applies to --issuer-cert only: the CA of the data directory has its own"
        );
        let dir = super::data_dir(data_dir)?;
        let unlock = super::keystore::UnlockArgs {
            passphrase_file: self.keystore_passphrase_file.clone(),
            share_file: None,
        };
        let ctx = super::ca::open(&dir, &unlock)?;
        let issuer = Issuer::from_ca(ctx.ca.issuing.clone(), ctx.ca.chain_pem.clone(), self.days);
        let db = self
            .db
            .clone()
            .unwrap_or_else(|| dir.join(smtrust_ca::home::DB_FILE));
        Ok((self.factory(&db, issuer)?, ctx))
    }

    fn factory(&self, db: &Path, issuer: Issuer) -> anyhow::Result<Factory> {
        let f = Factory::open(db, issuer)
            .with_context(|| format!("opening journal {}", db.display()))?;
        Ok(match self.threads {
            Some(n) => f.with_threads(n),
            None => f,
        })
    }
}

/// How generated keys are protected: SM2 envelope to a transport key, else encrypted PKCS#8 under a
/// per-device password derived from the batch passphrase (docs/factory.md, "Bundle passwords").
#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    /// Encrypt each generated PKCS#8 key to this SM2 public key (PEM) instead of a passphrase.
    #[arg(long)]
    transport_key: Option<PathBuf>,
    /// File holding the batch passphrase (else env SMTRUST_BUNDLE_PASSPHRASE).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    /// Encrypt every bundle under the passphrase itself with a full PBKDF2 per bundle (slow: ~0.1 s per
    /// device) instead of per-device passwords derived once per batch.
    #[arg(long)]
    per_bundle_kdf: bool,
    /// PBKDF2 iterations: of the batch KDF (default 600000), or per bundle with --per-bundle-kdf
    /// (default 65536); 1000..=10000000.
    #[arg(long)]
    kdf_iterations: Option<u32>,
}

impl KeyArgs {
    pub(crate) fn protection(&self) -> anyhow::Result<Option<KeyProtection>> {
        if let Some(p) = &self.transport_key {
            let pem = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let pk = smtrust_crypto::pem::decode_public_key(&pem)
                .with_context(|| format!("{} is not an SM2 public key", p.display()))?;
            return Ok(Some(KeyProtection::Envelope(pk)));
        }
        let Some(passphrase) =
            secret(self.passphrase_file.as_deref(), "SMTRUST_BUNDLE_PASSPHRASE")?
        else {
            return Ok(None);
        };
        Ok(Some(if self.per_bundle_kdf {
            KeyProtection::Passphrase {
                passphrase,
                iterations: self
                    .kdf_iterations
                    .unwrap_or(smtrust_crypto::pkcs8::DEFAULT_ITERATIONS),
            }
        } else {
            KeyProtection::DerivedPassphrase {
                passphrase,
                iterations: self
                    .kdf_iterations
                    .unwrap_or(smtrust_ca::factory::BATCH_KDF_ITERATIONS),
            }
        }))
    }
}

/// A secret from a file (trailing newline dropped) or an environment variable; never from a flag value.
fn secret(file: Option<&Path>, env: &str) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
    if let Some(f) = file {
        let mut v =
            Zeroizing::new(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?);
        while v.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
            v.pop();
        }
        return Ok(Some(v));
    }
    Ok(std::env::var_os(env).map(|v| Zeroizing::new(v.into_encoded_bytes())))
}

/// A bar with rate and ETA on a terminal; a plain line at most every 2 s otherwise; nothing with --json.
pub(crate) fn progress_sink(json: bool) -> Box<dyn FnMut(Progress)> {
    if json {
        return Box::new(|_| {});
    }
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} devices  {per_sec}  ETA {eta}  {elapsed_precise}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        return Box::new(move |p: Progress| {
            bar.set_length(p.total);
            bar.set_position(p.done);
            if p.done >= p.total {
                bar.finish();
            }
        });
    }
    let start = Instant::now();
    let mut last: Option<Instant> = None;
    Box::new(move |p: Progress| {
        if p.done >= p.total || last.is_none_or(|l| l.elapsed() >= Duration::from_secs(2)) {
            let secs = start.elapsed().as_secs_f64().max(0.001);
            eprintln!(
                "progress {}/{} devices, {:.0}/s",
                p.done,
                p.total,
                p.done as f64 / secs
            );
            last = Some(Instant::now());
        }
    })
}

/// Print the report: one JSON object with --json, else a summary and the first refusals.
pub(crate) fn print_report(r: &BatchReport, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string(r)?);
    } else {
        println!(
            "batch {}: {} issued, {} refused of {}",
            r.batch_id, r.issued, r.refused, r.total
        );
        for x in r.refusals.iter().take(20) {
            println!(
                "  refused {} ({}): {}",
                x.source,
                x.device_id.as_deref().unwrap_or("-"),
                x.reason
            );
        }
        if r.refusals.len() > 20 {
            println!("  ... {} more", r.refusals.len() - 20);
        }
        println!("report: {}", r.out.join("report.json").display());
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
struct DevIssuerArgs {
    /// Directory for issuer.pem and issuer.key.
    #[arg(long)]
    out: PathBuf,
    /// Subject CN.
    #[arg(long, default_value = "smtrust factory dev CA")]
    name: String,
}

fn dev_issuer(a: &DevIssuerArgs) -> anyhow::Result<ExitCode> {
    let (cert, key) = smtrust_ca::factory::self_signed_issuer(&a.name, unix_now())?;
    std::fs::create_dir_all(&a.out)?;
    std::fs::write(a.out.join("issuer.pem"), cert)?;
    std::fs::write(a.out.join("issuer.key"), key)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
struct DevCsrsArgs {
    /// How many devices.
    #[arg(long)]
    count: u64,
    /// Device id prefix (ids are PREFIX + 10 digits).
    #[arg(long, default_value = "ctw-")]
    prefix: String,
    /// Output JSON Lines file.
    #[arg(long)]
    out: PathBuf,
}

fn dev_csrs(a: &DevCsrsArgs) -> anyhow::Result<ExitCode> {
    use base64::Engine as _;
    let threads = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let lines: Vec<anyhow::Result<String>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut out = String::new();
                    let mut i = t;
                    while i < a.count {
                        let id = format!("{}{i:010}", a.prefix);
                        let sk = smtrust_crypto::sm2::Sm2SecretKey::generate()?;
                        let csr = smtrust_ca::factory::make_csr(&id, &sk)?;
                        let b64 = base64::engine::general_purpose::STANDARD.encode(&csr.der);
                        out.push_str(&serde_json::json!({"device_id": id, "csr": b64}).to_string());
                        out.push('\n');
                        i += threads;
                    }
                    Ok(out)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("worker panicked")))
            })
            .collect()
    });
    let mut all = String::new();
    for l in lines {
        all.push_str(&l?);
    }
    std::fs::write(&a.out, all)?;
    Ok(ExitCode::SUCCESS)
}

/// The binary is the edge that reads the clock; libraries take time as a parameter.
#[allow(clippy::disallowed_methods)]
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
