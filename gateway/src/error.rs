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
    /// The TLS configs could not be built (key and certificate differ, bad anchors...).
    #[error("tls: {0}")]
    Tls(#[from] smtrust_tls::Error),
    /// An `http` listener needs a passport signer and none was given.
    #[error("listener {listener:?} is in http mode but the gateway has no passport signer")]
    NoPassportSigner {
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
    /// The TLS layer refused the peer (unknown CA, revoked, expired, no SM suite...).
    Tls(smtrust_tls::Refusal),
    /// The TLS handshake failed for another reason (peer alert, protocol error, I/O).
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
    /// A policy reload withdrew a live MQTT subscription or the right to stay connected.
    PolicyReload,
    /// The upstream could not be reached.
    Upstream(String),
    /// No traffic within the idle timeout.
    Idle,
    /// Closed because the device's attestation was downgraded.
    AttestationDowngraded,
    /// The device's latest attestation result is contraindicated (failed): refused at admission.
    AttestationContraindicated,
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
            Self::Tls(r) => tls_label(r),
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
            Self::PolicyReload => "policy_reload",
            Self::Upstream(_) => "upstream",
            Self::Idle => "idle",
            Self::AttestationDowngraded => "attestation_downgraded",
            Self::AttestationContraindicated => "attestation_contraindicated",
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
            | Self::PolicyReload
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
            Self::Tls(r) => write!(f, "{}: {r}", self.as_str()),
            _ => f.write_str(self.as_str()),
        }
    }
}

/// The metrics label of a TLS refusal: revoked and suspended share the labels of admission.
fn tls_label(r: &smtrust_tls::Refusal) -> &'static str {
    use smtrust_tls::Refusal as R;
    match r {
        R::UnknownCa => "unknown_ca",
        R::Revoked { .. } => "revoked",
        R::Suspended { .. } => "suspended",
        R::RevocationUnknown { .. } => "revocation_unknown",
        R::Expired { .. } => "expired",
        R::NotYetValid => "not_yet_valid",
        R::WrongKeyUsage(_) => "wrong_key_usage",
        R::WrongDistinguishingId(_) => "wrong_distinguishing_id",
        R::BadSignature => "bad_signature",
        R::SmRequired => "sm_required",
        _ => "bad_certificate",
    }
}
