//! `smtrust demo` runs end to end and reports every phase as passed, in the documented JSON shape.

use std::process::Command;

#[test]
fn demo_json_reports_every_phase_ok() {
    let out = Command::new(env!("CARGO_BIN_EXE_smtrust"))
        .args(["demo", "--devices", "24", "--json"])
        .output()
        .expect("run smtrust demo");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    let phases = v["phases"].as_array().expect("phases list");
    assert!(phases.len() >= 3, "{v}");
    for p in phases {
        assert_eq!(p["ok"], true, "{p}");
        assert_eq!(p["count"], 24, "{p}");
        assert!(p["seconds"].as_f64().is_some(), "{p}");
        assert!(p["name"].as_str().is_some(), "{p}");
    }
    assert!(v.get("revocation_cut_ms").is_some(), "{v}");
}

#[test]
fn demo_refuses_zero_devices() {
    let out = Command::new(env!("CARGO_BIN_EXE_smtrust"))
        .args(["demo", "--devices", "0"])
        .output()
        .expect("run smtrust demo");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--devices"));
}
