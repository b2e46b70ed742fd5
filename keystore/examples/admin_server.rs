//! A stand-in for `smtrust serve`'s admin endpoint: `admin_server <data-dir>` opens `<data-dir>/keystore`,
//! unseals it with `SMTRUST_PASSPHRASE`, and serves `<data-dir>/admin.sock` until killed. Lets the CLI's
//! `smtrust keystore seal|status` be tried against a live process.

use std::path::PathBuf;
use std::sync::Arc;

use smtrust_keystore::{Keystore, Unlock, admin};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: admin_server <data-dir>")?
        .into();
    let pass = std::env::var("SMTRUST_PASSPHRASE")?;
    let ks = Keystore::open_dir(&data.join("keystore"))?;
    ks.unseal(Unlock::Passphrase(pass.as_bytes()))?;
    let socket = admin::serve_unix(&admin::socket_path(&data), Arc::new(ks)).await?;
    println!("listening on {}", socket.path().display());
    std::future::pending::<()>().await;
    Ok(())
}
