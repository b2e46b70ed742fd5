//! Certificate profiles, read from TOML: what each kind of certificate contains.
//!
//! ```toml
//! [profile.device]
//! kind = "device-identity"
//! validity_days = 365
//! key_usage = ["digital-signature"]
//! extended_key_usage = ["client-auth"]
//! san_uri = ["urn:smtrust:device:{device_id}"]
//! san_dns = []
//! allowed_csr_extensions = ["subject-alt-name", "key-usage", "extended-key-usage"]
//! accept_empty_id_csr = false
//! ```
//! Omitted fields take the defaults of the `kind`. The profile decides every extension: requested extensions
//! are only checked against `allowed_csr_extensions` (a CSR asking for anything else is refused), never copied,
//! except that a `server-tls` profile takes the dNSNames of a requested subjectAltName.

use std::collections::BTreeMap;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280;
use serde::Deserialize;
use x509_cert::ext::pkix::KeyUsages;

use crate::{ConfigError, Error};

/// What a profile is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ProfileKind {
    /// A device identity (TLS client): device ID in subject serialNumber, CN and SAN URI.
    DeviceIdentity,
    /// A TLS server.
    ServerTls,
    /// The delegated OCSP signer of an issuing CA (id-kp-OCSPSigning, id-pkix-ocsp-nocheck).
    OcspSigner,
    /// An administrator's TLS client certificate.
    AdminClient,
    /// A short-lived bootstrap identity given at manufacture, used only to authenticate EST enrollment.
    EstBootstrap,
}

impl ProfileKind {
    /// Whether the subject is built from the device ID (else it is the CSR's subject).
    pub fn needs_device_id(self) -> bool {
        matches!(self, Self::DeviceIdentity | Self::EstBootstrap)
    }
}

/// A key usage bit (RFC 5280 §4.2.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyUsageBit {
    /// digitalSignature
    DigitalSignature,
    /// nonRepudiation (contentCommitment)
    NonRepudiation,
    /// keyEncipherment (TLCP encryption certificates)
    KeyEncipherment,
    /// dataEncipherment
    DataEncipherment,
    /// keyAgreement
    KeyAgreement,
}

impl KeyUsageBit {
    fn flag(self) -> KeyUsages {
        match self {
            Self::DigitalSignature => KeyUsages::DigitalSignature,
            Self::NonRepudiation => KeyUsages::NonRepudiation,
            Self::KeyEncipherment => KeyUsages::KeyEncipherment,
            Self::DataEncipherment => KeyUsages::DataEncipherment,
            Self::KeyAgreement => KeyUsages::KeyAgreement,
        }
    }
}

/// An extended key usage (RFC 5280 §4.2.1.12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ExtKeyUsage {
    /// id-kp-serverAuth
    ServerAuth,
    /// id-kp-clientAuth
    ClientAuth,
    /// id-kp-OCSPSigning
    OcspSigning,
}

impl ExtKeyUsage {
    /// The OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::ServerAuth => rfc5280::ID_KP_SERVER_AUTH,
            Self::ClientAuth => rfc5280::ID_KP_CLIENT_AUTH,
            Self::OcspSigning => rfc5280::ID_KP_OCSP_SIGNING,
        }
    }
}

/// An extension a CSR may request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CsrExtension {
    /// subjectAltName
    SubjectAltName,
    /// keyUsage
    KeyUsage,
    /// extendedKeyUsage
    ExtendedKeyUsage,
}

impl CsrExtension {
    /// The OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::SubjectAltName => rfc5280::ID_CE_SUBJECT_ALT_NAME,
            Self::KeyUsage => rfc5280::ID_CE_KEY_USAGE,
            Self::ExtendedKeyUsage => rfc5280::ID_CE_EXT_KEY_USAGE,
        }
    }
}

/// One profile, with every default filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Profile {
    /// Its name (the TOML table key).
    pub name: String,
    /// What it is for.
    pub kind: ProfileKind,
    /// Lifetime in seconds (clamped to the issuer's notAfter).
    pub validity_secs: u64,
    /// keyUsage bits (critical).
    pub key_usage: Vec<KeyUsageBit>,
    /// extendedKeyUsage (non-critical); empty means no EKU extension.
    pub extended_key_usage: Vec<ExtKeyUsage>,
    /// SAN URI templates; `{device_id}` is replaced.
    pub san_uri: Vec<String>,
    /// SAN DNS templates; `{device_id}` is replaced.
    pub san_dns: Vec<String>,
    /// Extensions a CSR may request (anything else is refused).
    pub allowed_csr_extensions: Vec<CsrExtension>,
    /// Accept CSRs signed with the empty SM2 ID (OpenSSL without `-sigopt distid:`). Off by default.
    pub accept_empty_id_csr: bool,
}

/// Profile defaults, as named constants (style §11).
pub mod defaults {
    /// Device identity lifetime.
    pub const DEVICE_VALIDITY_DAYS: u64 = 365;
    /// Server TLS lifetime.
    pub const SERVER_VALIDITY_DAYS: u64 = 90;
    /// OCSP signer lifetime (short: it carries ocsp-nocheck, so it cannot itself be revoked).
    pub const OCSP_SIGNER_VALIDITY_DAYS: u64 = 30;
    /// Admin client lifetime.
    pub const ADMIN_VALIDITY_DAYS: u64 = 90;
    /// EST bootstrap lifetime.
    pub const BOOTSTRAP_VALIDITY_DAYS: u64 = 30;
}

const DAY: u64 = 86_400;

impl Profile {
    /// The built-in profile for `kind`.
    pub fn builtin(name: &str, kind: ProfileKind) -> Self {
        use CsrExtension as C;
        use ExtKeyUsage as E;
        use KeyUsageBit as K;
        let (days, eku, san_uri, allowed) = match kind {
            ProfileKind::DeviceIdentity => (
                defaults::DEVICE_VALIDITY_DAYS,
                vec![E::ClientAuth],
                vec!["urn:smtrust:device:{device_id}".to_owned()],
                vec![C::SubjectAltName, C::KeyUsage, C::ExtendedKeyUsage],
            ),
            ProfileKind::ServerTls => (
                defaults::SERVER_VALIDITY_DAYS,
                vec![E::ServerAuth],
                vec![],
                vec![C::SubjectAltName, C::KeyUsage, C::ExtendedKeyUsage],
            ),
            ProfileKind::OcspSigner => (
                defaults::OCSP_SIGNER_VALIDITY_DAYS,
                vec![E::OcspSigning],
                vec![],
                vec![],
            ),
            ProfileKind::AdminClient => (
                defaults::ADMIN_VALIDITY_DAYS,
                vec![E::ClientAuth],
                vec![],
                vec![C::KeyUsage, C::ExtendedKeyUsage],
            ),
            ProfileKind::EstBootstrap => (
                defaults::BOOTSTRAP_VALIDITY_DAYS,
                vec![E::ClientAuth],
                vec!["urn:smtrust:device:{device_id}".to_owned()],
                vec![C::SubjectAltName],
            ),
        };
        Self {
            name: name.to_owned(),
            kind,
            validity_secs: days * DAY,
            key_usage: vec![K::DigitalSignature],
            extended_key_usage: eku,
            san_uri,
            san_dns: vec![],
            allowed_csr_extensions: allowed,
            accept_empty_id_csr: false,
        }
    }

    /// The keyUsage flags.
    pub(crate) fn key_usage_flags(&self) -> der::flagset::FlagSet<KeyUsages> {
        self.key_usage
            .iter()
            .fold(der::flagset::FlagSet::default(), |acc, b| acc | b.flag())
    }

    /// Whether a CSR may request the extension `oid`.
    pub fn allows_csr_extension(&self, oid: &ObjectIdentifier) -> bool {
        self.allowed_csr_extensions.iter().any(|e| e.oid() == *oid)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    kind: ProfileKind,
    validity_days: Option<u64>,
    validity_secs: Option<u64>,
    key_usage: Option<Vec<KeyUsageBit>>,
    extended_key_usage: Option<Vec<ExtKeyUsage>>,
    san_uri: Option<Vec<String>>,
    san_dns: Option<Vec<String>>,
    allowed_csr_extensions: Option<Vec<CsrExtension>>,
    accept_empty_id_csr: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfiles {
    #[serde(default)]
    profile: BTreeMap<String, RawProfile>,
}

/// A set of named profiles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profiles {
    by_name: BTreeMap<String, Profile>,
}

impl Default for Profiles {
    /// `device`, `server`, `ocsp`, `admin` and `est-bootstrap` with their built-in settings.
    fn default() -> Self {
        let mut by_name = BTreeMap::new();
        for (n, k) in [
            ("device", ProfileKind::DeviceIdentity),
            ("server", ProfileKind::ServerTls),
            ("ocsp", ProfileKind::OcspSigner),
            ("admin", ProfileKind::AdminClient),
            ("est-bootstrap", ProfileKind::EstBootstrap),
        ] {
            by_name.insert(n.to_owned(), Profile::builtin(n, k));
        }
        Self { by_name }
    }
}

impl Profiles {
    /// Parse `[profile.<name>]` tables; the built-in profiles remain unless a table of the same name replaces one.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let raw: RawProfiles =
            toml::from_str(text).map_err(|e| ConfigError::Toml(e.message().to_owned()))?;
        let mut out = Self::default();
        for (name, r) in raw.profile {
            let mut p = Profile::builtin(&name, r.kind);
            match (r.validity_days, r.validity_secs) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::Invalid {
                        field: format!("profile.{name}.validity_secs"),
                        why: "give validity_days or validity_secs, not both",
                    }
                    .into());
                }
                (Some(d), None) => p.validity_secs = d.saturating_mul(DAY),
                (None, Some(s)) => p.validity_secs = s,
                (None, None) => {}
            }
            if p.validity_secs == 0 || p.validity_secs > 50 * 365 * DAY {
                return Err(ConfigError::Invalid {
                    field: format!("profile.{name}.validity"),
                    why: "must be between 1 second and 50 years",
                }
                .into());
            }
            if let Some(v) = r.key_usage {
                p.key_usage = v;
            }
            if let Some(v) = r.extended_key_usage {
                p.extended_key_usage = v;
            }
            if let Some(v) = r.san_uri {
                p.san_uri = v;
            }
            if let Some(v) = r.san_dns {
                p.san_dns = v;
            }
            if let Some(v) = r.allowed_csr_extensions {
                p.allowed_csr_extensions = v;
            }
            if let Some(v) = r.accept_empty_id_csr {
                p.accept_empty_id_csr = v;
            }
            if p.key_usage.is_empty() {
                return Err(ConfigError::Invalid {
                    field: format!("profile.{name}.key_usage"),
                    why: "at least one key usage is required",
                }
                .into());
            }
            out.by_name.insert(name, p);
        }
        Ok(out)
    }

    /// The profile called `name`.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.by_name.get(name)
    }

    /// Insert or replace a profile.
    pub fn insert(&mut self, p: Profile) {
        self.by_name.insert(p.name.clone(), p);
    }

    /// All profiles by name.
    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.by_name.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults() {
        let p = Profiles::from_toml(
            r#"
            [profile.device]
            kind = "device-identity"
            validity_days = 10
            accept_empty_id_csr = true
            [profile.line7]
            kind = "server-tls"
            san_dns = ["{device_id}.devices.example"]
            "#,
        )
        .unwrap();
        let d = p.get("device").unwrap();
        assert_eq!(d.validity_secs, 10 * DAY);
        assert!(d.accept_empty_id_csr);
        assert_eq!(d.extended_key_usage, vec![ExtKeyUsage::ClientAuth]);
        assert_eq!(p.get("line7").unwrap().kind, ProfileKind::ServerTls);
        assert!(p.get("ocsp").is_some());
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(Profiles::from_toml("[profile.x]\nkind='device-identity'\ncolour=1").is_err());
        assert!(
            Profiles::from_toml("[profile.x]\nkind='device-identity'\nvalidity_days=0").is_err()
        );
        assert!(Profiles::from_toml("[profile.x]\nkind='nope'").is_err());
    }
}
