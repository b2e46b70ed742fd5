//! `smtrust agent`: the device agent. Being built this session; the verbs land here.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

/// Arguments of `smtrust agent`.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// Arguments for the verbs being built.
    #[arg(trailing_var_arg = true)]
    pub(crate) rest: Vec<String>,
}

pub(crate) fn run(_args: &AgentArgs, _data_dir: Option<&Path>, _json: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`smtrust agent` is not available in this build yet")
}
