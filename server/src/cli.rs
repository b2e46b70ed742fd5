//! The command line: global options and the top-level commands. One module per noun under `cli/`.

mod agent;
mod attest;
mod ca;
pub(crate) mod factory;
mod keystore;
mod policy;
mod secret;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// smtrust: device identities, attestation and policy-enforced access on SM2/SM3/SM4.
#[derive(Debug, Parser)]
#[command(name = "smtrust", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Where smtrust keeps its database, keystore and artifacts.
    #[arg(long, global = true, env = "SMTRUST_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "SMTRUST_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Machine-readable output (one JSON object on stdout; logs as JSON on stderr).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// More log output (-v info, -vv debug). `SMTRUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the whole trust path on embedded defaults and print what each phase did and how fast.
    Demo(crate::demo::DemoArgs),
    /// Create, unseal, inspect and rotate the sealed key store.
    Keystore(keystore::KeystoreArgs),
    /// Factory provisioning: bulk device identities that survive crashes.
    Factory(Box<factory::FactoryArgs>),
    /// The certificate authority: hierarchy, issuance, revocation, CRL and OCSP.
    Ca(Box<ca::CaArgs>),
    /// Cedar policy bundles: validate, test, apply, diff, dry-run, explain.
    Policy(Box<policy::PolicyArgs>),
    /// Attestation: reference values and offline verification of results.
    Attest(Box<attest::AttestArgs>),
    /// The device side: key, CSR, EST enrollment and renewal, attestation.
    Agent(Box<agent::AgentArgs>),
    /// Run the service: HTTP API (CRL, OCSP, EST, attestation) and the gateway listeners.
    Serve(Box<serve::ServeArgs>),
}

pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => crate::demo::run(&args, cli.json),
        Command::Factory(args) => factory::run(&args, cli.data_dir.as_deref(), cli.json),
        Command::Ca(args) => ca::run(&args, cli.data_dir.as_deref(), cli.json),
        Command::Policy(args) => policy::run(&args, cli.data_dir.as_deref(), cli.json),
        Command::Attest(args) => attest::run(&args, cli.data_dir.as_deref(), cli.json),
        Command::Agent(args) => agent::run(&args, cli.data_dir.as_deref(), cli.json),
        Command::Serve(args) => serve::run(&args, cli.data_dir.as_deref(), cli.json),
        Command::Keystore(args) => {
            keystore::run(&data_dir(cli.data_dir.as_deref())?, args, cli.json)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--data-dir`, else `SMTRUST_DATA_DIR`, else `$XDG_DATA_HOME/smtrust` or `~/.local/share/smtrust`.
pub(crate) fn data_dir(given: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d.to_path_buf());
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("smtrust"));
    }
    match std::env::var_os("HOME") {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/smtrust")),
        None => anyhow::bail!("no data directory: pass --data-dir DIR or set SMTRUST_DATA_DIR"),
    }
}
