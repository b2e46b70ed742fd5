//! The device ID: one string that the certificate's SAN URI, the evidence and the result all carry.

use core::fmt;

use crate::Error;

/// Prefix of the SAN URI naming a device: `urn:smtrust:device:<id>` (design: Identities).
pub const SAN_URI_PREFIX: &str = "urn:smtrust:device:";

/// A device ID: 1 to 64 characters of `[A-Za-z0-9._-]`, e.g. `ctw-0000001234`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct DeviceId(String);

impl DeviceId {
    /// Longest accepted ID.
    pub const MAX_LEN: usize = 64;

    /// Check and wrap an ID.
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= Self::MAX_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(id))
        } else {
            Err(Error::InvalidDeviceId { len: id.len() })
        }
    }

    /// The ID's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SAN URI a certificate for this device carries.
    pub fn san_uri(&self) -> String {
        format!("{SAN_URI_PREFIX}{}", self.0)
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

impl<'de> serde::Deserialize<'de> for DeviceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DeviceId::new(s).map_err(serde::de::Error::custom)
    }
}

/// Seconds since the Unix epoch, as claims and rows carry time.
pub(crate) fn unix(t: std::time::SystemTime) -> Result<u64, Error> {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| Error::TimeOutOfRange)
}
