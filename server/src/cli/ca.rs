//! `smtrust ca`: the certificate authority in the data directory (hierarchy, issuance, revocation, CRL).
//! Every verb opens the keystore, unseals it, opens the CA with [`smtrust_ca::home::open`] and acts through
//! the same `CaService` calls the HTTP API makes.

mod crl;
mod est_token;
mod init;
mod issue;
mod keygen;
mod revoke;
mod show;

pub(crate) use est_token::parse_duration;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use smtrust_ca::home::OpenedCa;
use smtrust_keystore::Keystore;

use super::keystore::{UnlockArgs, open_unsealed};

/// Arguments of `smtrust ca`.
#[derive(Debug, Args)]
pub(crate) struct CaArgs {
    #[command(subcommand)]
    command: CaCommand,
    /// File holding the keystore passphrase (else `SMTRUST_PASSPHRASE`, else a prompt).
    #[arg(long, global = true)]
    passphrase_file: Option<PathBuf>,
    /// File holding keystore unseal shares, one per line.
    #[arg(long, global = true)]
    share_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum CaCommand {
    /// Create the root and issuing CA (or import them), the OCSP signer and the database.
    Init(init::InitArgs),
    /// Issue a certificate from a PKCS#10 CSR.
    Issue(issue::IssueArgs),
    /// Generate a device key on the server and issue its certificate (the key is shown once, encrypted).
    Keygen(keygen::KeygenArgs),
    /// Revoke a certificate for good.
    Revoke(revoke::RevokeArgs),
    /// Suspend a certificate (certificateHold); `resume` lifts it.
    Suspend(revoke::SerialArg),
    /// Lift a suspension.
    Resume(revoke::SerialArg),
    /// Make and print a new CRL (full, or delta with --delta).
    Crl(crl::CrlArgs),
    /// One certificate's record.
    Show(show::ShowArgs),
    /// Certificates of the issuing CA, newest first.
    List(show::ListArgs),
    /// The issuing CA's chain (issuing CA first, root last) as PEM.
    ExportChain(show::ExportArgs),
    /// Mint a one-time EST enrollment token for a device (through the running server, or offline).
    EstToken(est_token::EstTokenArgs),
}

/// The CA opened for one command: the runtime its service runs on, the unsealed keystore, the CA.
pub(crate) struct CaContext {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) keystore: Keystore,
    pub(crate) ca: OpenedCa,
}

impl Drop for CaContext {
    fn drop(&mut self) {
        // This process never keeps the master after its command.
        self.keystore.seal();
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

impl CaArgs {
    fn unlock(&self) -> UnlockArgs {
        UnlockArgs {
            passphrase_file: self.passphrase_file.clone(),
            share_file: self.share_file.clone(),
        }
    }
}

/// Open the CA of `data_dir` (keystore unsealed with `unlock`). `smtrust factory` uses this too.
pub(crate) fn open(data_dir: &Path, unlock: &UnlockArgs) -> anyhow::Result<CaContext> {
    if !smtrust_ca::home::is_initialised(data_dir) {
        anyhow::bail!(
            "no CA in {}: run `smtrust --data-dir {} ca init` first",
            data_dir.display(),
            data_dir.display()
        );
    }
    let keystore = open_unsealed(data_dir, unlock)?;
    let rt = runtime()?;
    let ca = rt
        .block_on(smtrust_ca::home::open(data_dir, &keystore, now()))
        .with_context(|| format!("opening the CA in {}", data_dir.display()))?;
    Ok(CaContext { rt, keystore, ca })
}

pub(crate) fn run(args: &CaArgs, data_dir: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let dir = super::data_dir(data_dir)?;
    if let CaCommand::Init(a) = &args.command {
        return init::run(a, &dir, &args.unlock(), json);
    }
    if let CaCommand::EstToken(a) = &args.command {
        return est_token::run(a, &dir, json);
    }
    let ctx = open(&dir, &args.unlock())?;
    match &args.command {
        CaCommand::Init(_) | CaCommand::EstToken(_) => unreachable_init(),
        CaCommand::Issue(a) => issue::run(a, &ctx, json),
        CaCommand::Keygen(a) => keygen::run(a, &ctx, json),
        CaCommand::Revoke(a) => revoke::revoke(a, &ctx, json),
        CaCommand::Suspend(a) => revoke::suspend(a, &ctx, json),
        CaCommand::Resume(a) => revoke::resume(a, &ctx, json),
        CaCommand::Crl(a) => crl::run(a, &ctx, json),
        CaCommand::Show(a) => show::show(a, &ctx, json),
        CaCommand::List(a) => show::list(a, &ctx, json),
        CaCommand::ExportChain(a) => show::export_chain(a, &ctx, json),
    }
}

fn unreachable_init() -> anyhow::Result<ExitCode> {
    anyhow::bail!("init is handled before the CA is opened")
}

/// Write `text` to `out`, or to stdout.
pub(crate) fn emit(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// The binary is the edge that reads the clock.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}
