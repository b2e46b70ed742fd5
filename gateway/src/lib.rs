#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod config;
mod error;
mod event;
mod feed;
mod gateway;
mod http;
mod identity;
mod listener;
mod metrics;
mod mqtt;
pub mod passport;
mod phase;
mod registry;
mod reload;
mod tcp;
mod tls;

#[doc(hidden)]
pub mod fuzzing;

// The public interface is:
pub use config::{
    Config, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_HANDSHAKES_PER_SOURCE, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PACKET, DeniedQos0, Limits, ListenerConfig, Mode,
    RawAdmin, RawConfig, RawLimits, RawListener,
};
pub use error::{Error, Refusal, Source};
pub use event::{AttestationLookup, AttestationTable, CertStatus, GatewayEvent, RevocationSet};
pub use feed::{IssuerNames, gateway_event};
pub use gateway::{ADMIN, Gateway, GatewayBuilder, NeedsTls, Running};
pub use http::{DEVICE_ID_HEADER, HEADER_PREFIX, PASSPORT_HEADER};
pub use identity::CertKey;
pub use metrics::{Histogram, LATENCY_BUCKETS, Metrics};
pub use passport::{Passport, PassportError, PassportSigner};
pub use phase::{ConnContext, NoHooks, Phases};
pub use registry::CloseReason;
pub use reload::{ReloadReport, ServerCert};
pub use smtrust_tls::{DeviceId, DeviceIdentity};
pub use tls::SmTls;
