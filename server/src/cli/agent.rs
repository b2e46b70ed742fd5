//! `smtrust agent`: the device agent (crate `smtrust-agent`) from the command line: keygen, csr, enroll,
//! renew, attest, status.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use smtrust_agent::{Agent, EstServer};
use zeroize::Zeroizing;

/// Arguments of `smtrust agent`.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The agent directory (key.pem, cert.pem, chain.pem); default `<data-dir>/agent`, else `./smtrust-agent`.
    #[arg(long, global = true, env = "SMTRUST_AGENT_DIR")]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    verb: Verb,
}

/// How to reach the server's API (EST, attestation).
#[derive(Debug, Args)]
struct ServerArgs {
    /// Server API address (TLS 1.3-SM), `host:port`.
    #[arg(long)]
    server: String,
    /// The name its TLS certificate must carry (DNS SAN); default: the host of --server.
    #[arg(long)]
    server_name: Option<String>,
    /// PEM file with the root certificate(s) the server's certificate must chain to.
    #[arg(long)]
    ca: PathBuf,
    /// Issuing-CA label (`/.well-known/est/<label>/`); default: the server's default CA.
    #[arg(long)]
    label: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Make the SM2 device key (key.pem, mode 0600); refuses to overwrite one.
    #[command(after_long_help = "EXAMPLES:\n  smtrust agent --dir /var/lib/smtrust keygen\n")]
    Keygen,
    /// Write a CSR for the device (PEM), signed with the device key under the GM/T 0009 ID.
    #[command(
        after_long_help = "EXAMPLES:\n  smtrust agent csr --device-id ctw-0000001234 --out req.pem\n"
    )]
    Csr {
        /// The device ID.
        #[arg(long)]
        device_id: String,
        /// Output file (stdout by default).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Enroll over EST with a one-time token (from --token-file or SMTRUST_EST_TOKEN) or the bootstrap
    /// certificate.
    #[command(
        after_long_help = "EXAMPLES:\n  SMTRUST_EST_TOKEN=… smtrust agent enroll --device-id ctw-1 --server est.example.com:8443 --ca root.pem\n  smtrust agent enroll --device-id ctw-1 --bootstrap-cert boot.pem --bootstrap-key boot.key --server 10.0.0.5:8443 --server-name est.example.com --ca root.pem\n"
    )]
    Enroll {
        /// The device ID.
        #[arg(long)]
        device_id: String,
        /// File holding the enrollment token.
        #[arg(long, conflicts_with = "bootstrap_cert")]
        token_file: Option<PathBuf>,
        /// Install this bootstrap certificate (PEM, with its intermediates) first and enroll with it.
        #[arg(long, requires = "bootstrap_key")]
        bootstrap_cert: Option<PathBuf>,
        /// The bootstrap certificate's key (PEM).
        #[arg(long)]
        bootstrap_key: Option<PathBuf>,
        /// Enroll with the bootstrap identity already installed in the agent directory.
        #[arg(long)]
        bootstrap: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Re-enroll with the current certificate under a new key.
    #[command(
        after_long_help = "EXAMPLES:\n  smtrust agent renew --server est.example.com:8443 --ca root.pem\n  smtrust agent renew --if-due --server est.example.com:8443 --ca root.pem\n  smtrust agent renew --watch --server est.example.com:8443 --ca root.pem   # service mode\n"
    )]
    Renew {
        /// Only if two thirds of the lifetime have passed.
        #[arg(long)]
        if_due: bool,
        /// Keep running and renew whenever due (until Ctrl-C).
        #[arg(long, conflicts_with = "if_due")]
        watch: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Attest: get a challenge, measure (SM3), sign evidence with the device key, submit it, verify and keep
    /// the signed result (attest/result.jws). Measurements from attest.json in the agent directory, or from
    /// --model/--firmware-version/--measure (saved as attest.json with --save-config).
    #[command(
        after_long_help = "EXAMPLES:\n  smtrust agent attest --server est.example.com:8443 --ca root.pem\n  smtrust --json agent attest --model ctw-sensor-3 --firmware-version 1.4.2 \\\n      --measure boot-stage:bl2=/boot/bl2.bin --measure firmware:firmware=/firmware/app.bin \\\n      --save-config --server est.example.com:8443 --ca root.pem\n\nEXIT STATUS: 0 affirming, 2 warning or contraindicated, 1 error.\n"
    )]
    Attest {
        /// Product model (instead of attest.json).
        #[arg(long, requires = "firmware_version")]
        model: Option<String>,
        /// Firmware version (instead of attest.json).
        #[arg(long, requires = "model")]
        firmware_version: Option<String>,
        /// RFC 9711 debug state code (0 enabled .. 4 disabled fully and permanently).
        #[arg(long, default_value_t = 3, requires = "model")]
        debug: u8,
        /// A file to measure: KIND:NAME=PATH, KIND one of boot-stage, firmware, configuration (repeat).
        #[arg(long = "measure", requires = "model", value_parser = parse_measure)]
        measures: Vec<smtrust_agent::MeasurementSpec>,
        /// Store the configuration given by the flags as attest.json.
        #[arg(long, requires = "model")]
        save_config: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show the key, certificate, chain and when renewal is due.
    #[command(after_long_help = "EXAMPLES:\n  smtrust --json agent status\n")]
    Status,
}

pub(crate) fn run(
    args: &AgentArgs,
    data_dir: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let dir = match (&args.dir, data_dir) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => d.join("agent"),
        (None, None) => PathBuf::from("smtrust-agent"),
    };
    let agent = Agent::open(&dir)?;
    match &args.verb {
        Verb::Keygen => {
            let public = agent.keygen()?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"dir": dir, "public_key_pem": public})
                );
            } else {
                eprintln!("device key written to {}", dir.join("key.pem").display());
                print!("{public}");
            }
        }
        Verb::Csr { device_id, out } => {
            let der = agent.csr(device_id)?;
            let pem = smtrust_crypto::pem::encode("CERTIFICATE REQUEST", &der)?;
            match out {
                Some(p) => std::fs::write(p, pem.as_bytes())
                    .with_context(|| format!("writing {}", p.display()))?,
                None => print!("{}", pem.as_str()),
            }
        }
        Verb::Enroll {
            device_id,
            token_file,
            bootstrap_cert,
            bootstrap_key,
            bootstrap,
            server,
        } => {
            let est = est_server(server)?;
            if let (Some(c), Some(k)) = (bootstrap_cert, bootstrap_key) {
                let cert = std::fs::read(c).with_context(|| format!("reading {}", c.display()))?;
                let key = Zeroizing::new(
                    std::fs::read(k).with_context(|| format!("reading {}", k.display()))?,
                );
                agent.install_bootstrap(&cert, &key)?;
            }
            let use_bootstrap = *bootstrap || bootstrap_cert.is_some();
            let rt = tokio::runtime::Runtime::new()?;
            let status = if use_bootstrap {
                rt.block_on(agent.enroll_with_bootstrap(&est, device_id))?
            } else {
                let token = token(token_file.as_deref())?;
                rt.block_on(agent.enroll_with_token(&est, device_id, token.trim()))?
            };
            print_status(&status, json)?;
        }
        Verb::Renew {
            if_due,
            watch,
            server,
        } => {
            let est = est_server(server)?;
            let rt = tokio::runtime::Runtime::new()?;
            if *watch {
                rt.block_on(agent.run_renewal(&est, async {
                    let _ = tokio::signal::ctrl_c().await;
                }))?;
                return Ok(ExitCode::SUCCESS);
            }
            let status = if *if_due {
                match rt.block_on(agent.renew_if_due(&est, now()))? {
                    Some(s) => s,
                    None => {
                        eprintln!("renewal not due");
                        agent.status()?
                    }
                }
            } else {
                rt.block_on(agent.renew(&est))?
            };
            print_status(&status, json)?;
        }
        Verb::Attest {
            model,
            firmware_version,
            debug,
            measures,
            save_config,
            server,
        } => {
            return attest(
                &agent,
                model.as_deref(),
                firmware_version.as_deref(),
                *debug,
                measures,
                *save_config,
                server,
                json,
            );
        }
        Verb::Status => print_status(&agent.status()?, json)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `KIND:NAME=PATH`.
fn parse_measure(s: &str) -> Result<smtrust_agent::MeasurementSpec, String> {
    let usage = || format!("{s:?}: expected KIND:NAME=PATH, e.g. firmware:app=/firmware/app.bin");
    let (kind, rest) = s.split_once(':').ok_or_else(usage)?;
    let (name, path) = rest.split_once('=').ok_or_else(usage)?;
    let kind: smtrust_attest::MeasurementKind =
        serde_json::from_value(serde_json::Value::String(kind.to_owned()))
            .map_err(|_| format!("{kind:?}: kind must be boot-stage, firmware or configuration"))?;
    if name.is_empty() || path.is_empty() {
        return Err(usage());
    }
    Ok(smtrust_agent::MeasurementSpec::new(name, kind, path))
}

#[allow(clippy::too_many_arguments)] // the verb's flags, one each
fn attest(
    agent: &Agent,
    model: Option<&str>,
    firmware_version: Option<&str>,
    debug: u8,
    measures: &[smtrust_agent::MeasurementSpec],
    save_config: bool,
    server: &ServerArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let cfg = match (model, firmware_version) {
        (Some(m), Some(f)) => {
            let mut c = smtrust_agent::AttestConfig::new(m, f);
            c.debug = debug;
            c.measurements = measures.to_vec();
            if save_config {
                agent.set_attest_config(&c)?;
            }
            c
        }
        _ => agent.attest_config()?,
    };
    let est = est_server(server)?;
    let rt = tokio::runtime::Runtime::new()?;
    let out = rt.block_on(agent.attest(&est, &cfg, now()))?;
    let r = &out.result;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "result": smtrust_agent::attest::AttestResultView(r),
                "result_file": out.result_file,
                "measured": out.measured,
            })
        );
    } else {
        println!("status:      {}", r.status.as_str());
        println!(
            "device:      {}",
            r.device_id.as_ref().map_or("(none)", |d| d.as_str())
        );
        println!(
            "policy:      {}",
            r.policy_id.as_deref().unwrap_or("(none)")
        );
        println!("measured:    {}", out.measured.join(", "));
        for reason in &r.reasons {
            println!("reason:      {}", serde_json::to_string(reason)?);
        }
        println!("valid until: {} (Unix seconds)", r.expires_at);
        println!("stored:      {}", out.result_file.display());
    }
    // As `smtrust attest verify-result`: 0 affirming, 2 anything else.
    Ok(ExitCode::from(
        if r.status == smtrust_attest::Status::Affirming {
            0
        } else {
            2
        },
    ))
}

#[allow(clippy::disallowed_methods)] // the CLI is the edge that reads the clock
fn now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// The enrollment token: a file or SMTRUST_EST_TOKEN, never a flag value.
fn token(file: Option<&Path>) -> anyhow::Result<Zeroizing<String>> {
    if let Some(f) = file {
        let t = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        return Ok(Zeroizing::new(t));
    }
    match std::env::var("SMTRUST_EST_TOKEN") {
        Ok(t) => Ok(Zeroizing::new(t)),
        Err(_) => anyhow::bail!(
            "no enrollment token: pass --token-file FILE or set SMTRUST_EST_TOKEN (or use --bootstrap)"
        ),
    }
}

fn est_server(a: &ServerArgs) -> anyhow::Result<EstServer> {
    let pem = std::fs::read(&a.ca).with_context(|| format!("reading {}", a.ca.display()))?;
    let roots: Vec<Vec<u8>> = smtrust_crypto::pem::blocks(&pem)?
        .into_iter()
        .filter(|(l, _)| l == "CERTIFICATE")
        .map(|(_, d)| d.to_vec())
        .collect();
    anyhow::ensure!(!roots.is_empty(), "{}: no CERTIFICATE", a.ca.display());
    let host = a
        .server
        .rsplit_once(':')
        .map_or(a.server.as_str(), |(h, _)| h);
    let name = a.server_name.as_deref().unwrap_or(host);
    let mut s = EstServer::new(&a.server, name, roots)?;
    if let Some(l) = &a.label {
        s = s.with_label(l);
    }
    Ok(s)
}

fn print_status(s: &smtrust_agent::Status, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    println!("directory:   {}", s.dir.display());
    println!(
        "device ID:   {}",
        s.device_id.as_deref().unwrap_or("(none)")
    );
    println!(
        "key:         {}",
        if s.has_key { "present" } else { "missing" }
    );
    println!(
        "bootstrap:   {}",
        if s.has_bootstrap { "installed" } else { "none" }
    );
    match &s.certificate {
        Some(c) => {
            let t = now();
            println!("certificate: serial {} from {}", c.serial, c.issuer);
            println!(
                "  valid:     {} .. {} (Unix seconds)",
                c.not_before, c.not_after
            );
            println!(
                "  renew at:  {}{}",
                c.renew_at,
                if c.expired(t) {
                    " (EXPIRED: renew within the server's grace, 7 days by default; after it, enroll again with a token)"
                } else if c.renewal_due(t) {
                    " (due now)"
                } else {
                    ""
                }
            );
            println!("  key match: {}", c.matches_key);
        }
        None => println!("certificate: none (not enrolled)"),
    }
    println!("chain:       {} certificate(s)", s.chain_len);
    Ok(())
}
