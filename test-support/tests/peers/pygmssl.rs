use smtrust_test_support::{Openssl, PyGmssl, require};

/// PyPI gmssl imports, and its SM3 agrees with OpenSSL's on the same input.
#[test]
fn pygmssl_sm3_matches_openssl() {
    let Some(py) = require(PyGmssl) else { return };
    let Some(openssl) = require(Openssl) else {
        return;
    };
    let msg = "pure-python peer";
    let code = "import sys\nfrom gmssl import sm3, func\nprint(sm3.sm3_hash(func.bytes_to_list(sys.argv[1].encode())))";
    let out = py.run_script(code, [msg]).expect("python runs");
    assert!(out.success(), "{}", out.combined());
    let o = openssl
        .run_with_stdin(["dgst", "-sm3", "-r"], msg.as_bytes())
        .expect("openssl sm3")
        .stdout_str();
    assert_eq!(
        out.stdout_str().trim(),
        o.split_whitespace().next().unwrap_or_default()
    );
}

#[test]
fn pkilint_is_in_the_venv() {
    let Some(py) = require(PyGmssl) else { return };
    let lint = py
        .venv_command("lint_pkix_cert")
        .expect("pkilint installs lint_pkix_cert beside python");
    let out = lint.run(["--help"]).expect("lint_pkix_cert runs");
    assert!(out.success(), "{}", out.combined());
}
