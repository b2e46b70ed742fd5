//! The whole trust path end to end through the binary: `smtrust demo` runs every phase and reports it in the
//! documented JSON shape; with `--keep-running` the service stays up and a Tongsuo client (an implementation
//! we did not write) reaches the platform through the gateway over TLS 1.3-SM with a device's enrolled identity.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use smtrust_test_support::{ClientConfig, Tongsuo, require, tongsuo_client};

const PHASES: [&str; 9] = [
    "ca + service: init",
    "factory: bootstrap identities",
    "est: enroll over TLS 1.3-SM",
    "attest: appraise evidence",
    "gateway: connect (MQTT, TLS-SM)",
    "mqtt: telemetry up",
    "mqtt: commands down",
    "policy: refusals",
    "revoke: cut live session",
];

#[test]
fn demo_runs_the_trust_path_and_reports_every_phase() {
    let n = 12;
    let out = Command::new(env!("CARGO_BIN_EXE_smtrust"))
        .args(["demo", "--devices", &n.to_string(), "--json"])
        .output()
        .expect("run smtrust demo");
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    let phases = v["phases"].as_array().expect("phases list");
    let names: Vec<&str> = phases.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, PHASES, "{v}");
    for p in phases {
        assert_eq!(p["ok"], true, "{p}");
        assert!(p["seconds"].as_f64().is_some_and(|s| s >= 0.0), "{p}");
    }
    let count = |name: &str| {
        phases
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["count"].as_u64())
            .unwrap()
    };
    // Every device gets an identity and enrolls; all but the tampered one are affirmed and connect.
    assert_eq!(count("factory: bootstrap identities"), n);
    assert_eq!(count("est: enroll over TLS 1.3-SM"), n);
    assert_eq!(count("attest: appraise evidence"), n - 1);
    assert_eq!(count("gateway: connect (MQTT, TLS-SM)"), n - 1);
    assert_eq!(count("mqtt: commands down"), n - 1);
    assert_eq!(count("policy: refusals"), 3);
    let cut = v["revocation_cut_ms"].as_f64().expect("revocation_cut_ms");
    assert!(cut > 0.0 && cut < 1000.0, "cut after {cut} ms");
}

#[test]
fn demo_refuses_too_few_devices() {
    let out = Command::new(env!("CARGO_BIN_EXE_smtrust"))
        .args(["demo", "--devices", "2"])
        .output()
        .expect("run smtrust demo");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--devices"));
}

/// Stops the kept-running demo with SIGINT (its Ctrl-C path) when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tongsuo_reaches_the_platform_through_the_gateway_with_an_enrolled_identity() {
    let Some(tongsuo) = require(Tongsuo) else {
        return;
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_smtrust"))
        .args(["demo", "--devices", "6", "--keep-running", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smtrust demo --keep-running");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the report");
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    assert!(
        v["phases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["ok"] == true),
        "{v}"
    );
    let ep = &v["endpoints"];
    let http: std::net::SocketAddr = ep["gateway"]["http"].as_str().unwrap().parse().unwrap();
    let device = std::path::Path::new(ep["devices"].as_str().unwrap()).join("ctw-0000000002");
    let mut cfg = ClientConfig::new(ep["trust_chain"].as_str().unwrap());
    cfg.cert = Some((device.join("cert.pem"), device.join("key.pem")));

    let request = b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let out = tongsuo_client(
        &tongsuo,
        http.port(),
        &cfg,
        request,
        Duration::from_millis(2000),
    )
    .expect("run Tongsuo s_client")
    .combined();
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(out.contains("TLS_SM4_GCM_SM3"), "{out}");
    // The platform app answered 200 only after verifying the gateway's passport for this device.
    assert!(out.contains("HTTP/1.1 200"), "{out}");
    assert!(out.contains("\"device\":\"ctw-0000000002\""), "{out}");

    // Without a client certificate the gateway refuses (no response from the platform).
    let anonymous = ClientConfig::new(ep["trust_chain"].as_str().unwrap());
    let out = tongsuo_client(
        &tongsuo,
        http.port(),
        &anonymous,
        request,
        Duration::from_millis(1500),
    )
    .expect("run Tongsuo s_client")
    .combined();
    assert!(!out.contains("HTTP/1.1 200"), "{out}");
    drop(running);
}
