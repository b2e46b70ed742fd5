//! The gateway's TLS 1.3-SM listener configs, built by `smtrust_tls` from a signer (a keystore
//! handle in production), its certificate chain and the device trust roots. Client certificates
//! are verified by [`Sm2ChainVerifier`] with the gateway's [`RevocationSet`] as the revocation
//! hook, so a revoked or suspended device fails the handshake itself.

use crate::Error;
use crate::event::RevocationSet;
use crate::reload::ServerCert;
use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;
use smtrust_crypto::sm2::{Sm2Signer, Tls13Id};
use smtrust_tls::{
    ClientAuth, DualConfig, Resumption, Sm2ChainVerifier, TrustRoots, UnknownStatus,
};
use std::sync::Arc;

/// What the gateway needs to terminate TLS 1.3-SM.
pub struct SmTls {
    cert: Cert,
    roots: TrustRoots,
    resumption: Resumption,
    international: Option<Arc<ServerConfig>>,
}

impl std::fmt::Debug for SmTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmTls")
            .field("resumption", &self.resumption)
            .field("international", &self.international.is_some())
            .finish_non_exhaustive()
    }
}

/// The server certificate: given as keys (made replaceable at build) or already shared.
enum Cert {
    Keys(Arc<dyn Sm2Signer<Tls13Id>>, Vec<CertificateDer<'static>>),
    Shared(Arc<ServerCert>),
}

impl SmTls {
    /// The server's signer and chain (end entity first) and the CAs device certificates must
    /// chain to. Resumption defaults to SM4-GCM tickets; no international clients.
    pub fn new(
        signer: Arc<dyn Sm2Signer<Tls13Id>>,
        chain: Vec<CertificateDer<'static>>,
        roots: TrustRoots,
    ) -> Self {
        Self {
            cert: Cert::Keys(signer, chain),
            roots,
            resumption: Resumption::default(),
            international: None,
        }
    }

    /// Like [`SmTls::new`] with a certificate other servers may share: replacing it
    /// ([`ServerCert::replace`]) renews them all from their next handshake on.
    pub fn with_certificate(cert: Arc<ServerCert>, roots: TrustRoots) -> Self {
        Self {
            cert: Cert::Shared(cert),
            roots,
            resumption: Resumption::default(),
            international: None,
        }
    }

    /// How sessions resume.
    pub fn resumption(mut self, resumption: Resumption) -> Self {
        self.resumption = resumption;
        self
    }

    /// Also accept clients that do not offer RFC 8998 on the same ports, with this standard
    /// config (chosen per ClientHello, `smtrust_tls::DualConfig`). Its client verifier decides
    /// who they are; the gateway admits them only with a device identity in their certificate.
    pub fn international(mut self, config: Arc<ServerConfig>) -> Self {
        self.international = Some(config);
        self
    }

    /// Builds the per-listener configs with `revocations` as the verifier's revocation hook.
    pub(crate) fn build(&self, revocations: Arc<RevocationSet>) -> Result<ListenerTls, Error> {
        let cert = match &self.cert {
            Cert::Keys(signer, chain) => {
                Arc::new(ServerCert::new(Arc::clone(signer), chain.clone())?)
            }
            Cert::Shared(cert) => Arc::clone(cert),
        };
        let creds = cert.credentials()?;
        // Fail closed: the set never answers Unknown, but a future hook might.
        let verifier =
            Sm2ChainVerifier::new(self.roots.clone(), revocations, UnknownStatus::Refuse);
        let mut required = smtrust_tls::server_config(
            &creds,
            ClientAuth::Required(verifier.clone()),
            self.resumption,
        )?;
        let mut optional =
            smtrust_tls::server_config(&creds, ClientAuth::Optional(verifier), self.resumption)?;
        // Every handshake asks `cert`, so a replaced certificate needs no new config.
        required.cert_resolver = cert.clone();
        optional.cert_resolver = cert.clone();
        let (required, optional) = (Arc::new(required), Arc::new(optional));
        // ALPN only on `http` listeners: rustls answers an ALPN mismatch with a fatal alert, which
        // would refuse MQTT clients that offer `mqtt`.
        let with_alpn = |c: &Arc<ServerConfig>| {
            let mut c = ServerConfig::clone(c);
            c.alpn_protocols = crate::http::ALPN.iter().map(|p| p.to_vec()).collect();
            DualConfig::new(Arc::new(c), self.international.clone())
        };
        Ok(ListenerTls {
            http_required: with_alpn(&required),
            http_optional: with_alpn(&optional),
            required: DualConfig::new(Arc::clone(&required), self.international.clone()),
            optional: DualConfig::new(Arc::clone(&optional), self.international.clone()),
            required_sm: required,
            optional_sm: optional,
            cert,
        })
    }
}

/// The built configs: one requiring client certificates, one asking for them; each also with
/// ALPN for `http` listeners.
pub(crate) struct ListenerTls {
    pub(crate) http_required: DualConfig,
    pub(crate) http_optional: DualConfig,
    pub(crate) required: DualConfig,
    pub(crate) optional: DualConfig,
    pub(crate) required_sm: Arc<ServerConfig>,
    pub(crate) optional_sm: Arc<ServerConfig>,
    pub(crate) cert: Arc<ServerCert>,
}

impl ListenerTls {
    /// The dual config and the SM config (for refusal alerts) of a listener; `http` listeners
    /// get the configs with ALPN.
    pub(crate) fn for_listener(
        &self,
        client_cert_required: bool,
        http: bool,
    ) -> (&DualConfig, &Arc<ServerConfig>) {
        match (client_cert_required, http) {
            (true, false) => (&self.required, &self.required_sm),
            (false, false) => (&self.optional, &self.optional_sm),
            (true, true) => (&self.http_required, &self.required_sm),
            (false, true) => (&self.http_optional, &self.optional_sm),
        }
    }
}
