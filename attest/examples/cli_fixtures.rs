//! Writes the fixtures `server/tests/attest_cli.rs` reads (`attest/tests/data/cli/`): a CA chain, an unrelated CA, an affirming
//! and a contraindicated (replayed) result, and reference values. Rerun to regenerate; keys are fresh each time:
//! `cargo run -p smtrust-attest --example cli_fixtures -- attest/tests/data/cli`.
#![allow(missing_docs, unreachable_pub, dead_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a fixture generator: a failure stops it"
)]

#[path = "../tests/attest/pki.rs"]
mod pki;

use pki::*;
use smtrust_attest::device::sign_evidence;

fn main() {
    let out = std::path::PathBuf::from(std::env::args().nth(1).expect("output directory"));
    std::fs::create_dir_all(&out).unwrap();
    let b = Bench::new();
    let mut pem = String::new();
    for der in [&b.pki.root, &b.pki.intermediate] {
        pem.push_str(&smtrust_crypto::pem::encode("CERTIFICATE", der).unwrap());
    }
    std::fs::write(out.join("ca.pem"), pem).unwrap();
    // Another, unrelated CA: results must not verify against it.
    let foreign = Pki::new();
    let pem = smtrust_crypto::pem::encode("CERTIFICATE", &foreign.root).unwrap();
    std::fs::write(out.join("foreign-ca.pem"), pem.as_str()).unwrap();

    let dev = b.pki.device("ctw-0000000042");
    let nonce = b.challenge(&dev.id, 300);
    let evidence = sign_evidence(&claims(&dev, &nonce), &dev.chain, &dev.key).unwrap();
    // Also a seed for the evidence fuzz target.
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus_seeds/evidence");
    std::fs::create_dir_all(&seeds).unwrap();
    std::fs::write(seeds.join("device-evidence.jws"), &evidence).unwrap();
    for name in ["affirming", "contraindicated"] {
        // The second appraisal of the same evidence is a replay: contraindicated.
        let a = b.appraise(evidence.as_bytes(), &Statuses::default(), now());
        let token = a
            .result
            .sign(&b.pki.attest_key, &b.pki.attest_chain)
            .unwrap();
        std::fs::write(out.join(format!("{name}.jws")), token).unwrap();
    }
    let refs = smtrust_attest::reference::export(&[reference_values()]).unwrap();
    std::fs::write(out.join("refs.json"), refs).unwrap();
    println!("fixtures written to {}", out.display());
}
