//! The gateway's one error type. Refusals of a device are not errors of the gateway: they are
//! [`Refusal`]s, counted and logged, and mapped to a TLS alert, an HTTP status or an MQTT
//! reason code at the edge.

use std::net::SocketAddr;

/// An error starting or running the gateway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration text is not valid TOML for [`crate::Config`].
    #[error("gateway config: {0}")]
    ConfigSyntax(#[from] toml::de::Error),
    /// The configuration parsed but a value is not usable.
    #[error("gateway config: listener {listener:?}: {problem}")]
    ConfigValue {
        /// The listener (or `limits`).
        listener: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A listener needs a TLS server config and none was given.
    #[error("listener {listener:?} has no TLS server config")]
    NoTlsConfig {
        /// The listener.
        listener: String,
    },
    /// Binding a listening socket failed.
    #[error("bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The policy engine could not be built.
    #[error("policy: {0}")]
    Policy(#[from] smtrust_policy::Error),
}

/// Who caused a refusal or a closed session (pingora's `ErrorSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The device (downstream).
    Device,
    /// The platform (upstream).
    Platform,
    /// The gateway itself (limits, events).
    Gateway,
}

/// Why a connection was refused or closed. `as_str` is the `reason` label in metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// `max_connections` reached.
    TooManyConnections,
    /// The source address exceeded its handshake rate.
    HandshakeRate,
    /// The TLS handshake did not finish in time.
    HandshakeTimeout,
    /// The TLS handshake failed (unknown CA, expired, bad signature...).
    Handshake(String),
    /// A client certificate is required and none was sent.
    NoClientCertificate,
    /// The certificate carries no usable device ID.
    NoDeviceId,
    /// The certificate is revoked.
    Revoked,
    /// The certificate is suspended (certificateHold).
    Suspended,
    /// Policy refused the connection.
    PolicyConnect,
    /// MQTT CONNECT client id differs from the certificate's device ID.
    ClientIdMismatch,
    /// The peer sent bytes that are not the protocol.
    Malformed,
    /// A packet above `max_packet_size`.
    Oversized,
    /// Policy refused a PUBLISH on MQTT 3.1.1 (which has no reason codes), or QoS 0 in disconnect mode.
    PolicyPublish,
    /// The upstream could not be reached.
    Upstream(String),
    /// No traffic within the idle timeout.
    Idle,
    /// Closed because the device's attestation was downgraded.
    AttestationDowngraded,
    /// Closed because the gateway shut down.
    Shutdown,
}

impl Refusal {
    /// A stable label for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::TooManyConnections => "max_connections",
            Self::HandshakeRate => "handshake_rate",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::Handshake(_) => "handshake",
            Self::NoClientCertificate => "no_client_certificate",
            Self::NoDeviceId => "no_device_id",
            Self::Revoked => "revoked",
            Self::Suspended => "suspended",
            Self::PolicyConnect => "policy_connect",
            Self::ClientIdMismatch => "client_id_mismatch",
            Self::Malformed => "malformed",
            Self::Oversized => "oversized",
            Self::PolicyPublish => "policy_publish",
            Self::Upstream(_) => "upstream",
            Self::Idle => "idle",
            Self::AttestationDowngraded => "attestation_downgraded",
            Self::Shutdown => "shutdown",
        }
    }

    /// Who caused it.
    pub fn source(&self) -> Source {
        match self {
            Self::TooManyConnections
            | Self::HandshakeRate
            | Self::Idle
            | Self::AttestationDowngraded
            | Self::Shutdown => Source::Gateway,
            Self::Upstream(_) => Source::Platform,
            _ => Source::Device,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Handshake(why) | Self::Upstream(why) => write!(f, "{}: {why}", self.as_str()),
            _ => f.write_str(self.as_str()),
        }
    }
}
