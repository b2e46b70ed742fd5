//! `smtrust attest`: offline verification of attestation results and the reference-value registry.
//! Formats: docs/attestation.md.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use smtrust_attest::sql::SqlStore;
use smtrust_attest::{ReferenceStore, ReferenceValues, Status, TrustAnchors, verify_result_with};

/// Arguments of `smtrust attest`.
#[derive(Debug, Args)]
pub(crate) struct AttestArgs {
    /// Attestation database (`sqlite://…`, `postgres://…`); default `sqlite://<data-dir>/attest.db`.
    #[arg(long, global = true, env = "SMTRUST_ATTEST_DATABASE")]
    database: Option<String>,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Verify a result token offline: chain to the CA, signer is the attestation service, signature,
    /// validity. Exit 0 affirming, 2 warning or contraindicated, 3 not a valid result.
    #[command(
        name = "verify-result",
        after_long_help = "EXAMPLES:\n  smtrust attest verify-result result.jws --ca ca-chain.pem\n  smtrust --json attest verify-result result.jws --ca root.pem --at 1764000000\n"
    )]
    VerifyResult {
        /// The result token (compact JWS) file.
        file: PathBuf,
        /// PEM file with the CA certificate(s) the signer must chain to.
        #[arg(long)]
        ca: PathBuf,
        /// Verify at this Unix time instead of now.
        #[arg(long)]
        at: Option<u64>,
    },
    /// Reference values: import, export, list.
    #[command(subcommand)]
    Refs(RefsVerb),
}

#[derive(Debug, Subcommand)]
enum RefsVerb {
    /// Register every document of a JSON file as the next version of its model and firmware.
    #[command(
        after_long_help = "EXAMPLES:\n  smtrust attest refs import meter-2.4.1.json --by secadmin-alice\n"
    )]
    Import {
        /// JSON array of reference-value documents.
        file: PathBuf,
        /// The security administrator registering them (recorded with each version).
        #[arg(long)]
        by: String,
    },
    /// Write the latest version of every model and firmware, registrations included.
    #[command(after_long_help = "EXAMPLES:\n  smtrust attest refs export --out refs.json\n")]
    Export {
        /// Output file; stdout when omitted.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List the latest version of every model and firmware.
    #[command(after_long_help = "EXAMPLES:\n  smtrust --json attest refs list\n")]
    List,
}

/// The attestation database of `data_dir` unless one is given: what `smtrust serve` should open too.
pub(crate) fn database_url(given: Option<&str>, data_dir: &Path) -> String {
    match given {
        Some(url) => url.to_owned(),
        None => format!("sqlite://{}?mode=rwc", data_dir.join("attest.db").display()),
    }
}

#[allow(clippy::disallowed_methods)] // the CLI is where the clock is read
fn now() -> SystemTime {
    SystemTime::now()
}

pub(crate) fn run(
    args: &AttestArgs,
    data_dir: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match &args.verb {
        Verb::VerifyResult { file, ca, at } => verify(file, ca, *at, json),
        Verb::Refs(verb) => {
            let dir = super::data_dir(data_dir)?;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let url = database_url(args.database.as_deref(), &dir);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let store = SqlStore::connect(&url)
                    .await
                    .with_context(|| format!("opening the attestation database {url}"))?;
                refs(&store, verb, json).await
            })
        }
    }
}

fn verify(file: &Path, ca: &Path, at: Option<u64>, json: bool) -> anyhow::Result<ExitCode> {
    let token = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
    let anchors = TrustAnchors::from_pem(&pem)
        .with_context(|| format!("{}: no usable CA certificate", ca.display()))?;
    let when = at.map_or_else(now, |s| UNIX_EPOCH + Duration::from_secs(s));
    // Tolerate a trailing newline from editors and `>` redirection.
    let token = token.trim_ascii();
    let result = match verify_result_with(token, &anchors, when) {
        Ok(r) => r,
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "valid": false, "error": e.to_string() })
                );
            } else {
                eprintln!("{}: not a valid attestation result: {e}", file.display());
            }
            return Ok(ExitCode::from(3));
        }
    };
    if json {
        let v = serde_json::json!({
            "valid": true,
            "status": result.status.as_str(),
            "device_id": result.device_id.as_ref().map(|d| d.as_str()),
            "cert_serial": result.cert_serial,
            "trust_vector": result.trust_vector,
            "reasons": result.reasons,
            "policy_id": result.policy_id,
            "nonce": result.nonce,
            "issued_at": result.issued_at,
            "expires_at": result.expires_at,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "valid result: {} for device {} (certificate serial {}), issued {} expires {}",
            result.status.as_str(),
            result.device_id.as_ref().map_or("-", |d| d.as_str()),
            result.cert_serial.as_deref().unwrap_or("-"),
            result.issued_at,
            result.expires_at
        );
        for r in &result.reasons {
            println!("  reason: {}", serde_json::to_string(r)?);
        }
    }
    Ok(ExitCode::from(if result.status == Status::Affirming {
        0
    } else {
        2
    }))
}

fn summary(v: &ReferenceValues) -> serde_json::Value {
    let reg = v.registration.as_ref();
    serde_json::json!({
        "model": v.product_model,
        "firmware_version": v.firmware_version,
        "version": reg.map(|r| r.version),
        "registered_by": reg.map(|r| r.registered_by.clone()),
        "registered_at": reg.map(|r| r.registered_at),
        "measurements": v.measurements.len(),
        "debug_allowed": v.debug_allowed,
        "policy_id": v.policy_id(),
    })
}

async fn refs(store: &SqlStore, verb: &RefsVerb, json: bool) -> anyhow::Result<ExitCode> {
    match verb {
        RefsVerb::Import { file, by } => {
            let text =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            // All documents are checked before any is registered.
            let docs = smtrust_attest::reference::import(&text)
                .with_context(|| format!("{}", file.display()))?;
            let mut registered = Vec::with_capacity(docs.len());
            for d in &docs {
                registered.push(store.register(d, by, now()).await?);
            }
            if json {
                let list: Vec<_> = registered.iter().map(summary).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for r in &registered {
                    println!("registered {}", r.policy_id());
                }
            }
        }
        RefsVerb::Export { out } => {
            let text = smtrust_attest::reference::export(&store.all_latest().await?)?;
            match out {
                Some(path) => std::fs::write(path, format!("{text}\n"))
                    .with_context(|| format!("writing {}", path.display()))?,
                None => println!("{text}"),
            }
        }
        RefsVerb::List => {
            let all = store.all_latest().await?;
            if json {
                let list: Vec<_> = all.iter().map(summary).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for v in &all {
                    let reg = v.registration.as_ref();
                    println!(
                        "{}  {} measurements  by {} at {}",
                        v.policy_id(),
                        v.measurements.len(),
                        reg.map_or("-", |r| r.registered_by.as_str()),
                        reg.map_or(0, |r| r.registered_at)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
