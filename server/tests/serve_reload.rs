//! Policy hot reload through the real binary: `smtrust policy apply` on the data directory of a running
//! `smtrust serve` makes its gateway activate the new version within seconds, without a restart (the gateway's
//! `/metrics` shows the active version).

#![allow(clippy::panic, reason = "test helpers: a failure is a failed test")]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const PASS: &str = "a long operator passphrase for the reload test";

fn smtrust(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smtrust"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("SMTRUST_PASSPHRASE", PASS)
        .output()
        .expect("run smtrust")
}

fn ok(out: Output) {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fleet_bundle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy/tests/data/fleet")
}

/// The gateway's active policy version from its `/metrics`.
fn policy_version(admin: &str) -> Option<u64> {
    let mut s = std::net::TcpStream::connect(admin).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("smtrust_gateway_policy_version "))
        .and_then(|v| v.trim().parse().ok())
}

fn wait_for_version(admin: &str, want: u64) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if policy_version(admin) == Some(want) {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "policy version {want} not active after 10 s (now {:?})",
        policy_version(admin)
    );
}

#[test]
fn policy_apply_and_rollback_reach_the_running_gateway() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(smtrust(dir.path(), &["keystore", "init"]));
    ok(smtrust(
        dir.path(),
        &["ca", "init", "--label", "line1", "--namespace", "ctw-"],
    ));
    let gw = dir.path().join("gateway.toml");
    std::fs::write(
        &gw,
        "[[listener]]\nname = \"main\"\nbind = \"127.0.0.1:0\"\nmode = \"tcp\"\nupstream = \"127.0.0.1:9\"\n\
         [admin]\nbind = \"127.0.0.1:0\"\n",
    )
    .expect("write gateway.toml");
    let (mut child, v) =
        smtrust_test_support::cli::Cli::new(env!("CARGO_BIN_EXE_smtrust"), dir.path())
            .env("SMTRUST_PASSPHRASE", PASS)
            .spawn_ready(&[
                "--json",
                "serve",
                "--api",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--gateway",
                gw.to_str().expect("utf-8 path"),
            ]);
    let admin = v["gateway"]
        .as_array()
        .expect("gateway listeners")
        .iter()
        .find(|l| l[0] == "admin")
        .and_then(|l| l[1].as_str())
        .expect("admin address")
        .to_owned();
    assert_eq!(
        policy_version(&admin),
        Some(1),
        "the version loaded at start"
    );

    ok(smtrust(
        dir.path(),
        &[
            "policy",
            "apply",
            fleet_bundle().to_str().expect("utf-8 path"),
        ],
    ));
    let took = wait_for_version(&admin, 2);
    eprintln!("policy apply → active in the running gateway after {took:?}");
    ok(smtrust(dir.path(), &["policy", "rollback"]));
    wait_for_version(&admin, 3);

    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}
