//! The embedded platform behind the gateway for `smtrust demo` and `smtrust serve --embedded-platform`:
//! an MQTT broker (rumqttd, plain TCP on loopback: the gateway terminates TLS 1.3-SM in front of it).
//! A real deployment points the gateway's upstream at its own broker instead.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::Context;
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// Start an MQTT 3.1.1 broker on a free loopback port in a background thread; returns its address once it
/// accepts connections. The broker lives until the process exits (rumqttd has no stop).
pub(crate) fn start_broker(max_connections: usize) -> anyhow::Result<SocketAddr> {
    let addr = free_loopback_addr()?;
    let server = ServerSettings {
        name: "platform-v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections: ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: 256 * 1024,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: max_connections.max(16),
            max_outgoing_packet_count: 1_000,
            max_segment_size: 1 << 20,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("platform".to_owned(), server)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    };
    std::thread::Builder::new()
        .name("platform-broker".into())
        .spawn(move || {
            let mut broker = Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .context("start the embedded MQTT broker thread")?;
    wait_listening(addr, Duration::from_secs(10))?;
    Ok(addr)
}

/// A loopback address with a port the OS just handed out (released again for the caller to bind).
pub(crate) fn free_loopback_addr() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context("find a free loopback port")?;
    Ok(l.local_addr()?)
}

fn wait_listening(addr: SocketAddr, limit: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if start.elapsed() > limit {
            anyhow::bail!("the embedded MQTT broker did not listen on {addr} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
