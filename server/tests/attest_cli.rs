//! `smtrust attest …` through the real binary: offline result verification and the reference-value registry.
//! Fixtures: `attest/tests/data/cli/`, written by `cargo run -p smtrust-attest --example cli_fixtures`.

use std::path::{Path, PathBuf};

use smtrust_test_support::cli::{Cli, Run, s};

/// The fixtures' appraisal time (attest/tests/attest/pki.rs NOW_SECS) plus a little.
const AT: &str = "1764000100";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../attest/tests/data/cli")
        .join(name)
}

fn smtrust(dir: &Path, args: &[&str]) -> Run {
    Cli::new(env!("CARGO_BIN_EXE_smtrust"), dir)
        .env_remove("SMTRUST_ATTEST_DATABASE")
        .run(args)
}

fn json(out: &Run) -> serde_json::Value {
    out.json_any()
}

fn verify(dir: &Path, token: &Path, ca: &Path, at: &str) -> Run {
    smtrust(
        dir,
        &[
            "--json",
            "attest",
            "verify-result",
            s(token),
            "--ca",
            s(ca),
            "--at",
            at,
        ],
    )
}

#[test]
fn verify_result_reports_status_and_exit_code() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = fixture("ca.pem");
    let out = verify(tmp.path(), &fixture("affirming.jws"), &ca, AT);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["valid"], true);
    assert_eq!(v["status"], "affirming");
    assert_eq!(v["device_id"], "ctw-0000000042");
    assert_eq!(v["reasons"].as_array().map(Vec::len), Some(0));

    let out = verify(tmp.path(), &fixture("contraindicated.jws"), &ca, AT);
    assert_eq!(out.status.code(), Some(2));
    let v = json(&out);
    assert_eq!(v["status"], "contraindicated");
    assert!(
        v["reasons"]
            .as_array()
            .expect("reasons")
            .iter()
            .any(|r| r["code"] == "nonce-replayed")
    );
}

#[test]
fn verify_result_refuses_tampered_expired_and_foreign_results_with_exit_3() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = fixture("ca.pem");
    // One payload character changed: the signature no longer verifies.
    let token = std::fs::read_to_string(fixture("affirming.jws")).expect("read");
    let mut parts: Vec<String> = token.trim().split('.').map(str::to_owned).collect();
    let payload = &mut parts[1];
    let mid = payload.len() / 2;
    let c = payload.as_bytes()[mid];
    let swapped = if c == b'A' { "B" } else { "A" };
    payload.replace_range(mid..=mid, swapped);
    let tampered = tmp.path().join("tampered.jws");
    std::fs::write(&tampered, parts.join(".")).expect("write");
    let out = verify(tmp.path(), &tampered, &ca, AT);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(json(&out)["valid"], false);

    // Past `exp` (results are valid one hour).
    let out = verify(tmp.path(), &fixture("affirming.jws"), &ca, "1764010000");
    assert_eq!(out.status.code(), Some(3));

    // Another CA: the signer does not chain to it.
    let out = verify(
        tmp.path(),
        &fixture("affirming.jws"),
        &fixture("foreign-ca.pem"),
        AT,
    );
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn refs_import_list_export_round_trip_with_versions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let file = fixture("refs.json");
    let out = smtrust(
        d,
        &[
            "--json",
            "attest",
            "refs",
            "import",
            s(&file),
            "--by",
            "secadmin-alice",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v[0]["version"], 1);
    assert_eq!(v[0]["registered_by"], "secadmin-alice");
    assert!(d.join("attest.db").is_file());

    // A second import registers version 2 of the same model and firmware.
    let out = smtrust(
        d,
        &[
            "--json",
            "attest",
            "refs",
            "import",
            s(&file),
            "--by",
            "secadmin-bob",
        ],
    );
    assert_eq!(json(&out)[0]["version"], 2);

    let list = json(&smtrust(d, &["--json", "attest", "refs", "list"]));
    let list = list.as_array().expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["version"], 2);
    assert_eq!(list[0]["registered_by"], "secadmin-bob");

    // Export, then import the export elsewhere: same measurements.
    let exported = d.join("export.json");
    let out = smtrust(d, &["attest", "refs", "export", "--out", s(&exported)]);
    assert!(out.status.success());
    let ex: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&exported).expect("read")).expect("json");
    let orig: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
    assert_eq!(ex[0]["reference-values"], orig[0]["reference-values"]);
    assert_eq!(ex[0]["registration"]["version"], 2);
    let other = tempfile::tempdir().expect("tempdir");
    let out = smtrust(
        other.path(),
        &["attest", "refs", "import", s(&exported), "--by", "carol"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A malformed document registers nothing.
    let bad = d.join("bad.json");
    std::fs::write(&bad, r#"[{"profile": "nope"}]"#).expect("write");
    assert!(
        !smtrust(d, &["attest", "refs", "import", s(&bad), "--by", "x"])
            .status
            .success()
    );
    let list = json(&smtrust(d, &["--json", "attest", "refs", "list"]));
    assert_eq!(list[0]["version"], 2);
}
