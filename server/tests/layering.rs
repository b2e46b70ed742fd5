//! The one-way dependency rule of docs/architecture.md, checked against `cargo metadata`: any edge between
//! smtrust crates that is not drawn there fails this test.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// crate → the smtrust crates it may depend on (normal and build dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("smtrust-crypto", &[]),
    ("smtrust-test-support", &[]),
    ("smtrust-tls", &["smtrust-crypto"]),
    ("smtrust-keystore", &["smtrust-crypto"]),
    (
        "smtrust-ca",
        &["smtrust-crypto", "smtrust-tls", "smtrust-keystore"],
    ),
    ("smtrust-attest", &["smtrust-crypto", "smtrust-keystore"]),
    ("smtrust-policy", &["smtrust-crypto", "smtrust-keystore"]),
    (
        "smtrust-agent",
        &["smtrust-crypto", "smtrust-tls", "smtrust-attest"],
    ),
    (
        "smtrust-gateway",
        &[
            "smtrust-crypto",
            "smtrust-tls",
            "smtrust-keystore",
            "smtrust-ca",
            "smtrust-attest",
            "smtrust-policy",
        ],
    ),
];

#[test]
fn smtrust_crates_depend_one_way() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(k, v)| (*k, v.iter().copied().collect()))
        .collect();
    let mut violations = Vec::new();
    for pkg in meta["packages"].as_array().expect("packages") {
        let name = pkg["name"].as_str().expect("name");
        if name == "smtrust" {
            continue; // the binary wires everything
        }
        for dep in pkg["dependencies"].as_array().expect("dependencies") {
            let dep_name = dep["name"].as_str().expect("dep name");
            let kind = dep["kind"].as_str().unwrap_or("normal");
            if !dep_name.starts_with("smtrust") || kind == "dev" {
                continue;
            }
            match allowed.get(name) {
                Some(ok) if ok.contains(dep_name) => {}
                Some(_) => violations.push(format!("{name} -> {dep_name}")),
                None => violations.push(format!(
                    "{name} is not in the layering table (add it to docs and here)"
                )),
            }
        }
    }
    assert!(
        violations.is_empty(),
        "edges not in docs/architecture.md: {violations:?}"
    );
}
