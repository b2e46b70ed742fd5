//! Key-generation bundles under per-device passwords derived from one batch passphrase (docs/factory.md,
//! "Bundle passwords"): a flashing station that has only the OpenSSL 3 CLI derives the batch master
//! (`openssl kdf PBKDF2`, SM3), each device's password (`openssl kdf HKDF`, SM3) and opens the bundle with
//! `openssl pkey`; the key is the certificate's, and one device's password does not open another's bundle.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures fail loudly

use std::path::Path;
use std::process::{Command, Output};

use smtrust_ca::factory::{BUNDLE_KDF_SCHEME, BatchKdf};

const PASSPHRASE: &str = "line 7 batch passphrase";
const ITERATIONS: &str = "20000";

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn smtrust(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smtrust"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run smtrust")
}

fn blocks(path: &Path) -> Vec<(String, Vec<u8>)> {
    smtrust_crypto::pem::blocks(&std::fs::read(path).expect("bundle"))
        .expect("pem")
        .into_iter()
        .map(|(l, d)| (l.to_string(), d.to_vec()))
        .collect()
}

fn cert_public_key(cert_der: &[u8]) -> smtrust_crypto::sm2::Sm2PublicKey {
    use der::{Decode, Encode};
    let c = x509_cert::Certificate::from_der(cert_der).expect("cert");
    let spki = c
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .expect("spki");
    smtrust_crypto::x509::public_key_from_spki_der(&spki).expect("pk")
}

#[test]
fn derived_password_bundles_open_with_our_code_and_the_openssl_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(smtrust(d, &["factory", "dev-issuer", "--out", "."]));
    let ids: Vec<String> = (0..5).map(|i| format!("ctw-{i:06}")).collect();
    let manifest: String = ids.iter().map(|i| format!("{i},m1\n")).collect();
    std::fs::write(d.join("m.csv"), format!("device_id,model\n{manifest}")).expect("write");
    std::fs::write(d.join("pass.txt"), format!("{PASSPHRASE}\n")).expect("write");
    let out = ok(smtrust(
        d,
        &[
            "--json",
            "factory",
            "batch",
            "--manifest",
            "m.csv",
            "--out",
            "out",
            "--issuer-cert",
            "issuer.pem",
            "--issuer-key",
            "issuer.key",
            "--namespace",
            "ctw-",
            "--db",
            "j.db",
            "--passphrase-file",
            "pass.txt",
            "--kdf-iterations",
            ITERATIONS,
        ],
    ));
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["issued"], 5, "{report}");
    let params: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/bundle-kdf.json")).expect("params"))
            .expect("json");
    assert_eq!(params["scheme"], BUNDLE_KDF_SCHEME);
    assert_eq!(params["master"]["iterations"].to_string(), ITERATIONS);
    let salt_hex = params["master"]["salt"].as_str().expect("salt").to_owned();
    let salt = hex::decode(&salt_hex).expect("hex");

    // Our own code: master once, then each device's password opens exactly its bundle.
    let master = BatchKdf::master(PASSPHRASE.as_bytes(), &salt, ITERATIONS.parse().unwrap())
        .expect("master");
    let mut passwords = Vec::new();
    for id in &ids {
        let b = blocks(&d.join(format!("out/bundles/{id}.pem")));
        assert_eq!(b[0].0, "ENCRYPTED PRIVATE KEY");
        let pw = BatchKdf::device_password(&master, id).expect("password");
        let sk = smtrust_crypto::pkcs8::decrypt_encrypted(&b[0].1, pw.as_bytes()).expect("opens");
        assert_eq!(
            sk.public_key(),
            &cert_public_key(&b[1].1),
            "{id}: key is the cert's"
        );
        let info = smtrust_crypto::pkcs8::inspect_encrypted(&b[0].1).expect("PBES2");
        assert_eq!(info.prf, smtrust_crypto::pkcs8::KdfPrf::HmacSha256);
        passwords.push(pw.to_string());
    }
    let first = blocks(&d.join(format!("out/bundles/{}.pem", ids[0])));
    assert!(
        smtrust_crypto::pkcs8::decrypt_encrypted(&first[0].1, passwords[1].as_bytes()).is_err(),
        "another device's password must not open a bundle"
    );

    // A flashing station with only the OpenSSL 3 CLI.
    let Some(openssl) = smtrust_test_support::require(smtrust_test_support::Openssl) else {
        return;
    };
    let hex_of = |o: smtrust_test_support::Output| -> String {
        assert!(o.success(), "openssl kdf: {}", o.combined());
        o.stdout_str().trim().replace(':', "").to_ascii_lowercase()
    };
    let pass_opt = format!("pass:{PASSPHRASE}");
    let salt_opt = format!("hexsalt:{salt_hex}");
    let iter_opt = format!("iter:{ITERATIONS}");
    let master_hex = hex_of(
        openssl
            .run([
                "kdf",
                "-keylen",
                "32",
                "-kdfopt",
                "digest:SM3",
                "-kdfopt",
                &pass_opt,
                "-kdfopt",
                &salt_opt,
                "-kdfopt",
                &iter_opt,
                "PBKDF2",
            ])
            .expect("run openssl"),
    );
    assert_eq!(master_hex.len(), 64);
    let key_opt = format!("hexkey:{master_hex}");
    for (n, id) in ids.iter().enumerate() {
        let info_opt = format!("info:{BUNDLE_KDF_SCHEME}:{id}");
        let pw = hex_of(
            openssl
                .run([
                    "kdf",
                    "-keylen",
                    "32",
                    "-kdfopt",
                    "digest:SM3",
                    "-kdfopt",
                    &key_opt,
                    "-kdfopt",
                    &salt_opt,
                    "-kdfopt",
                    &info_opt,
                    "HKDF",
                ])
                .expect("run openssl"),
        );
        assert_eq!(pw, passwords[n], "{id}: OpenSSL derives the same password");
        let bundle = d.join(format!("out/bundles/{id}.pem"));
        let bundle = bundle.to_str().unwrap();
        let passin = format!("pass:{pw}");
        let from_key = openssl
            .run(["pkey", "-in", bundle, "-passin", &passin, "-pubout"])
            .expect("run openssl");
        assert!(from_key.success(), "openssl pkey: {}", from_key.combined());
        let from_cert = openssl
            .run(["x509", "-in", bundle, "-noout", "-pubkey"])
            .expect("run openssl");
        assert!(
            from_cert.success(),
            "openssl x509: {}",
            from_cert.combined()
        );
        assert_eq!(from_key.stdout_str(), from_cert.stdout_str(), "{id}");
        assert!(from_key.stdout_str().contains("BEGIN PUBLIC KEY"));
    }
    let wrong = format!("pass:{}", passwords[1]);
    let first = d.join(format!("out/bundles/{}.pem", ids[0]));
    let o = openssl
        .run([
            "pkey",
            "-in",
            first.to_str().unwrap(),
            "-passin",
            &wrong,
            "-noout",
        ])
        .expect("run openssl");
    assert!(!o.success(), "another device's password opened a bundle");
}
