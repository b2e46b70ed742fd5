//! HTTP/2 (ALPN `h2`) on an admitted connection. Each stream is one request through the same
//! service as HTTP/1.1. hyper hands each stream future to an executor; ours queues it into a
//! `FuturesUnordered` driven by the connection's own task, because the service borrows the
//! connection's state (not `'static`) and so that closing the session drops every stream with it.

use crate::Refusal;
use crate::config::Limits;
use crate::registry::CloseReason;
use crate::tcp::closed_refusal;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hyper::body::Incoming;
use hyper::service::HttpService;
use hyper_util::rt::TokioTimer;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::{mpsc, watch};

/// Streams a device may run at once (RFC 9113 §6.5.2 recommends no fewer than 100).
pub(crate) const MAX_CONCURRENT_STREAMS: u32 = 100;
/// Largest frame payload accepted: the protocol's initial 16 KiB (RFC 9113 §4.2).
pub(crate) const MAX_FRAME_SIZE: u32 = 16 * 1024;

type StreamFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// hyper's executor for stream futures: queues them for [`serve`]'s loop.
#[derive(Clone)]
struct StreamExec<'a>(mpsc::UnboundedSender<StreamFuture<'a>>);

impl<'a, F> hyper::rt::Executor<F> for StreamExec<'a>
where
    F: Future<Output = ()> + Send + 'a,
{
    fn execute(&self, fut: F) {
        // The receiver lives as long as the connection; a send after it ends has nobody to serve.
        let _ = self.0.send(Box::pin(fut));
    }
}

/// Serves HTTP/2 until the device closes, the session is closed, or it idles (no stream for
/// the idle timeout: GOAWAY, then [`Refusal::Idle`]).
pub(crate) async fn serve<'a, I, S, B>(
    io: I,
    svc: S,
    limits: &Limits,
    closed: &mut watch::Receiver<Option<CloseReason>>,
) -> Result<(), Refusal>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'a,
    S: HttpService<Incoming, ResBody = B> + Send + 'a,
    S::Future: Send + 'a,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (tx, mut rx) = mpsc::unbounded_channel();
    let header_list = u32::try_from(limits.max_packet_size.max(8192)).unwrap_or(u32::MAX);
    let mut builder = hyper::server::conn::http2::Builder::new(StreamExec(tx));
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_header_list_size(header_list);
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let mut streams = FuturesUnordered::new();
    let idle = tokio::time::sleep(limits.idle_timeout);
    tokio::pin!(idle);
    let mut idled = false;
    let ended = loop {
        tokio::select! {
            r = conn.as_mut() => break r,
            Some(f) = rx.recv() => streams.push(f),
            Some(()) = streams.next(), if !streams.is_empty() => {
                if streams.is_empty() {
                    // `sleep` clamps a deadline past the clock's range; `Instant + Duration` panics.
                    idle.set(tokio::time::sleep(limits.idle_timeout));
                }
            }
            () = idle.as_mut(), if streams.is_empty() && !idled => {
                idled = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = closed.changed() => return Err(closed_refusal(*closed.borrow())),
        }
    };
    // Streams still sending their responses finish unless the session is closed.
    while let Ok(f) = rx.try_recv() {
        streams.push(f);
    }
    while !streams.is_empty() {
        tokio::select! {
            _ = streams.next() => {}
            _ = closed.changed() => return Err(closed_refusal(*closed.borrow())),
        }
    }
    match ended {
        // After our GOAWAY the device may just drop the connection (no TLS close_notify).
        _ if idled => Err(Refusal::Idle),
        Err(e) => {
            tracing::debug!(error = %e, "http/2 connection error");
            Err(Refusal::Malformed)
        }
        Ok(()) => Ok(()),
    }
}
