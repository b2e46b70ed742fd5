//! The server half of the admin socket: an axum router over a tokio `UnixListener`.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{SEAL_PATH, STATUS_PATH};
use crate::{AUDIT_TARGET, Error, Keystore, Status, UnsealMethod};

/// The routes: `GET /keystore/status`, `POST /keystore/seal`.
pub fn router(keystore: Arc<Keystore>) -> Router {
    Router::new()
        .route(STATUS_PATH, get(status))
        .route(SEAL_PATH, post(seal))
        .with_state(keystore)
}

async fn status(State(ks): State<Arc<Keystore>>) -> Response {
    reply(ks.status())
}

async fn seal(State(ks): State<Arc<Keystore>>) -> Response {
    ks.seal();
    tracing::info!(target: AUDIT_TARGET, "keystore sealed through the admin socket");
    reply(ks.status())
}

fn reply(st: Result<Status, Error>) -> Response {
    let (code, body) = match st {
        Ok(st) => (StatusCode::OK, status_json(&st)),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({ "error": e.to_string() }),
        ),
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn status_json(st: &Status) -> serde_json::Value {
    let method = match st.method {
        UnsealMethod::Passphrase(_) => serde_json::json!({ "kind": "passphrase" }),
        UnsealMethod::Shares { threshold, count } => {
            serde_json::json!({ "kind": "shares", "threshold": threshold, "count": count })
        }
    };
    serde_json::json!({
        "sealed": st.sealed, "generation": st.generation, "method": method, "keys": st.keys,
    })
}

/// A running admin endpoint. [`AdminSocket::shutdown`] (or drop) stops it and removes the socket file, if
/// the file is still the one it bound.
#[derive(Debug)]
pub struct AdminSocket {
    path: PathBuf,
    inode: (u64, u64),
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl AdminSocket {
    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stop accepting, let in-flight calls finish, remove the socket file.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = match self.task.take() {
            Some(task) => task
                .await
                .map_err(|_| Error::Internal("admin socket task panicked"))?,
            None => Ok(()),
        };
        self.remove_file();
        served.map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
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

/// Bind `path` (mode 0600) and serve [`router`] on it on the current tokio runtime. A stale socket file (no
/// server answers) is replaced; a live one, or any other file there, is an error.
pub async fn serve_unix(path: &Path, keystore: Arc<Keystore>) -> Result<AdminSocket, Error> {
    serve_router_unix(path, router(keystore)).await
}

/// [`serve_unix`] with the caller's router: the server merges [`router`] with routes of its own, and the
/// socket keeps one owner-only bind, one stale-socket rule and one shutdown.
pub async fn serve_router_unix(path: &Path, app: Router) -> Result<AdminSocket, Error> {
    let io_err = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let std_listener = bind_private(path).map_err(io_err)?;
    let inode = std::fs::symlink_metadata(path)
        .map(|m| (m.dev(), m.ino()))
        .map_err(io_err)?;
    std_listener.set_nonblocking(true).map_err(io_err)?;
    let listener = tokio::net::UnixListener::from_std(std_listener).map_err(io_err)?;
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
        stop: Some(stop),
        task: Some(task),
    })
}

/// Bind in a fresh 0700 directory beside `path`, chmod 0600, then rename into place: the socket is never
/// reachable with a wider mode than 0600, whatever the umask.
fn bind_private(path: &Path) -> io::Result<UnixListener> {
    clear_stale(path)?;
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
    let private = parent.join(format!(".admin-sock-{}", hex::encode(nonce)));
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let bound = (|| {
        let tmp = private.join("sock");
        let listener = UnixListener::bind(&tmp)?;
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
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another server answers on this admin socket",
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        Err(e) => Err(e),
    }
}
