//! The agent directory: one place for the device key, certificate and chain.
//!
//! | file | what | written by |
//! |---|---|---|
//! | `key.pem` | device SM2 key, PKCS#8 PEM, **unencrypted**, mode 0600 | `keygen`, `renew` (new key) |
//! | `device-id` | the device ID | `csr`, `enroll_*` |
//! | `cert.pem` | the device certificate | `enroll_*`, `renew` |
//! | `chain.pem` | the issuing CA chain from `/cacerts` | `enroll_*`, `renew` |
//! | `bootstrap/cert.pem`, `bootstrap/key.pem` | the factory bootstrap identity (optional) | [`Agent::install_bootstrap`] |
//!
//! Later verbs keep their state beside these (`attest/`, `connect/`).
//!
//! Why the key is not encrypted: a device that boots unattended has nowhere to keep a passphrase that is
//! better protected than the key file itself, so encrypting it would only add a second secret beside the
//! first. The key file is made with mode 0600 in a 0700 directory; devices with a secure element should keep
//! the key there instead (the TLS layer reaches keys only through a signer trait, so that is a local change).
//! Files are written to a temporary name and renamed, so a crash never leaves half a file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Error;

pub(crate) const KEY: &str = "key.pem";
pub(crate) const DEVICE_ID: &str = "device-id";
pub(crate) const CERT: &str = "cert.pem";
pub(crate) const CHAIN: &str = "chain.pem";
pub(crate) const BOOTSTRAP_CERT: &str = "bootstrap/cert.pem";
pub(crate) const BOOTSTRAP_KEY: &str = "bootstrap/key.pem";

/// Create `dir` (0700) if missing.
pub(crate) fn create_dir(dir: &Path) -> Result<(), Error> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(Error::file(dir))
}

/// Write `data` to `dir/name` atomically; `secret` files get mode 0600.
pub(crate) fn write(dir: &Path, name: &str, data: &[u8], secret: bool) -> Result<(), Error> {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        create_dir(parent)?;
    }
    let tmp = path.with_extension("tmp");
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, if secret { 0o600 } else { 0o644 });
    let mut f = o.open(&tmp).map_err(Error::file(&tmp))?;
    f.write_all(data).map_err(Error::file(&tmp))?;
    f.sync_all().map_err(Error::file(&tmp))?;
    fs::rename(&tmp, &path).map_err(Error::file(&path))
}

/// Read `dir/name`, `None` if it does not exist.
pub(crate) fn read(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, Error> {
    let path = dir.join(name);
    match fs::read(&path) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::File { path, source: e }),
    }
}

/// `dir/name`.
pub(crate) fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
