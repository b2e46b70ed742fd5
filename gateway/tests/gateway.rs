//! Gateway integration tests over real loopback sockets: one binary, one module per concern.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::collapsible_if,
    missing_docs,
    unreachable_pub
)]

#[path = "gateway/drain.rs"]
mod drain;
#[path = "gateway/dual.rs"]
mod dual;
#[path = "gateway/feed.rs"]
mod feed;
#[path = "gateway/http.rs"]
mod http;
#[path = "gateway/http2.rs"]
mod http2;
#[path = "gateway/mqtt.rs"]
mod mqtt;
#[path = "gateway/notify.rs"]
mod notify;
#[path = "gateway/pki.rs"]
mod pki;
#[path = "gateway/reload.rs"]
mod reload;
#[path = "gateway/tcp.rs"]
mod tcp;
#[path = "gateway/tongsuo.rs"]
mod tongsuo;
