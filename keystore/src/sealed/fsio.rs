//! Crash-safe file writes: temp file, fsync, rename, fsync the directory (POSIX rename is atomic, and the
//! directory fsync makes the rename itself durable).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use crate::Error;

/// Suffix of files being written; leftovers from a crash are removed when the store opens.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

pub(crate) fn fsync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}

/// Write `name` in `dir` atomically: readers see the old content or the new one, never a mix.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    write_synced(&tmp, bytes)?;
    let dst = dir.join(name);
    fs::rename(&tmp, &dst).map_err(Error::io(&dst))?;
    fsync_dir(dir)
}

/// Write a new file and fsync it (no rename: for files inside a directory that is itself renamed later).
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(Error::io(path))?;
    f.write_all(bytes).map_err(Error::io(path))?;
    f.sync_all().map_err(Error::io(path))
}

/// Read a whole file of at most `max` bytes (a larger file is malformed; nothing big is allocated).
pub(crate) fn read_limited(path: &Path, max: usize, what: &'static str) -> Result<Vec<u8>, Error> {
    let f = File::open(path).map_err(Error::io(path))?;
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    f.take(limit)
        .read_to_end(&mut buf)
        .map_err(Error::io(path))?;
    if buf.len() > max {
        return Err(Error::Malformed {
            path: path.to_path_buf(),
            what,
            offset: max,
        });
    }
    Ok(buf)
}

/// Remove a directory tree if it exists.
pub(crate) fn remove_dir_if_exists(path: &Path) -> Result<(), Error> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path)(e)),
    }
}
