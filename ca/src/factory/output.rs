//! Output files. Nothing is ever half-written under its final name: files are written under `.tmp/`,
//! made durable (one `syncfs` per chunk on Linux, `fsync` per file elsewhere), then renamed, then the
//! directory is synced, and only then is the chunk committed to the journal.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use der::{Decode, Encode};
use x509_cert::certificate::Certificate;

use super::{FactoryError, io_err};

/// Sub-directory of the output holding key-generation bundles.
pub(crate) const BUNDLES: &str = "bundles";
/// Sub-directory of the output holding CSR-mode certificates (directory input).
pub(crate) const CERTS: &str = "certs";
/// Staging directory for files not yet renamed; emptied at every start and resume.
pub(crate) const TMP: &str = ".tmp";

/// The output directory of a batch.
#[derive(Debug, Clone)]
pub(crate) struct OutDir {
    root: PathBuf,
}

impl OutDir {
    /// Create the layout and discard anything left in the staging directory by a crash.
    pub(crate) fn prepare(root: &Path) -> Result<Self, FactoryError> {
        for d in [BUNDLES, CERTS] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        let tmp = root.join(TMP);
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn bundle_path(&self, device_id: &str) -> PathBuf {
        self.root.join(BUNDLES).join(format!("{device_id}.pem"))
    }

    pub(crate) fn cert_path(&self, device_id: &str) -> PathBuf {
        self.root.join(CERTS).join(format!("{device_id}.pem"))
    }

    /// Stage `bytes` for `final_path` (called from worker threads; no sync yet).
    pub(crate) fn stage(&self, final_path: &Path, bytes: &[u8]) -> Result<Staged, FactoryError> {
        let name = final_path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let tmp = self.root.join(TMP).join(name);
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(bytes).map_err(io_err(&tmp))?;
        if !cfg!(target_os = "linux") {
            f.sync_all().map_err(io_err(&tmp))?;
        }
        Ok(Staged {
            tmp,
            dest: final_path.to_path_buf(),
        })
    }

    /// Make every staged file durable, rename each to its final name, and sync the directories.
    pub(crate) fn publish(&self, staged: &[Staged]) -> Result<(), FactoryError> {
        if staged.is_empty() {
            return Ok(());
        }
        self.sync_fs()?;
        let mut dirs = std::collections::BTreeSet::new();
        for s in staged {
            fs::rename(&s.tmp, &s.dest).map_err(io_err(&s.dest))?;
            if let Some(d) = s.dest.parent() {
                dirs.insert(d.to_path_buf());
            }
        }
        for d in dirs {
            File::open(&d)
                .and_then(|f| f.sync_all())
                .map_err(io_err(&d))?;
        }
        Ok(())
    }

    /// One `syncfs(2)` flushes a whole chunk of staged files: ~100x cheaper than an fsync per file here.
    fn sync_fs(&self) -> Result<(), FactoryError> {
        #[cfg(target_os = "linux")]
        {
            let tmp = self.root.join(TMP);
            let dir = File::open(&tmp).map_err(io_err(&tmp))?;
            rustix::fs::syncfs(&dir).map_err(|e| FactoryError::Io {
                path: tmp.clone(),
                source: e.into(),
            })?;
        }
        Ok(())
    }

    /// Write one whole file atomically (report, JSON Lines output): temp, fsync, rename, fsync dir.
    pub(crate) fn write_file(&self, final_path: &Path, bytes: &[u8]) -> Result<(), FactoryError> {
        let name = final_path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let tmp = self.root.join(TMP).join(name);
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, final_path).map_err(io_err(final_path))?;
        if let Some(d) = final_path.parent() {
            File::open(d)
                .and_then(|f| f.sync_all())
                .map_err(io_err(d))?;
        }
        Ok(())
    }
}

/// A file written under `.tmp/`, waiting for [`OutDir::publish`].
#[derive(Debug)]
pub(crate) struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
}

/// Bundle text: the protected key block, the device certificate, then the chain (issuer first).
pub(crate) fn bundle_text(
    key_pem: &str,
    cert_der: &[u8],
    chain_pem: &str,
) -> Result<String, FactoryError> {
    let cert = smtrust_crypto::pem::encode("CERTIFICATE", cert_der)?;
    Ok(format!("{key_pem}{}{chain_pem}", cert.as_str()))
}

/// A bundle found under its final name after a crash: adopt it if it is whole and holds the certificate the
/// journal reserved (same serial, signed by this issuer); return that certificate.
pub(crate) fn adopt_bundle(
    path: &Path,
    serial_hex: &str,
    issuer: &smtrust_crypto::sm2::Sm2PublicKey,
) -> Result<Vec<u8>, FactoryError> {
    let bad = |why| FactoryError::Output {
        path: path.to_path_buf(),
        why,
    };
    let text = fs::read(path).map_err(io_err(path))?;
    let blocks = smtrust_crypto::pem::blocks(&text).map_err(|_| bad("not PEM"))?;
    let mut it = blocks.into_iter();
    match it.next() {
        Some((label, _)) if label == KEY_LABEL_PKCS8 || label == KEY_LABEL_ENVELOPE => {}
        _ => return Err(bad("first block is not a protected private key")),
    }
    let cert_der = match it.next() {
        Some((label, der)) if label == "CERTIFICATE" => der.to_vec(),
        _ => return Err(bad("second block is not a certificate")),
    };
    let cert = Certificate::from_der(&cert_der).map_err(|_| bad("certificate does not decode"))?;
    if hex::encode(cert.tbs_certificate().serial_number().as_bytes()) != serial_hex {
        return Err(bad("certificate serial is not the one reserved"));
    }
    smtrust_crypto::x509::verify_signed(&cert_der, issuer)
        .map_err(|_| bad("not signed by this issuer"))?;
    let _ = cert.to_der();
    Ok(cert_der)
}

/// PEM label of a PKCS#8 key encrypted under the batch passphrase (RFC 5958, PBES2 with SM4-CBC).
pub(crate) const KEY_LABEL_PKCS8: &str = "ENCRYPTED PRIVATE KEY";
/// PEM label of a PKCS#8 DER encrypted to the line's transport key with SM2 (GM/T 0009 ciphertext DER).
pub(crate) const KEY_LABEL_ENVELOPE: &str = "SM2 ENVELOPED PRIVATE KEY";
