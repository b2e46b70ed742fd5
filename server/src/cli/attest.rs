//! `smtrust attest`: attestation. Being built this session; the verbs land here.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

/// Arguments of `smtrust attest`.
#[derive(Debug, Args)]
pub(crate) struct AttestArgs {
    /// Arguments for the verbs being built.
    #[arg(trailing_var_arg = true)]
    pub(crate) rest: Vec<String>,
}

pub(crate) fn run(_args: &AttestArgs, _data_dir: Option<&Path>, _json: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`smtrust attest` is not available in this build yet")
}
