//! `tcp` mode: bytes both ways after admission, until either side closes, the idle timeout
//! passes, or the session is closed by an event.

use crate::Refusal;
use crate::config::ListenerConfig;
use crate::gateway::Shared;
use crate::listener::upstream;
use crate::registry::CloseReason;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

const BUF: usize = 16 * 1024;

pub(crate) async fn forward<D>(
    shared: &Shared,
    listener: &ListenerConfig,
    device: D,
    mut closed: watch::Receiver<Option<CloseReason>>,
) -> Result<(), Refusal>
where
    D: AsyncRead + AsyncWrite + Unpin,
{
    let platform = upstream(listener).await?;
    let idle = shared.config.limits.idle_timeout;
    let (mut dev_rd, mut dev_wr) = tokio::io::split(device);
    let (mut up_rd, mut up_wr) = platform.into_split();
    // Milliseconds since `start` of the last byte either way (the idle timer).
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let touch = || last.store(millis(start.elapsed()), Ordering::Relaxed);
    let m = &shared.metrics;
    // The two directions run concurrently: a side blocked writing (its peer's window full) must
    // not stop the other from reading, or a full-duplex stream deadlocks.
    let upstream = pump(&mut dev_rd, &mut up_wr, &m.bytes_upstream, &touch);
    let downstream = pump(&mut up_rd, &mut dev_wr, &m.bytes_downstream, &touch);
    let idle_timer = async {
        loop {
            let quiet = start
                .elapsed()
                .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    };
    let result = tokio::select! {
        () = upstream => Ok(()),
        () = downstream => Ok(()),
        _ = closed.changed() => Err(closed_refusal(*closed.borrow())),
        () = idle_timer => Err(Refusal::Idle),
    };
    let _ = dev_wr.shutdown().await;
    let _ = up_wr.shutdown().await;
    result
}

/// Copies `from` to `to` until either ends, counting bytes.
async fn pump<R, W>(from: &mut R, to: &mut W, count: &AtomicU64, touch: &impl Fn())
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        touch();
        let Some(chunk) = buf.get(..n) else { return };
        if to.write_all(chunk).await.is_err() {
            return;
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn closed_refusal(reason: Option<CloseReason>) -> Refusal {
    match reason {
        Some(CloseReason::Suspended) => Refusal::Suspended,
        Some(CloseReason::AttestationDowngraded) => Refusal::AttestationDowngraded,
        Some(CloseReason::Shutdown) => Refusal::Shutdown,
        _ => Refusal::Revoked,
    }
}
