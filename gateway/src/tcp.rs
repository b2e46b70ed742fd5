//! `tcp` mode: bytes both ways after admission, until either side closes, the idle timeout
//! passes, or the session is closed by an event.

use crate::Refusal;
use crate::config::ListenerConfig;
use crate::gateway::Shared;
use crate::listener::upstream;
use crate::registry::CloseReason;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

const BUF: usize = 16 * 1024;

pub(crate) async fn forward<D>(
    shared: &Shared,
    listener: &ListenerConfig,
    mut device: D,
    mut closed: watch::Receiver<Option<CloseReason>>,
) -> Result<(), Refusal>
where
    D: AsyncRead + AsyncWrite + Unpin,
{
    let mut platform = upstream(listener).await?;
    let idle = shared.config.limits.idle_timeout;
    let mut from_device = vec![0u8; BUF];
    let mut from_platform = vec![0u8; BUF];
    let result = loop {
        let deadline = tokio::time::sleep(idle);
        tokio::select! {
            r = device.read(&mut from_device) => match r {
                Ok(0) | Err(_) => break Ok(()),
                Ok(n) => {
                    let Some(chunk) = from_device.get(..n) else { break Ok(()) };
                    if platform.write_all(chunk).await.is_err() { break Ok(()) }
                    shared.metrics.bytes_upstream.fetch_add(n as u64, Ordering::Relaxed);
                }
            },
            r = platform.read(&mut from_platform) => match r {
                Ok(0) | Err(_) => break Ok(()),
                Ok(n) => {
                    let Some(chunk) = from_platform.get(..n) else { break Ok(()) };
                    if device.write_all(chunk).await.is_err() { break Ok(()) }
                    shared.metrics.bytes_downstream.fetch_add(n as u64, Ordering::Relaxed);
                }
            },
            _ = closed.changed() => break Err(closed_refusal(*closed.borrow())),
            () = deadline => break Err(Refusal::Idle),
        }
    };
    let _ = device.shutdown().await;
    let _ = platform.shutdown().await;
    result
}

pub(crate) fn closed_refusal(reason: Option<CloseReason>) -> Refusal {
    match reason {
        Some(CloseReason::Suspended) => Refusal::Suspended,
        Some(CloseReason::AttestationDowngraded) => Refusal::AttestationDowngraded,
        Some(CloseReason::Shutdown) => Refusal::Shutdown,
        _ => Refusal::Revoked,
    }
}
