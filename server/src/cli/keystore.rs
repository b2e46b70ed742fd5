//! `smtrust keystore …`: create, inspect and maintain the sealed key store under `<data-dir>/keystore`.

mod init;
mod maintain;

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use smtrust_keystore::{Keystore, Unlock};

use crate::cli::secret;

/// `smtrust keystore`.
#[derive(Debug, Args)]
pub(crate) struct KeystoreArgs {
    #[command(subcommand)]
    pub(crate) command: KeystoreCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeystoreCommand {
    /// Create a keystore, unsealed by a passphrase or by m of n printed shares.
    #[command(after_long_help = init::EXAMPLES)]
    Init(init::InitArgs),
    /// Check that a passphrase or a set of shares unseals the keystore (a running server keeps it unsealed).
    Unseal(UnlockArgs),
    /// Sealed state, master generation and unseal method (works while sealed; asks the running server
    /// through `<data-dir>/admin.sock` when there is one, since it holds the store open).
    Status,
    /// List keys: id, purpose, label, creation time, public key fingerprint.
    List(UnlockArgs),
    /// Re-wrap every key under a new master; crash-safe (the store opens at the old or the new generation).
    RotateMaster(UnlockArgs),
    /// Wipe the master from a running server's memory, through its admin socket `<data-dir>/admin.sock`
    /// (owner only). This CLI process never keeps the master itself.
    Seal,
}

/// How to unseal for one command.
#[derive(Debug, Args)]
pub(crate) struct UnlockArgs {
    /// File holding the passphrase (else `SMTRUST_PASSPHRASE`, else a prompt).
    #[arg(long, conflicts_with = "share_file")]
    pub(crate) passphrase_file: Option<PathBuf>,
    /// File holding unseal shares, one per line.
    #[arg(long)]
    pub(crate) share_file: Option<PathBuf>,
}

pub(crate) fn keystore_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keystore")
}

/// Open the keystore in `data_dir` and unseal it with what `args` names.
pub(crate) fn open_unsealed(data_dir: &Path, args: &UnlockArgs) -> anyhow::Result<Keystore> {
    let dir = keystore_dir(data_dir);
    let ks = Keystore::open_dir(&dir).map_err(|e| {
        anyhow::anyhow!(
            "opening keystore {}: {e} (create one with `smtrust keystore init`)",
            dir.display()
        )
    })?;
    let shares_method = matches!(
        ks.status()?.method,
        smtrust_keystore::UnsealMethod::Shares { .. }
    );
    if shares_method || args.share_file.is_some() {
        let shares = secret::shares(args.share_file.as_deref())?;
        ks.unseal(Unlock::Shares(&shares))?;
    } else {
        let p = secret::passphrase(args.passphrase_file.as_deref(), "keystore passphrase: ")?;
        ks.unseal(Unlock::Passphrase(&p))?;
    }
    Ok(ks)
}

pub(crate) fn run(data_dir: &Path, args: KeystoreArgs, json: bool) -> anyhow::Result<()> {
    match args.command {
        KeystoreCommand::Init(a) => init::run(data_dir, &a, json),
        KeystoreCommand::Unseal(a) => maintain::unseal(data_dir, &a, json),
        KeystoreCommand::Status => maintain::status(data_dir, json),
        KeystoreCommand::List(a) => maintain::list(data_dir, &a, json),
        KeystoreCommand::RotateMaster(a) => maintain::rotate(data_dir, &a, json),
        KeystoreCommand::Seal => maintain::seal(data_dir, json),
    }
}
