//! The platform side of one device connection: HTTP/1.1 connections, opened at the first
//! allowed request and reused. An HTTP/1.1 device sends one request at a time, so one
//! connection serves it; an HTTP/2 device may run streams side by side, and each concurrent
//! stream takes an idle ready connection or opens one (up to [`MAX_IDLE`] are kept).

use crate::Refusal;
use crate::config::ListenerConfig;
use crate::listener::upstream;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::sync::Mutex;

/// Idle platform connections kept per HTTP/2 device connection.
pub(crate) const MAX_IDLE: usize = 8;

pub(crate) struct Upstream {
    idle: Mutex<Vec<SendRequest<Incoming>>>,
    /// One request at a time (HTTP/1.1 device): reuse the connection and wait until it is ready.
    serial: bool,
}

impl Upstream {
    pub(crate) fn new(serial: bool) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            serial,
        }
    }

    /// A connection for the next request: a kept one, else a new one.
    pub(crate) async fn take(
        &self,
        listener: &ListenerConfig,
    ) -> Result<SendRequest<Incoming>, Refusal> {
        let kept = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|s| !s.is_closed());
            if self.serial {
                idle.pop()
            } else {
                // A connection still streaming an earlier response body is not ready.
                idle.iter()
                    .position(SendRequest::is_ready)
                    .map(|i| idle.swap_remove(i))
            }
        };
        match kept {
            Some(s) => Ok(s),
            None => connect(listener).await,
        }
    }

    /// Gives a connection back after its response head arrived.
    pub(crate) fn give_back(&self, sender: SendRequest<Incoming>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let cap = if self.serial { 1 } else { MAX_IDLE };
        if !sender.is_closed() && idle.len() < cap {
            idle.push(sender);
        }
    }
}

async fn connect(listener: &ListenerConfig) -> Result<SendRequest<Incoming>, Refusal> {
    let tcp = upstream(listener).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| Refusal::Upstream(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "platform connection ended");
        }
    });
    Ok(sender)
}
