//! Counters rendered in the Prometheus text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets; `+Inf` is implied.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A Prometheus histogram of durations over [`LATENCY_BUCKETS`], lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket (non-cumulative); the last slot is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0u64;
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Ordering::Relaxed);
            let le = LATENCY_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), f64::to_string);
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {}", self.count());
    }
}

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
    /// HTTP requests answered (forwarded or refused).
    pub http_requests: AtomicU64,
    /// HTTP requests refused by policy (403).
    pub http_denied: AtomicU64,
    /// Time from the first byte of the ClientHello to a finished handshake.
    pub handshake_seconds: Histogram,
    /// HTTP request latency through the gateway (policy, passport, platform round trip).
    pub http_request_seconds: Histogram,
    refusals: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Counts one finished handshake and its duration.
    pub fn handshake_done(&self, took: Duration) {
        self.handshakes_total.fetch_add(1, Ordering::Relaxed);
        self.handshake_seconds.observe(took);
    }

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
        c(
            &mut out,
            "smtrust_gateway_http_requests_total",
            "HTTP requests answered.",
            "counter",
            get(&self.http_requests),
        );
        c(
            &mut out,
            "smtrust_gateway_http_denied_total",
            "HTTP requests refused by policy (403).",
            "counter",
            get(&self.http_denied),
        );
        self.handshake_seconds.render(
            &mut out,
            "smtrust_gateway_handshake_seconds",
            "TLS handshake duration.",
        );
        self.http_request_seconds.render(
            &mut out,
            "smtrust_gateway_http_request_seconds",
            "HTTP request latency through the gateway.",
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
