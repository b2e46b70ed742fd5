//! `smtrust keystore init`.

use std::path::{Path, PathBuf};

use clap::Args;
use smtrust_keystore::{Argon2Params, InitMethod, Keystore};

use crate::cli::secret;

pub(super) const EXAMPLES: &str = "EXAMPLES:
  SMTRUST_PASSPHRASE=... smtrust --data-dir /var/lib/smtrust keystore init
  smtrust --data-dir /var/lib/smtrust keystore init --shares 5 --threshold 3 > shares.txt";

/// Options of `keystore init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Split the unseal secret into this many shares (m-of-n unseal) instead of a passphrase.
    #[arg(long, requires = "threshold")]
    shares: Option<u8>,
    /// How many shares unseal the keystore.
    #[arg(long, requires = "shares")]
    threshold: Option<u8>,
    /// File holding the passphrase (else `SMTRUST_PASSPHRASE`, else a prompt).
    #[arg(long, conflicts_with = "shares")]
    passphrase_file: Option<PathBuf>,
}

pub(super) fn run(data_dir: &Path, args: &InitArgs, json: bool) -> anyhow::Result<()> {
    let dir = super::keystore_dir(data_dir);
    std::fs::create_dir_all(data_dir)?;
    let printed = match (args.shares, args.threshold) {
        (Some(count), Some(threshold)) => {
            anyhow::ensure!(
                threshold >= 2 && threshold <= count,
                "need 2 <= --threshold <= --shares (got {threshold} of {count})"
            );
            Keystore::init_dir(&dir, InitMethod::Shares { threshold, count })?
        }
        _ => {
            let p =
                secret::passphrase(args.passphrase_file.as_deref(), "new keystore passphrase: ")?;
            anyhow::ensure!(
                p.len() >= 12,
                "a keystore passphrase needs at least 12 bytes"
            );
            Keystore::init_dir(
                &dir,
                InitMethod::Passphrase {
                    passphrase: &p,
                    params: Argon2Params::DEFAULT,
                },
            )?
        }
    };
    if json {
        let shares: Vec<&str> = printed.iter().map(|s| s.as_str()).collect();
        println!(
            "{}",
            serde_json::json!({ "keystore": dir, "shares": shares })
        );
    } else {
        eprintln!("keystore created at {}", dir.display());
        if !printed.is_empty() {
            eprintln!("give each share to a different custodian; they are shown once:");
            for s in &printed {
                println!("{}", s.as_str());
            }
        }
    }
    Ok(())
}
