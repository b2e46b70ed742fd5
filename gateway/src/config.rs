//! Gateway configuration: TOML → [`RawConfig`] (serde, unknown fields refused) → [`Config`]
//! (typed, validated). Defaults are named constants.

use crate::Error;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// Default `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default handshakes per second allowed from one source IP.
pub const DEFAULT_HANDSHAKES_PER_SOURCE: u32 = 20;
/// Default time a TLS handshake may take.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time an admitted connection may stay silent in both directions.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default largest MQTT packet (fixed header included).
pub const DEFAULT_MAX_PACKET: usize = 256 * 1024;

/// What a listener forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Mode {
    /// Bytes both ways after admission.
    Tcp,
    /// MQTT 3.1.1 / 5.0 with per-packet policy.
    Mqtt,
    /// HTTP/1.1 with per-request policy, identity headers and a signed device passport.
    Http,
}

/// What to do with a denied QoS 0 PUBLISH on MQTT 5.0 (QoS 1/2 get a 0x87 ack; 3.1.1 closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DeniedQos0 {
    /// Drop the packet and count it.
    #[default]
    Drop,
    /// Send DISCONNECT 0x87 and close.
    Disconnect,
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Listeners.
    #[serde(default)]
    pub listener: Vec<RawListener>,
    /// Limits shared by all listeners.
    #[serde(default)]
    pub limits: RawLimits,
    /// The optional admin endpoint (`/metrics`), plain HTTP: bind it to loopback or a management
    /// network.
    pub admin: Option<RawAdmin>,
}

/// `[admin]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// `host:port` serving `GET /metrics`.
    pub bind: SocketAddr,
}

/// One `[[listener]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    /// Name used in policy (`Listener::"<name>"`), logs and metrics.
    pub name: String,
    /// `host:port` to listen on.
    pub bind: SocketAddr,
    /// `tcp`, `mqtt` or `http`.
    pub mode: Mode,
    /// `host:port` of the platform side (plain TCP).
    pub upstream: SocketAddr,
    /// Require a client certificate (default true).
    pub client_cert_required: Option<bool>,
    /// MQTT 5.0, denied QoS 0 PUBLISH: `drop` (default) or `disconnect`.
    pub denied_qos0: Option<DeniedQos0>,
}

/// `[limits]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Concurrent connections across all listeners.
    pub max_connections: Option<usize>,
    /// Handshakes per second per source IP (burst the same).
    pub handshakes_per_source: Option<u32>,
    /// Milliseconds a handshake may take.
    pub handshake_timeout_ms: Option<u64>,
    /// Seconds of silence before an admitted connection is closed.
    pub idle_timeout_s: Option<u64>,
    /// Largest MQTT packet in bytes.
    pub max_packet_size: Option<usize>,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Listeners, in file order.
    pub listeners: Vec<ListenerConfig>,
    /// Limits.
    pub limits: Limits,
    /// Where `/metrics` is served, if anywhere.
    pub admin: Option<SocketAddr>,
}

/// A validated listener.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerConfig {
    /// Name (policy resource `Listener::"<name>"`).
    pub name: String,
    /// Listening address.
    pub bind: SocketAddr,
    /// Forwarding mode.
    pub mode: Mode,
    /// Upstream address.
    pub upstream: SocketAddr,
    /// Whether a client certificate is required.
    pub client_cert_required: bool,
    /// MQTT 5.0 QoS 0 deny behaviour.
    pub denied_qos0: DeniedQos0,
}

/// Validated limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Concurrent connections across all listeners.
    pub max_connections: usize,
    /// Handshakes per second per source IP.
    pub handshakes_per_source: u32,
    /// Handshake deadline.
    pub handshake_timeout: Duration,
    /// Idle deadline.
    pub idle_timeout: Duration,
    /// Largest MQTT packet.
    pub max_packet_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            handshakes_per_source: DEFAULT_HANDSHAKES_PER_SOURCE,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_packet_size: DEFAULT_MAX_PACKET,
        }
    }
}

impl Config {
    /// The listener named `name`.
    pub fn listener(&self, name: &str) -> Option<&ListenerConfig> {
        self.listeners.iter().find(|l| l.name == name)
    }

    /// Parses and validates a TOML text.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let raw: RawConfig = toml::from_str(text)?;
        Self::from_raw(raw)
    }

    /// Applies defaults and validates.
    pub fn from_raw(raw: RawConfig) -> Result<Self, Error> {
        let bad = |listener: &str, problem| Error::ConfigValue {
            listener: listener.to_owned(),
            problem,
        };
        let mut listeners = Vec::with_capacity(raw.listener.len());
        for l in raw.listener {
            if l.name.is_empty() {
                return Err(bad("", "name is empty"));
            }
            if listeners.iter().any(|x: &ListenerConfig| x.name == l.name) {
                return Err(bad(&l.name, "duplicate listener name"));
            }
            // Port 0 asks the OS for a free port, so two of those do not collide.
            if l.bind.port() != 0 && listeners.iter().any(|x| x.bind == l.bind) {
                return Err(bad(
                    &l.name,
                    "bind address already used by another listener",
                ));
            }
            listeners.push(ListenerConfig {
                client_cert_required: l.client_cert_required.unwrap_or(true),
                denied_qos0: l.denied_qos0.unwrap_or_default(),
                name: l.name,
                bind: l.bind,
                mode: l.mode,
                upstream: l.upstream,
            });
        }
        let d = Limits::default();
        let r = raw.limits;
        let limits = Limits {
            max_connections: r.max_connections.unwrap_or(d.max_connections),
            handshakes_per_source: r.handshakes_per_source.unwrap_or(d.handshakes_per_source),
            handshake_timeout: r
                .handshake_timeout_ms
                .map_or(d.handshake_timeout, Duration::from_millis),
            idle_timeout: r.idle_timeout_s.map_or(d.idle_timeout, Duration::from_secs),
            max_packet_size: r.max_packet_size.unwrap_or(d.max_packet_size),
        };
        if limits.max_connections == 0 {
            return Err(bad("limits", "max_connections must be > 0"));
        }
        if limits.handshakes_per_source == 0 {
            return Err(bad("limits", "handshakes_per_source must be > 0"));
        }
        // 268,435,455 is the largest MQTT remaining length (four length bytes).
        if limits.max_packet_size < 16 || limits.max_packet_size > 268_435_460 {
            return Err(bad("limits", "max_packet_size must be in 16..=268435460"));
        }
        Ok(Self {
            listeners,
            limits,
            admin: raw.admin.map(|a| a.bind),
        })
    }
}
