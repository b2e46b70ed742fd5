//! The device agent against a real node, through the binary: `smtrust ca est-token` mints offline (no server)
//! and through the running server's admin socket; `smtrust agent enroll` uses a token over TLS 1.3-SM and a
//! replay is refused; `smtrust agent attest` measures files, is appraised and keeps the signed result.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures fail loudly

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

const PASS: &str = "a long operator passphrase for the EST token test";

fn smtrust(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smtrust"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("SMTRUST_PASSPHRASE", PASS)
        .env_remove("SMTRUST_EST_TOKEN")
        .output()
        .expect("run smtrust")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("JSON")
}

fn mint(dir: &Path, device: &str) -> serde_json::Value {
    json(smtrust(
        dir,
        &[
            "--json",
            "ca",
            "est-token",
            "--device-id",
            device,
            "--ttl",
            "1h",
        ],
    ))
}

/// `smtrust agent enroll` with `token` in a file; returns the output.
fn enroll(data: &Path, agent: &Path, device: &str, token: &str, api: &str) -> Output {
    let tf = agent.with_extension("token");
    std::fs::create_dir_all(agent.parent().unwrap()).unwrap();
    std::fs::write(&tf, token).unwrap();
    let chain = data.join("ca").join("chain.pem");
    smtrust(
        data,
        &[
            "--json",
            "agent",
            "--dir",
            agent.to_str().unwrap(),
            "enroll",
            "--device-id",
            device,
            "--token-file",
            tf.to_str().unwrap(),
            "--server",
            api,
            "--server-name",
            "localhost",
            "--ca",
            chain.to_str().unwrap(),
        ],
    )
}

fn serve(dir: &Path) -> (Child, String) {
    let (child, v) = smtrust_test_support::cli::Cli::new(env!("CARGO_BIN_EXE_smtrust"), dir)
        .env("SMTRUST_PASSPHRASE", PASS)
        .spawn_ready(&[
            "--json",
            "serve",
            "--api",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ]);
    let api = v["api"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://")
        .to_owned();
    (child, api)
}

fn stop(mut child: Child) {
    let stopped = smtrust_test_support::cli::interrupt(&mut child, Duration::from_secs(10));
    assert!(stopped.is_some(), "serve did not stop on SIGINT");
}

#[test]
fn tokens_minted_offline_and_over_the_admin_socket_enroll_an_agent_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    ok(smtrust(&data, &["keystore", "init"]));
    ok(smtrust(
        &data,
        &["ca", "init", "--label", "line1", "--namespace", "ctw-"],
    ));

    // No server: minted in the database directly.
    let offline = mint(&data, "ctw-est-off");
    assert!(
        offline["via"].as_str().unwrap().contains("offline"),
        "{offline}"
    );
    assert_eq!(offline["issuer"], "line1");
    // Another label than the data directory's issuing CA is refused.
    let bad = smtrust(
        &data,
        &[
            "ca",
            "est-token",
            "--device-id",
            "ctw-x",
            "--issuer",
            "nope",
        ],
    );
    assert!(!bad.status.success());

    let (child, api) = serve(&data);
    let mode = std::fs::metadata(data.join("admin.sock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "admin socket is owner-only");

    // Through the running server's admin socket.
    let live = mint(&data, "ctw-est-1");
    assert!(
        live["via"].as_str().unwrap().contains("running server"),
        "{live}"
    );
    let token = live["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43);
    let agents = tmp.path().join("agents");
    let st = serde_json::from_str::<serde_json::Value>(&ok(enroll(
        &data,
        &agents.join("a"),
        "ctw-est-1",
        &token,
        &api,
    )))
    .unwrap();
    assert_eq!(st["device_id"], "ctw-est-1", "{st}");
    assert_eq!(st["certificate"]["matches_key"], true, "{st}");

    // Replay from another device directory: refused, nothing issued.
    let replay = enroll(&data, &agents.join("b"), "ctw-est-1", &token, &api);
    assert!(!replay.status.success());
    let err = String::from_utf8_lossy(&replay.stderr);
    assert!(err.contains("401") && err.contains("already used"), "{err}");

    // The token minted before the server started is in the same database: it works once.
    ok(enroll(
        &data,
        &agents.join("c"),
        "ctw-est-off",
        offline["token"].as_str().unwrap(),
        &api,
    ));
    // A wrong token for a device with one outstanding: refused.
    let fresh = mint(&data, "ctw-est-2");
    assert!(fresh["token"] != live["token"]);
    let wrong = enroll(&data, &agents.join("d"), "ctw-est-2", &token, &api);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("does not match"));
    stop(child);
}

/// Reference values for `model`/`fw`: each (name, kind, file) measured with SM3.
fn refs_json(model: &str, fw: &str, files: &[(&str, &str, &Path)]) -> String {
    let values: Vec<serde_json::Value> = files
        .iter()
        .map(|(name, kind, path)| {
            let digest = smtrust_crypto::sm3::digest(&std::fs::read(path).unwrap());
            serde_json::json!({"name": name, "kind": kind,
                "digests": [{"alg": "sm3", "value": hex::encode(digest)}]})
        })
        .collect();
    serde_json::json!([{"profile": "urn:smtrust:corim:v1",
        "environment": {"model": model, "firmware-version": fw},
        "debug-allowed": false, "reference-values": values}])
    .to_string()
}

#[test]
fn agent_attests_with_measured_files_and_keeps_the_signed_result() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    ok(smtrust(&data, &["keystore", "init"]));
    ok(smtrust(
        &data,
        &["ca", "init", "--label", "line1", "--namespace", "ctw-"],
    ));
    // The device's files, and the security administrator's reference values for them.
    let dev = tmp.path().join("agents").join("meter");
    std::fs::create_dir_all(dev.join("fw")).unwrap();
    std::fs::write(dev.join("fw/bl2.bin"), b"bl2 stage, build 7").unwrap();
    std::fs::write(dev.join("fw/app.bin"), b"meter firmware 2.4.1").unwrap();
    let refs = tmp.path().join("refs.json");
    std::fs::write(
        &refs,
        refs_json(
            "ctw-meter-3",
            "2.4.1",
            &[
                ("bl2", "boot-stage", &dev.join("fw/bl2.bin")),
                ("firmware", "firmware", &dev.join("fw/app.bin")),
            ],
        ),
    )
    .unwrap();
    ok(smtrust(
        &data,
        &[
            "attest",
            "refs",
            "import",
            refs.to_str().unwrap(),
            "--by",
            "secadmin-alice",
        ],
    ));

    let (child, api) = serve(&data);
    let token = mint(&data, "ctw-att-1")["token"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(enroll(&data, &dev, "ctw-att-1", &token, &api));
    let chain = data.join("ca").join("chain.pem");
    let attest = |extra: &[&str]| {
        let mut args = vec!["--json", "agent", "--dir", dev.to_str().unwrap(), "attest"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "--server",
            &api,
            "--server-name",
            "localhost",
            "--ca",
            chain.to_str().unwrap(),
        ]);
        smtrust(&data, &args)
    };

    // Measurements from the flags, saved as attest.json (relative paths: the agent directory).
    let out = attest(&[
        "--model",
        "ctw-meter-3",
        "--firmware-version",
        "2.4.1",
        "--measure",
        "boot-stage:bl2=fw/bl2.bin",
        "--measure",
        "firmware:firmware=fw/app.bin",
        "--save-config",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"]["status"], "affirming", "{v}");
    assert_eq!(v["result"]["device_id"], "ctw-att-1");
    let stored = dev.join("attest/result.jws");
    assert!(stored.exists() && dev.join("attest.json").exists());
    // The stored result verifies offline with the CLI.
    let checked = json(smtrust(
        &data,
        &[
            "--json",
            "attest",
            "verify-result",
            stored.to_str().unwrap(),
            "--ca",
            chain.to_str().unwrap(),
        ],
    ));
    assert_eq!(checked["status"], "affirming");

    // The firmware changes: the configured list is measured again, the result is contraindicated (exit 2).
    std::fs::write(dev.join("fw/app.bin"), b"meter firmware 2.4.1 + implant").unwrap();
    let out = attest(&[]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"]["status"], "contraindicated", "{v}");
    assert!(
        v["result"]["reasons"].to_string().contains("firmware"),
        "{v}"
    );
    stop(child);
}
