//! `smtrust factory resume` checks the bundle passphrase as the factory API does (409 passphrase_mismatch
//! there): a key-generation batch interrupted by SIGKILL and resumed with another passphrase is refused and
//! nothing more is issued; resumed with its own passphrase it finishes, every bundle under one passphrase.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures fail loudly

use std::path::Path;
use std::time::{Duration, Instant};

use smtrust_ca::factory::BatchKdf;
use smtrust_test_support::cli::{Cli, s};

const DEVICES: usize = 5000;
const ITERATIONS: u32 = 1000;

fn counts(db: &Path) -> (usize, usize) {
    let dump = smtrust_ca::factory::dump(db).expect("dump");
    let issued = dump.items.iter().filter(|i| i.state == "issued").count();
    let pending = dump.items.iter().filter(|i| i.state == "pending").count();
    (issued, pending)
}

fn bundles(out: &Path) -> usize {
    std::fs::read_dir(out.join("bundles"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".pem"))
                .count()
        })
        .unwrap_or(0)
}

/// The bundle of `device` opens with the password derived from `passphrase`.
fn opens(out: &Path, device: &str, passphrase: &str) -> bool {
    let params: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("bundle-kdf.json")).expect("KDF params"))
            .expect("KDF params JSON");
    let salt = hex::decode(params["master"]["salt"].as_str().expect("salt")).expect("salt hex");
    let master = BatchKdf::master(passphrase.as_bytes(), &salt, ITERATIONS).expect("master");
    let pw = BatchKdf::device_password(&master, device).expect("password");
    let text = std::fs::read(out.join("bundles").join(format!("{device}.pem"))).expect("bundle");
    let blocks = smtrust_crypto::pem::blocks(&text).expect("pem");
    smtrust_crypto::pkcs8::decrypt_encrypted(&blocks[0].1, pw.as_bytes()).is_ok()
}

#[test]
fn resume_with_another_passphrase_is_refused_and_with_the_batch_one_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cli = Cli::new(env!("CARGO_BIN_EXE_smtrust"), d.join("data"));
    cli.run(&["factory", "dev-issuer", "--out", s(d)]).ok();
    let mut csv = String::from("device_id,model\n");
    for i in 0..DEVICES {
        csv.push_str(&format!("ctw-{i:06},m7\n"));
    }
    std::fs::write(d.join("m.csv"), csv).unwrap();
    let (db, out) = (d.join("j.db"), d.join("out"));
    let (cert, key, iterations) = (
        d.join("issuer.pem"),
        d.join("issuer.key"),
        ITERATIONS.to_string(),
    );
    let issuer = [
        "--issuer-cert",
        s(&cert),
        "--issuer-key",
        s(&key),
        "--namespace",
        "ctw-",
        "--db",
        s(&db),
        "--kdf-iterations",
        &iterations,
    ];
    let with = |pass: &str| cli.clone().env("SMTRUST_BUNDLE_PASSPHRASE", pass);

    // Start the batch under passphrase A; SIGKILL it once some bundles are written (the journal may not say
    // so yet: a resume adopts them, so they count).
    let mut args = vec!["factory", "batch", "--manifest"];
    let manifest = d.join("m.csv");
    args.extend([s(&manifest), "--out", s(&out)]);
    args.extend(issuer);
    let mut child = with("passphrase A")
        .command(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn smtrust");
    let start = Instant::now();
    while bundles(&out) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "batch ended before it wrote a bundle"
        );
        assert!(start.elapsed() < Duration::from_secs(120), "no bundle");
        std::thread::sleep(Duration::from_millis(5));
    }
    let finished = child.try_wait().unwrap().is_some();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!finished, "batch finished before it could be interrupted");
    let (issued, pending) = counts(&db);
    assert!(
        pending > 0,
        "interrupted mid-batch: {issued} issued, {pending} pending"
    );
    let id = smtrust_ca::factory::dump(&db).unwrap().batches[0].0.clone();

    // Another passphrase: refused, the journal unchanged.
    let mut resume = vec!["factory", "resume", id.as_str()];
    resume.extend(issuer);
    let r = with("passphrase B").run(&resume);
    assert!(!r.success(), "resume with another passphrase succeeded");
    assert!(
        r.stderr()
            .contains("the passphrase does not open the bundles this batch already wrote"),
        "{}",
        r.stderr()
    );
    assert!(r.stderr().contains(&id), "{}", r.stderr());
    assert_eq!(
        counts(&db),
        (issued, pending),
        "nothing issued after the refusal"
    );

    // The batch's passphrase: finishes; the first and the last bundle open under A, not under B.
    with("passphrase A").run(&resume).ok();
    assert_eq!(counts(&db), (DEVICES, 0));
    for dev in ["ctw-000000", &format!("ctw-{:06}", DEVICES - 1)] {
        assert!(opens(&out, dev, "passphrase A"), "{dev} under A");
        assert!(!opens(&out, dev, "passphrase B"), "{dev} not under B");
    }
}
