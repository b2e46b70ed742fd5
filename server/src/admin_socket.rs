//! The local admin endpoint of `smtrust serve`: `<data-dir>/admin.sock`, mode 0600 (owner only; the file
//! mode is the access control). Routes:
//!
//! | route | what | CLI |
//! |---|---|---|
//! | `GET /keystore/status`, `POST /keystore/seal` | `smtrust_keystore::admin::router` | `smtrust keystore status\|seal` |
//! | `POST /ca/est-token` | mint an EST enrollment token ([`EST_TOKEN_PATH`]) | `smtrust ca est-token` |
//! | `POST /gateway/reload` | re-read the `--gateway` file and apply it live ([`GATEWAY_RELOAD_PATH`]), like SIGHUP | — |
//! | `POST /service/renew` | renew the service TLS and passport certificates now and use them ([`SERVICE_RENEW_PATH`]) | — |
//!
//! The socket is the keystore's own endpoint (`smtrust_keystore::admin::serve_router_unix`: a fresh 0700
//! directory, chmod 0600, rename into place), so it is never reachable with a wider mode. It starts before the node (the keystore routes work
//! at once); the EST route answers 503 until [`AdminSocket::attach_est`] hands it the node's EST service.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use smtrust_keystore::{AUDIT_TARGET, Keystore};

use crate::node::Est;

/// Route of the token call. Body: `{"device_id": "…", "issuer": "label" | null, "ttl_secs": N}`; answer:
/// `{"device_id", "issuer", "token", "expires_at"}` (the token is in no log and nowhere else).
pub(crate) const EST_TOKEN_PATH: &str = "/ca/est-token";
/// Longest token lifetime the endpoint grants.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(90 * 86_400);

/// Route of the gateway reload. No body; answer: `{"added", "removed", "moved", "changed", "limits_changed",
/// "listeners"}` (200), or `{"error"}` (409: the file is bad or the gateway refused it; nothing changed).
pub(crate) const GATEWAY_RELOAD_PATH: &str = "/gateway/reload";

/// Route of the forced renewal. No body; answer: `{"tls_serial", "passport_serial"}` (hex; the passport one is null
/// without a gateway), or `{"error"}` (409: the keystore is sealed, the CA refused; the current certificates stay,
/// except a TLS certificate renewed before the passport one failed, which the error names).
pub(crate) const SERVICE_RENEW_PATH: &str = "/service/renew";

/// Where the serve loop answers a [`NodeCommand`]: the outcome as JSON, or the error.
pub(crate) type Reply = tokio::sync::oneshot::Sender<Result<serde_json::Value, String>>;

/// What the socket asks of the serve loop, which owns the node.
#[derive(Debug)]
pub(crate) enum NodeCommand {
    /// Re-read the `--gateway` file and apply it ([`GATEWAY_RELOAD_PATH`]).
    GatewayReload(Reply),
    /// Renew the service certificates now ([`SERVICE_RENEW_PATH`]).
    RenewCertificates(Reply),
}

type EstSlot = Arc<OnceLock<Est>>;
type CommandSlot = Arc<OnceLock<tokio::sync::mpsc::Sender<NodeCommand>>>;

/// A running admin endpoint: the keystore's socket (bind, stale-socket rule, shutdown) with the EST route
/// merged in. [`AdminSocket::shutdown`] (or drop) stops it and removes the socket file.
#[derive(Debug)]
pub(crate) struct AdminSocket {
    socket: smtrust_keystore::admin::AdminSocket,
    est: EstSlot,
    commands: CommandSlot,
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
    let est: EstSlot = Arc::new(OnceLock::new());
    let commands: CommandSlot = Arc::new(OnceLock::new());
    let app = smtrust_keystore::admin::router(keystore)
        .merge(
            Router::new()
                .route(EST_TOKEN_PATH, post(est_token))
                .with_state(Arc::clone(&est)),
        )
        .merge(
            Router::new()
                .route(GATEWAY_RELOAD_PATH, post(gateway_reload))
                .route(SERVICE_RENEW_PATH, post(service_renew))
                .with_state(Arc::clone(&commands)),
        );
    let socket = smtrust_keystore::admin::serve_router_unix(path, app)
        .await
        .with_context(|| format!("admin socket {}", path.display()))?;
    Ok(AdminSocket {
        socket,
        est,
        commands,
    })
}

impl AdminSocket {
    /// Serve `POST /ca/est-token` with the node's EST service (once; later calls are ignored).
    pub(crate) fn attach_est(&self, est: Est) {
        let _ = self.est.set(est);
    }

    /// Serve `POST /gateway/reload` and `POST /service/renew` by asking the serve loop (which owns the node)
    /// through `commands` (once; later calls are ignored).
    pub(crate) fn attach_commands(&self, commands: tokio::sync::mpsc::Sender<NodeCommand>) {
        let _ = self.commands.set(commands);
    }

    /// Stop accepting, let in-flight calls finish, remove the socket file.
    pub(crate) async fn shutdown(self) -> anyhow::Result<()> {
        Ok(self.socket.shutdown().await?)
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

async fn gateway_reload(State(slot): State<CommandSlot>) -> Response {
    ask(&slot, NodeCommand::GatewayReload).await
}

async fn service_renew(State(slot): State<CommandSlot>) -> Response {
    ask(&slot, NodeCommand::RenewCertificates).await
}

/// Hand `command` to the serve loop and answer with its outcome (409 when it failed).
async fn ask(slot: &CommandSlot, command: fn(Reply) -> NodeCommand) -> Response {
    let err = |code, msg: String| json_reply(code, serde_json::json!({ "error": msg }));
    let Some(commands) = slot.get() else {
        return err(
            StatusCode::SERVICE_UNAVAILABLE,
            "the node is still starting".into(),
        );
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if commands.send(command(reply)).await.is_err() {
        return err(
            StatusCode::SERVICE_UNAVAILABLE,
            "the node is stopping".into(),
        );
    }
    match answer.await {
        Ok(Ok(outcome)) => json_reply(StatusCode::OK, outcome),
        Ok(Err(e)) => err(StatusCode::CONFLICT, e),
        Err(_) => err(
            StatusCode::SERVICE_UNAVAILABLE,
            "the node is stopping".into(),
        ),
    }
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
