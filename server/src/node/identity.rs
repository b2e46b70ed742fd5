//! The service's own keys and certificates: each key is made once in the keystore (found again by its label),
//! and its certificate is issued by the node's CA when missing or close to its end ([`due`]). The TLS and
//! passport certificates are also renewed while the node runs ([`follow_renewal`]) and swapped into the API and
//! the gateway without a restart.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use der::Decode;
use smtrust_ca::{CaService, Profile, ProfileKind, SqlStore};
use smtrust_keystore::{KeyId, KeyPurpose, Keystore};
use x509_cert::Certificate;

/// Re-issue a service certificate when less than this (or a third of its lifetime, if shorter) is left of it.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);
/// How often the running node looks at its TLS certificate.
const RENEW_CHECK: Duration = Duration::from_secs(3_600);

/// One of the service's own keys with its certificate chain (leaf first, up to the root).
#[derive(Debug, Clone)]
pub(crate) struct ServiceKey {
    pub(crate) id: KeyId,
    pub(crate) chain: Vec<Vec<u8>>,
}

/// What a service key is for: its keystore purpose and label, and the certificate it needs.
pub(crate) struct Role {
    pub(crate) label: &'static str,
    pub(crate) purpose: KeyPurpose,
    pub(crate) subject: &'static str,
    pub(crate) san_uri: Option<&'static str>,
    pub(crate) server_auth: bool,
}

/// The API and gateway TLS server key (TLS 1.3 ID).
pub(crate) const TLS: Role = Role {
    label: "service tls",
    purpose: KeyPurpose::TlsServer,
    subject: "CN=smtrust service,O=smtrust",
    san_uri: None,
    server_auth: true,
};
/// The attestation-result signer (SAN URI the verifiers look for).
pub(crate) const ATTESTATION: Role = Role {
    label: "attestation results",
    purpose: KeyPurpose::AttestationResult,
    subject: "CN=smtrust attestation,O=smtrust",
    san_uri: Some(smtrust_attest::ATTESTATION_SERVICE_URI),
    server_auth: false,
};
/// The gateway's device-passport signer.
pub(crate) const PASSPORT: Role = Role {
    label: "gateway passports",
    purpose: KeyPurpose::PassportSigning,
    subject: "CN=smtrust gateway passports,O=smtrust",
    san_uri: Some("urn:smtrust:service:gateway"),
    // passport verifiers check the signer's chain as a server's (serverAuth)
    server_auth: true,
};

/// Find or make the key for `role`, and make sure it has a current certificate from `label`'s CA.
pub(crate) async fn ensure(
    ks: &Keystore,
    ca: &CaService<SqlStore>,
    label: &str,
    chain_above: &[Vec<u8>],
    role: &Role,
    dns_names: &[String],
    now: SystemTime,
) -> anyhow::Result<ServiceKey> {
    Ok(
        ensure_issued(ks, ca, label, chain_above, role, dns_names, now, false)
            .await?
            .0,
    )
}

/// [`ensure`], and whether a new certificate was issued; `force`: issue one even if the current one is fresh.
#[allow(clippy::too_many_arguments)] // ensure's arguments and the force flag
async fn ensure_issued(
    ks: &Keystore,
    ca: &CaService<SqlStore>,
    label: &str,
    chain_above: &[Vec<u8>],
    role: &Role,
    dns_names: &[String],
    now: SystemTime,
    force: bool,
) -> anyhow::Result<(ServiceKey, bool)> {
    let existing = ks
        .list()?
        .into_iter()
        .find(|k| k.label == role.label && k.purpose == role.purpose);
    let id = match existing {
        Some(k) => k.id,
        None => ks
            .generate(role.purpose, role.label)
            .with_context(|| format!("generate the {} key", role.label))?,
    };
    let current = ks
        .certificate(&id)?
        .filter(|der| !force && fresh(der, now, dns_names));
    let issued = current.is_none();
    let leaf = match current {
        Some(der) => der,
        None => {
            let mut profile = Profile::builtin(role.label, ProfileKind::ServerTls);
            if !role.server_auth {
                profile.extended_key_usage.clear();
            }
            profile.san_uri = role.san_uri.map(|u| vec![u.to_owned()]).unwrap_or_default();
            let issued = ca
                .issue_for_key(
                    label,
                    &profile,
                    &ks.public_key(&id)?,
                    role.subject,
                    dns_names,
                )
                .await
                .with_context(|| format!("issue the {} certificate", role.label))?;
            ks.set_certificate(&id, &issued.der)?;
            issued.der
        }
    };
    let mut chain = vec![leaf];
    chain.extend(chain_above.iter().cloned());
    Ok((ServiceKey { id, chain }, issued))
}

/// Whether a certificate valid from `not_before` to `not_after` should be renewed at `now`: less than
/// [`RENEW_BEFORE`] or a third of its lifetime is left, whichever is shorter (so a short-lived certificate is
/// not renewed on every check).
fn due(not_before: SystemTime, not_after: SystemTime, now: SystemTime) -> bool {
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    let margin = RENEW_BEFORE.min(lifetime / 3);
    not_after
        .duration_since(now)
        .map_or(true, |left| left <= margin)
}

/// What renewal needs from the node.
#[derive(Clone)]
pub(crate) struct Renewal {
    pub(crate) keystore: Arc<Keystore>,
    pub(crate) ca: Arc<smtrust_ca::home::OpenedCa>,
    pub(crate) label: String,
    pub(crate) chain_above: Vec<Vec<u8>>,
    pub(crate) dns_names: Vec<String>,
    /// The certificate the API and the gateway present; replaced on renewal.
    pub(crate) cert: Arc<smtrust_gateway::ServerCert>,
    /// The gateway, whose passport signer is replaced when its certificate is renewed.
    pub(crate) gateway: Option<smtrust_gateway::Gateway>,
}

impl Renewal {
    /// Renew the TLS certificate if it is [`due`] (or `force`) and present the new one from the next handshake on
    /// (API and gateway share `cert`). The new certificate's serial (hex), if one was issued.
    pub(crate) async fn tls(&self, now: SystemTime, force: bool) -> anyhow::Result<Option<String>> {
        let Some(key) = self.renew(&TLS, &self.dns_names, now, force).await? else {
            return Ok(None);
        };
        let chain = crate::node::trust_certs(&key.chain);
        self.cert
            .replace(tls_signer(&self.keystore, &key)?, chain)?;
        Ok(Some(serial_hex(&key)))
    }

    /// Renew the passport certificate if it is [`due`] (or `force`) and hand the gateway the new signer
    /// (connections accepted from then on use it). Nothing without a gateway.
    pub(crate) async fn passport(
        &self,
        now: SystemTime,
        force: bool,
    ) -> anyhow::Result<Option<String>> {
        let Some(gateway) = &self.gateway else {
            return Ok(None);
        };
        let Some(key) = self.renew(&PASSPORT, &[], now, force).await? else {
            return Ok(None);
        };
        let chain = crate::node::trust_certs(&key.chain);
        gateway.replace_passport_signer(smtrust_gateway::PassportSigner::new(
            cert_signer(&self.keystore, &key)?,
            &chain,
        ));
        Ok(Some(serial_hex(&key)))
    }

    async fn renew(
        &self,
        role: &Role,
        dns_names: &[String],
        now: SystemTime,
        force: bool,
    ) -> anyhow::Result<Option<ServiceKey>> {
        let (key, issued) = ensure_issued(
            &self.keystore,
            &self.ca.service,
            &self.label,
            &self.chain_above,
            role,
            dns_names,
            now,
            force,
        )
        .await?;
        Ok(issued.then_some(key))
    }
}

/// Every [`RENEW_CHECK`], renew the service TLS and passport certificates that are [`due`] and use the new ones at
/// once ([`Renewal::tls`], [`Renewal::passport`]). A failure (sealed keystore, CA error) is logged and retried at
/// the next check; the current certificate stays.
#[allow(clippy::disallowed_methods)] // the node reads the clock
pub(crate) fn follow_renewal(r: Renewal) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RENEW_CHECK);
        tick.tick().await; // the first tick is now: the certificates were just checked at start
        loop {
            tick.tick().await;
            let now = SystemTime::now();
            log_renewal(TLS.label, r.tls(now, false).await);
            log_renewal(PASSPORT.label, r.passport(now, false).await);
        }
    })
}

fn serial_hex(key: &ServiceKey) -> String {
    key.chain
        .first()
        .and_then(|d| Certificate::from_der(d).ok())
        .map(|c| hex::encode(c.tbs_certificate().serial_number().as_bytes()))
        .unwrap_or_default()
}

fn log_renewal(role: &str, outcome: anyhow::Result<Option<String>>) {
    match outcome {
        Ok(Some(serial)) => tracing::info!(role, serial, "service certificate renewed and in use"),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(role, error = %format!("{e:#}"), "service certificate renewal failed; retrying in an hour")
        }
    }
}

/// Whether `der` is not yet [`due`] for renewal and names every one of `dns_names`.
fn fresh(der: &[u8], now: SystemTime, dns_names: &[String]) -> bool {
    let Ok(cert) = Certificate::from_der(der) else {
        return false;
    };
    let validity = cert.tbs_certificate().validity();
    let time_ok = !due(
        validity.not_before.to_system_time(),
        validity.not_after.to_system_time(),
        now,
    );
    let names: Vec<String> = cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::SubjectAltName>()
        .ok()
        .flatten()
        .map(|(_, san)| {
            san.0
                .iter()
                .filter_map(|n| match n {
                    x509_cert::ext::pkix::name::GeneralName::DnsName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    time_ok && dns_names.iter().all(|d| names.contains(d))
}

/// The keystore signer of a service key, for TLS.
pub(crate) fn tls_signer(
    ks: &Keystore,
    key: &ServiceKey,
) -> anyhow::Result<Arc<dyn smtrust_crypto::sm2::Sm2Signer<smtrust_crypto::sm2::Tls13Id>>> {
    Ok(Arc::new(ks.signer_tls(&key.id)?))
}

/// The keystore signer of a service key, with the certificate ID.
pub(crate) fn cert_signer(
    ks: &Keystore,
    key: &ServiceKey,
) -> anyhow::Result<Arc<dyn smtrust_crypto::sm2::Sm2Signer<smtrust_crypto::sm2::CertId>>> {
    Ok(Arc::new(ks.signer_cert(&key.id)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn renewal_is_due_in_the_last_30_days_or_last_third() {
        let start = SystemTime::UNIX_EPOCH + 1000 * DAY;
        // 90 days (the service profile): the last 30 days.
        let end = start + 90 * DAY;
        assert!(!due(start, end, start + 59 * DAY));
        assert!(due(start, end, start + 61 * DAY));
        // A year: still the last 30 days, not the last third.
        let end = start + 365 * DAY;
        assert!(!due(start, end, start + 200 * DAY));
        assert!(due(start, end, start + 336 * DAY));
        // Six days: the last two, not every check.
        let end = start + 6 * DAY;
        assert!(!due(start, end, start + 3 * DAY));
        assert!(due(start, end, start + 5 * DAY));
        // Expired, or not yet valid in a broken way: renew.
        assert!(due(start, end, end + DAY));
        assert!(due(end, start, start));
    }
}
