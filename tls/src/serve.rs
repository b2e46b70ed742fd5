//! Serve an axum [`Router`] over TLS 1.3-SM (feature `axum`).
//!
//! One accept loop: each TCP connection gets a bounded TLS handshake ([`Options::handshake_timeout`]), then
//! HTTP/1.1 (hyper) with the router as the service. Every request carries the verified client as a [`Peer`]
//! request extension, so handlers (EST, attestation) read who is calling with
//! `axum::Extension<Peer>`. Client certificates are verified by the `ServerConfig`'s verifier (e.g.
//! [`crate::ClientAuth::Optional`]); this module only reports what was verified.
//!
//! Shutdown: when the `shutdown` future completes, the listener stops accepting, open connections finish their
//! in-flight request and close (hyper's graceful shutdown), and connections still open after
//! [`Options::drain_timeout`] are dropped.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::identity::DeviceIdentity;

/// The TLS client of a request, inserted as a request extension on every request of the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Peer {
    /// The device identity of the verified client certificate; `None` without a certificate or when the
    /// certificate carries no device ID (e.g. an admin certificate: read `leaf` then).
    pub identity: Option<DeviceIdentity>,
    /// The verified client end-entity certificate (DER), if the client sent one.
    pub leaf: Option<Vec<u8>>,
    /// The client certificate was past its notAfter when the connection was made: the verifier accepted it
    /// only through [`crate::Sm2ChainVerifier::with_expiry_grace`]. Handlers must allow such a peer nothing
    /// but renewal.
    pub expired_in_grace: bool,
}

impl Peer {
    /// A client that presented no certificate.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// A client whose (already verified) end-entity certificate is `leaf`.
    pub fn from_leaf(leaf: &[u8]) -> Self {
        let identity = DeviceIdentity::from_certificate(&CertificateDer::from(leaf)).ok();
        Self {
            identity,
            leaf: Some(leaf.to_vec()),
            expired_in_grace: false,
        }
    }

    /// [`Peer::from_leaf`], marked [`Peer::expired_in_grace`] if the certificate's notAfter is before `now`.
    pub fn from_leaf_at(leaf: &[u8], now: std::time::SystemTime) -> Self {
        let now = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let expired =
            crate::verify::not_after_of(&CertificateDer::from(leaf)).is_some_and(|na| na < now);
        Self {
            expired_in_grace: expired,
            ..Self::from_leaf(leaf)
        }
    }

    #[allow(clippy::disallowed_methods)] // the accept loop is the edge that reads the clock
    fn from_connection(conn: &rustls::ServerConnection) -> Self {
        match conn.peer_certificates().and_then(|c| c.first()) {
            Some(leaf) => Self::from_leaf_at(leaf.as_ref(), std::time::SystemTime::now()),
            None => Self::anonymous(),
        }
    }
}

/// Limits of the accept loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// A TLS handshake not finished after this is dropped (slow or stalled clients).
    pub handshake_timeout: Duration,
    /// After shutdown, how long open connections may take to finish.
    pub drain_timeout: Duration,
    /// Time allowed to read a request's headers (hyper's `header_read_timeout`).
    pub header_read_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Serve `app` on `listener` over `tls` with default [`Options`] until `shutdown` completes.
pub async fn serve<F>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    serve_with(listener, tls, app, shutdown, Options::default()).await
}

/// [`serve`] with explicit [`Options`]. Returns once the listener stopped and connections drained.
pub async fn serve_with<F>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    shutdown: F,
    opts: Options,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let acceptor = TlsAcceptor::from(tls);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    conns.spawn(connection(acceptor.clone(), tcp, app.clone(), stop_rx.clone(), opts));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(opts.drain_timeout, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(open = conns.len(), "drain timeout: dropping connections");
        conns.abort_all();
    }
    Ok(())
}

async fn connection(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    app: Router,
    mut stop: watch::Receiver<bool>,
    opts: Options,
) {
    let stream = match tokio::time::timeout(opts.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake refused");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return;
        }
    };
    let peer = Peer::from_connection(stream.get_ref().1);
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        let mut app = app.clone();
        async move { tower_service::Service::call(&mut app, req).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .serve_connection(TokioIo::new(stream), svc);
    let mut conn = std::pin::pin!(conn);
    let stopping = async move {
        // Drop the watch guard before awaiting anything else (it is not Send).
        let _ = stop.wait_for(|s| *s).await.map(|_| ());
    };
    tokio::select! {
        r = conn.as_mut() => log_end(r),
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            log_end(conn.await);
        }
    }
}

fn log_end(r: Result<(), hyper::Error>) {
    if let Err(e) = r {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}

// Router's service error type is Infallible; keep that assumption visible.
const _: fn() = || {
    fn infallible<S: tower_service::Service<hyper::Request<Incoming>, Error = Infallible>>() {}
    infallible::<Router>();
};
