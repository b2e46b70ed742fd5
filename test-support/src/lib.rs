#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
mod error;
mod net;
pub mod peers;
mod sigcheck;
mod tls13;
mod tool;
mod verify;

pub use error::Error;
pub use net::{free_port, temp_dir};
pub use peers::{
    Gmssl, Mosquitto, MqttBroker, NotFound, Openssl, Peer, Postgres, PostgresUrl, PyGmssl, Python,
    Tongsuo, cache_dir, is_ci, require,
};
pub use sigcheck::{
    GMT_DEFAULT_ID, SM2_WITH_SM3, SignedParts, SignerKey, Verdict, sm2sigcheck,
    sm2sigcheck_with_id, split_signed,
};
pub use tempfile::TempDir;
pub use tls13::{
    ClientConfig, GmsslClientCert, SM_TLS13_FLAGS, ServerConfig, TongsuoServer, gmssl_tls13_client,
    tongsuo_client,
};
pub use tool::{DEFAULT_TIMEOUT, Output, Tool};
pub use verify::verify_link;
