//! The embedded platform behind the gateway for `smtrust demo`: an MQTT broker (rumqttd, plain TCP on
//! loopback: the gateway terminates TLS 1.3-SM in front of it) and a small HTTP app that trusts a request only
//! with a device passport it verified offline against the CA chain. A real deployment points the gateway's
//! upstreams at its own broker and applications instead.

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

/// The platform's HTTP app on a free loopback port: `GET /api/v1/status` answers 200 with the passport's
/// claims when the passport verifies against `chain_pem` and names the device the gateway says; else 401.
pub(crate) async fn start_app(chain_pem: &std::path::Path) -> anyhow::Result<SocketAddr> {
    use std::sync::Arc;
    let pem = std::fs::read(chain_pem)
        .with_context(|| format!("read the CA chain {}", chain_pem.display()))?;
    let certs: Vec<rustls::pki_types::CertificateDer<'static>> = smtrust_crypto::pem::blocks(&pem)?
        .into_iter()
        .filter(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| rustls::pki_types::CertificateDer::from(der.to_vec()))
        .collect();
    let verifier = Arc::new(smtrust_tls::Sm2ChainVerifier::new(
        smtrust_tls::TrustRoots::new(&certs)?,
        Arc::new(smtrust_tls::RevokedSet::new()),
        smtrust_tls::UnknownStatus::Refuse,
    ));
    let app = axum::Router::new()
        .route("/api/v1/status", axum::routing::get(status))
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "platform app stopped");
        }
    });
    Ok(addr)
}

async fn status(
    axum::extract::State(verifier): axum::extract::State<
        std::sync::Arc<smtrust_tls::Sm2ChainVerifier>,
    >,
    headers: axum::http::HeaderMap,
) -> (axum::http::StatusCode, String) {
    use axum::http::StatusCode;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(device), Some(token)) = (
        header(smtrust_gateway::DEVICE_ID_HEADER),
        header(smtrust_gateway::PASSPORT_HEADER),
    ) else {
        return (StatusCode::UNAUTHORIZED, "no device passport".into());
    };
    match smtrust_gateway::passport::verify(token, &verifier, rustls::pki_types::UnixTime::now()) {
        Ok(p) if p.sub == device => (
            StatusCode::OK,
            serde_json::json!({
                "device": p.sub, "serial": p.serial, "attestation": p.attestation,
                "policy_version": p.policy_version,
            })
            .to_string(),
        ),
        Ok(_) => (
            StatusCode::UNAUTHORIZED,
            "passport names another device".into(),
        ),
        Err(e) => (StatusCode::UNAUTHORIZED, format!("passport refused: {e}")),
    }
}
