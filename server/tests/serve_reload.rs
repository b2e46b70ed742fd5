//! Policy hot reload through the real binary: `smtrust policy apply` on the data directory of a running
//! `smtrust serve` makes its gateway activate the new version within seconds, without a restart (the gateway's
//! `/metrics` shows the active version). The version is the policy store's number, and the device passport a
//! platform verifies offline carries it.

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
        Some(0),
        "the store's version at start (0: the default bundle)"
    );

    ok(smtrust(
        dir.path(),
        &[
            "policy",
            "apply",
            fleet_bundle().to_str().expect("utf-8 path"),
        ],
    ));
    let took = wait_for_version(&admin, 1);
    eprintln!("policy apply → active in the running gateway after {took:?}");
    ok(smtrust(dir.path(), &["policy", "rollback"]));
    wait_for_version(&admin, 0);

    let status = smtrust_test_support::cli::interrupt(&mut child, Duration::from_secs(30))
        .expect("serve stops on SIGINT");
    assert!(status.success(), "{status:?}");
}

/// A platform that answers every request with the `X-Smtrust-Passport` it was given.
fn passport_platform() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let token = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("x-smtrust-passport")
                        .then(|| v.trim().to_owned())
                })
                .unwrap_or_default();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{token}",
                token.len()
            );
        }
    });
    addr
}

fn pem_certs(path: &Path) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    let text = std::fs::read(path).expect("read PEM");
    smtrust_crypto::pem::blocks(&text)
        .expect("PEM")
        .into_iter()
        .filter(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| rustls::pki_types::CertificateDer::from(der.to_vec()))
        .collect()
}

/// One GET through the gateway's `http` listener as the device; the passport the platform got, verified
/// offline against the CA chain.
fn passport_through(
    gateway: &str,
    client: &std::sync::Arc<rustls::ClientConfig>,
    trust: &smtrust_tls::Sm2ChainVerifier,
) -> smtrust_gateway::Passport {
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(std::sync::Arc::clone(client), name).expect("client");
    let tcp = std::net::TcpStream::connect(gateway).expect("connect the gateway");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET /api/status HTTP/1.1\r\nHost: platform\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut resp = Vec::new();
    let _ = tls.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp).into_owned();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let token = resp.split("\r\n\r\n").nth(1).expect("body");
    smtrust_gateway::passport::verify(token, trust, rustls::pki_types::UnixTime::now())
        .unwrap_or_else(|e| panic!("passport does not verify: {e}"))
}

#[test]
fn passports_carry_the_policy_store_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(smtrust(d, &["keystore", "init"]));
    ok(smtrust(
        d,
        &["ca", "init", "--label", "line1", "--namespace", "ctw-"],
    ));
    let (key, cert) = (d.join("dev.key"), d.join("dev.pem"));
    let out = Command::new(env!("CARGO_BIN_EXE_smtrust"))
        .arg("--data-dir")
        .arg(d)
        .args(["ca", "keygen", "--device-id", "ctw-passport-1", "--key-out"])
        .arg(&key)
        .arg("--out")
        .arg(&cert)
        .env("SMTRUST_PASSPHRASE", PASS)
        .env("SMTRUST_KEY_PASSPHRASE", "device key passphrase")
        .output()
        .expect("run smtrust");
    ok(out);
    // Two versions in the store before the server starts: it must say 2, not "first activation".
    let bundle = d.join("bundle");
    std::fs::create_dir(&bundle).expect("mkdir");
    let mut policies = smtrust_policy::BundleSources::default_bundle().policies;
    policies.push_str(
        "\n@id(\"device-api-get\")\npermit (principal is Device, action == Action::\"http_request\", resource)\n  when { context.path like \"/api/*\" };\n",
    );
    for n in 1..=2 {
        policies.push_str(&format!("// revision {n}\n"));
        std::fs::write(bundle.join("policies.cedar"), &policies).expect("write policies");
        ok(smtrust(
            d,
            &["policy", "apply", bundle.to_str().expect("utf-8")],
        ));
    }
    let gw = d.join("gateway.toml");
    std::fs::write(
        &gw,
        format!(
            "[[listener]]\nname = \"api\"\nbind = \"127.0.0.1:0\"\nmode = \"http\"\nupstream = \"{}\"\n\
             [admin]\nbind = \"127.0.0.1:0\"\n",
            passport_platform()
        ),
    )
    .expect("write gateway.toml");
    let (mut child, v) = smtrust_test_support::cli::Cli::new(env!("CARGO_BIN_EXE_smtrust"), d)
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
    let listener = |name: &str| {
        v["gateway"]
            .as_array()
            .expect("gateway listeners")
            .iter()
            .find(|l| l[0] == name)
            .and_then(|l| l[1].as_str())
            .unwrap_or_else(|| panic!("{name} address"))
            .to_owned()
    };
    let (api, admin) = (listener("api"), listener("admin"));
    let chain = pem_certs(Path::new(v["trust_chain"].as_str().expect("trust chain")));
    let trust = smtrust_tls::Sm2ChainVerifier::new(
        smtrust_tls::TrustRoots::new(&chain).expect("roots"),
        std::sync::Arc::new(smtrust_tls::RevokedSet::new()),
        smtrust_tls::UnknownStatus::Refuse,
    );
    let sk = smtrust_crypto::pem::decode_private_key(
        &std::fs::read(&key).expect("key"),
        Some(b"device key passphrase"),
    )
    .expect("decrypt the device key");
    let mut device_chain = pem_certs(&cert);
    device_chain.truncate(1);
    device_chain.extend(chain.first().cloned());
    let creds = smtrust_tls::Credentials::new(
        std::sync::Arc::new(
            sk.signing_key(smtrust_crypto::sm2::Tls13Id)
                .expect("signing key"),
        ),
        device_chain,
    )
    .expect("credentials");
    let client = std::sync::Arc::new(
        smtrust_tls::client_config(trust.clone(), Some(&creds)).expect("client config"),
    );

    let p = passport_through(&api, &client, &trust);
    assert_eq!((p.sub.as_str(), p.policy_version), ("ctw-passport-1", 2));
    // Applied while running: version 3 reaches the gateway, and the next passport says so.
    policies.push_str("// revision 3\n");
    std::fs::write(bundle.join("policies.cedar"), &policies).expect("write policies");
    ok(smtrust(
        d,
        &["policy", "apply", bundle.to_str().expect("utf-8")],
    ));
    wait_for_version(&admin, 3);
    assert_eq!(passport_through(&api, &client, &trust).policy_version, 3);

    let status = smtrust_test_support::cli::interrupt(&mut child, Duration::from_secs(30))
        .expect("serve stops on SIGINT");
    assert!(status.success(), "{status:?}");
}
