//! `smtrust serve`: the service. Being built this session; the verbs land here.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

/// Arguments of `smtrust serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Arguments for the verbs being built.
    #[arg(trailing_var_arg = true)]
    pub(crate) rest: Vec<String>,
}

pub(crate) fn run(_args: &ServeArgs, _data_dir: Option<&Path>, _json: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`smtrust serve` is not available in this build yet")
}
