//! Device identities: the device ID and the namespace an issuing CA may issue in.
//!
//! The device ID is carried in the subject `serialNumber` (PrintableString, X.520) and CN, and in a SAN URI
//! `urn:smtrust:device:<id>` (design.md). It is restricted to `[A-Za-z0-9._-]`, 1–64 characters, so it is a
//! valid PrintableString and URN NSS without escaping.
//!
//! URN syntax (pkilint reports `pkix.invalid_uri_syntax` for the SAN): `urn:smtrust:device:<id>` is a valid
//! RFC 3986 URI (scheme `urn`, path only, no authority) and matches RFC 8141 §2 `"urn:" NID ":" NSS`: the NID
//! `smtrust` is 2–32 letters/digits/hyphens starting and ending alphanumeric, and the NSS uses only
//! `unreserved` characters (the device-ID charset above), so nothing needs percent-encoding. The finding comes
//! from a validator that requires a host, which no URN has; it is not a syntax error and is left as is. What
//! RFC 8141 does not give us is registration: `smtrust` is not an IANA-registered NID. Deployments that need a
//! registered form could use RFC 9039's `urn:dev:org:<PEN>-{device_id}` in a profile's `san_uri`, but the
//! TLS crate's `DeviceIdentity` reads the `urn:smtrust:device:` form, so that change needs it to follow.
//!
//! Name constraints: RFC 5280 §4.2.1.10 applies URI constraints to the *host* part of a URI, and a URN has no
//! host (OpenSSL reports "unsupported name syntax"; webpki has no URI constraints). A `nameConstraints`
//! extension cannot therefore express `urn:smtrust:device:<prefix>`, so the namespace is a prefix in the
//! issuing CA's configuration that the CA enforces at issuance ([`Namespace`]).

use core::fmt;

use crate::RequestError;

/// Longest device ID.
pub const MAX_DEVICE_ID: usize = 64;
/// The SAN URI prefix.
pub const DEVICE_URN_PREFIX: &str = "urn:smtrust:device:";

/// A validated device ID.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

impl DeviceId {
    /// Validate a device ID.
    pub fn new(id: &str) -> Result<Self, RequestError> {
        let shown: String = id.chars().take(MAX_DEVICE_ID + 8).collect();
        let bad = |why| RequestError::InvalidDeviceId {
            id: shown.clone(),
            why,
        };
        if id.is_empty() {
            return Err(bad("empty"));
        }
        if id.len() > MAX_DEVICE_ID {
            return Err(bad("longer than 64 characters"));
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(bad("only A-Z a-z 0-9 . _ - are allowed"));
        }
        Ok(Self(id.to_owned()))
    }

    /// The ID text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `urn:smtrust:device:<id>`.
    pub fn urn(&self) -> String {
        format!("{DEVICE_URN_PREFIX}{}", self.0)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.0)
    }
}

/// The device-ID namespace of an issuing CA: a literal prefix (empty means any ID).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Namespace {
    prefix: String,
}

impl Namespace {
    /// A namespace with the given prefix (validated with the device-ID character rules).
    pub fn new(prefix: &str) -> Result<Self, RequestError> {
        if !prefix.is_empty() {
            DeviceId::new(prefix)?;
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether `id` lies in this namespace.
    pub fn contains(&self, id: &DeviceId) -> bool {
        id.as_str().starts_with(&self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_id_rules() {
        assert!(DeviceId::new("ctw-0000001234").is_ok());
        assert!(DeviceId::new("").is_err());
        assert!(DeviceId::new("a b").is_err());
        assert!(DeviceId::new("a/b").is_err());
        assert!(DeviceId::new(&"x".repeat(65)).is_err());
        assert_eq!(
            DeviceId::new("ctw-1").unwrap().urn(),
            "urn:smtrust:device:ctw-1"
        );
    }

    #[test]
    fn namespace_prefix() {
        let ns = Namespace::new("ctw-").unwrap();
        assert!(ns.contains(&DeviceId::new("ctw-1").unwrap()));
        assert!(!ns.contains(&DeviceId::new("abc-1").unwrap()));
        assert!(
            Namespace::new("")
                .unwrap()
                .contains(&DeviceId::new("x").unwrap())
        );
    }
}
