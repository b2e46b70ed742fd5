//! The Mosquitto broker that scripts/peers/start-mosquitto.sh starts.

use std::env;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::{NotFound, Peer, which};
use crate::Tool;

/// A running broker named by `SMTRUST_TEST_MQTT` (`host:port`), which must accept a TCP connection.
#[derive(Debug, Clone, Copy)]
pub struct Mosquitto;

/// A reachable MQTT broker, with the Mosquitto clients when they are installed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MqttBroker {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `mosquitto_pub`, when in `PATH`.
    pub publisher: Option<Tool>,
    /// `mosquitto_sub`, when in `PATH`.
    pub subscriber: Option<Tool>,
}

impl Peer for Mosquitto {
    type Found = MqttBroker;
    const NAME: &'static str = "Mosquitto broker";
    const SETUP: &'static str = "scripts/peers/start-mosquitto.sh";

    fn locate(&self) -> Result<MqttBroker, NotFound> {
        let mut why = NotFound::default();
        let Some(value) = env::var("SMTRUST_TEST_MQTT").ok().filter(|v| !v.is_empty()) else {
            why.tried("$SMTRUST_TEST_MQTT unset");
            return Err(why);
        };
        let Some(addr) = value.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
            why.tried(format!("$SMTRUST_TEST_MQTT={value} is not host:port"));
            return Err(why);
        };
        if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            why.tried(format!("$SMTRUST_TEST_MQTT={value}: connect failed: {e}"));
            return Err(why);
        }
        let client = |name: &str| which(name).map(Tool::new);
        Ok(MqttBroker {
            addr,
            publisher: client("mosquitto_pub"),
            subscriber: client("mosquitto_sub"),
        })
    }
}
