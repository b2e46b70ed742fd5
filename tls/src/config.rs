//! Config builders: servers with or without client authentication, clients with or without a certificate. The
//! private key is reached only through an [`Sm2Signer<Tls13Id>`].

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::{ProducesTickets, ServerSessionMemoryCache};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::version::TLS13;
use rustls::{ClientConfig, ServerConfig, SupportedCipherSuite};
use smtrust_crypto::sm2::{Sm2Signer, Tls13Id};
use smtrust_crypto::sm4::{self, AeadMode, Sm4Key};

use crate::error::{ConfigError, Error};
use crate::kx::CURVE_SM2;
use crate::sign::{SM2SIG_SM3, Sm2TlsKey};
use crate::tls13::{TLS_SM4_CCM_SM3, TLS_SM4_GCM_SM3, is_sm_suite};

/// Both RFC 8998 suites, GCM first.
pub const SM_SUITES: [SupportedCipherSuite; 2] = [TLS_SM4_GCM_SM3, TLS_SM4_CCM_SM3];
use crate::verify::{Sm2ChainVerifier, SmClientVerifier, SmServerVerifier};

/// An end-entity certificate chain and the signer of its key.
#[derive(Debug, Clone)]
pub struct Credentials {
    key: Arc<CertifiedKey>,
}

impl Credentials {
    /// `chain` starts with the end-entity certificate; GmSSL peers accept the leaf alone best (peers.md).
    /// Fails if the signer's key is not the certificate's.
    pub fn new(
        signer: Arc<dyn Sm2Signer<Tls13Id>>,
        chain: Vec<CertificateDer<'static>>,
    ) -> Result<Self, Error> {
        if chain.is_empty() {
            return Err(ConfigError::EmptyChain.into());
        }
        let key = Arc::new(Sm2TlsKey::new(signer)?);
        let ck = CertifiedKey::new(chain, key);
        ck.keys_match().map_err(|_| ConfigError::KeyMismatch)?;
        Ok(Self { key: Arc::new(ck) })
    }
}

/// Whether and how a server asks for client certificates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientAuth {
    /// Do not ask.
    None,
    /// Ask, and refuse clients without a valid certificate.
    Required(Sm2ChainVerifier),
    /// Ask, accept clients that send none (their certificate, if sent, must still verify).
    Optional(Sm2ChainVerifier),
}

/// How a server resumes sessions (RFC 8446 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resumption {
    /// Stateless tickets, encrypted with SM4-GCM under keys rotated every `lifetime_secs` (tickets live at most
    /// twice that).
    Tickets {
        /// Rotation period in seconds.
        lifetime_secs: u32,
    },
    /// Stateful: tickets are ids into an in-memory cache of `capacity` sessions.
    Stateful {
        /// Sessions kept.
        capacity: usize,
    },
    /// No resumption; no NewSessionTicket is sent (what GmSSL clients need, peers.md).
    Off,
}

impl Default for Resumption {
    fn default() -> Self {
        Resumption::Tickets {
            lifetime_secs: 6 * 3600,
        }
    }
}

/// The RFC 8998 provider (also [`crate::provider`]) limited to `suites` (in preference order); checked for the
/// suite/group/scheme coupling.
fn sm_provider(suites: &[SupportedCipherSuite]) -> Result<Arc<CryptoProvider>, Error> {
    let mut p = crate::provider();
    p.cipher_suites = suites.to_vec();
    check_sm_coupling(&p)?;
    Ok(Arc::new(p))
}

/// RFC 8998: "TLS_SM4_GCM_SM3 and TLS_SM4_CCM_SM3 ... MUST be used with curveSM2 and sm2sig_sm3". Refuse a
/// provider where an SM suite could be negotiated with another group or signature scheme.
pub fn check_sm_coupling(p: &CryptoProvider) -> Result<(), ConfigError> {
    let has_sm = p.cipher_suites.iter().any(|s| is_sm_suite(s.suite()));
    if !has_sm {
        return Err(ConfigError::SmCouplingBroken {
            found: "no SM suite".into(),
        });
    }
    if let Some(s) = p.cipher_suites.iter().find(|s| !is_sm_suite(s.suite())) {
        return Err(ConfigError::SmCouplingBroken {
            found: format!("suite {:?}", s.suite()),
        });
    }
    if let Some(g) = p.kx_groups.iter().find(|g| g.name() != CURVE_SM2) {
        return Err(ConfigError::SmCouplingBroken {
            found: format!("group {:?}", g.name()),
        });
    }
    if p.kx_groups.is_empty() {
        return Err(ConfigError::SmCouplingBroken {
            found: "no key exchange group".into(),
        });
    }
    if let Some((s, _)) = p
        .signature_verification_algorithms
        .mapping
        .iter()
        .find(|(s, _)| *s != SM2SIG_SM3)
    {
        return Err(ConfigError::SmCouplingBroken {
            found: format!("signature scheme {s:?}"),
        });
    }
    Ok(())
}

/// A TLS 1.3-SM server with both suites (GCM preferred): our credentials, the client-auth policy, the
/// resumption mode.
pub fn server_config(
    creds: &Credentials,
    client_auth: ClientAuth,
    resumption: Resumption,
) -> Result<ServerConfig, Error> {
    server_config_with_suites(creds, client_auth, resumption, &SM_SUITES)
}

/// [`server_config`] limited to `suites` (a subset of [`SM_SUITES`], in preference order).
pub fn server_config_with_suites(
    creds: &Credentials,
    client_auth: ClientAuth,
    resumption: Resumption,
    suites: &[SupportedCipherSuite],
) -> Result<ServerConfig, Error> {
    let builder = ServerConfig::builder_with_provider(sm_provider(suites)?)
        .with_protocol_versions(&[&TLS13])?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Required(chain) => {
            builder.with_client_cert_verifier(Arc::new(SmClientVerifier::new(chain, true)))
        }
        ClientAuth::Optional(chain) => {
            builder.with_client_cert_verifier(Arc::new(SmClientVerifier::new(chain, false)))
        }
    };
    let mut cfg =
        builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(Arc::clone(&creds.key))));
    match resumption {
        Resumption::Tickets { lifetime_secs } => {
            cfg.ticketer = Arc::new(rustls::ticketer::TicketRotator::new(
                lifetime_secs,
                Sm4Ticketer::generate,
            )?);
            cfg.send_tls13_tickets = 2;
        }
        Resumption::Stateful { capacity } => {
            cfg.session_storage = ServerSessionMemoryCache::new(capacity);
            cfg.send_tls13_tickets = 2;
        }
        Resumption::Off => {
            cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            cfg.send_tls13_tickets = 0;
        }
    }
    Ok(cfg)
}

/// A TLS 1.3-SM client with both suites (GCM preferred) that verifies servers with `server` and presents
/// `creds` when asked.
pub fn client_config(
    server: Sm2ChainVerifier,
    creds: Option<&Credentials>,
) -> Result<ClientConfig, Error> {
    client_config_with_suites(server, creds, &SM_SUITES)
}

/// [`client_config`] limited to `suites` (a subset of [`SM_SUITES`], in preference order).
pub fn client_config_with_suites(
    server: Sm2ChainVerifier,
    creds: Option<&Credentials>,
    suites: &[SupportedCipherSuite],
) -> Result<ClientConfig, Error> {
    let builder = ClientConfig::builder_with_provider(sm_provider(suites)?)
        .with_protocol_versions(&[&TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SmServerVerifier::new(server)));
    Ok(match creds {
        Some(c) => {
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(Arc::clone(&c.key))))
        }
        None => builder.with_no_client_auth(),
    })
}

/// Session tickets sealed with SM4-GCM: `nonce (12) || ciphertext || tag (16)`, a fresh random nonce each.
struct Sm4Ticketer {
    key: Sm4Key,
    lifetime: u32,
}

impl std::fmt::Debug for Sm4Ticketer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sm4Ticketer").finish_non_exhaustive()
    }
}

/// Binds tickets to this format, so a ticket from another ticketer fails authentication.
const TICKET_AAD: &[u8] = b"smtrust-tls ticket v1";

impl Sm4Ticketer {
    fn generate() -> Result<Box<dyn ProducesTickets>, rustls::crypto::GetRandomFailed> {
        let key = Sm4Key::generate().map_err(|_| rustls::crypto::GetRandomFailed)?;
        Ok(Box::new(Self {
            key,
            lifetime: 6 * 3600,
        }))
    }
}

impl ProducesTickets for Sm4Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let nonce = smtrust_crypto::rng::bytes::<{ sm4::NONCE_LEN }>().ok()?;
        let ct = sm4::seal(AeadMode::Gcm, &self.key, &nonce, TICKET_AAD, plain).ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let (nonce, ct) = cipher.split_at_checked(sm4::NONCE_LEN)?;
        sm4::open(AeadMode::Gcm, &self.key, nonce, TICKET_AAD, ct).ok()
    }
}
