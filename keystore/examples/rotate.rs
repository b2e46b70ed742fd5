//! Rotate the master of a keystore forever: `rotate <dir>` with `SMTRUST_PASSPHRASE` set.
//!
//! The crash test (`tests/keystore/rotation.rs`) runs this and kills it with SIGKILL at varying moments,
//! then checks the store opens with the old or the new master.

use std::path::PathBuf;

use smtrust_keystore::{Keystore, Unlock};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: rotate <dir>")?
        .into();
    let pass = std::env::var("SMTRUST_PASSPHRASE")?;
    let ks = Keystore::open_dir(&dir)?;
    ks.unseal(Unlock::Passphrase(pass.as_bytes()))?;
    loop {
        let g = ks.rotate_master()?;
        println!("generation {g}");
    }
}
