//! `smtrust policy`: Cedar policy bundles — validate, test, apply (with version history in the
//! data directory), roll back, diff, dry-run and explain. Layout and formats: docs/policy.md.

mod check;
mod explain;
mod history;
pub(crate) mod store;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

/// Arguments of `smtrust policy`.
#[derive(Debug, Args)]
pub(crate) struct PolicyArgs {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Parse and strictly validate a bundle directory (exit 3 when invalid).
    #[command(after_long_help = "EXAMPLES:\n  smtrust policy validate ./policy\n")]
    Validate {
        /// Directory holding policies.cedar [, schema.cedarschema, entities.json].
        dir: PathBuf,
    },
    /// Run policy test files against a bundle (exit 2 when a case fails, 3 when invalid).
    #[command(
        after_long_help = "EXAMPLES:\n  smtrust policy test --bundle ./policy ./policy/tests.toml\n  smtrust policy test tests.toml   # against the active bundle\n"
    )]
    Test {
        /// Bundle directory; the active bundle when omitted.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// Test files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validate a bundle, run its tests, store it as a new version and make it active.
    #[command(
        after_long_help = "EXAMPLES:\n  smtrust policy apply ./policy --tests ./policy/tests.toml -m \"allow OTA for sz-2\"\n"
    )]
    Apply {
        /// Bundle directory.
        dir: PathBuf,
        /// Test files that must pass before the bundle is stored.
        #[arg(long = "tests")]
        tests: Vec<PathBuf>,
        /// A note kept with the version.
        #[arg(short, long, default_value = "")]
        message: String,
    },
    /// Make an earlier version active again (the one before the active one by default).
    #[command(
        after_long_help = "EXAMPLES:\n  smtrust policy rollback\n  smtrust policy rollback --to 3\n"
    )]
    Rollback {
        /// The version to activate.
        #[arg(long)]
        to: Option<u64>,
    },
    /// List stored versions and which is active.
    #[command(after_long_help = "EXAMPLES:\n  smtrust policy versions --json\n")]
    Versions,
    /// Show what changes between two versions, or between the active version and a directory.
    #[command(
        after_long_help = "EXAMPLES:\n  smtrust policy diff ./policy          # active -> candidate\n  smtrust policy diff --from 2 --to 3\n"
    )]
    Diff {
        /// Candidate bundle directory (compared with --from, default the active version).
        dir: Option<PathBuf>,
        /// Older version (default: the active one).
        #[arg(long)]
        from: Option<u64>,
        /// Newer version (instead of a directory).
        #[arg(long, conflicts_with = "dir")]
        to: Option<u64>,
    },
    /// Decide the requests of test files with the active bundle and a candidate; list every
    /// decision that would change. Expectations in the files are ignored.
    #[command(
        name = "dry-run",
        after_long_help = "EXAMPLES:\n  smtrust policy dry-run ./policy --requests ./policy/tests.toml\n"
    )]
    DryRun {
        /// Candidate bundle directory.
        dir: PathBuf,
        /// Test files whose requests are decided.
        #[arg(long = "requests", required = true)]
        requests: Vec<PathBuf>,
    },
    /// Decide one request and show which policies decided and why (exit 2 on deny).
    #[command(
        after_long_help = "EXAMPLES:\n  smtrust policy explain --device ctw-1 --product meter --subscribe 'devices/+/down/#'\n  smtrust policy explain --admin alice --role security --http 'GET /api/v1/devices'\n"
    )]
    Explain(Box<explain::ExplainArgs>),
}

/// Exit codes of `smtrust policy`, as cedar's CLI: 2 deny or failed test, 3 invalid bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyExit {
    Ok = 0,
    Deny = 2,
    Invalid = 3,
}

impl From<PolicyExit> for ExitCode {
    fn from(e: PolicyExit) -> Self {
        ExitCode::from(e as u8)
    }
}

pub(crate) fn run(
    args: &PolicyArgs,
    data_dir: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store =
        || -> anyhow::Result<store::Store> { Ok(store::Store::new(&super::data_dir(data_dir)?)) };
    let code = match &args.verb {
        Verb::Validate { dir } => check::validate(dir, json)?,
        Verb::Test { bundle, files } => check::test(&store()?, bundle.as_deref(), files, json)?,
        Verb::Apply {
            dir,
            tests,
            message,
        } => history::apply(&store()?, dir, tests, message, json)?,
        Verb::Rollback { to } => history::rollback(&store()?, *to, json)?,
        Verb::Versions => history::versions(&store()?, json)?,
        Verb::Diff { dir, from, to } => history::diff(&store()?, dir.as_deref(), *from, *to, json)?,
        Verb::DryRun { dir, requests } => check::dry_run(&store()?, dir, requests, json)?,
        Verb::Explain(a) => explain::run(&store()?, a, json)?,
    };
    Ok(code.into())
}

/// Prints one JSON value on stdout.
fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A decision as JSON: allowed, deciding policy ids, bundle version, reasons.
fn decision_json(d: &smtrust_policy::Decision) -> serde_json::Value {
    serde_json::json!({
        "allowed": d.allowed,
        "policies": d.policy_ids,
        "bundle_version": d.bundle_version,
        "reasons": d.reasons.iter().map(reason_text).collect::<Vec<_>>(),
    })
}

/// One reason as a line an operator can read.
fn reason_text(r: &smtrust_policy::Reason) -> String {
    use smtrust_policy::Reason;
    match r {
        Reason::Permitted { policy_id } => format!("permitted by {policy_id}"),
        Reason::Forbidden { policy_id } => format!("forbidden by {policy_id}"),
        Reason::NoPermit => "no permit applies (default deny)".to_owned(),
        Reason::PolicyError { message } => format!("policy error (skipped): {message}"),
        Reason::Unbound {
            policy_id,
            variable,
        } => format!("{policy_id}: {variable} has no usable value for this principal"),
        Reason::PrincipalType => "this kind of principal may not ask for this".to_owned(),
        Reason::InvalidPrincipal { message } => format!("invalid principal: {message}"),
        other => format!("{other:?}"),
    }
}
