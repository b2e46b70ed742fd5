//! smtrust-tls integration tests: one binary, submodules per concern.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::panic,
    clippy::type_complexity,
    clippy::new_without_default
)]
#![allow(
    clippy::disallowed_methods,
    reason = "test certificates are dated from the wall clock"
)]

#[path = "tls/pair.rs"]
mod pair;
#[path = "tls/pki.rs"]
mod pki;

#[path = "tls/dual.rs"]
mod dual;
#[path = "tls/gmssl.rs"]
mod gmssl;
#[path = "tls/gmssl_server.rs"]
mod gmssl_server;
#[path = "tls/handshake.rs"]
mod handshake;
#[path = "tls/record.rs"]
mod record;
#[path = "tls/refusals.rs"]
mod refusals;
#[path = "tls/tongsuo.rs"]
mod tongsuo;

use std::sync::Arc;

use pki::{Authority, Leaf, Spec};
use smtrust_tls::{
    ClientAuth, Resumption, RevokedSet, Sm2ChainVerifier, TrustRoots, UnknownStatus,
};

/// A root, a server certificate for `localhost`, a device certificate, and an empty revocation set.
pub struct World {
    pub root: Authority,
    pub server: Leaf,
    pub device: Leaf,
    pub revoked: Arc<RevokedSet>,
}

pub const DEVICE_ID: &str = "ctw-0000001234";

impl World {
    pub fn new() -> Self {
        let root = Authority::root("smtrust test root");
        let server = root.issue(&Spec::server("localhost"));
        let device = root.issue(&Spec::device(DEVICE_ID));
        Self {
            root,
            server,
            device,
            revoked: Arc::new(RevokedSet::new()),
        }
    }

    pub fn verifier(&self) -> Sm2ChainVerifier {
        verifier_for(&self.root, &self.revoked)
    }

    pub fn server_config(&self, auth: bool, resumption: Resumption) -> Arc<rustls::ServerConfig> {
        let auth = if auth {
            ClientAuth::Required(self.verifier())
        } else {
            ClientAuth::None
        };
        Arc::new(
            smtrust_tls::server_config(&self.server.credentials(&[]), auth, resumption)
                .expect("server config"),
        )
    }

    pub fn client_config(&self, with_cert: bool) -> Arc<rustls::ClientConfig> {
        let creds = with_cert.then(|| self.device.credentials(&[]));
        Arc::new(
            smtrust_tls::client_config(self.verifier(), creds.as_ref()).expect("client config"),
        )
    }
}

pub fn verifier_for(root: &Authority, revoked: &Arc<RevokedSet>) -> Sm2ChainVerifier {
    let roots = TrustRoots::new(&[root.cert()]).expect("roots");
    Sm2ChainVerifier::new(roots, revoked.clone(), UnknownStatus::Refuse)
}
