//! Counters rendered in the Prometheus text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Gateway counters. Cheap atomics on the hot path; refusals keyed by reason label.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Metrics {
    /// TCP connections accepted.
    pub connections_total: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicI64,
    /// Handshakes completed.
    pub handshakes_total: AtomicU64,
    /// Bytes from devices to the platform.
    pub bytes_upstream: AtomicU64,
    /// Bytes from the platform to devices.
    pub bytes_downstream: AtomicU64,
    /// MQTT PUBLISH packets denied by policy (both directions).
    pub mqtt_publish_denied: AtomicU64,
    /// MQTT SUBSCRIBE filters denied by policy.
    pub mqtt_subscribe_denied: AtomicU64,
    /// Sessions closed by a revocation, suspension or attestation event.
    pub sessions_closed_by_event: AtomicU64,
    refusals: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Counts one refusal.
    pub fn refused(&self, reason: &'static str) {
        *self
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    /// Refusals counted for `reason`.
    pub fn refusals(&self, reason: &str) -> u64 {
        self.refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(reason)
            .copied()
            .unwrap_or_default()
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let c = |out: &mut String, name: &str, help: &str, kind: &str, v: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
        c(
            &mut out,
            "smtrust_gateway_connections_total",
            "TCP connections accepted.",
            "counter",
            get(&self.connections_total),
        );
        c(
            &mut out,
            "smtrust_gateway_connections_open",
            "Connections open now.",
            "gauge",
            self.connections_open.load(Ordering::Relaxed).to_string(),
        );
        c(
            &mut out,
            "smtrust_gateway_handshakes_total",
            "TLS handshakes completed.",
            "counter",
            get(&self.handshakes_total),
        );
        let _ = writeln!(
            out,
            "# HELP smtrust_gateway_bytes_total Bytes forwarded.\n# TYPE smtrust_gateway_bytes_total counter"
        );
        let _ = writeln!(
            out,
            "smtrust_gateway_bytes_total{{direction=\"upstream\"}} {}",
            get(&self.bytes_upstream)
        );
        let _ = writeln!(
            out,
            "smtrust_gateway_bytes_total{{direction=\"downstream\"}} {}",
            get(&self.bytes_downstream)
        );
        c(
            &mut out,
            "smtrust_gateway_mqtt_publish_denied_total",
            "PUBLISH packets denied by policy.",
            "counter",
            get(&self.mqtt_publish_denied),
        );
        c(
            &mut out,
            "smtrust_gateway_mqtt_subscribe_denied_total",
            "SUBSCRIBE filters denied by policy.",
            "counter",
            get(&self.mqtt_subscribe_denied),
        );
        c(
            &mut out,
            "smtrust_gateway_sessions_closed_by_event_total",
            "Sessions closed by revocation, suspension or attestation events.",
            "counter",
            get(&self.sessions_closed_by_event),
        );
        let _ = writeln!(
            out,
            "# HELP smtrust_gateway_refusals_total Connections refused or closed, by reason.\n# TYPE smtrust_gateway_refusals_total counter"
        );
        for (reason, n) in self
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "smtrust_gateway_refusals_total{{reason=\"{reason}\"}} {n}"
            );
        }
        out
    }
}
