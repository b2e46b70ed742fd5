//! The service's own keys and certificates: each key is made once in the keystore (found again by its label),
//! and its certificate is issued by the node's CA when missing or within 30 days of its end.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use der::Decode;
use smtrust_ca::{CaService, Profile, ProfileKind, SqlStore};
use smtrust_keystore::{KeyId, KeyPurpose, Keystore};
use x509_cert::Certificate;

/// Re-issue a service certificate when less than this is left of it.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

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
        .filter(|der| fresh(der, now, dns_names));
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
    Ok(ServiceKey { id, chain })
}

/// Whether `der` is valid for another [`RENEW_BEFORE`] and names every one of `dns_names`.
fn fresh(der: &[u8], now: SystemTime, dns_names: &[String]) -> bool {
    let Ok(cert) = Certificate::from_der(der) else {
        return false;
    };
    let not_after = cert.tbs_certificate().validity().not_after.to_system_time();
    let time_ok = not_after
        .duration_since(now)
        .is_ok_and(|left| left > RENEW_BEFORE);
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
