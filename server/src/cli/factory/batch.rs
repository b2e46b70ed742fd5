//! `smtrust factory batch`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use smtrust_ca::factory::{BatchSpec, InputFormat, Mode};

use super::{IssuerArgs, KeyArgs};

/// Issue a batch of device identities, journaled so `factory resume` can finish it after a crash.
///
/// CSR mode (--csr): a directory of PEM/DER CSR files named <device-id>.<ext>, or JSON Lines
/// {"device_id", "csr"}; certificates go to OUT/certs/<device-id>.pem or OUT/certs.jsonl.
/// Key-generation mode (--manifest): CSV with a device_id column, or JSON Lines {"device_id", ...};
/// one bundle per device in OUT/bundles/<device-id>.pem (layout: docs/factory.md).
/// Re-running the same input resumes or re-reports the same batch (its id is derived from the input).
///
/// Certificates come from the CA of `smtrust ca init` in the data directory (its namespace applies) and are
/// recorded in its database, so revocation, OCSP and CRLs cover factory devices.
///
/// EXAMPLES:
///   SMTRUST_PASSPHRASE=... SMTRUST_BUNDLE_PASSPHRASE=... smtrust --data-dir /var/lib/smtrust \
///       factory batch --manifest line7.csv --out out/
///   smtrust factory batch --manifest line7.csv --out out/ --transport-key line7-transport.pub.pem
///   smtrust factory batch --csr csrs.jsonl --out out/ --issuer-cert ca.pem --issuer-key ca.key --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct BatchArgs {
    /// CSR mode: directory of CSR files or JSON Lines file.
    #[arg(
        long,
        conflicts_with = "manifest",
        required_unless_present = "manifest"
    )]
    csr: Option<PathBuf>,
    /// Key-generation mode: CSV or JSON Lines manifest of device ids and attributes.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Most devices the issuer may hold across batches; devices beyond are refused.
    #[arg(long)]
    quota: Option<u64>,
    #[command(flatten)]
    issuer: IssuerArgs,
    #[command(flatten)]
    keys: KeyArgs,
}

pub(crate) fn run(a: &BatchArgs, data_dir: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let (mode, input, format) = match (&a.csr, &a.manifest) {
        (Some(p), _) if p.is_dir() => (Mode::Csr, p, InputFormat::CsrDir),
        (Some(p), _) => (Mode::Csr, p, InputFormat::CsrJsonl),
        (None, Some(p)) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) => {
            (Mode::KeyGen, p, InputFormat::KeysCsv)
        }
        (None, Some(p)) => (Mode::KeyGen, p, InputFormat::KeysJsonl),
        (None, None) => anyhow::bail!("give --csr or --manifest"),
    };
    let keys = match mode {
        Mode::KeyGen => Some(a.keys.protection()?.ok_or_else(|| {
            anyhow::anyhow!(
                "key-generation mode needs --transport-key, --passphrase-file or SMTRUST_BUNDLE_PASSPHRASE"
            )
        })?),
        _ => None,
    };
    let (mut factory, _ca) = a.issuer.open(data_dir)?;
    let mut spec = BatchSpec::new(
        mode,
        input.clone(),
        format,
        a.out.clone(),
        super::unix_now(),
    );
    spec.quota = a.quota;
    let mut sink = super::progress_sink(json);
    let report = factory.batch(&spec, keys.as_ref(), &mut *sink)?;
    super::print_report(&report, json)
}
