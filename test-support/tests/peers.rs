//! Each helper proven against the real tools. Peers missing locally skip with a reason; under CI=true they fail.

#[path = "peers/gmssl.rs"]
mod gmssl;
#[path = "peers/openssl.rs"]
mod openssl;
#[path = "peers/pygmssl.rs"]
mod pygmssl;
#[path = "peers/services.rs"]
mod services;
#[path = "peers/sigcheck.rs"]
mod sigcheck;
#[path = "peers/tongsuo.rs"]
mod tongsuo;

use std::path::{Path, PathBuf};

use smtrust_test_support::Tool;

/// GM/T default ID as an OpenSSL `-sigopt`/`-vfyopt` value.
const DISTID: &str = "distid:1234567812345678";

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A fresh SM2 key (PKCS#8 PEM) made by `tool` (OpenSSL 3 or Tongsuo).
fn sm2_key(tool: &Tool, dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    tool.run_ok(["genpkey", "-algorithm", "SM2", "-out", &s(&key)])
        .expect("genpkey SM2");
    key
}

/// A self-signed SM2 CA certificate made by `tool` under the GM/T ID; returns (cert, key).
fn sm2_root(tool: &Tool, dir: &Path) -> (PathBuf, PathBuf) {
    let key = sm2_key(tool, dir, "root.key");
    let cert = dir.join("root.pem");
    tool.run_ok([
        "req",
        "-x509",
        "-new",
        "-key",
        &s(&key),
        "-sm3",
        "-sigopt",
        DISTID,
        "-subj",
        "/CN=smtrust test root",
        "-days",
        "2",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        &s(&cert),
    ])
    .expect("self-signed SM2 root");
    (cert, key)
}

/// An SM2 leaf for `cn` issued by (`ca`, `ca_key`) under the GM/T ID; returns (cert, key).
fn sm2_leaf(
    tool: &Tool,
    dir: &Path,
    ca: &Path,
    ca_key: &Path,
    cn: &str,
    ext: &str,
) -> (PathBuf, PathBuf) {
    let key = sm2_key(tool, dir, &format!("{cn}.key"));
    let csr = dir.join(format!("{cn}.csr"));
    let cert = dir.join(format!("{cn}.pem"));
    let extfile = dir.join(format!("{cn}.ext"));
    std::fs::write(&extfile, ext).expect("write extfile");
    tool.run_ok([
        "req",
        "-new",
        "-key",
        &s(&key),
        "-sm3",
        "-sigopt",
        DISTID,
        "-subj",
        &format!("/CN={cn}"),
        "-out",
        &s(&csr),
    ])
    .expect("CSR");
    tool.run_ok([
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(ca),
        "-CAkey",
        &s(ca_key),
        "-sm3",
        "-sigopt",
        DISTID,
        "-vfyopt",
        DISTID,
        "-days",
        "2",
        "-set_serial",
        "7",
        "-extfile",
        &s(&extfile),
        "-out",
        &s(&cert),
    ])
    .expect("issue leaf");
    (cert, key)
}
