//! `smtrust factory resume`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::{IssuerArgs, KeyArgs};

/// Finish a batch interrupted by kill -9 or power loss: adopt outputs already in place, re-reserve the
/// serials of unfinished devices, issue the rest. Give the same issuer and key protection as the batch: a
/// key-generation batch resumed with another passphrase than its bundles are under is refused (as the
/// factory API refuses it with 409 passphrase_mismatch), nothing issued.
///
/// EXAMPLES:
///   SMTRUST_BUNDLE_PASSPHRASE=... smtrust factory resume 3f9a0c... --issuer-cert ca.pem --issuer-key ca.key
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct ResumeArgs {
    /// The batch id (printed by `factory batch`, in OUT/report.json).
    id: String,
    #[command(flatten)]
    issuer: IssuerArgs,
    #[command(flatten)]
    keys: KeyArgs,
}

pub(crate) fn run(a: &ResumeArgs, data_dir: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let keys = a.keys.protection()?;
    let (mut factory, _ca) = a.issuer.open(data_dir)?;
    if let Some(k) = &keys {
        crate::node::factory::same_passphrase(&mut factory, &a.id, k).with_context(|| {
            format!(
                "batch {}: resume with the passphrase the batch was started with",
                a.id
            )
        })?;
    }
    let mut sink = super::progress_sink(json);
    let report = factory.resume(&a.id, keys.as_ref(), &mut *sink)?;
    super::print_report(&report, json)
}
