//! Factory batches over the node's API (TLS 1.3-SM) through the real binary: a line controller (admin-client
//! certificate with OU=smtrust-line-controller) posts CSRs as JSON Lines, polls the batch, downloads the
//! certificates; anonymous clients get 401, device and plain admin certificates 403; the same body again is
//! the same batch; a sample of the certificates verifies with the OpenSSL 3 CLI. Key-generation mode: the line
//! controller sends device ids and its passphrase, downloads encrypted bundles, and one opens with the OpenSSL
//! CLI by the docs/factory.md recipe; a keygen batch interrupted by SIGKILL refuses another passphrase.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures fail loudly

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use der::asn1::BitString;
use der::{Decode, Encode};
use smtrust_crypto::sm2::{CertId, Sm2SecretKey, Tls13Id};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

const PASS: &str = "a long operator passphrase for the factory API test";
const DEVICES: usize = 300;

fn smtrust(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smtrust"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("SMTRUST_PASSPHRASE", PASS)
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
fn issue(dir: &Path, name: &str, subject: &str, profile: &str) -> (Sm2SecretKey, Vec<u8>) {
    let sk = Sm2SecretKey::generate().expect("key");
    let csr = dir.join(format!("{name}.csr"));
    std::fs::write(&csr, csr_pem(subject, &sk)).expect("write csr");
    let out = dir.join(format!("{name}.pem"));
    ok(smtrust(
        &dir.join("data"),
        &[
            "ca",
            "issue",
            "--csr",
            csr.to_str().unwrap(),
            "--profile",
            profile,
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    let pem = std::fs::read(&out).expect("cert");
    let der = smtrust_crypto::pem::blocks(&pem).expect("pem").remove(0).1;
    (sk, der.to_vec())
}

struct Node {
    child: Child,
    api: String,
    trust: Vec<Vec<u8>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node(data: &Path) -> Node {
    let (child, v) = smtrust_test_support::cli::Cli::new(env!("CARGO_BIN_EXE_smtrust"), data)
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
    let chain = std::fs::read(data.join("ca").join("chain.pem")).expect("chain");
    let trust = smtrust_crypto::pem::blocks(&chain)
        .expect("pem")
        .into_iter()
        .map(|(_, d)| d.to_vec())
        .collect();
    Node { child, api, trust }
}

/// One HTTP/1.1 request over TLS 1.3-SM, optionally with a client certificate; (status, body).
fn request(
    node: &Node,
    client: Option<(&Sm2SecretKey, &[u8])>,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    request_with(node, client, method, path, &[], body)
}

/// [`request`] with extra headers.
fn request_with(
    node: &Node,
    client: Option<(&Sm2SecretKey, &[u8])>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let roots = smtrust_tls::TrustRoots::new(
        &node
            .trust
            .iter()
            .map(|d| rustls::pki_types::CertificateDer::from(d.clone()))
            .collect::<Vec<_>>(),
    )
    .expect("roots");
    let verifier = smtrust_tls::Sm2ChainVerifier::new(
        roots,
        Arc::new(smtrust_tls::RevokedSet::new()),
        smtrust_tls::UnknownStatus::Refuse,
    );
    let creds = client.map(|(sk, cert)| {
        smtrust_tls::Credentials::new(
            Arc::new(sk.signing_key(Tls13Id).expect("signer")),
            vec![rustls::pki_types::CertificateDer::from(cert.to_vec())],
        )
        .expect("credentials")
    });
    let config = smtrust_tls::client_config(verifier, creds.as_ref()).expect("client config");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("conn");
    let tcp = std::net::TcpStream::connect(&node.api).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/jsonl\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).expect("send");
    tls.write_all(body).expect("send body");
    let mut buf = Vec::new();
    // The server may close without close_notify; what was read is the answer.
    let read = tls.read_to_end(&mut buf);
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no HTTP answer ({read:?}): {}",
                String::from_utf8_lossy(&buf)
            )
        });
    let status_line = String::from_utf8_lossy(&buf[..split]).into_owned();
    let code: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let mut body = buf[split + 4..].to_vec();
    if status_line
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (code, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").expect("chunk size");
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16)
            .expect("hex size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)))
}

fn wait_done(node: &Node, who: (&Sm2SecretKey, &[u8]), id: &str) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let (code, body) = request(
            node,
            Some(who),
            "GET",
            &format!("/factory/v1/batches/{id}"),
            b"",
        );
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
        let v = json(&body);
        match v["state"].as_str() {
            Some("done") => return v,
            Some("queued" | "running") => {}
            other => panic!("batch state {other:?}: {v}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "batch not done: {v}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn line_controller_issues_a_batch_over_tls_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(smtrust(&data, &["keystore", "init"]));
    ok(smtrust(
        &data,
        &["ca", "init", "--label", "line1", "--namespace", "ctw-"],
    ));
    let line = issue(
        dir.path(),
        "line",
        "CN=line-7,OU=smtrust-line-controller",
        "admin",
    );
    let ops = issue(dir.path(), "ops", "CN=ops-1", "admin");
    let device = issue(dir.path(), "device", "CN=ctw-9999999999", "device");
    let line_id = (&line.0, line.1.as_slice());

    let csrs = dir.path().join("csrs.jsonl");
    ok(smtrust(
        &data,
        &[
            "factory",
            "dev-csrs",
            "--count",
            &DEVICES.to_string(),
            "--out",
            csrs.to_str().unwrap(),
        ],
    ));
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
    let post = |who| request(&node, who, "POST", "/factory/v1/batches", &body);
    // Refused before the body is read (the server then closes): a small body keeps the answer readable.
    let probe = |who| request(&node, who, "POST", "/factory/v1/batches", b"{}\n");

    // Anonymous: 401. A device's certificate, an admin certificate without the line role: 403.
    let (code, b) = probe(None);
    assert_eq!(code, 401, "{}", String::from_utf8_lossy(&b));
    assert_eq!(json(&b)["code"], "unauthenticated");
    let (code, b) = probe(Some((&device.0, &device.1)));
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&b));
    assert!(
        json(&b)["message"]
            .as_str()
            .unwrap()
            .contains("admin-client")
    );
    let (code, b) = probe(Some((&ops.0, &ops.1)));
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&b));
    assert!(
        json(&b)["message"]
            .as_str()
            .unwrap()
            .contains("smtrust-line-controller")
    );

    // The line controller: 202 with the batch id, then done with every device accounted for.
    let (code, b) = post(Some(line_id));
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&b));
    let id = json(&b)["batch_id"].as_str().unwrap().to_owned();
    let status = wait_done(&node, line_id, &id);
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
    let (code, _) = request(
        &node,
        None,
        "GET",
        &format!("/factory/v1/batches/{id}"),
        b"",
    );
    assert_eq!(code, 401);
    let (code, _) = request(
        &node,
        Some((&device.0, &device.1)),
        "GET",
        &format!("/factory/v1/batches/{id}/certificates"),
        b"",
    );
    assert_eq!(code, 403);

    // Certificates as JSON Lines: one per issued device, each signed by the issuing CA.
    let (code, b) = request(
        &node,
        Some(line_id),
        "GET",
        &format!("/factory/v1/batches/{id}/certificates"),
        b"",
    );
    assert_eq!(code, 200);
    let text = String::from_utf8(b).expect("utf8");
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
    let (code, b) = post(Some(line_id));
    assert_eq!(code, 202);
    assert_eq!(json(&b)["batch_id"], id.as_str());
    let again = wait_done(&node, line_id, &id);
    assert_eq!(again["report"]["issued"], DEVICES);
    let (code, _) = request(
        &node,
        Some(line_id),
        "GET",
        "/factory/v1/batches/00000000000000000000000000000000",
        b"",
    );
    assert_eq!(code, 404);

    // A sample verifies with the OpenSSL 3 CLI under the SM2 certificate ID.
    let Some(openssl) = smtrust_test_support::require(smtrust_test_support::Openssl) else {
        return;
    };
    let root = dir.path().join("root.pem");
    let issuing = dir.path().join("issuing.pem");
    let pem_of = |d: &[u8]| {
        smtrust_crypto::pem::encode("CERTIFICATE", d)
            .expect("pem")
            .to_string()
    };
    std::fs::write(&issuing, pem_of(&node.trust[0])).expect("write");
    std::fs::write(&root, pem_of(node.trust.last().expect("root"))).expect("write");
    // OpenSSL applies -vfyopt distid to one signature per run: each link is checked on its own.
    let verify = |ca: &Path, cert: &Path, purpose: &str| {
        let o = openssl
            .run([
                "verify",
                "-vfyopt",
                "distid:1234567812345678",
                "-partial_chain",
                "-x509_strict",
                "-purpose",
                purpose,
                "-CAfile",
                ca.to_str().unwrap(),
                cert.to_str().unwrap(),
            ])
            .expect("run openssl");
        assert!(
            o.success() && o.stdout_str().contains(": OK"),
            "openssl verify {}: {}",
            cert.display(),
            o.combined()
        );
    };
    verify(&root, &issuing, "any");
    for (i, pem) in pems.iter().enumerate().step_by(DEVICES / 10) {
        let leaf = dir.path().join(format!("leaf{i}.pem"));
        std::fs::write(&leaf, pem).expect("write");
        verify(&issuing, &leaf, "sslclient");
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
    let data = dir.path().join("data");
    ok(smtrust(&data, &["keystore", "init"]));
    ok(smtrust(
        &data,
        &["ca", "init", "--label", "line1", "--namespace", "ctw-"],
    ));
    let line = issue(
        dir.path(),
        "line",
        "CN=line-8,OU=smtrust-line-controller",
        "admin",
    );
    let device = issue(dir.path(), "device", "CN=ctw-8888888888", "device");
    let line_id = (&line.0, line.1.as_slice());
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
    // A device certificate may not run a keygen batch nor fetch bundles; no passphrase: 400.
    let (code, b) = request_with(
        &node,
        Some((&device.0, &device.1)),
        "POST",
        &path,
        &pass_header,
        b"{}\n",
    );
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&b));
    let (code, b) = request(&node, Some(line_id), "POST", &path, body.as_bytes());
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&b));
    assert!(
        json(&b)["message"]
            .as_str()
            .unwrap()
            .contains("Smtrust-Bundle-Passphrase")
    );

    let (code, b) = request_with(
        &node,
        Some(line_id),
        "POST",
        &path,
        &pass_header,
        body.as_bytes(),
    );
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&b));
    let id = json(&b)["batch_id"].as_str().unwrap().to_owned();
    let status = wait_done(&node, line_id, &id);
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
    let (code, _) = request(
        &node,
        Some((&device.0, &device.1)),
        "GET",
        &bundles_path,
        b"",
    );
    assert_eq!(code, 403);
    let (code, b) = request(&node, Some(line_id), "GET", &bundles_path, b"");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&b));
    let text = String::from_utf8(b).expect("utf8");
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
    let (code, b) = request_with(
        &node,
        Some(line_id),
        "POST",
        &path,
        &pass_header,
        body.as_bytes(),
    );
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&b));
    assert_eq!(json(&b)["batch_id"], id.as_str());
    assert_eq!(wait_done(&node, line_id, &id)["report"]["issued"], KEYGEN);

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
    let issuing = dir.path().join("issuing.pem");
    let root = dir.path().join("root.pem");
    std::fs::write(&issuing, cert_pem(&node.trust[0])).expect("write");
    std::fs::write(&root, cert_pem(node.trust.last().expect("root"))).expect("write");
    for (ca, leaf, purpose) in [
        (&issuing, &cert_file, "sslclient"),
        (&root, &issuing, "any"),
    ] {
        let o = openssl
            .run([
                "verify",
                "-vfyopt",
                "distid:1234567812345678",
                "-partial_chain",
                "-x509_strict",
                "-purpose",
                purpose,
                "-CAfile",
                ca.to_str().unwrap(),
                leaf.to_str().unwrap(),
            ])
            .expect("run openssl");
        assert!(
            o.success() && o.stdout_str().contains(": OK"),
            "openssl verify {}: {}",
            leaf.display(),
            o.combined()
        );
    }
}

#[test]
fn a_keygen_batch_resumed_with_another_passphrase_is_refused() {
    const N: usize = 5000; // three chunks of the engine: time to stop the node between two
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(smtrust(&data, &["keystore", "init"]));
    ok(smtrust(
        &data,
        &["ca", "init", "--label", "line1", "--namespace", "ctw-"],
    ));
    let line = issue(
        dir.path(),
        "line",
        "CN=line-9,OU=smtrust-line-controller",
        "admin",
    );
    let line_id = (&line.0, line.1.as_slice());
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
        request_with(
            node,
            Some(line_id),
            "POST",
            path,
            &[("Smtrust-Bundle-Passphrase", pass)],
            body.as_bytes(),
        )
    };
    let node = start_node(&data);
    let (code, b) = post(&node, "passphrase A");
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&b));
    let id = json(&b)["batch_id"].as_str().unwrap().to_owned();
    // Stop the node (SIGKILL) once some bundles are written and some devices are still pending.
    let start = Instant::now();
    loop {
        let (_, b) = request(
            &node,
            Some(line_id),
            "GET",
            &format!("/factory/v1/batches/{id}"),
            b"",
        );
        let v = json(&b);
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
    drop(node);
    let node = start_node(&data);
    let (code, b) = request(
        &node,
        Some(line_id),
        "GET",
        &format!("/factory/v1/batches/{id}"),
        b"",
    );
    assert_eq!(
        json(&b)["state"],
        "interrupted",
        "{}",
        String::from_utf8_lossy(&b)
    );
    assert_eq!(code, 200);
    let (code, b) = post(&node, "passphrase B");
    assert_eq!(code, 409, "{}", String::from_utf8_lossy(&b));
    assert_eq!(json(&b)["code"], "passphrase_mismatch");
    let (code, b) = post(&node, "passphrase A");
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&b));
    assert_eq!(json(&b)["batch_id"], id.as_str());
    let done = wait_done(&node, line_id, &id);
    assert_eq!(done["report"]["issued"], N, "{done}");
}
