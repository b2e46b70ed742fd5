//! The revocation feed: `smtrust_ca` [`RevocationEvent`]s (the in-process broadcast of
//! `CaService::subscribe`, or PostgreSQL NOTIFY through `RevocationListener`) turned into
//! [`GatewayEvent`]s.
//!
//! A CA event names its issuer by label; revocation is keyed by the issuer's DN, so the feed
//! holds a label → DN map ([`IssuerNames`]) built from the issuing CAs' certificates.

use crate::event::{CertStatus, GatewayEvent};
use crate::gateway::Gateway;
use crate::identity::CertKey;
use der::{Decode, Encode};
use smtrust_ca::{RevocationEvent, RevocationKind};
use std::collections::HashMap;
use tokio::sync::broadcast;

/// Issuing CA labels and their subject DNs (DER).
#[derive(Debug, Clone, Default)]
pub struct IssuerNames {
    by_label: HashMap<String, Vec<u8>>,
}

impl IssuerNames {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an issuing CA by label and certificate (DER); false when the certificate does not
    /// parse.
    pub fn insert(&mut self, label: &str, ca_cert_der: &[u8]) -> bool {
        let Ok(cert) = x509_cert::Certificate::from_der(ca_cert_der) else {
            return false;
        };
        let Ok(dn) = cert.tbs_certificate().subject().to_der() else {
            return false;
        };
        self.by_label.insert(label.to_owned(), dn);
        true
    }

    /// The map of the service's issuers (`smtrust_ca::Issuer`s).
    pub fn from_issuers<'a>(issuers: impl IntoIterator<Item = &'a smtrust_ca::Issuer>) -> Self {
        let mut names = Self::new();
        for i in issuers {
            names.insert(i.label(), i.certificate_der());
        }
        names
    }
}

/// The gateway event for a CA event; `None` when the issuer label is unknown.
pub fn gateway_event(event: &RevocationEvent, issuers: &IssuerNames) -> Option<GatewayEvent> {
    let issuer = issuers.by_label.get(&event.issuer)?;
    let status = match event.kind {
        RevocationKind::Revoked { .. } => CertStatus::Revoked,
        RevocationKind::Suspended => CertStatus::Suspended,
        RevocationKind::Resumed => CertStatus::Good,
        // A kind added later: fail closed.
        _ => CertStatus::Revoked,
    };
    Some(GatewayEvent::CertStatus {
        cert: CertKey::new(issuer.clone(), event.serial.as_bytes()),
        status,
    })
}

impl Gateway {
    /// Applies one CA event; returns how many sessions it closed. Unknown issuers are logged.
    pub fn handle_ca_event(&self, event: &RevocationEvent, issuers: &IssuerNames) -> usize {
        match gateway_event(event, issuers) {
            Some(e) => self.handle_event(e),
            None => {
                tracing::warn!(issuer = %event.issuer, serial = %event.serial, "revocation event for an unknown issuer ignored");
                0
            }
        }
    }

    /// Follows `CaService::subscribe()` until the service is dropped. A lagging receiver logs
    /// how many events it missed: reload the revocation set from the CA store then.
    pub fn follow_ca(
        &self,
        mut events: broadcast::Receiver<RevocationEvent>,
        issuers: IssuerNames,
    ) -> tokio::task::JoinHandle<()> {
        let gateway = self.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(e) => {
                        gateway.handle_ca_event(&e, &issuers);
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "CA revocation feed lagged");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }

    /// Follows PostgreSQL NOTIFY (other CA nodes) until the listener fails.
    pub fn follow_ca_notify(
        &self,
        mut listener: smtrust_ca::RevocationListener,
        issuers: IssuerNames,
    ) -> tokio::task::JoinHandle<()> {
        let gateway = self.clone();
        tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(e) => {
                        gateway.handle_ca_event(&e, &issuers);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "revocation NOTIFY feed ended");
                        break;
                    }
                }
            }
        })
    }
}
