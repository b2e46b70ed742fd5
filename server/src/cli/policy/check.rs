//! `policy validate`, `policy test` and `policy dry-run`: read-only checks of bundles.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use smtrust_policy::{Bundle, Error, TestReport, run_tests};

use super::store::{Store, read_dir};
use super::{PolicyExit, decision_json, print_json};

/// Every message a compile error carries (each validator error separately).
fn messages(e: &Error) -> Vec<String> {
    match e {
        Error::Validation { errors } => errors.clone(),
        other => vec![other.to_string()],
    }
}

/// Compiles `dir`, or reports why not (printing) and returns `None`.
fn compile_or_report(dir: &Path, json: bool) -> anyhow::Result<Option<Bundle>> {
    let sources = read_dir(dir)?;
    match Bundle::compile(sources) {
        Ok(b) => Ok(Some(b)),
        Err(e) => {
            if json {
                print_json(&serde_json::json!({
                    "valid": false,
                    "bundle": dir.display().to_string(),
                    "errors": messages(&e),
                }))?;
            } else {
                eprintln!("{}: invalid bundle", dir.display());
                for m in messages(&e) {
                    eprintln!("  {m}");
                }
            }
            Ok(None)
        }
    }
}

pub(super) fn validate(dir: &Path, json: bool) -> anyhow::Result<PolicyExit> {
    let Some(bundle) = compile_or_report(dir, json)? else {
        return Ok(PolicyExit::Invalid);
    };
    let policies = bundle.policies().policies().count();
    if json {
        print_json(&serde_json::json!({
            "valid": true,
            "bundle": dir.display().to_string(),
            "policies": policies,
            "topic_rules": bundle.topic_rule_count(),
            "entities": bundle.entities().len(),
        }))?;
    } else {
        println!(
            "{}: valid ({policies} policies, {} topic rules, {} entities)",
            dir.display(),
            bundle.topic_rule_count(),
            bundle.entities().len()
        );
    }
    Ok(PolicyExit::Ok)
}

/// The bundle to test: a directory, or the active version.
fn bundle_for(store: &Store, dir: Option<&Path>, json: bool) -> anyhow::Result<Option<Bundle>> {
    match dir {
        Some(d) => compile_or_report(d, json),
        None => Ok(Some(store.active_bundle()?.1)),
    }
}

/// Runs test files; each file must parse (a malformed file is an error, exit 1).
pub(super) fn run_files(bundle: &Bundle, files: &[PathBuf]) -> anyhow::Result<Vec<TestReport>> {
    files
        .iter()
        .map(|f| {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            run_tests(bundle, &text).with_context(|| format!("{}", f.display()))
        })
        .collect()
}

pub(super) fn test(
    store: &Store,
    dir: Option<&Path>,
    files: &[PathBuf],
    json: bool,
) -> anyhow::Result<PolicyExit> {
    let Some(bundle) = bundle_for(store, dir, json)? else {
        return Ok(PolicyExit::Invalid);
    };
    let reports = run_files(&bundle, files)?;
    let all_passed = reports.iter().all(TestReport::all_passed);
    if json {
        let cases: Vec<_> = reports
            .iter()
            .flat_map(|r| &r.cases)
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "operation": c.operation.to_string(),
                    "passed": c.passed(),
                    "expect": if c.expect_allowed { "allow" } else { "deny" },
                    "expect_policies": c.expect_policies,
                    "decision": decision_json(&c.decision),
                })
            })
            .collect();
        let failed = cases.iter().filter(|c| c["passed"] == false).count();
        print_json(&serde_json::json!({
            "passed": cases.len() - failed,
            "failed": failed,
            "cases": cases,
        }))?;
    } else {
        for (file, report) in files.iter().zip(&reports) {
            println!("{}:", file.display());
            print!("{report}");
        }
    }
    Ok(if all_passed {
        PolicyExit::Ok
    } else {
        PolicyExit::Deny
    })
}

pub(super) fn dry_run(
    store: &Store,
    dir: &Path,
    requests: &[PathBuf],
    json: bool,
) -> anyhow::Result<PolicyExit> {
    let Some(candidate) = compile_or_report(dir, json)? else {
        return Ok(PolicyExit::Invalid);
    };
    let (version, active) = store.active_bundle()?;
    let now = run_files(&active, requests)?;
    let then = run_files(&candidate, requests)?;
    let mut changes = Vec::new();
    let mut total = 0;
    for (a, b) in now.iter().zip(&then) {
        for (x, y) in a.cases.iter().zip(&b.cases) {
            total += 1;
            if x.decision.allowed != y.decision.allowed {
                changes.push((x, y));
            }
        }
    }
    if json {
        let list: Vec<_> = changes
            .iter()
            .map(|(x, y)| {
                let mut active = decision_json(&x.decision);
                active["bundle_version"] = version.into();
                serde_json::json!({
                    "name": x.name,
                    "operation": x.operation.to_string(),
                    "active": active,
                    "candidate": decision_json(&y.decision),
                })
            })
            .collect();
        print_json(&serde_json::json!({
            "active_version": version,
            "requests": total,
            "changed": list,
        }))?;
    } else {
        let verdict = |allowed| if allowed { "allow" } else { "deny" };
        for (x, y) in &changes {
            println!(
                "CHANGED {}: {}: {} {:?} -> {} {:?}",
                x.name,
                x.operation,
                verdict(x.decision.allowed),
                x.decision.policy_ids,
                verdict(y.decision.allowed),
                y.decision.policy_ids
            );
        }
        println!(
            "{} of {total} decisions would change (active version {version})",
            changes.len()
        );
    }
    Ok(PolicyExit::Ok)
}
