#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod error;
mod event;
mod gateway;
mod identity;
mod listener;
mod metrics;
mod mqtt;
mod phase;
mod registry;
mod tcp;

#[doc(hidden)]
pub mod fuzzing;

// The public interface is:
pub use config::{
    Config, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_HANDSHAKES_PER_SOURCE, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PACKET, DeniedQos0, Limits, ListenerConfig, Mode,
    RawConfig, RawLimits, RawListener,
};
pub use error::{Error, Refusal, Source};
pub use event::{AttestationLookup, AttestationTable, CertStatus, GatewayEvent, RevocationSet};
pub use gateway::{Gateway, GatewayBuilder, NeedsTls, Running};
pub use identity::{CertKey, DEVICE_URI_PREFIX, DeviceIdentity};
pub use metrics::Metrics;
pub use phase::{ConnContext, NoHooks, Phases};
pub use registry::CloseReason;
