//! The software sealed store: a directory of files, one per key, under one master generation.
//!
//! ```text
//! <root>/lock            advisory lock: one process at a time
//! <root>/current         "smtrust-keystore generation N\n": the one pointer switched atomically
//! <root>/gen-N/master    the sealed master of generation N (see `master.rs`)
//! <root>/gen-N/<id>.key  one sealed record per key (see `record.rs`)
//! ```
//! Every write is temp file → fsync → rename → fsync directory. Master rotation builds `gen-N+1` completely
//! beside `gen-N`, then switches `current`; see `rotate.rs`.

mod fsio;
mod rotate;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use smtrust_crypto::sm2::{CertId, Sm2SecretKey, Sm2Signature, Sm2SigningKey, Tls13Id};
use smtrust_crypto::sm4::Sm4Key;
use tracing::info;
use zeroize::Zeroizing;

use crate::backend::{Backend, InitMethod, Status, Unlock, UnsealMethod};
use crate::key::{Algorithm, KeyId, KeyInfo, KeyPurpose, KeyUse, check_label};
use crate::master::{MAX_MASTER, Method, SealedMaster, passphrase_kek};
use crate::reader::FormatError;
use crate::record::{MAX_CERT, MAX_RECORD, SealedRecord};
use crate::{Error, UnsealError, share};

use fsio::{TMP_SUFFIX, fsync_dir, read_limited, write_atomic, write_synced};

const CURRENT: &str = "current";
const LOCK: &str = "lock";
const MASTER: &str = "master";
const KEY_EXT: &str = ".key";
const CURRENT_PREFIX: &str = "smtrust-keystore generation ";
/// `tracing` target of audit events (key generated, imported, exported, destroyed; master rotated).
pub const AUDIT_TARGET: &str = "smtrust::audit";

/// The software sealed store. See the crate docs for the design.
pub struct SealedDir {
    root: PathBuf,
    _lock: File,
    state: RwLock<State>,
    writer: Mutex<()>,
}

enum State {
    Sealed,
    Unsealed(Box<Open>),
}

struct Open {
    master_file: SealedMaster,
    kek: Sm4Key,
    master: Sm4Key,
    keys: BTreeMap<KeyId, Loaded>,
}

/// A decrypted key, ready to sign: the signing objects are built once at unseal, so a handle's cost is the
/// SM2 signature itself.
struct Loaded {
    record: SealedRecord,
    secret: Sm2SecretKey,
    cert: Option<Sm2SigningKey<CertId>>,
    tls: Option<Sm2SigningKey<Tls13Id>>,
}

impl Loaded {
    fn new(record: SealedRecord, secret: Sm2SecretKey) -> Result<Self, Error> {
        let p = record.info.purpose;
        let cert = p
            .permits(KeyUse::SignCertId)
            .then(|| secret.signing_key(CertId))
            .transpose()?;
        let tls = p
            .permits(KeyUse::SignTls13Id)
            .then(|| secret.signing_key(Tls13Id))
            .transpose()?;
        Ok(Self {
            record,
            secret,
            cert,
            tls,
        })
    }
}

impl State {
    fn open(&self) -> Result<&Open, Error> {
        match self {
            Self::Sealed => Err(Error::Sealed),
            Self::Unsealed(o) => Ok(o),
        }
    }
}

impl Open {
    fn generation(&self) -> u64 {
        self.master_file.generation
    }

    fn key(&self, id: &KeyId) -> Result<&Loaded, Error> {
        self.keys.get(id).ok_or(Error::NotFound { id: *id })
    }
}

fn gen_dir_name(generation: u64) -> String {
    format!("gen-{generation}")
}

fn key_file_name(id: &KeyId) -> String {
    format!("{id}{KEY_EXT}")
}

#[allow(
    clippy::disallowed_methods,
    reason = "the keystore does file I/O already; creation time is informational metadata"
)]
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn malformed(path: &Path) -> impl FnOnce(FormatError) -> Error {
    let path = path.to_path_buf();
    move |e| Error::Malformed {
        path,
        what: e.what,
        offset: e.offset,
    }
}

fn read_current(root: &Path) -> Result<u64, Error> {
    let path = root.join(CURRENT);
    if !path.exists() {
        return Err(Error::NotInitialized {
            path: root.to_path_buf(),
        });
    }
    let bytes = read_limited(&path, 64, "current generation")?;
    let bad = || Error::Malformed {
        path: path.clone(),
        what: "current generation",
        offset: 0,
    };
    let text = core::str::from_utf8(&bytes).map_err(|_| bad())?;
    let digits = text
        .strip_prefix(CURRENT_PREFIX)
        .and_then(|t| t.strip_suffix('\n'))
        .ok_or_else(bad)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let g: u64 = digits.parse().map_err(|_| bad())?;
    if g == 0 {
        return Err(bad());
    }
    Ok(g)
}

fn current_text(generation: u64) -> String {
    format!("{CURRENT_PREFIX}{generation}\n")
}

impl SealedDir {
    /// Create a keystore in `root` (which must be missing or empty). Returns the share texts for
    /// [`InitMethod::Shares`] (print each once, for its holder) and nothing for a passphrase. The new store
    /// is sealed; [`SealedDir::open`] it to use it.
    pub fn init(root: &Path, method: InitMethod<'_>) -> Result<Vec<Zeroizing<String>>, Error> {
        fs::create_dir_all(root).map_err(Error::io(root))?;
        let mut entries = fs::read_dir(root).map_err(Error::io(root))?;
        if entries.next().is_some() {
            return Err(Error::AlreadyInitialized {
                path: root.to_path_buf(),
            });
        }
        let (method, kek, shares) = match method {
            InitMethod::Passphrase { passphrase, params } => {
                let salt = smtrust_crypto::rng::bytes::<16>()?;
                let kek = passphrase_kek(passphrase, params, &salt)?;
                (Method::Passphrase { params, salt }, kek, Vec::new())
            }
            InitMethod::Shares { threshold, count } => {
                let set_id = smtrust_crypto::rng::bytes::<16>()?;
                let kek = Sm4Key::generate()?;
                let shares = share::split(&kek, threshold, count, set_id)?;
                let method = Method::Shares {
                    threshold,
                    count,
                    set_id,
                };
                (method, kek, shares)
            }
        };
        let master = Sm4Key::generate()?;
        let sealed = SealedMaster::seal(1, method, &kek, &master)?;
        write_synced(&root.join(LOCK), b"")?;
        let gen_dir = root.join(gen_dir_name(1));
        fs::create_dir(&gen_dir).map_err(Error::io(&gen_dir))?;
        write_synced(&gen_dir.join(MASTER), &sealed.encode())?;
        fsync_dir(&gen_dir)?;
        write_atomic(root, CURRENT, current_text(1).as_bytes())?;
        info!(target: AUDIT_TARGET, root = %root.display(), "keystore initialised");
        Ok(shares)
    }

    /// Open an existing keystore, sealed. Takes the directory's lock (one process at a time; waits up to
    /// about a second, then [`Error::Locked`]) and removes
    /// what an interrupted write or rotation left behind.
    pub fn open(root: &Path) -> Result<Self, Error> {
        let lock_path = root.join(LOCK);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotInitialized {
                    path: root.to_path_buf(),
                },
                _ => Error::io(&lock_path)(e),
            })?;
        // Wait briefly: a process that just forked (to exec something else) shares our lock until it execs.
        let mut tries = 0;
        while lock.try_lock().is_err() {
            tries += 1;
            if tries > 100 {
                return Err(Error::Locked { path: lock_path });
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let generation = read_current(root)?;
        let store = Self {
            root: root.to_path_buf(),
            _lock: lock,
            state: RwLock::new(State::Sealed),
            writer: Mutex::new(()),
        };
        store.load_master(generation)?;
        store.remove_leftovers(generation)?;
        Ok(store)
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn gen_dir(&self, generation: u64) -> PathBuf {
        self.root.join(gen_dir_name(generation))
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn load_master(&self, generation: u64) -> Result<SealedMaster, Error> {
        let path = self.gen_dir(generation).join(MASTER);
        let bytes = read_limited(&path, MAX_MASTER, "sealed master")?;
        let m = SealedMaster::decode(&bytes).map_err(malformed(&path))?;
        if m.generation != generation {
            return Err(Error::Tampered {
                path,
                what: "master generation",
            });
        }
        Ok(m)
    }

    /// Stale generations, an unfinished staging directory, temp files: all from interrupted writes.
    fn remove_leftovers(&self, generation: u64) -> Result<(), Error> {
        let keep = gen_dir_name(generation);
        let mut removed = false;
        for entry in fs::read_dir(&self.root).map_err(Error::io(&self.root))? {
            let entry = entry.map_err(Error::io(&self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with("gen-") && name != keep {
                fsio::remove_dir_if_exists(&path)?;
                removed = true;
            } else if name.ends_with(TMP_SUFFIX) {
                fs::remove_file(&path).map_err(Error::io(&path))?;
                removed = true;
            }
        }
        let dir = self.gen_dir(generation);
        for entry in fs::read_dir(&dir).map_err(Error::io(&dir))? {
            let entry = entry.map_err(Error::io(&dir))?;
            if entry.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
                let path = entry.path();
                fs::remove_file(&path).map_err(Error::io(&path))?;
                fsync_dir(&dir)?;
            }
        }
        if removed {
            fsync_dir(&self.root)?;
        }
        Ok(())
    }

    /// Read, check and decrypt every record of `generation`. Any bad record fails the whole load.
    fn load_records(
        &self,
        generation: u64,
        master: &Sm4Key,
    ) -> Result<BTreeMap<KeyId, Loaded>, Error> {
        let dir = self.gen_dir(generation);
        let mut keys = BTreeMap::new();
        for entry in fs::read_dir(&dir).map_err(Error::io(&dir))? {
            let entry = entry.map_err(Error::io(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(KEY_EXT) else {
                continue;
            };
            let path = entry.path();
            let id: KeyId = stem.parse().map_err(|_| Error::Malformed {
                path: path.clone(),
                what: "record file name",
                offset: 0,
            })?;
            let bytes = read_limited(&path, MAX_RECORD, "record")?;
            let record = SealedRecord::decode(&bytes).map_err(malformed(&path))?;
            if record.info.id != id || record.generation != generation {
                return Err(Error::Tampered {
                    path,
                    what: "record id or generation",
                });
            }
            let secret = record.open(master).map_err(|_| Error::Tampered {
                path: path.clone(),
                what: "record",
            })?;
            keys.insert(id, Loaded::new(record, secret)?);
        }
        Ok(keys)
    }

    fn store_new(
        &self,
        purpose: KeyPurpose,
        label: &str,
        secret: Sm2SecretKey,
        event: &'static str,
    ) -> Result<KeyInfo, Error> {
        check_label(label)?;
        let _w = self.writer();
        let (record, generation) = {
            let st = self.read();
            let open = st.open()?;
            let info = KeyInfo {
                id: KeyId::random()?,
                purpose,
                algorithm: Algorithm::Sm2,
                label: label.to_owned(),
                created: now(),
                public_key: secret.public_key().clone(),
                certificate: None,
            };
            let rec = SealedRecord::seal(info, &secret, &open.master, open.generation())?;
            (rec, open.generation())
        };
        let id = record.info.id;
        write_atomic(
            &self.gen_dir(generation),
            &key_file_name(&id),
            &record.encode(),
        )?;
        let info = record.info.clone();
        let loaded = Loaded::new(record, secret)?;
        if let State::Unsealed(open) = &mut *self.write() {
            open.keys.insert(id, loaded);
        }
        info!(target: AUDIT_TARGET, key_id = %id, purpose = %purpose, label = %info.label, "{event}");
        Ok(info)
    }
}

impl Backend for SealedDir {
    fn status(&self) -> Result<Status, Error> {
        let (master_file, keys) = match &*self.read() {
            State::Unsealed(o) => (o.master_file.clone(), Some(o.keys.len())),
            State::Sealed => (self.load_master(read_current(&self.root)?)?, None),
        };
        let method = match master_file.method {
            Method::Passphrase { params, .. } => UnsealMethod::Passphrase(params),
            Method::Shares {
                threshold, count, ..
            } => UnsealMethod::Shares { threshold, count },
        };
        Ok(Status {
            sealed: keys.is_none(),
            generation: master_file.generation,
            method,
            keys,
        })
    }

    fn unseal(&self, unlock: Unlock<'_>) -> Result<(), Error> {
        let _w = self.writer();
        if matches!(*self.read(), State::Unsealed(_)) {
            return Err(Error::AlreadyUnsealed);
        }
        let generation = read_current(&self.root)?;
        let master_file = self.load_master(generation)?;
        let (kek, wrong) = match (unlock, master_file.method) {
            (Unlock::Passphrase(p), Method::Passphrase { params, salt }) => (
                passphrase_kek(p, params, &salt)?,
                UnsealError::WrongPassphrase,
            ),
            (
                Unlock::Shares(s),
                Method::Shares {
                    threshold,
                    count,
                    set_id,
                },
            ) => (
                share::combine(s, threshold, count, &set_id)?,
                UnsealError::SharesDoNotMatch,
            ),
            (_, Method::Passphrase { .. }) => {
                return Err(UnsealError::WrongMethod {
                    expected: "a passphrase",
                }
                .into());
            }
            (_, Method::Shares { .. }) => {
                return Err(UnsealError::WrongMethod {
                    expected: "key shares",
                }
                .into());
            }
        };
        let master = master_file.open(&kek).ok_or(Error::Unseal(wrong))?;
        let keys = self.load_records(generation, &master)?;
        let n = keys.len();
        *self.write() = State::Unsealed(Box::new(Open {
            master_file,
            kek,
            master,
            keys,
        }));
        info!(target: AUDIT_TARGET, generation, keys = n, "keystore unsealed");
        Ok(())
    }

    fn seal(&self) {
        let was_open = matches!(
            core::mem::replace(&mut *self.write(), State::Sealed),
            State::Unsealed(_)
        );
        if was_open {
            info!(target: AUDIT_TARGET, "keystore sealed");
        }
    }

    fn generate(&self, purpose: KeyPurpose, label: &str) -> Result<KeyInfo, Error> {
        self.read().open()?;
        let secret = Sm2SecretKey::generate()?;
        self.store_new(purpose, label, secret, "key generated")
    }

    fn import(
        &self,
        purpose: KeyPurpose,
        label: &str,
        secret: Sm2SecretKey,
    ) -> Result<KeyInfo, Error> {
        self.store_new(purpose, label, secret, "key imported")
    }

    fn info(&self, id: &KeyId) -> Result<KeyInfo, Error> {
        Ok(self.read().open()?.key(id)?.record.info.clone())
    }

    fn list(&self) -> Result<Vec<KeyInfo>, Error> {
        let st = self.read();
        Ok(st
            .open()?
            .keys
            .values()
            .map(|k| k.record.info.clone())
            .collect())
    }

    fn set_certificate(&self, id: &KeyId, der: &[u8]) -> Result<KeyInfo, Error> {
        if der.len() > MAX_CERT {
            return Err(Error::CertificateTooLarge { len: der.len() });
        }
        let public = crate::keystore::certificate_public_key(der)?;
        let _w = self.writer();
        let (record, generation) = {
            let st = self.read();
            let open = st.open()?;
            let k = open.key(id)?;
            if public != k.record.info.public_key {
                return Err(Error::CertificateMismatch { id: *id });
            }
            let mut info = k.record.info.clone();
            info.certificate = Some(der.to_vec());
            let rec = k.record.with_info(info, &k.secret, &open.master)?;
            (rec, open.generation())
        };
        write_atomic(
            &self.gen_dir(generation),
            &key_file_name(id),
            &record.encode(),
        )?;
        let info = record.info.clone();
        if let State::Unsealed(open) = &mut *self.write()
            && let Some(k) = open.keys.get_mut(id)
        {
            k.record = record;
        }
        info!(target: AUDIT_TARGET, key_id = %id, "certificate associated");
        Ok(info)
    }

    fn sign(&self, id: &KeyId, use_: KeyUse, msg: &[u8]) -> Result<Sm2Signature, Error> {
        let st = self.read();
        let k = st.open()?.key(id)?;
        let forbids = || Error::PurposeForbids {
            id: *id,
            purpose: k.record.info.purpose,
            requested: use_,
        };
        let sig = match use_ {
            KeyUse::SignCertId => k.cert.as_ref().ok_or_else(forbids)?.sign(msg),
            KeyUse::SignTls13Id => k.tls.as_ref().ok_or_else(forbids)?.sign(msg),
            _ => return Err(forbids()),
        };
        Ok(sig?)
    }

    fn export_device_key(
        &self,
        id: &KeyId,
        passphrase: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let st = self.read();
        let k = st.open()?.key(id)?;
        if !k.record.info.purpose.permits(KeyUse::Export) {
            return Err(Error::PurposeForbids {
                id: *id,
                purpose: k.record.info.purpose,
                requested: KeyUse::Export,
            });
        }
        let der = crate::export::encrypt_pkcs8(&k.secret, passphrase)?;
        info!(target: AUDIT_TARGET, key_id = %id, label = %k.record.info.label, "device key exported (encrypted PKCS#8)");
        Ok(der)
    }

    fn destroy(&self, id: &KeyId) -> Result<(), Error> {
        let _w = self.writer();
        let generation = {
            let st = self.read();
            let open = st.open()?;
            open.key(id)?;
            open.generation()
        };
        let dir = self.gen_dir(generation);
        let path = dir.join(key_file_name(id));
        fs::remove_file(&path).map_err(Error::io(&path))?;
        fsync_dir(&dir)?;
        if let State::Unsealed(open) = &mut *self.write() {
            open.keys.remove(id);
        }
        info!(target: AUDIT_TARGET, key_id = %id, "key destroyed");
        Ok(())
    }

    fn rotate_master(&self) -> Result<u64, Error> {
        self.rotate_master_until(None)
    }
}

impl core::fmt::Debug for SealedDir {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SealedDir")
            .field("root", &self.root)
            .field("sealed", &matches!(*self.read(), State::Sealed))
            .finish_non_exhaustive()
    }
}
