//! The local admin endpoint of `smtrust serve`: `<data-dir>/admin.sock`, mode 0600 (owner only), with
//! `POST /keystore/seal` and `GET /keystore/status`. The routes, the owner-only bind and the blocking client
//! the CLI uses (`smtrust keystore seal|status`) live in `smtrust_keystore::admin` (feature "admin").

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use smtrust_keystore::Keystore;
use smtrust_keystore::admin::AdminSocket;

/// Serve the admin endpoint on `path` (normally `smtrust_keystore::admin::socket_path(data_dir)`) on the
/// current tokio runtime until [`AdminSocket::shutdown`] or drop, which also removes the socket file.
/// Refuses to start if another server answers on `path`; replaces a stale socket file.
pub(crate) async fn serve(path: &Path, keystore: Arc<Keystore>) -> anyhow::Result<AdminSocket> {
    smtrust_keystore::admin::serve_unix(path, keystore)
        .await
        .with_context(|| format!("admin socket {}", path.display()))
}
