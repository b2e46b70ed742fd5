//! SIGKILL a 20,000-device key-generation batch at random moments, resume each time, then check every
//! invariant against the journal and the output directory (issue 7).
#![allow(clippy::panic)] // test assertions

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use smtrust_crypto::sm2::Sm2SecretKey;
use x509_cert::der::Decode;

const DEVICES: usize = 20_000;
const KILLS: usize = 5;

fn smtrust() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smtrust"));
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn random_below(n: u64) -> u64 {
    let b = smtrust_crypto::rng::bytes::<8>().expect("rng");
    u64::from_le_bytes(b) % n.max(1)
}

fn batch_id(db: &Path) -> Option<String> {
    if !db.exists() {
        return None;
    }
    smtrust_ca::factory::dump(db)
        .expect("dump")
        .batches
        .first()
        .map(|b| b.0.clone())
}

#[test]
fn sigkill_at_random_points_then_resume_keeps_every_invariant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let st = smtrust()
        .args(["factory", "dev-issuer", "--out"])
        .arg(d)
        .status()
        .expect("dev-issuer");
    assert!(st.success());
    let transport = Sm2SecretKey::generate().expect("transport key");
    std::fs::write(
        d.join("transport.pub.pem"),
        smtrust_crypto::pem::encode_public_key(transport.public_key()).expect("pem"),
    )
    .expect("write");
    let mut csv = String::from("device_id,model\n");
    for i in 0..DEVICES {
        csv.push_str(&format!("ctw-{i:010},m7\n"));
    }
    // Bad lines, reported and skipped: duplicate (line 20002), outside namespace, malformed.
    csv.push_str("ctw-0000000005,m7\nxyz-0000000001,m7\nctw-bad id,m7\n");
    std::fs::write(d.join("line7.csv"), csv).expect("write manifest");
    let db = d.join("smtrust.db");
    let out = d.join("out");
    let common = |c: &mut Command| {
        c.arg("--issuer-cert").arg(d.join("issuer.pem"));
        c.arg("--issuer-key").arg(d.join("issuer.key"));
        c.args(["--namespace", "ctw-", "--db"]).arg(&db);
        c.arg("--transport-key").arg(d.join("transport.pub.pem"));
    };

    // A first uninterrupted-ish run tells how long a batch takes; kill points are drawn within it.
    let mut window = Duration::from_secs(6);
    let mut kills = Vec::new();
    for round in 0..=KILLS {
        let mut c = smtrust();
        match batch_id(&db) {
            Some(id) => c.args(["factory", "resume", &id]),
            None => c
                .args(["factory", "batch", "--manifest"])
                .arg(d.join("line7.csv"))
                .arg("--out")
                .arg(&out),
        };
        common(&mut c);
        let started = Instant::now();
        let mut child = c.spawn().expect("spawn smtrust");
        if round == KILLS {
            let st = child.wait().expect("wait");
            assert!(st.success(), "final resume failed: {st}");
            break;
        }
        let delay = Duration::from_millis(
            50 + random_below(u64::try_from(window.as_millis()).unwrap_or(u64::MAX)),
        );
        while started.elapsed() < delay {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let finished = child.try_wait().expect("try_wait").is_some();
        if !finished {
            child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
            child.wait().expect("reap");
        }
        kills.push((delay, finished));
        window = window.max(started.elapsed());
    }
    eprintln!("kill points (delay, had already finished): {kills:?}");
    assert!(
        kills.iter().any(|(_, f)| !f),
        "no run was actually killed; widen the window"
    );

    check_invariants(&db, &out, &transport, d);
}

fn check_invariants(db: &Path, out: &Path, transport: &Sm2SecretKey, d: &Path) {
    let dump = smtrust_ca::factory::dump(db).expect("dump");
    assert_eq!(
        dump.batches.len(),
        1,
        "one batch: re-running the manifest must not create another"
    );
    assert_eq!(dump.batches[0].1, "done");
    let issued: Vec<_> = dump.items.iter().filter(|i| i.state == "issued").collect();
    let refused = dump.items.iter().filter(|i| i.state == "refused").count();
    assert_eq!(issued.len(), DEVICES, "every good device issued");
    assert_eq!(refused, 3, "the three bad lines refused");
    assert!(dump.items.iter().all(|i| i.state != "pending"));

    // No serial reused: unique across the journal, burned ones never in a published certificate.
    let mut serials = HashSet::new();
    let mut devices = HashSet::new();
    let mut by_device: HashMap<String, Vec<u8>> = HashMap::new();
    for it in &issued {
        let serial = it.serial.clone().expect("issued has a serial");
        assert!(serials.insert(serial.clone()), "serial {serial} used twice");
        let dev = it.device_id.clone().expect("device id");
        assert!(devices.insert(dev.clone()), "device {dev} issued twice");
        let cert_der = it.cert.clone().expect("cert");
        let cert = x509_cert::Certificate::from_der(&cert_der).expect("cert decodes");
        assert_eq!(
            hex::encode(cert.tbs_certificate().serial_number().as_bytes()),
            serial
        );
        by_device.insert(dev, cert_der);
    }
    for b in &dump.burned {
        assert!(!serials.contains(b), "burned serial {b} was published");
    }
    eprintln!("{} serials burned by resumes", dump.burned.len());

    // The CA store: every issued device active under its journal serial with the same certificate (so
    // revocation, OCSP and CRLs see it); every burned serial still reserved (never reused, never published).
    let ca: HashMap<&str, (&str, Option<&Vec<u8>>)> = dump
        .ca_certs
        .iter()
        .map(|(s, _, st, der)| (s.as_str(), (st.as_str(), der.as_ref())))
        .collect();
    for it in &issued {
        let serial = it.serial.as_deref().expect("serial");
        let (status, der) = ca.get(serial).copied().expect("issued serial in ca_certs");
        assert_eq!(status, "active", "{serial} active in the CA store");
        assert_eq!(
            der,
            it.cert.as_ref(),
            "{serial}: CA store holds the journal's certificate"
        );
    }
    for b in &dump.burned {
        assert_eq!(
            ca.get(b.as_str()).map(|x| x.0),
            Some("reserved"),
            "burned {b}"
        );
    }
    let active = ca.values().filter(|x| x.0 == "active").count();
    assert_eq!(active, DEVICES, "no other certificate became active");

    // Output: exactly one whole bundle per issued device, holding the journal's certificate and its key.
    let issuer_pem = std::fs::read(d.join("issuer.pem")).expect("issuer");
    let issuer_cert = smtrust_crypto::pem::blocks(&issuer_pem)
        .expect("pem")
        .remove(0)
        .1;
    let issuer_pk = {
        let c = x509_cert::Certificate::from_der(&issuer_cert).expect("issuer cert");
        let spki =
            der::Encode::to_der(c.tbs_certificate().subject_public_key_info()).expect("spki");
        smtrust_crypto::x509::public_key_from_spki_der(&spki).expect("pk")
    };
    let mut files = 0;
    for entry in std::fs::read_dir(out.join("bundles")).expect("bundles") {
        let path = entry.expect("entry").path();
        let dev = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let want = by_device
            .get(&dev)
            .unwrap_or_else(|| panic!("bundle {dev} not issued in the journal"));
        let blocks = smtrust_crypto::pem::blocks(&std::fs::read(&path).expect("read"))
            .expect("bundle is whole PEM");
        assert_eq!(blocks.len(), 3, "{dev}: key, cert, chain");
        assert_eq!(blocks[0].0, "SM2 ENVELOPED PRIVATE KEY");
        assert_eq!(
            &blocks[1].1[..],
            &want[..],
            "{dev}: bundle cert is the journal's"
        );
        assert_eq!(&blocks[2].1[..], &issuer_cert[..]);
        files += 1;
        // Opening every envelope costs two scalar multiplications; check a sample of about 1 in 20 and
        // every signature.
        smtrust_crypto::x509::verify_signed(&blocks[1].1, &issuer_pk).expect("signed by issuer");
        if random_below(20) == 0 {
            let pkcs8 =
                smtrust_crypto::sm2::decrypt_der(transport, &blocks[0].1).expect("envelope opens");
            let sk = smtrust_crypto::pkcs8::decode_der(&pkcs8).expect("pkcs8");
            let c = x509_cert::Certificate::from_der(&blocks[1].1).expect("cert");
            let spki =
                der::Encode::to_der(c.tbs_certificate().subject_public_key_info()).expect("spki");
            assert_eq!(
                &smtrust_crypto::x509::public_key_from_spki_der(&spki).expect("pk"),
                sk.public_key(),
                "{dev}: key matches cert"
            );
        }
    }
    assert_eq!(files, DEVICES, "one bundle per issued device, none missing");
    let leftovers: Vec<_> = std::fs::read_dir(out.join(".tmp")).expect("tmp").collect();
    assert!(
        leftovers.is_empty(),
        "staging directory not empty: {leftovers:?}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report"))
            .expect("json");
    assert_eq!(report["issued"], DEVICES);
    assert_eq!(report["refused"], 3);

    // A sample verifies with the OpenSSL 3 CLI.
    let Some(openssl) = smtrust_test_support::require(smtrust_test_support::Openssl) else {
        return;
    };
    for i in [0, 7_777, DEVICES - 1] {
        let dev = format!("ctw-{i:010}");
        let v = smtrust_test_support::verify_link(&openssl, &issuer_pem, &by_device[&dev], None)
            .expect("openssl");
        assert_eq!(v, smtrust_test_support::Verdict::Verified, "{dev}");
    }
}
