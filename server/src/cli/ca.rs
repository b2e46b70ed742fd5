//! `smtrust ca`: the certificate authority. Being built this session; the verbs land here.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

/// Arguments of `smtrust ca`.
#[derive(Debug, Args)]
pub(crate) struct CaArgs {
    /// Arguments for the verbs being built.
    #[arg(trailing_var_arg = true)]
    pub(crate) rest: Vec<String>,
}

pub(crate) fn run(_args: &CaArgs, _data_dir: Option<&Path>, _json: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`smtrust ca` is not available in this build yet")
}
