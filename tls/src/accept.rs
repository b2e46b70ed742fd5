//! One listener for SM and international clients: read the ClientHello with rustls's `Acceptor`, then pick the
//! RFC 8998 config or a standard one per connection.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{Accepted, AcceptedAlert, ClientHello};
use rustls::{ServerConfig, ServerConnection};

use crate::error::{Error, Refusal};
use crate::kx::CURVE_SM2;
use crate::sign::SM2SIG_SM3;
use crate::tls13::is_sm_suite;

/// Which stack a connection was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stack {
    /// RFC 8998 TLS 1.3 with SM2/SM3/SM4.
    Sm,
    /// Standard TLS (rustls's ring provider).
    International,
}

/// Does this ClientHello offer RFC 8998 as a whole: an SM suite, curveSM2 and sm2sig_sm3?
pub fn offers_sm(hello: &ClientHello<'_>) -> bool {
    hello.cipher_suites().iter().any(|s| is_sm_suite(*s))
        && hello.named_groups().is_some_and(|g| g.contains(&CURVE_SM2))
        && hello.signature_schemes().contains(&SM2SIG_SM3)
}

/// The two configs of a dual listener. Without an international config, SM is required and other clients are
/// refused ([`Refusal::SmRequired`]) with a handshake_failure alert.
#[derive(Debug, Clone)]
pub struct DualConfig {
    sm: Arc<ServerConfig>,
    international: Option<Arc<ServerConfig>>,
}

/// What [`DualConfig::accept`] gives back when it refuses: the refusal and the alert to write to the client.
#[derive(Debug)]
pub struct Refused {
    /// Why.
    pub error: Error,
    /// Write this to the socket (`write_all`) before closing, when there is one.
    pub alert: Option<AcceptedAlert>,
}

impl DualConfig {
    /// SM config plus, optionally, an international one.
    pub fn new(sm: Arc<ServerConfig>, international: Option<Arc<ServerConfig>>) -> Self {
        Self { sm, international }
    }

    /// Choose per ClientHello: SM when the client offers RFC 8998 as a whole, else international if configured.
    pub fn choose(&self, hello: &ClientHello<'_>) -> Result<(Stack, Arc<ServerConfig>), Refusal> {
        if offers_sm(hello) {
            return Ok((Stack::Sm, Arc::clone(&self.sm)));
        }
        match &self.international {
            Some(c) => Ok((Stack::International, Arc::clone(c))),
            None => Err(Refusal::SmRequired),
        }
    }

    /// Turn an accepted ClientHello into a connection with the chosen config.
    pub fn accept(&self, accepted: Accepted) -> Result<(Stack, ServerConnection), Box<Refused>> {
        match self.choose(&accepted.client_hello()) {
            Ok((stack, cfg)) => {
                accepted
                    .into_connection(cfg)
                    .map(|c| (stack, c))
                    .map_err(|(e, alert)| {
                        Box::new(Refused {
                            error: e.into(),
                            alert: Some(alert),
                        })
                    })
            }
            Err(refusal) => {
                tracing::debug!(%refusal, "ClientHello refused");
                // The SM-only config has nothing in common with this client: rustls writes the right alert.
                let alert = accepted
                    .into_connection(Arc::clone(&self.sm))
                    .err()
                    .map(|(_, a)| a);
                Err(Box::new(Refused {
                    error: refusal.into(),
                    alert,
                }))
            }
        }
    }
}

/// A standard TLS 1.3 / 1.2 server config on rustls's ring provider (ECDSA P-256 and friends) for the
/// international side of a dual listener. This key is not SM and not in the keystore's SM scope.
pub fn international_server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, Error> {
    Ok(
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?,
    )
}
