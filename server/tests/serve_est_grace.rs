//! `smtrust serve --est-reenroll-grace <duration>`: the flag is offered with its default and a malformed
//! duration is refused before anything starts. (What the grace does is tested on `EstConfig::reenroll_grace` in
//! ca/tests/est; the node hands the flag's value to both EST and the API's TLS verifier.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures fail loudly

use smtrust_test_support::cli::Cli;

#[test]
fn serve_offers_the_reenroll_grace_and_refuses_a_bad_duration() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(env!("CARGO_BIN_EXE_smtrust"), dir.path().join("data"));
    let help = cli.run(&["serve", "--help"]).ok();
    assert!(help.contains("--est-reenroll-grace"), "{help}");
    assert!(help.contains("[default: 7d]"), "{help}");
    assert!(help.contains("--ocsp-cache-entries"), "{help}");
    let r = cli.run(&["serve", "--est-reenroll-grace", "5x"]);
    assert_eq!(r.code(), 2, "clap usage error: {}", r.stderr());
    assert!(
        r.stderr().contains("unit must be s, m, h or d"),
        "{}",
        r.stderr()
    );
    // Nothing was created: the flag is checked before the keystore is opened.
    assert!(!dir.path().join("data").exists());
}
