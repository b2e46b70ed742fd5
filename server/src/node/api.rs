//! The node's HTTP faces: plain HTTP for signed public objects (CRLs, CA certificates, OCSP), and the API over
//! TLS 1.3-SM (EST under `/.well-known/est/`, attestation under `/attest/v1/`), where a device is whoever its
//! verified client certificate says.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use smtrust_ca::SqlStore;
use smtrust_ca::est::{EstConfig, EstState};
use smtrust_ca::home::OpenedCa;
use tokio::sync::{broadcast, watch};

use super::Attest;

/// The EST service of the node (tokens are minted through it).
pub(crate) type Est = EstState<SqlStore>;

/// EST for the node's issuing CA, accepting re-enrollment up to `reenroll_grace` after expiry.
pub(crate) fn est(
    ca: &OpenedCa,
    label: &str,
    reenroll_grace: std::time::Duration,
) -> anyhow::Result<Est> {
    let mut cfg = EstConfig::new(label);
    cfg.reenroll_grace = reenroll_grace;
    Ok(EstState::new(ca.service.clone(), cfg)?)
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// CRLs, CA certificates and OCSP over plain HTTP.
pub(crate) fn serve_http(
    listener: tokio::net::TcpListener,
    ca: &OpenedCa,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let app = smtrust_ca::http::crl_router(ca.service.clone())
        .merge(smtrust_ca::http::ocsp_router(ca.service.clone()));
    tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(stopped(stop))
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "HTTP listener stopped");
        }
    })
}

/// EST, attestation and factory batches (`/factory/v1/`, line controllers) over TLS 1.3-SM.
pub(crate) fn serve_api(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    est: &Est,
    attest: &Arc<Attest>,
    factory: Router,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let app = Router::new()
        .merge(smtrust_ca::est::router(est.clone()))
        .merge(smtrust_attest::http::router(Arc::clone(attest)))
        .merge(factory)
        .layer(axum::middleware::from_fn(verified_device))
        .layer(axum::middleware::from_fn(
            smtrust_ca::est::expired_peer_guard,
        ));
    tokio::spawn(async move {
        if let Err(e) = smtrust_tls::serve::serve(listener, tls, app, stopped(stop)).await {
            tracing::error!(error = %e, "API listener stopped");
        }
    })
}

/// Hand the attestation routes the device ID of the verified client certificate (and nothing else).
async fn verified_device(mut req: Request, next: Next) -> Response {
    req.extensions_mut()
        .remove::<smtrust_attest::http::VerifiedDevice>();
    let device = req
        .extensions()
        .get::<smtrust_tls::serve::Peer>()
        .and_then(|p| p.identity.as_ref())
        .and_then(|i| smtrust_attest::DeviceId::new(i.device_id.as_str()).ok());
    if let Some(d) = device {
        req.extensions_mut()
            .insert(smtrust_attest::http::VerifiedDevice(d));
    }
    next.run(req).await
}

/// Close a device's gateway sessions when its attestation gets worse.
pub(crate) fn follow_attestation(
    gw: &smtrust_gateway::Gateway,
    mut events: broadcast::Receiver<smtrust_attest::AttestationDowngrade>,
) -> tokio::task::JoinHandle<()> {
    let gw = gw.clone();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(e) => {
                    gw.handle_event(smtrust_gateway::GatewayEvent::AttestationDowngraded {
                        device_id: e.device_id.as_str().to_owned(),
                    });
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "attestation feed lagged");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    })
}
