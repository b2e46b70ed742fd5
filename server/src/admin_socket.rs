//! The local admin endpoint of `smtrust serve`: `<data-dir>/admin.sock`, mode 0600 (owner only; the file
//! mode is the access control). Routes:
//!
//! | route | what | CLI |
//! |---|---|---|
//! | `GET /keystore/status`, `POST /keystore/seal` | `smtrust_keystore::admin::router` | `smtrust keystore status\|seal` |
//! | `POST /ca/est-token` | mint an EST enrollment token ([`EST_TOKEN_PATH`]) | `smtrust ca est-token` |
//!
//! The socket is bound as the keystore's own endpoint is (a fresh 0700 directory, chmod 0600, rename into
//! place), so it is never reachable with a wider mode. It starts before the node (the keystore routes work
//! at once); the EST route answers 503 until [`AdminSocket::attach_est`] hands it the node's EST service.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use smtrust_keystore::{AUDIT_TARGET, Keystore};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::node::Est;

/// Route of the token call. Body: `{"device_id": "…", "issuer": "label" | null, "ttl_secs": N}`; answer:
/// `{"device_id", "issuer", "token", "expires_at"}` (the token is in no log and nowhere else).
pub(crate) const EST_TOKEN_PATH: &str = "/ca/est-token";
/// Longest token lifetime the endpoint grants.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(90 * 86_400);

type EstSlot = Arc<OnceLock<Est>>;

/// A running admin endpoint. [`AdminSocket::shutdown`] (or drop) stops it and removes the socket file, if
/// the file is still the one it bound.
#[derive(Debug)]
pub(crate) struct AdminSocket {
    path: PathBuf,
    inode: (u64, u64),
    est: EstSlot,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

/// The body of `POST /ca/est-token`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenRequest {
    pub(crate) device_id: String,
    pub(crate) issuer: Option<String>,
    pub(crate) ttl_secs: u64,
}

/// Serve the admin endpoint on `path` (normally `smtrust_keystore::admin::socket_path(data_dir)`) on the
/// current tokio runtime. Refuses to start if another server answers on `path`; replaces a stale socket.
pub(crate) async fn serve(path: &Path, keystore: Arc<Keystore>) -> anyhow::Result<AdminSocket> {
    let ctx = || format!("admin socket {}", path.display());
    let std_listener = bind_private(path).with_context(ctx)?;
    let inode = std::fs::symlink_metadata(path)
        .map(|m| (m.dev(), m.ino()))
        .with_context(ctx)?;
    std_listener.set_nonblocking(true).with_context(ctx)?;
    let listener = tokio::net::UnixListener::from_std(std_listener).with_context(ctx)?;
    let est: EstSlot = Arc::new(OnceLock::new());
    let app = smtrust_keystore::admin::router(keystore).merge(
        Router::new()
            .route(EST_TOKEN_PATH, post(est_token))
            .with_state(Arc::clone(&est)),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(target: AUDIT_TARGET, socket = %path.display(), "admin socket listening");
    Ok(AdminSocket {
        path: path.to_owned(),
        inode,
        est,
        stop: Some(stop),
        task: Some(task),
    })
}

impl AdminSocket {
    /// Serve `POST /ca/est-token` with the node's EST service (once; later calls are ignored).
    pub(crate) fn attach_est(&self, est: Est) {
        let _ = self.est.set(est);
    }

    /// Stop accepting, let in-flight calls finish, remove the socket file.
    pub(crate) async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = match self.task.take() {
            Some(task) => task.await.context("admin socket task")?,
            None => Ok(()),
        };
        self.remove_file();
        Ok(served?)
    }

    fn remove_file(&self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.inode);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            self.remove_file();
        }
    }
}

fn json_reply(code: StatusCode, body: serde_json::Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn est_token(State(slot): State<EstSlot>, body: axum::body::Bytes) -> Response {
    let err = |code, msg: String| json_reply(code, serde_json::json!({ "error": msg }));
    let Some(est) = slot.get() else {
        return err(
            StatusCode::SERVICE_UNAVAILABLE,
            "the node is still starting".into(),
        );
    };
    let req: TokenRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return err(StatusCode::BAD_REQUEST, format!("request body: {e}")),
    };
    let device = match smtrust_ca::DeviceId::new(&req.device_id) {
        Ok(d) => d,
        Err(e) => return err(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let ttl = Duration::from_secs(req.ttl_secs);
    if ttl.is_zero() || ttl > MAX_TTL {
        return err(
            StatusCode::BAD_REQUEST,
            format!(
                "ttl must be between 1 s and {} days",
                MAX_TTL.as_secs() / 86_400
            ),
        );
    }
    let label = req.issuer.as_deref();
    let token = match est.mint_token(label, &device, ttl).await {
        Ok(t) => t,
        Err(smtrust_ca::Error::Config(e)) => return err(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "minting an EST token");
            return err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
    };
    let issuer = label.map_or_else(
        || est.labels().into_iter().next().unwrap_or_default(),
        str::to_owned,
    );
    let expires_at = token
        .expires_at()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    tracing::info!(target: AUDIT_TARGET, device = %device, issuer, expires_at, "EST token minted through the admin socket");
    json_reply(
        StatusCode::OK,
        serde_json::json!({
            "device_id": device.as_str(), "issuer": issuer, "token": token.as_str(), "expires_at": expires_at,
        }),
    )
}

/// Bind in a fresh 0700 directory beside `path`, chmod 0600, then rename into place: the socket is never
/// reachable with a wider mode than 0600, whatever the umask.
fn bind_private(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    clear_stale(path)?;
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let nonce = smtrust_crypto::rng::bytes::<8>().map_err(|e| io::Error::other(e.to_string()))?;
    let private = parent.join(format!(".admin-sock-{}", hex::encode(nonce)));
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let bound = (|| {
        let tmp = private.join("sock");
        let listener = std::os::unix::net::UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    bound
}

/// Remove a socket file nobody answers on; refuse a live socket or a non-socket file.
fn clear_stale(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists and is not a socket",
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another server answers on this admin socket",
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        Err(e) => Err(e),
    }
}
