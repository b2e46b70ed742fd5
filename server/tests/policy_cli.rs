//! `smtrust policy …` end to end through the real binary: validate, test, apply with version
//! history in the data directory, rollback, diff, dry-run and explain.

#![allow(clippy::panic, reason = "test helpers: a failure is a failed test")]

use std::path::{Path, PathBuf};

use smtrust_test_support::cli::{Cli, Run, s};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policy/tests/data")
        .join(rel)
}

fn smtrust(dir: &Path, args: &[&str]) -> Run {
    Cli::new(env!("CARGO_BIN_EXE_smtrust"), dir).run(args)
}

fn code(out: &Run) -> i32 {
    out.code()
}

fn json(out: &Run) -> serde_json::Value {
    out.json_any()
}

/// A copy of the fleet bundle with `policies.cedar` replaced.
fn bundle_with(dir: &Path, name: &str, policies: &str) -> PathBuf {
    let b = dir.join(name);
    std::fs::create_dir_all(&b).expect("mkdir");
    std::fs::copy(data("fleet/entities.json"), b.join("entities.json")).expect("copy");
    std::fs::write(b.join("policies.cedar"), policies).expect("write");
    b
}

#[test]
fn validate_accepts_the_fleet_bundle_and_refuses_an_invalid_one_with_exit_3() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ok = smtrust(
        tmp.path(),
        &["--json", "policy", "validate", s(&data("fleet"))],
    );
    assert_eq!(code(&ok), 0);
    let v = json(&ok);
    assert_eq!(v["valid"], true);
    assert!(v["topic_rules"].as_u64().expect("count") > 0);

    // `principal.colour` is not in the schema: strict validation must refuse it.
    let bad = bundle_with(
        tmp.path(),
        "bad",
        "permit (principal is Device, action == Action::\"connect\", resource)\nwhen { principal.colour == \"red\" };\n",
    );
    let out = smtrust(tmp.path(), &["--json", "policy", "validate", s(&bad)]);
    assert_eq!(code(&out), 3);
    let v = json(&out);
    assert_eq!(v["valid"], false);
    assert!(!v["errors"].as_array().expect("errors").is_empty());
}

#[test]
fn test_passes_the_fleet_file_and_exits_2_on_a_wrong_expectation() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fleet = data("fleet");
    let tests = data("fleet.toml");
    let out = smtrust(
        tmp.path(),
        &["--json", "policy", "test", "--bundle", s(&fleet), s(&tests)],
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
    let v = json(&out);
    assert_eq!(v["failed"], 0);
    assert!(v["passed"].as_u64().expect("passed") >= 20);

    // Flip the first expectation: exactly one case must fail, with exit code 2.
    let text = std::fs::read_to_string(&tests).expect("read");
    let flipped = match text.find("expect = \"allow\"") {
        Some(i) => format!(
            "{}expect = \"deny\"{}",
            &text[..i],
            &text[i + "expect = \"allow\"".len()..]
        ),
        None => panic!("fleet.toml has an allow case"),
    };
    let wrong = tmp.path().join("wrong.toml");
    std::fs::write(&wrong, flipped).expect("write");
    let out = smtrust(
        tmp.path(),
        &["--json", "policy", "test", "--bundle", s(&fleet), s(&wrong)],
    );
    assert_eq!(code(&out), 2);
    assert_eq!(json(&out)["failed"], 1);
}

#[test]
fn apply_keeps_versions_in_the_data_dir_and_rollback_diff_explain_follow_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let explain_debug = [
        "--json",
        "policy",
        "explain",
        "--device",
        "ctw-0000000001",
        "--product",
        "meter",
        "--factory",
        "sz-1",
        "--firmware",
        "2.4.1",
        "--group",
        "line-3",
        "--subscribe",
        "tariffs/meter/+",
    ];
    // A new install: the default bundle (version 0) allows no tariff subscriptions.
    let out = smtrust(d, &explain_debug);
    assert_eq!(code(&out), 2);
    assert_eq!(json(&out)["allowed"], false);

    let out = smtrust(
        d,
        &[
            "--json",
            "policy",
            "apply",
            s(&data("fleet")),
            "--tests",
            s(&data("fleet.toml")),
            "-m",
            "fleet",
        ],
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    assert_eq!(
        (v["version"].as_u64(), v["previous"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(d.join("policy/versions/000001/policies.cedar").is_file());

    // Now the meter may read tariffs, and the decision names the policy and version.
    let out = smtrust(d, &explain_debug);
    assert_eq!(code(&out), 0);
    let v = json(&out);
    assert_eq!(v["policies"], serde_json::json!(["meters-read-tariffs"]));
    assert_eq!(v["bundle_version"], 1);

    // An invalid bundle or a failing test changes nothing.
    let bad = bundle_with(
        d,
        "bad",
        "permit (principal, action, resource) when { nonsense };",
    );
    assert_eq!(code(&smtrust(d, &["policy", "apply", s(&bad)])), 3);
    let narrower = bundle_with(
        d,
        "narrower",
        "@id(\"device-connect\")\npermit (principal is Device, action == Action::\"connect\", resource);\n",
    );
    let failing = smtrust(
        d,
        &[
            "policy",
            "apply",
            s(&narrower),
            "--tests",
            s(&data("fleet.toml")),
        ],
    );
    assert_eq!(code(&failing), 2);
    let v = json(&smtrust(d, &["--json", "policy", "versions"]));
    assert_eq!(v["active"], 1);
    assert_eq!(v["versions"].as_array().map(Vec::len), Some(1));

    // Version 2 without tests; diff 1 -> 2 names removed policies.
    let out = smtrust(d, &["--json", "policy", "apply", s(&narrower)]);
    assert_eq!(json(&out)["version"], 2);
    let v = json(&smtrust(
        d,
        &["--json", "policy", "diff", "--from", "1", "--to", "2"],
    ));
    let changes = v["policies"].as_array().expect("policies");
    assert!(
        changes
            .iter()
            .any(|c| c["change"] == "removed" && c["id"] == "meters-read-tariffs")
    );
    assert!(
        changes
            .iter()
            .any(|c| c["change"] == "added" && c["id"] == "device-connect")
    );
    // Active vs. a directory: identical bundles have no differences.
    let v = json(&smtrust(d, &["--json", "policy", "diff", s(&narrower)]));
    assert_eq!(v["policies"].as_array().map(Vec::len), Some(0));

    // Roll back to 1 (the one before 2): tariffs allowed again; then explicitly to 0.
    let v = json(&smtrust(d, &["--json", "policy", "rollback"]));
    assert_eq!(
        (v["version"].as_u64(), v["previous"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(code(&smtrust(d, &explain_debug)), 0);
    let v = json(&smtrust(d, &["--json", "policy", "rollback", "--to", "0"]));
    assert_eq!(v["version"], 0);
    assert_eq!(code(&smtrust(d, &explain_debug)), 2);
    assert_ne!(code(&smtrust(d, &["policy", "rollback", "--to", "9"])), 0);
}

#[test]
fn dry_run_reports_exactly_the_decisions_that_differ() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let fleet = data("fleet");
    let requests = data("fleet.toml");
    // Each bundle's decisions, independently, through `policy test`.
    let decisions = |bundle: Option<&Path>| -> Vec<(String, bool)> {
        let mut args = vec!["--json", "policy", "test"];
        if let Some(b) = bundle {
            args.extend(["--bundle", s(b)]);
        }
        args.push(s(&requests));
        let v = json(&smtrust(d, &args));
        v["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .map(|c| {
                let name = c["name"].as_str().expect("name").to_owned();
                (name, c["decision"]["allowed"].as_bool().expect("allowed"))
            })
            .collect()
    };
    let (active, candidate) = (decisions(None), decisions(Some(&fleet)));
    let expected: Vec<&str> = active
        .iter()
        .zip(&candidate)
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, _)| a.0.as_str())
        .collect();
    assert!(
        !expected.is_empty(),
        "default and fleet bundles must differ somewhere"
    );

    let out = smtrust(
        d,
        &[
            "--json",
            "policy",
            "dry-run",
            s(&fleet),
            "--requests",
            s(&requests),
        ],
    );
    assert_eq!(code(&out), 0);
    let v = json(&out);
    let got: Vec<&str> = v["changed"]
        .as_array()
        .expect("changed")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(v["active_version"], 0);
    // Nothing was stored by a dry run.
    assert!(!d.join("policy/versions").exists());
}

#[test]
fn explain_shows_the_deciding_forbid_and_exits_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = smtrust(
        tmp.path(),
        &[
            "policy",
            "explain",
            "--bundle",
            s(&data("fleet")),
            "--device",
            "ctw-0000000001",
            "--product",
            "meter",
            "--firmware",
            "2.4.1",
            "--subscribe",
            "devices/ctw-0000000001/down/debug/#",
        ],
    );
    assert_eq!(code(&out), 2);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("DENY"), "{text}");
    assert!(text.contains("forbidden by no-debug-topics"), "{text}");
}
