//! Revocation reasons, certificate status and the revocation events gateways consume.

use serde::{Deserialize, Serialize};

use crate::serial::Serial;

/// CRLReason (RFC 5280 §5.3.1); `removeFromCRL` is not a reason one revokes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RevocationReason {
    /// unspecified (0)
    Unspecified,
    /// keyCompromise (1)
    KeyCompromise,
    /// cACompromise (2)
    CaCompromise,
    /// affiliationChanged (3)
    AffiliationChanged,
    /// superseded (4)
    Superseded,
    /// cessationOfOperation (5)
    CessationOfOperation,
    /// certificateHold (6): a suspension, reversible with resume.
    CertificateHold,
    /// privilegeWithdrawn (9)
    PrivilegeWithdrawn,
    /// aACompromise (10)
    AaCompromise,
}

impl RevocationReason {
    /// The CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::CertificateHold => 6,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// From a CRLReason code (8, removeFromCRL, is not accepted).
    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => Self::Unspecified,
            1 => Self::KeyCompromise,
            2 => Self::CaCompromise,
            3 => Self::AffiliationChanged,
            4 => Self::Superseded,
            5 => Self::CessationOfOperation,
            6 => Self::CertificateHold,
            9 => Self::PrivilegeWithdrawn,
            10 => Self::AaCompromise,
            _ => return None,
        })
    }
}

/// The revocation state of an issued certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertStatus {
    /// Serial reserved, certificate not (yet) recorded: a crash between reserve and record leaves this.
    Reserved,
    /// Valid.
    Active,
    /// Suspended (certificateHold) since `at` (Unix seconds).
    Hold {
        /// When.
        at: u64,
    },
    /// Revoked for good.
    Revoked {
        /// When.
        at: u64,
        /// Why.
        reason: RevocationReason,
    },
}

/// What happened to a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RevocationKind {
    /// Revoked for good.
    Revoked {
        /// Why.
        reason: RevocationReason,
    },
    /// Suspended (certificateHold).
    Suspended,
    /// Resumed from suspension.
    Resumed,
}

/// A revocation event: published in process (tokio broadcast) and, on PostgreSQL, with
/// `NOTIFY smtrust_revocation, '<this as JSON>'`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RevocationEvent {
    /// The issuing CA's label.
    pub issuer: String,
    /// The certificate serial, 32 hex digits.
    #[serde(with = "serial_hex")]
    pub serial: Serial,
    /// The device ID, if the certificate is a device identity.
    pub device_id: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub kind: RevocationKind,
    /// When (Unix seconds).
    pub at: u64,
}

impl RevocationEvent {
    /// The JSON payload sent with NOTIFY.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse a NOTIFY payload.
    pub fn from_json(s: &str) -> Result<Self, crate::StoreError> {
        serde_json::from_str(s).map_err(|e| crate::StoreError::Event(e.to_string()))
    }
}

mod serial_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::serial::Serial;

    pub(super) fn serialize<S: Serializer>(s: &Serial, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(&s.to_hex())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Serial, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_json_round_trip() {
        let e = RevocationEvent {
            issuer: "line7".into(),
            serial: Serial::random().unwrap(),
            device_id: Some("ctw-1".into()),
            kind: RevocationKind::Revoked {
                reason: RevocationReason::KeyCompromise,
            },
            at: 1_700_000_000,
        };
        let j = e.to_json();
        assert!(j.contains("\"reason\":\"key-compromise\""), "{j}");
        assert_eq!(RevocationEvent::from_json(&j).unwrap(), e);
    }

    #[test]
    fn reason_codes_round_trip() {
        for c in 0..=10u8 {
            if let Some(r) = RevocationReason::from_code(c) {
                assert_eq!(r.code(), c);
            }
        }
        assert!(RevocationReason::from_code(8).is_none());
    }
}
