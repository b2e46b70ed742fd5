//! `policy apply`, `rollback`, `versions` and `diff`: the version history in the data directory.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use smtrust_policy::{Bundle, BundleDiff, PolicyChange};

use super::check::run_files;
use super::store::{Store, read_dir};
use super::{PolicyExit, print_json};

pub(super) fn apply(
    store: &Store,
    dir: &Path,
    tests: &[PathBuf],
    message: &str,
    json: bool,
) -> anyhow::Result<PolicyExit> {
    let sources = read_dir(dir)?;
    let bundle = match Bundle::compile(sources.clone()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: invalid bundle, nothing applied: {e}", dir.display());
            return Ok(PolicyExit::Invalid);
        }
    };
    let reports = run_files(&bundle, tests)?;
    let failed: usize = reports.iter().map(|r| r.failures().count()).sum();
    if failed > 0 {
        for r in &reports {
            eprint!("{r}");
        }
        eprintln!("{failed} policy test(s) failed, nothing applied");
        return Ok(PolicyExit::Deny);
    }
    let previous = store.active()?;
    let version = store.add(&sources, dir, message)?;
    store.set_active(version)?;
    if json {
        print_json(&serde_json::json!({
            "version": version,
            "previous": previous,
            "tests_passed": reports.iter().map(|r| r.cases.len()).sum::<usize>(),
        }))?;
    } else {
        println!(
            "applied {} as version {version} (was {previous})",
            dir.display()
        );
    }
    Ok(PolicyExit::Ok)
}

pub(super) fn rollback(store: &Store, to: Option<u64>, json: bool) -> anyhow::Result<PolicyExit> {
    let active = store.active()?;
    let target = match to {
        Some(v) => v,
        None => {
            let earlier = store.versions()?.into_iter().filter(|v| *v < active).max();
            match earlier {
                Some(v) => v,
                None if active > 0 => 0,
                None => bail!("no version before the default bundle to roll back to"),
            }
        }
    };
    // A stored version that no longer compiles (for example, hand-edited) is refused.
    Bundle::compile(store.sources(target)?)
        .with_context(|| format!("version {target} does not compile; not activated"))?;
    store.set_active(target)?;
    if json {
        print_json(&serde_json::json!({ "version": target, "previous": active }))?;
    } else {
        println!("active version is now {target} (was {active})");
    }
    Ok(PolicyExit::Ok)
}

pub(super) fn versions(store: &Store, json: bool) -> anyhow::Result<PolicyExit> {
    let active = store.active()?;
    let metas = store
        .versions()?
        .into_iter()
        .map(|v| store.meta(v))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if json {
        print_json(&serde_json::json!({ "active": active, "versions": metas }))?;
    } else {
        let mark = |v| if v == active { "*" } else { " " };
        println!("{} 0  (default bundle)", mark(0));
        for m in &metas {
            println!(
                "{} {}  applied_at={} source={} {}",
                mark(m.version),
                m.version,
                m.applied_at,
                m.source,
                m.message
            );
        }
    }
    Ok(PolicyExit::Ok)
}

pub(super) fn diff(
    store: &Store,
    dir: Option<&Path>,
    from: Option<u64>,
    to: Option<u64>,
    json: bool,
) -> anyhow::Result<PolicyExit> {
    let from = match from {
        Some(v) => v,
        None => store.active()?,
    };
    let compile = |sources| Bundle::compile(sources).context("bundle does not compile");
    let old = compile(store.sources(from)?)?;
    let (new, label) = match (dir, to) {
        (Some(d), _) => (compile(read_dir(d)?)?, d.display().to_string()),
        (None, Some(v)) => (compile(store.sources(v)?)?, format!("version {v}")),
        (None, None) => bail!("give a bundle directory or --to VERSION"),
    };
    let d = BundleDiff::between(&old, &new);
    if json {
        let policies: Vec<_> = d
            .policies
            .iter()
            .map(|c| match c {
                PolicyChange::Added { id, text } => {
                    serde_json::json!({"change": "added", "id": id, "text": text})
                }
                PolicyChange::Removed { id, text } => {
                    serde_json::json!({"change": "removed", "id": id, "text": text})
                }
                PolicyChange::Changed { id, diff } => {
                    serde_json::json!({"change": "changed", "id": id, "diff": diff})
                }
                other => serde_json::json!({"change": format!("{other:?}")}),
            })
            .collect();
        print_json(&serde_json::json!({
            "from": from,
            "to": label,
            "schema_changed": d.schema_changed,
            "entities_changed": d.entities_changed,
            "policies": policies,
        }))?;
    } else if d.is_empty() {
        println!("no differences between version {from} and {label}");
    } else {
        println!("version {from} -> {label}");
        print!("{d}");
    }
    Ok(PolicyExit::Ok)
}
