//! The server certificate as a replaceable value: rustls asks [`ServerCert`] for it on every
//! handshake, so a renewed certificate is presented from the next handshake on while established
//! sessions keep the keys they agreed on. One [`ServerCert`] may serve several `ServerConfig`s
//! (the gateway's listeners and the node's API), so one swap renews them all.

use crate::Error;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;
use smtrust_crypto::sm2::{Sm2Signer, Tls13Id};
use smtrust_tls::{Credentials, Sm2TlsKey};
use std::sync::{Arc, RwLock};

/// A TLS 1.3-SM server certificate chain and its signer, swappable at run time.
pub struct ServerCert {
    current: RwLock<Current>,
}

#[derive(Clone)]
struct Current {
    key: Arc<CertifiedKey>,
    signer: Arc<dyn Sm2Signer<Tls13Id>>,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert")
            .field("chain_len", &self.load().key.cert.len())
            .finish_non_exhaustive()
    }
}

impl ServerCert {
    /// `chain` starts with the end-entity certificate. Fails if it is empty or the signer's key
    /// is not the certificate's.
    pub fn new(
        signer: Arc<dyn Sm2Signer<Tls13Id>>,
        chain: Vec<CertificateDer<'static>>,
    ) -> Result<Self, Error> {
        Ok(Self {
            current: RwLock::new(Self::check(signer, chain)?),
        })
    }

    /// Presents `chain` (signed for by `signer`) from the next handshake on. Checked first as in
    /// [`ServerCert::new`]: on error the current certificate stays.
    pub fn replace(
        &self,
        signer: Arc<dyn Sm2Signer<Tls13Id>>,
        chain: Vec<CertificateDer<'static>>,
    ) -> Result<(), Error> {
        let next = Self::check(signer, chain)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }

    /// The chain new handshakes present, end entity first.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.load().key.cert.clone()
    }

    /// Credentials for building a `ServerConfig` (its resolver is then replaced by this value).
    pub(crate) fn credentials(&self) -> Result<Credentials, Error> {
        let c = self.load();
        Ok(Credentials::new(c.signer, c.key.cert.clone())?)
    }

    fn load(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn check(
        signer: Arc<dyn Sm2Signer<Tls13Id>>,
        chain: Vec<CertificateDer<'static>>,
    ) -> Result<Current, Error> {
        // Credentials::new refuses an empty chain and a key that is not the certificate's.
        Credentials::new(Arc::clone(&signer), chain.clone())?;
        let key = Arc::new(CertifiedKey::new(
            chain,
            Arc::new(Sm2TlsKey::new(Arc::clone(&signer))?),
        ));
        Ok(Current { key, signer })
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.load().key)
    }
}
