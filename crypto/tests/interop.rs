//! Cross-checks of smtrust-crypto against implementations we did not write, in both directions: the OpenSSL 3
//! CLI, PyPI `gmssl`, the `libsm` crate, Tongsuo and GmSSL. Peers that are missing skip with a printed reason
//! locally and fail under `CI=true` (`smtrust_test_support::require`).

use std::fs;
use std::path::{Path, PathBuf};

use smtrust_crypto::sm2::Sm2SecretKey;

#[path = "interop/gmssl.rs"]
mod gmssl;
#[path = "interop/gmssl_py.rs"]
mod gmssl_py;
#[path = "interop/libsm.rs"]
mod libsm;
#[path = "interop/openssl.rs"]
mod openssl;
#[path = "interop/tongsuo.rs"]
mod tongsuo;

/// The `-sigopt` / `-vfyopt` value that makes OpenSSL 3 use the GM/T 0009 ID (it uses an empty one otherwise).
const DISTID: &str = "distid:1234567812345678";

/// A path as a command-line argument.
fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Write `bytes` to `dir/name` and return the path.
fn put(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).expect("write test file");
    p
}

/// Read a file a peer wrote.
fn get(p: &Path) -> Vec<u8> {
    fs::read(p).expect("read a file the peer wrote")
}

/// A fresh key and its plain PKCS#8 PEM.
fn our_key() -> (Sm2SecretKey, String) {
    let sk = Sm2SecretKey::generate().expect("keygen");
    let pem = smtrust_crypto::pem::encode_private_key(&sk)
        .expect("encode")
        .to_string();
    (sk, pem)
}

/// `n` random bytes.
fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    smtrust_crypto::rng::fill(&mut v).expect("rng");
    v
}
