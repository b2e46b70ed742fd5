//! `smtrust keystore …` end to end through the real binary: passphrase and m-of-n stores, refusals.

use smtrust_test_support::cli::{Cli, Run};

fn smtrust(dir: &std::path::Path, args: &[&str], passphrase: Option<&str>) -> Run {
    let cli = Cli::new(env!("CARGO_BIN_EXE_smtrust"), dir);
    match passphrase {
        Some(p) => cli.env("SMTRUST_PASSPHRASE", p),
        None => cli.env_remove("SMTRUST_PASSPHRASE"),
    }
    .run(args)
}

fn ok(out: &Run) -> String {
    out.ok()
}

#[test]
fn passphrase_store_lifecycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = "correct horse battery staple";
    ok(&smtrust(dir.path(), &["keystore", "init"], Some(p)));
    let st: serde_json::Value = serde_json::from_str(&ok(&smtrust(
        dir.path(),
        &["--json", "keystore", "status"],
        None,
    )))
    .expect("json");
    assert_eq!(st["sealed"], true);
    assert_eq!(st["generation"], 1);
    ok(&smtrust(dir.path(), &["keystore", "unseal"], Some(p)));
    let rot: serde_json::Value = serde_json::from_str(&ok(&smtrust(
        dir.path(),
        &["--json", "keystore", "rotate-master"],
        Some(p),
    )))
    .expect("json");
    assert_eq!(rot["generation"], 2);
    let list: serde_json::Value = serde_json::from_str(&ok(&smtrust(
        dir.path(),
        &["--json", "keystore", "list"],
        Some(p),
    )))
    .expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(0));

    let wrong = smtrust(
        dir.path(),
        &["keystore", "unseal"],
        Some("not the passphrase at all"),
    );
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr)
            .to_lowercase()
            .contains("passphrase")
    );
    // Re-init over an existing store is refused.
    assert!(
        !smtrust(dir.path(), &["keystore", "init"], Some(p))
            .status
            .success()
    );
    // A short passphrase is refused at init.
    let other = tempfile::tempdir().expect("tempdir");
    assert!(
        !smtrust(other.path(), &["keystore", "init"], Some("short"))
            .status
            .success()
    );
    // No passphrase and no terminal: a clear message.
    let none = smtrust(dir.path(), &["keystore", "unseal"], None);
    assert!(String::from_utf8_lossy(&none.stderr).contains("SMTRUST_PASSPHRASE"));
}

#[test]
fn share_store_unseals_with_threshold_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out: serde_json::Value = serde_json::from_str(&ok(&smtrust(
        dir.path(),
        &[
            "--json",
            "keystore",
            "init",
            "--shares",
            "5",
            "--threshold",
            "3",
        ],
        None,
    )))
    .expect("json");
    let shares: Vec<String> = out["shares"]
        .as_array()
        .expect("shares")
        .iter()
        .map(|s| s.as_str().expect("share").to_string())
        .collect();
    assert_eq!(shares.len(), 5);
    let file = dir.path().join("shares.txt");
    std::fs::write(&file, shares[1..4].join("\n")).expect("write shares");
    ok(&smtrust(
        dir.path(),
        &[
            "keystore",
            "unseal",
            "--share-file",
            file.to_str().expect("utf8"),
        ],
        None,
    ));
    std::fs::write(&file, shares[..2].join("\n")).expect("write shares");
    let few = smtrust(
        dir.path(),
        &[
            "keystore",
            "unseal",
            "--share-file",
            file.to_str().expect("utf8"),
        ],
        None,
    );
    assert!(!few.status.success());
    assert!(
        String::from_utf8_lossy(&few.stderr).contains("share"),
        "{}",
        String::from_utf8_lossy(&few.stderr)
    );
}
