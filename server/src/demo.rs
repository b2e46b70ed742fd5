//! `smtrust demo`: the product's main job on embedded defaults, phase by phase, with counts and timings.
//!
//! Each part of the trust path joins as it lands (see `docs/architecture.md`). Phases run for real on this
//! machine; a phase that finds something wrong marks itself failed and the demo exits non-zero.

mod report;
mod steps;

use std::process::ExitCode;

use clap::Args;

pub(crate) use report::Report;

/// Options of `smtrust demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// How many devices the demo provisions.
    #[arg(long, default_value_t = 1000)]
    pub(crate) devices: usize,
}

pub(crate) fn run(args: &DemoArgs, json: bool) -> anyhow::Result<ExitCode> {
    if args.devices == 0 {
        anyhow::bail!("--devices must be at least 1");
    }
    let mut report = Report::new(json);
    steps::run_all(args, &mut report)?;
    report.finish()
}
