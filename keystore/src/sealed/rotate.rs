//! Master rotation, crash-safe.
//!
//! Steps (a crash after any of them leaves `current` naming a complete generation):
//! 1. create the staging directory `gen-N+1.tmp`;
//! 2. write the new sealed master there (same KEK, so the passphrase or shares still work);
//! 3. … write each record with its data key re-wrapped under the new master (one step per record);
//! 4. fsync the staging directory, rename it to `gen-N+1`, fsync the root;
//! 5. switch `current` to N+1 (temp file, fsync, rename, fsync root): the commit point;
//! 6. remove `gen-N`.
//!
//! Before step 5 the store opens at generation N and `open` removes the staging or unreferenced directory;
//! after it, at N+1, and `open` removes `gen-N` if step 6 did not finish.

use std::fs;

use smtrust_crypto::sm4::Sm4Key;
use tracing::info;

use super::{
    AUDIT_TARGET, CURRENT, MASTER, SealedDir, State, TMP_SUFFIX, current_text, fsio, gen_dir_name,
    key_file_name,
};
use crate::Error;
use crate::master::SealedMaster;
use crate::record::SealedRecord;

impl SealedDir {
    /// Rotate the master, stopping with [`Error::FaultInjected`] right after step `stop_after` (counting
    /// every record as a step) to simulate a crash there. `None` runs to the end. The store's memory is left
    /// as it was when stopped, so a test drops it and reopens the directory, as after a real crash.
    #[doc(hidden)]
    pub fn rotate_master_until(&self, stop_after: Option<usize>) -> Result<u64, Error> {
        let _w = self.writer();
        let (old, new, new_master, new_file, records) = {
            let st = self.read();
            let open = st.open()?;
            let old = open.generation();
            let new = old
                .checked_add(1)
                .ok_or(Error::Internal("generation overflow"))?;
            let new_master = Sm4Key::generate()?;
            let new_file =
                SealedMaster::seal(new, open.master_file.method, &open.kek, &new_master)?;
            let records = open
                .keys
                .values()
                .map(|k| k.record.rewrap(&open.master, &new_master, new))
                .collect::<Result<Vec<SealedRecord>, Error>>()?;
            (old, new, new_master, new_file, records)
        };
        let mut step = 0usize;
        let mut checkpoint = || {
            step += 1;
            if stop_after == Some(step) {
                Err(Error::FaultInjected { step })
            } else {
                Ok(())
            }
        };

        let staging = self.root.join(format!("{}{TMP_SUFFIX}", gen_dir_name(new)));
        let target = self.gen_dir(new);
        fsio::remove_dir_if_exists(&staging)?;
        fsio::remove_dir_if_exists(&target)?;
        fs::create_dir(&staging).map_err(Error::io(&staging))?;
        checkpoint()?;
        fsio::write_synced(&staging.join(MASTER), &new_file.encode())?;
        checkpoint()?;
        for r in &records {
            fsio::write_synced(&staging.join(key_file_name(&r.info.id)), &r.encode())?;
            checkpoint()?;
        }
        fsio::fsync_dir(&staging)?;
        fs::rename(&staging, &target).map_err(Error::io(&target))?;
        fsio::fsync_dir(&self.root)?;
        checkpoint()?;
        fsio::write_atomic(&self.root, CURRENT, current_text(new).as_bytes())?;
        checkpoint()?;
        fsio::remove_dir_if_exists(&self.gen_dir(old))?;
        fsio::fsync_dir(&self.root)?;
        checkpoint()?;

        if let State::Unsealed(open) = &mut *self.write() {
            open.master_file = new_file;
            open.master = new_master;
            for r in records {
                if let Some(k) = open.keys.get_mut(&r.info.id) {
                    k.record = r;
                }
            }
        }
        info!(target: AUDIT_TARGET, from = old, to = new, "master key rotated");
        Ok(new)
    }
}
