//! Writes the fuzz seed corpora: `fuzz_seeds <out-dir>` makes `sealed_record/` (the sealed masters of a
//! passphrase and a shares store, and two sealed key records) and `share/` (printed shares, one per file).

use std::path::PathBuf;

use smtrust_keystore::{Argon2Params, InitMethod, KeyPurpose, Keystore, Unlock};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: fuzz_seeds <out-dir>")?
        .into();
    let work = tempfile::tempdir()?;
    let (records, shares_out) = (out.join("sealed_record"), out.join("share"));
    std::fs::create_dir_all(&records)?;
    std::fs::create_dir_all(&shares_out)?;

    let pass_dir = work.path().join("pass");
    let params = Argon2Params::new(1024, 1, 1).ok_or("argon2 params")?;
    Keystore::init_dir(
        &pass_dir,
        InitMethod::Passphrase {
            passphrase: b"seed",
            params,
        },
    )?;
    let ks = Keystore::open_dir(&pass_dir)?;
    ks.unseal(Unlock::Passphrase(b"seed"))?;
    ks.generate(KeyPurpose::CaSigning, "seed root")?;
    ks.generate(KeyPurpose::TlsServer, "seed tls")?;
    ks.seal();
    drop(ks);

    let share_dir = work.path().join("shares");
    let shares = Keystore::init_dir(
        &share_dir,
        InitMethod::Shares {
            threshold: 2,
            count: 3,
        },
    )?;
    for (i, s) in shares.iter().enumerate() {
        std::fs::write(shares_out.join(format!("share-{i}.txt")), s.as_bytes())?;
    }

    for (tag, dir) in [("pass", &pass_dir), ("shares", &share_dir)] {
        for entry in std::fs::read_dir(dir.join("gen-1"))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let name = if name == "master" {
                format!("{tag}-master")
            } else {
                format!("{tag}-record-{name}")
            };
            std::fs::copy(entry.path(), records.join(name))?;
        }
    }
    Ok(())
}
