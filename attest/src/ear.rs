//! Attestation results in the shape of an EAR (draft-ietf-rats-ear, JSON/JWT serialization): a status, an
//! AR4SI trust vector, the reasons, bound to the device ID and certificate serial, valid until `exp`, signed
//! by the attestation key whose certificate (SAN URI [`ATTESTATION_SERVICE_URI`]) rides in `x5c`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use smtrust_crypto::sm2::{CertId, Sm2Signer};

use crate::chain::TrustAnchors;
use crate::identity::unix;
use crate::jws::{self, ALG_SM2_SM3, DecodeError, Part};
use crate::{DeviceId, Error};

/// `eat_profile` of EAR.
pub const EAR_PROFILE: &str = "tag:github.com,2023:veraison/ear";
/// JWS `typ` of results.
pub const EAR_TYP: &str = "ear+jwt";
/// SAN URI the attestation key's certificate must carry; a device certificate cannot sign results.
pub const ATTESTATION_SERVICE_URI: &str = "urn:smtrust:service:attestation";
/// The submodule name results use.
pub const SUBMOD: &str = "device";

/// Overall appraisal status (EAR `ear.status`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// Every component trustworthy.
    Affirming,
    /// Something is unrecognized; not known bad.
    Warning,
    /// Known bad, unauthenticated, or not fresh.
    Contraindicated,
}

impl Status {
    /// The tier of an AR4SI trust-vector value (draft-ietf-rats-ar4si §2.3.3): -1..=1 and 2..=31 affirm,
    /// 32..=95 warn, 96..=127 and negative values contraindicate. 0 (no claim) affirms nothing and blocks nothing.
    pub fn of_claim(v: i8) -> Self {
        match v {
            0..=31 => Self::Affirming,
            32..=95 => Self::Warning,
            _ => Self::Contraindicated,
        }
    }

    /// The stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Affirming => "affirming",
            Self::Warning => "warning",
            Self::Contraindicated => "contraindicated",
        }
    }

    /// Parse the text form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "affirming" => Self::Affirming,
            "warning" => Self::Warning,
            "contraindicated" => Self::Contraindicated,
            _ => return None,
        })
    }
}

/// AR4SI claim values used here.
pub mod claim {
    /// No claim made (the check could not run).
    pub const NONE: i8 = 0;
    /// Trustworthy / approved.
    pub const AFFIRMING: i8 = 2;
    /// Unrecognized (e.g. firmware with no reference values).
    pub const UNRECOGNIZED: i8 = 33;
    /// Contraindicated (known bad, revoked, not fresh).
    pub const CONTRAINDICATED: i8 = 96;
    /// Cryptographic validation of the evidence failed.
    pub const CRYPTO_FAILED: i8 = 99;
}

/// The trust vector (draft-ietf-rats-ar4si §2.3, names as EAR spells them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[non_exhaustive]
pub struct TrustVector {
    /// Certificate chain, status, signature, device ID, nonce freshness.
    pub instance_identity: i8,
    /// Configuration measurements.
    pub configuration: i8,
    /// Boot stages and firmware image.
    pub executables: i8,
    /// Product model known; debug state acceptable.
    pub hardware: i8,
    /// Runtime state (no runtime claims yet: always 0).
    pub runtime_opaque: i8,
}

impl TrustVector {
    /// The worst tier over all components.
    pub fn status(&self) -> Status {
        [
            self.instance_identity,
            self.configuration,
            self.executables,
            self.hardware,
            self.runtime_opaque,
        ]
        .into_iter()
        .map(Status::of_claim)
        .max()
        .unwrap_or(Status::Contraindicated)
    }
}

/// Why a result is not affirming. Codes are stable (`code` member in JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "code", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Reason {
    /// Evidence could not be decoded.
    Malformed {
        /// The decoder's message (no evidence bytes).
        detail: String,
    },
    /// The chain does not lead to our CA.
    CertificateForeign {
        /// Certificate whose issuer is unknown (0 = leaf).
        index: usize,
    },
    /// A certificate signature in the chain did not verify.
    CertificateBadSignature {
        /// Certificate (0 = leaf).
        index: usize,
    },
    /// A certificate or chain we cannot use (not SM2, issuer not a CA, unreadable extension).
    CertificateUnusable {
        /// Certificate (0 = leaf).
        index: usize,
    },
    /// A certificate was expired at appraisal time.
    CertificateExpired {
        /// Certificate (0 = leaf; `usize::MAX` = trust anchor).
        index: usize,
        /// notAfter, Unix seconds.
        not_after: u64,
    },
    /// A certificate was not yet valid.
    CertificateNotYetValid {
        /// Certificate.
        index: usize,
        /// notBefore, Unix seconds.
        not_before: u64,
    },
    /// The CA says the leaf is revoked.
    CertificateRevoked,
    /// The CA says the leaf is suspended (on hold).
    CertificateSuspended,
    /// The CA does not know the leaf's serial.
    CertificateStatusUnknown,
    /// The claimed device ID is not the certificate's SAN URI.
    DeviceIdMismatch,
    /// The evidence signature did not verify with the leaf certificate's key.
    EvidenceSignatureInvalid,
    /// The nonce was never issued.
    NonceUnknown,
    /// The nonce expired before the evidence arrived.
    NonceExpired {
        /// Expiry, Unix seconds.
        expired_at: u64,
    },
    /// The nonce was already used: replayed evidence.
    NonceReplayed,
    /// The nonce was issued to another device.
    NonceOtherDevice,
    /// No reference values for this model and firmware version.
    FirmwareUnknown {
        /// Claimed model.
        product_model: String,
        /// Claimed firmware version.
        firmware_version: String,
    },
    /// A measurement differs from every accepted reference value.
    MeasurementMismatch {
        /// Measurement name.
        name: String,
    },
    /// A measurement the reference values require is absent.
    MeasurementMissing {
        /// Measurement name.
        name: String,
    },
    /// A measurement with no reference value.
    MeasurementUnexpected {
        /// Measurement name.
        name: String,
    },
    /// Debug is enabled and the reference values do not allow it.
    DebugEnabled,
}

/// An appraisal result.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttestationResult {
    /// Overall status (worst of the vector).
    pub status: Status,
    /// The trust vector.
    pub trust_vector: TrustVector,
    /// Why it is not affirming (empty when affirming).
    pub reasons: Vec<Reason>,
    /// The device, when the evidence named one.
    pub device_id: Option<DeviceId>,
    /// The leaf certificate's serial, hex, when a certificate was read.
    pub cert_serial: Option<String>,
    /// The evidence's nonce, base64url, when decoded.
    pub nonce: Option<String>,
    /// Reference values used: `model/firmware/vN`.
    pub policy_id: Option<String>,
    /// Issue time, Unix seconds.
    pub issued_at: u64,
    /// End of validity, Unix seconds.
    pub expires_at: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderWire {
    alg: String,
    typ: String,
    x5c: Vec<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifierId {
    developer: String,
    build: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadWire {
    eat_profile: String,
    iat: u64,
    exp: u64,
    #[serde(rename = "ear.verifier-id")]
    verifier_id: VerifierId,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    eat_nonce: Option<String>,
    submods: BTreeMap<String, SubmodWire>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmodWire {
    #[serde(rename = "ear.status")]
    status: Status,
    #[serde(rename = "ear.trustworthiness-vector")]
    trust_vector: TrustVector,
    #[serde(
        rename = "ear.appraisal-policy-id",
        skip_serializing_if = "Option::is_none",
        default
    )]
    policy_id: Option<String>,
    #[serde(
        rename = "smtrust.device-id",
        skip_serializing_if = "Option::is_none",
        default
    )]
    device_id: Option<DeviceId>,
    #[serde(
        rename = "smtrust.cert-serial",
        skip_serializing_if = "Option::is_none",
        default
    )]
    cert_serial: Option<String>,
    #[serde(rename = "smtrust.reasons")]
    reasons: Vec<Reason>,
}

impl AttestationResult {
    /// Sign with the attestation key; `chain_der` is its certificate chain (leaf first, SAN URI
    /// [`ATTESTATION_SERVICE_URI`]). Returns the result token.
    pub fn sign(
        &self,
        signer: &dyn Sm2Signer<CertId>,
        chain_der: &[Vec<u8>],
    ) -> Result<String, Error> {
        let header = HeaderWire {
            alg: ALG_SM2_SM3.to_string(),
            typ: EAR_TYP.to_string(),
            x5c: chain_der.iter().map(|c| STANDARD.encode(c)).collect(),
        };
        let sub = SubmodWire {
            status: self.status,
            trust_vector: self.trust_vector,
            policy_id: self.policy_id.clone(),
            device_id: self.device_id.clone(),
            cert_serial: self.cert_serial.clone(),
            reasons: self.reasons.clone(),
        };
        let payload = PayloadWire {
            eat_profile: EAR_PROFILE.to_string(),
            iat: self.issued_at,
            exp: self.expires_at,
            verifier_id: VerifierId {
                developer: "smtrust".to_string(),
                build: concat!("smtrust-attest ", env!("CARGO_PKG_VERSION")).to_string(),
            },
            eat_nonce: self.nonce.clone(),
            submods: BTreeMap::from([(SUBMOD.to_string(), sub)]),
        };
        jws::sign(&header, &payload, signer)
    }
}

/// Verify a result token offline: its `x5c` chains to `ca_chain` (DER CA certificates) at `now`, the signing
/// certificate carries [`ATTESTATION_SERVICE_URI`], the signature verifies, and `now` is before `exp`.
pub fn verify_result(
    token: &[u8],
    ca_chain: &[Vec<u8>],
    now: SystemTime,
) -> Result<AttestationResult, Error> {
    verify_result_with(token, &TrustAnchors::from_der(ca_chain)?, now)
}

/// [`verify_result`] with prepared anchors (cache kept across calls).
pub fn verify_result_with(
    token: &[u8],
    anchors: &TrustAnchors,
    now: SystemTime,
) -> Result<AttestationResult, Error> {
    use der::Decode;
    let t = jws::split(token)?;
    let header: HeaderWire = jws::json(&t.header, Part::Header)?;
    if header.alg != ALG_SM2_SM3 || header.typ != EAR_TYP {
        return Err(Error::ResultRejected("not an SM2-signed EAR"));
    }
    if header.x5c.is_empty() || header.x5c.len() > crate::evidence::MAX_CHAIN {
        return Err(Error::ResultRejected("x5c must hold 1 to 4 certificates"));
    }
    let mut ders = Vec::new();
    let mut certs = Vec::new();
    for (index, b) in header.x5c.iter().enumerate() {
        let der = STANDARD.decode(b).map_err(|_| DecodeError::Certificate {
            index,
            why: "not canonical base64",
        })?;
        certs.push(x509_cert::Certificate::from_der(&der).map_err(|_| {
            DecodeError::Certificate {
                index,
                why: "not a DER X.509 certificate",
            }
        })?);
        ders.push(der);
    }
    let leaf = anchors
        .verify(&certs, &ders, now)
        .map_err(|_| Error::ResultRejected("signer certificate does not chain to the CA"))?;
    if !leaf.san_uris.iter().any(|u| u == ATTESTATION_SERVICE_URI) {
        return Err(Error::ResultRejected(
            "signer certificate is not an attestation service certificate",
        ));
    }
    leaf.key
        .verifying_key(CertId)?
        .verify(t.signing_input, &t.signature)
        .map_err(|_| Error::ResultRejected("signature does not verify"))?;
    let p: PayloadWire = jws::json(&t.payload, Part::Payload)?;
    if p.eat_profile != EAR_PROFILE {
        return Err(Error::ResultRejected("eat_profile is not EAR"));
    }
    if unix(now)? >= p.exp {
        return Err(Error::ResultRejected("result expired"));
    }
    let mut submods = p.submods.into_iter();
    let (name, sub) = submods
        .next()
        .ok_or(Error::ResultRejected("no submodule"))?;
    if name != SUBMOD || submods.next().is_some() {
        return Err(Error::ResultRejected("unexpected submodules"));
    }
    if sub.trust_vector.status() != sub.status {
        return Err(Error::ResultRejected("status disagrees with trust vector"));
    }
    Ok(AttestationResult {
        status: sub.status,
        trust_vector: sub.trust_vector,
        reasons: sub.reasons,
        device_id: sub.device_id,
        cert_serial: sub.cert_serial,
        nonce: p.eat_nonce,
        policy_id: sub.policy_id,
        issued_at: p.iat,
        expires_at: p.exp,
    })
}
