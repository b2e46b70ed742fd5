//! Factory batches over the node's API (TLS 1.3-SM) through the real binary: a line controller (admin-client
//! certificate with OU=smtrust-line-controller) posts CSRs as JSON Lines, polls the batch, downloads the
//! certificates; anonymous clients get 401, device and plain admin certificates 403; the same body again is
//! the same batch; a sample of the certificates verifies with the OpenSSL 3 CLI. Key-generation mode: the line
//! controller sends device ids and its passphrase, downloads encrypted bundles, and one opens with the OpenSSL
//! CLI by the docs/factory.md recipe; a keygen batch interrupted by SIGKILL refuses another passphrase.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures fail loudly

#[path = "factory_api/client.rs"]
mod client;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use client::{Identity, Node, json, start_node};
use der::asn1::BitString;
use der::{Decode, Encode};
use smtrust_crypto::sm2::{CertId, Sm2SecretKey};
use smtrust_test_support::cli::Cli;
use smtrust_test_support::{Verdict, verify_link};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

const PASS: &str = "a long operator passphrase for the factory API test";
const DEVICES: usize = 300;

/// The `smtrust` binary over the data directory `data`, unlocked with [`PASS`].
fn smtrust(data: &Path) -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_smtrust"), data).env("SMTRUST_PASSPHRASE", PASS)
}

/// A PKCS#10 CSR (PEM) for `subject`, signed under the certificate ID.
fn csr_pem(subject: &str, sk: &Sm2SecretKey) -> String {
    let spki = smtrust_crypto::x509::public_key_to_spki_der(sk.public_key()).expect("spki");
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: Name::from_str(subject).expect("name"),
        public_key: SubjectPublicKeyInfoOwned::from_der(&spki).expect("spki"),
        attributes: Default::default(),
    };
    let sig = sk
        .signing_key(CertId)
        .expect("key")
        .sign(&info.to_der().expect("der"))
        .expect("sign");
    let req = CertReq {
        info,
        algorithm: smtrust_crypto::x509::sm2_with_sm3(),
        signature: BitString::from_bytes(sig.as_der()).expect("bits"),
    };
    smtrust_crypto::pem::encode("CERTIFICATE REQUEST", &req.to_der().expect("der"))
        .expect("pem")
        .to_string()
}

/// Issue a certificate for a fresh key under `profile`; returns (key, certificate DER).
fn issue(dir: &Path, name: &str, subject: &str, profile: &str) -> Identity {
    let sk = Sm2SecretKey::generate().expect("key");
    let csr = dir.join(format!("{name}.csr"));
    std::fs::write(&csr, csr_pem(subject, &sk)).expect("write csr");
    let out = dir.join(format!("{name}.pem"));
    smtrust(&dir.join("data"))
        .run(&[
            "ca",
            "issue",
            "--csr",
            csr.to_str().unwrap(),
            "--profile",
            profile,
            "--out",
            out.to_str().unwrap(),
        ])
        .ok();
    let pem = std::fs::read(&out).expect("cert");
    let der = smtrust_crypto::pem::blocks(&pem).expect("pem").remove(0).1;
    (sk, der.to_vec())
}

/// `dir/data` with a keystore and the `line1` CA (namespace `ctw-`), and a line controller `CN=cn` issued there.
fn line_node(dir: &Path, cn: &str) -> (PathBuf, Identity) {
    let data = dir.join("data");
    smtrust(&data).run(&["keystore", "init"]).ok();
    smtrust(&data)
        .run(&["ca", "init", "--label", "line1", "--namespace", "ctw-"])
        .ok();
    let subject = format!("CN={cn},OU=smtrust-line-controller");
    (data, issue(dir, "line", &subject, "admin"))
}

#[test]
fn line_controller_issues_a_batch_over_tls_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, line) = line_node(dir.path(), "line-7");
    let ops = issue(dir.path(), "ops", "CN=ops-1", "admin");
    let device = issue(dir.path(), "device", "CN=ctw-9999999999", "device");

    let csrs = dir.path().join("csrs.jsonl");
    smtrust(&data)
        .run(&[
            "factory",
            "dev-csrs",
            "--count",
            &DEVICES.to_string(),
            "--out",
            csrs.to_str().unwrap(),
        ])
        .ok();
    let mut body = std::fs::read(&csrs).expect("csrs");
    body.extend_from_slice(b"not json\n");
    let other = Sm2SecretKey::generate().expect("key");
    let pem = csr_pem("CN=abc-1", &other);
    body.extend_from_slice(
        format!(
            "{}\n",
            serde_json::json!({"device_id": "abc-1", "csr": pem})
        )
        .as_bytes(),
    );

    let node = start_node(&data);
    let (anonymous, line_c) = (node.anonymous(), node.client(&line));
    let device_c = node.client(&device);
    // Refused before the body is read (the server then closes): a small body keeps the answer readable.
    let probe = |c: &client::Client<'_>| c.post("/factory/v1/batches", b"{}\n");

    // Anonymous: 401. A device's certificate, an admin certificate without the line role: 403.
    let r = probe(&anonymous);
    assert_eq!(r.code, 401, "{}", r.text());
    assert_eq!(r.json()["code"], "unauthenticated");
    let r = probe(&device_c);
    assert_eq!(r.code, 403, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("admin-client")
    );
    let r = probe(&node.client(&ops));
    assert_eq!(r.code, 403, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("smtrust-line-controller")
    );

    // The line controller: 202 with the batch id, then done with every device accounted for.
    let r = line_c.post("/factory/v1/batches", &body);
    assert_eq!(r.code, 202, "{}", r.text());
    let id = r.json()["batch_id"].as_str().unwrap().to_owned();
    let status = line_c.wait_done(&id);
    let report = &status["report"];
    assert_eq!(report["issued"], DEVICES, "{status}");
    assert_eq!(report["refused"], 2, "{status}");
    let reasons: Vec<String> = report["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r["source"], r["reason"]))
        .collect();
    let n_lines = DEVICES + 1;
    assert!(
        reasons
            .iter()
            .any(|r| r.contains(&format!("line {n_lines}")) && r.contains("not JSON")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("namespace")),
        "{reasons:?}"
    );
    // The status and certificates of a batch are line controllers' business too.
    let certificates = format!("/factory/v1/batches/{id}/certificates");
    assert_eq!(anonymous.batch(&id).code, 401);
    assert_eq!(device_c.get(&certificates).code, 403);

    // Certificates as JSON Lines: one per issued device, each signed by the issuing CA.
    let r = line_c.get(&certificates);
    assert_eq!(r.code, 200);
    let text = String::from_utf8(r.body).expect("utf8");
    let issuing_pk = {
        let c = x509_cert::Certificate::from_der(&node.trust[0]).expect("issuing");
        let spki = c
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .expect("spki");
        smtrust_crypto::x509::public_key_from_spki_der(&spki).expect("pk")
    };
    let mut pems = Vec::new();
    let mut devices = std::collections::HashSet::new();
    for l in text.lines() {
        let v = json(l.as_bytes());
        let pem = v["cert"].as_str().expect("cert").to_owned();
        let der = smtrust_crypto::pem::blocks(pem.as_bytes())
            .expect("pem")
            .remove(0)
            .1;
        smtrust_crypto::x509::verify_signed(&der, &issuing_pk).expect("signed by the CA");
        let c = x509_cert::Certificate::from_der(&der).expect("cert");
        let dev = v["device_id"].as_str().unwrap().to_owned();
        assert!(c.tbs_certificate().subject().to_string().contains(&dev));
        assert!(devices.insert(dev), "device twice");
        pems.push(pem);
    }
    assert_eq!(pems.len(), DEVICES);

    // The same body again: the same batch, nothing issued twice.
    let r = line_c.post("/factory/v1/batches", &body);
    assert_eq!(r.code, 202);
    assert_eq!(r.json()["batch_id"], id.as_str());
    let again = line_c.wait_done(&id);
    assert_eq!(again["report"]["issued"], DEVICES);
    assert_eq!(line_c.batch("00000000000000000000000000000000").code, 404);

    // A sample verifies with the OpenSSL 3 CLI under the SM2 certificate ID.
    let Some(openssl) = smtrust_test_support::require(smtrust_test_support::Openssl) else {
        return;
    };
    // One link per run: OpenSSL applies -vfyopt distid to one signature.
    let (issuing, root) = (&node.trust[0], node.trust.last().expect("root"));
    let v = verify_link(&openssl, root, issuing, Some("any")).expect("run openssl");
    assert_eq!(v, Verdict::Verified, "issuing CA");
    for (i, pem) in pems.iter().enumerate().step_by(DEVICES / 10) {
        let v =
            verify_link(&openssl, issuing, pem.as_bytes(), Some("sslclient")).expect("run openssl");
        assert_eq!(v, Verdict::Verified, "leaf {i}");
    }
}

/// PEM text of a DER certificate.
fn cert_pem(der: &[u8]) -> String {
    smtrust_crypto::pem::encode("CERTIFICATE", der)
        .expect("pem")
        .to_string()
}

#[test]
fn line_controller_runs_a_keygen_batch_and_a_bundle_opens_with_openssl() {
    const KEYGEN: usize = 12;
    const LINE_PASS: &str = "the line's own bundle passphrase";
    const ITERATIONS: &str = "20000";
    let dir = tempfile::tempdir().unwrap();
    let (data, line) = line_node(dir.path(), "line-8");
    let device = issue(dir.path(), "device", "CN=ctw-8888888888", "device");
    let mut body = String::new();
    for i in 0..KEYGEN {
        body.push_str(&format!(
            "{}\n",
            serde_json::json!({"device_id": format!("ctw-k{i:04}"), "model": "m1"})
        ));
    }
    body.push_str(&format!(
        "{}\n",
        serde_json::json!({"device_id": "abc-k1", "model": "m1"})
    ));
    let path = format!("/factory/v1/batches?mode=keygen&kdf_iterations={ITERATIONS}");
    let pass_header = [("Smtrust-Bundle-Passphrase", LINE_PASS)];

    let node = start_node(&data);
    let (line_c, device_c) = (node.client(&line), node.client(&device));
    // A device certificate may not run a keygen batch nor fetch bundles; no passphrase: 400.
    let r = device_c.post_with(&path, &pass_header, b"{}\n");
    assert_eq!(r.code, 403, "{}", r.text());
    let r = line_c.post(&path, body.as_bytes());
    assert_eq!(r.code, 400, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("Smtrust-Bundle-Passphrase")
    );

    let r = line_c.post_with(&path, &pass_header, body.as_bytes());
    assert_eq!(r.code, 202, "{}", r.text());
    let id = r.json()["batch_id"].as_str().unwrap().to_owned();
    let status = line_c.wait_done(&id);
    assert_eq!(status["report"]["issued"], KEYGEN, "{status}");
    assert_eq!(status["report"]["refused"], 1, "{status}");
    assert_eq!(status["report"]["mode"], "key-gen", "{status}");
    let kdf = &status["bundle_kdf"];
    assert_eq!(
        kdf["scheme"],
        smtrust_ca::factory::BUNDLE_KDF_SCHEME,
        "{status}"
    );
    assert_eq!(kdf["master"]["iterations"].to_string(), ITERATIONS);
    let salt_hex = kdf["master"]["salt"].as_str().expect("salt").to_owned();
    let chain = status["chain"].as_str().expect("chain").to_owned();
    assert!(
        chain.contains(&cert_pem(&node.trust[0])),
        "issuing CA in the chain"
    );

    let bundles_path = format!("/factory/v1/batches/{id}/bundles");
    assert_eq!(device_c.get(&bundles_path).code, 403);
    let r = line_c.get(&bundles_path);
    assert_eq!(r.code, 200, "{}", r.text());
    let text = String::from_utf8(r.body).expect("utf8");
    // Every key leaves encrypted and opens with our KDF under its device's password; it is the cert's key.
    let master = smtrust_ca::factory::BatchKdf::master(
        LINE_PASS.as_bytes(),
        &hex::decode(&salt_hex).expect("hex"),
        ITERATIONS.parse().unwrap(),
    )
    .expect("master");
    let mut lines = Vec::new();
    for l in text.lines() {
        let v = json(l.as_bytes());
        let dev = v["device_id"].as_str().unwrap().to_owned();
        let key = v["key"].as_str().expect("key").to_owned();
        assert!(
            key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
            "{key}"
        );
        assert!(!text.contains("BEGIN PRIVATE KEY"));
        let key_der = smtrust_crypto::pem::blocks(key.as_bytes())
            .expect("pem")
            .remove(0)
            .1;
        let pw = smtrust_ca::factory::BatchKdf::device_password(&master, &dev).expect("pw");
        let sk = smtrust_crypto::pkcs8::decrypt_encrypted(&key_der, pw.as_bytes()).expect("opens");
        let cert = v["cert"].as_str().expect("cert").to_owned();
        let cert_der = smtrust_crypto::pem::blocks(cert.as_bytes())
            .expect("pem")
            .remove(0)
            .1;
        let c = x509_cert::Certificate::from_der(&cert_der).expect("cert");
        let spki = c
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .expect("spki");
        let pk = smtrust_crypto::x509::public_key_from_spki_der(&spki).expect("pk");
        assert_eq!(sk.public_key(), &pk, "{dev}: the bundle key is the cert's");
        lines.push((dev, key, cert));
    }
    assert_eq!(lines.len(), KEYGEN);

    // The same body again: the same batch, nothing issued twice.
    let r = line_c.post_with(&path, &pass_header, body.as_bytes());
    assert_eq!(r.code, 202, "{}", r.text());
    assert_eq!(r.json()["batch_id"], id.as_str());
    assert_eq!(line_c.wait_done(&id)["report"]["issued"], KEYGEN);

    // A flashing station with only the OpenSSL 3 CLI, by the docs/factory.md recipe.
    let Some(openssl) = smtrust_test_support::require(smtrust_test_support::Openssl) else {
        return;
    };
    let (dev, key, cert) = &lines[KEYGEN / 2];
    let hex_of = |o: smtrust_test_support::Output| -> String {
        assert!(o.success(), "openssl kdf: {}", o.combined());
        o.stdout_str().trim().replace(':', "").to_ascii_lowercase()
    };
    let salt_opt = format!("hexsalt:{salt_hex}");
    let master_hex = hex_of(
        openssl
            .run([
                "kdf",
                "-keylen",
                "32",
                "-kdfopt",
                "digest:SM3",
                "-kdfopt",
                &format!("pass:{LINE_PASS}"),
                "-kdfopt",
                &salt_opt,
                "-kdfopt",
                &format!("iter:{ITERATIONS}"),
                "PBKDF2",
            ])
            .expect("run openssl"),
    );
    let pw = hex_of(
        openssl
            .run([
                "kdf",
                "-keylen",
                "32",
                "-kdfopt",
                "digest:SM3",
                "-kdfopt",
                &format!("hexkey:{master_hex}"),
                "-kdfopt",
                &salt_opt,
                "-kdfopt",
                &format!("info:{}:{dev}", smtrust_ca::factory::BUNDLE_KDF_SCHEME),
                "HKDF",
            ])
            .expect("run openssl"),
    );
    let key_file = dir.path().join("bundle-key.pem");
    let cert_file = dir.path().join("bundle-cert.pem");
    std::fs::write(&key_file, key).expect("write");
    std::fs::write(&cert_file, cert).expect("write");
    let from_key = openssl
        .run([
            "pkey",
            "-in",
            key_file.to_str().unwrap(),
            "-passin",
            &format!("pass:{pw}"),
            "-pubout",
        ])
        .expect("run openssl");
    assert!(from_key.success(), "openssl pkey: {}", from_key.combined());
    let from_cert = openssl
        .run([
            "x509",
            "-in",
            cert_file.to_str().unwrap(),
            "-noout",
            "-pubkey",
        ])
        .expect("run openssl");
    assert!(
        from_cert.success(),
        "openssl x509: {}",
        from_cert.combined()
    );
    assert!(from_key.stdout_str().contains("BEGIN PUBLIC KEY"));
    assert_eq!(from_key.stdout_str(), from_cert.stdout_str(), "{dev}");
    // The certificate verifies under the issuing CA, and that under the root (one link per run: distid).
    let (issuing, root) = (&node.trust[0], node.trust.last().expect("root"));
    for (ca, leaf, purpose) in [
        (issuing.as_slice(), cert.as_bytes(), "sslclient"),
        (root, issuing, "any"),
    ] {
        let v = verify_link(&openssl, ca, leaf, Some(purpose)).expect("run openssl");
        assert_eq!(v, Verdict::Verified, "{purpose}");
    }
}

#[test]
fn a_keygen_batch_resumed_with_another_passphrase_is_refused() {
    const N: usize = 5000; // three chunks of the engine: time to stop the node between two
    let dir = tempfile::tempdir().unwrap();
    let (data, line) = line_node(dir.path(), "line-9");
    let body: String = (0..N)
        .map(|i| {
            format!(
                "{}\n",
                serde_json::json!({"device_id": format!("ctw-r{i:05}")})
            )
        })
        .collect();
    let path = "/factory/v1/batches?mode=keygen&kdf_iterations=1000";
    let post = |node: &Node, pass: &str| {
        node.client(&line).post_with(
            path,
            &[("Smtrust-Bundle-Passphrase", pass)],
            body.as_bytes(),
        )
    };
    let node = start_node(&data);
    let r = post(&node, "passphrase A");
    assert_eq!(r.code, 202, "{}", r.text());
    let id = r.json()["batch_id"].as_str().unwrap().to_owned();
    // Stop the node (SIGKILL) once some bundles are written and some devices are still pending.
    let start = Instant::now();
    let line_c = node.client(&line);
    loop {
        let v = line_c.batch(&id).json();
        assert_ne!(
            v["state"], "done",
            "batch finished before it could be interrupted"
        );
        if v["report"]["issued"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "{v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(line_c);
    drop(node);
    let node = start_node(&data);
    let line_c = node.client(&line);
    let r = line_c.batch(&id);
    assert_eq!(r.json()["state"], "interrupted", "{}", r.text());
    assert_eq!(r.code, 200);
    let r = post(&node, "passphrase B");
    assert_eq!(r.code, 409, "{}", r.text());
    assert_eq!(r.json()["code"], "passphrase_mismatch");
    let r = post(&node, "passphrase A");
    assert_eq!(r.code, 202, "{}", r.text());
    assert_eq!(r.json()["batch_id"], id.as_str());
    let done = line_c.wait_done(&id);
    assert_eq!(done["report"]["issued"], N, "{done}");
}
