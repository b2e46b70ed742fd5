//! Evidence: EAT claims (RFC 9711, JSON form) in a JWS signed by the device's SM2 identity key, with the
//! certificate chain in `x5c` (RFC 7515 §4.1.6). The one decoder for evidence bytes; docs/attestation.md shows
//! the layout.
//!
//! ```text
//! header  {"alg":"SM2-SM3","typ":"eat+jwt","x5c":["<leaf DER, base64>", "<intermediate>", ...]}
//! payload {"eat_profile":"urn:smtrust:eat:v1","sub":"ctw-0000001234","eat_nonce":"<32 bytes, b64url>",
//!          "iat":1764000000,"hwmodel":"ctw-meter-3","swversion":"2.4.1","dbgstat":3,
//!          "measurements":[{"name":"bl2","kind":"boot-stage","alg":"sm3","digest":"<64 hex>"}, ...]}
//! ```
//! Decoding checks shape and limits only; signatures and the chain are checked by the appraisal.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use der::Decode;
use smtrust_crypto::sm2::Sm2Signature;
use x509_cert::Certificate;

use crate::challenge::Nonce;
use crate::identity::DeviceId;
use crate::jws::{self, ALG_SM2_SM3, DecodeError, Part};

/// `eat_profile` of smtrust evidence.
pub const EVIDENCE_PROFILE: &str = "urn:smtrust:eat:v1";
/// JWS `typ` of evidence.
pub const EVIDENCE_TYP: &str = "eat+jwt";
/// Most certificates in `x5c`.
pub const MAX_CHAIN: usize = 4;
/// Largest certificate in `x5c`, DER bytes.
pub const MAX_CERT: usize = 8 * 1024;
/// Most measurements in one piece of evidence.
pub const MAX_MEASUREMENTS: usize = 64;
/// Longest text claim (model, version, measurement name).
pub const MAX_TEXT: usize = 64;

/// What a measurement covers; selects the trust-vector component a mismatch affects.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum MeasurementKind {
    /// A boot stage (ROM loader, bootloader, kernel).
    BootStage,
    /// The firmware image.
    Firmware,
    /// A configuration file or blob.
    Configuration,
}

/// One named SM3 digest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Measurement {
    /// Name, unique within the evidence (`bl2`, `firmware`, `config/app.toml`).
    pub name: String,
    /// What it covers.
    pub kind: MeasurementKind,
    /// SM3 of the measured bytes.
    pub digest: [u8; 32],
}

impl Measurement {
    /// A measurement from an already computed SM3 digest.
    pub fn from_digest(name: impl Into<String>, kind: MeasurementKind, digest: [u8; 32]) -> Self {
        Self {
            name: name.into(),
            kind,
            digest,
        }
    }

    /// SM3 of `bytes`.
    pub fn of_bytes(name: impl Into<String>, kind: MeasurementKind, bytes: &[u8]) -> Self {
        Self::from_digest(name, kind, smtrust_crypto::sm3::digest(bytes))
    }
}

/// RFC 9711 §4.2.9 `dbgstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DebugState {
    /// 0: debug is enabled.
    Enabled,
    /// 1: disabled now, may have been enabled since boot.
    Disabled,
    /// 2: disabled since boot.
    DisabledSinceBoot,
    /// 3: disabled permanently.
    DisabledPermanently,
    /// 4: disabled permanently, including by the manufacturer.
    DisabledFullyAndPermanently,
}

impl DebugState {
    /// The RFC 9711 code.
    pub fn code(self) -> u8 {
        match self {
            Self::Enabled => 0,
            Self::Disabled => 1,
            Self::DisabledSinceBoot => 2,
            Self::DisabledPermanently => 3,
            Self::DisabledFullyAndPermanently => 4,
        }
    }

    /// From the RFC 9711 code.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Enabled,
            1 => Self::Disabled,
            2 => Self::DisabledSinceBoot,
            3 => Self::DisabledPermanently,
            4 => Self::DisabledFullyAndPermanently,
            _ => return None,
        })
    }
}

/// The claims a device makes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claims {
    /// `sub`: who the device says it is (checked against its certificate's SAN URI).
    pub device_id: DeviceId,
    /// `eat_nonce`: the challenge it answers.
    pub nonce: Nonce,
    /// `iat`: when it made the evidence, Unix seconds (informational: freshness comes from the nonce).
    pub issued_at: u64,
    /// `hwmodel`: product model, selects reference values.
    pub product_model: String,
    /// `swversion`: firmware version, selects reference values.
    pub firmware_version: String,
    /// `dbgstat`.
    pub debug: DebugState,
    /// `measurements`, names unique.
    pub measurements: Vec<Measurement>,
}

impl Claims {
    /// Claims for `device_id` answering `nonce`.
    pub fn new(
        device_id: DeviceId,
        nonce: Nonce,
        issued_at: u64,
        product_model: impl Into<String>,
        firmware_version: impl Into<String>,
        debug: DebugState,
        measurements: Vec<Measurement>,
    ) -> Self {
        Self {
            device_id,
            nonce,
            issued_at,
            product_model: product_model.into(),
            firmware_version: firmware_version.into(),
            debug,
            measurements,
        }
    }
}

/// Decoded evidence: claims, chain and signature, none verified yet.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Evidence {
    /// The claims.
    pub claims: Claims,
    /// `x5c` as DER, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// The parsed certificates, same order.
    pub certificates: Vec<Certificate>,
    pub(crate) signing_input: Vec<u8>,
    pub(crate) signature: Sm2Signature,
}

impl Evidence {
    /// The bytes the device signed (`BASE64URL(header) '.' BASE64URL(payload)`).
    pub fn signing_input(&self) -> &[u8] {
        &self.signing_input
    }

    /// The device's DER signature.
    pub fn signature(&self) -> &Sm2Signature {
        &self.signature
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeaderWire {
    pub alg: String,
    pub typ: String,
    pub x5c: Vec<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimsWire {
    pub eat_profile: String,
    pub sub: DeviceId,
    pub eat_nonce: String,
    pub iat: u64,
    pub hwmodel: String,
    pub swversion: String,
    pub dbgstat: u8,
    pub measurements: Vec<MeasurementWire>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MeasurementWire {
    pub name: String,
    pub kind: MeasurementKind,
    pub alg: String,
    pub digest: String,
}

impl ClaimsWire {
    pub(crate) fn from_claims(c: &Claims) -> Self {
        Self {
            eat_profile: EVIDENCE_PROFILE.to_string(),
            sub: c.device_id.clone(),
            eat_nonce: jws::b64url(c.nonce.as_bytes()),
            iat: c.issued_at,
            hwmodel: c.product_model.clone(),
            swversion: c.firmware_version.clone(),
            dbgstat: c.debug.code(),
            measurements: c
                .measurements
                .iter()
                .map(|m| MeasurementWire {
                    name: m.name.clone(),
                    kind: m.kind,
                    alg: "sm3".to_string(),
                    digest: hex::encode(m.digest),
                })
                .collect(),
        }
    }
}

/// A text claim: 1..=64 printable ASCII characters without spaces.
pub(crate) fn check_text(value: &str, claim: &'static str) -> Result<(), DecodeError> {
    let ok =
        !value.is_empty() && value.len() <= MAX_TEXT && value.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(DecodeError::Claim {
            claim,
            why: "not 1-64 printable ASCII characters",
        })
    }
}

/// A 64-hex-digit SM3 digest (lowercase, as we write it).
pub(crate) fn parse_digest(text: &str, claim: &'static str) -> Result<[u8; 32], DecodeError> {
    let bad = DecodeError::Claim {
        claim,
        why: "not 64 lowercase hex digits",
    };
    if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad);
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|_| bad)?;
    Ok(out)
}

/// Decode evidence strictly: size limits, exact JSON shapes, canonical encodings, unique measurement names,
/// parseable certificates. Verifies nothing cryptographic.
pub fn decode_evidence(bytes: &[u8]) -> Result<Evidence, DecodeError> {
    let token = jws::split(bytes)?;
    let header: HeaderWire = jws::json(&token.header, Part::Header)?;
    if header.alg != ALG_SM2_SM3 {
        return Err(header_err("alg", &header.alg, ALG_SM2_SM3));
    }
    if header.typ != EVIDENCE_TYP {
        return Err(header_err("typ", &header.typ, EVIDENCE_TYP));
    }
    if header.x5c.is_empty() || header.x5c.len() > MAX_CHAIN {
        return Err(DecodeError::Claim {
            claim: "x5c",
            why: "must hold 1 to 4 certificates",
        });
    }
    let mut chain = Vec::with_capacity(header.x5c.len());
    let mut certificates = Vec::with_capacity(header.x5c.len());
    for (index, b64) in header.x5c.iter().enumerate() {
        // Base64 is 4/3 of the DER: reject before decoding.
        if b64.len() > MAX_CERT * 4 / 3 + 4 {
            return Err(DecodeError::Certificate {
                index,
                why: "larger than 8 KiB",
            });
        }
        let der = STANDARD.decode(b64).map_err(|_| DecodeError::Certificate {
            index,
            why: "not canonical base64",
        })?;
        let cert = Certificate::from_der(&der).map_err(|_| DecodeError::Certificate {
            index,
            why: "not a DER X.509 certificate",
        })?;
        chain.push(der);
        certificates.push(cert);
    }
    let wire: ClaimsWire = jws::json(&token.payload, Part::Payload)?;
    let claims = claims_from_wire(wire)?;
    Ok(Evidence {
        claims,
        chain,
        certificates,
        signing_input: token.signing_input.to_vec(),
        signature: token.signature,
    })
}

fn header_err(member: &'static str, found: &str, expected: &'static str) -> DecodeError {
    DecodeError::Header {
        member,
        found: found.chars().take(32).collect(),
        expected,
    }
}

fn claims_from_wire(w: ClaimsWire) -> Result<Claims, DecodeError> {
    if w.eat_profile != EVIDENCE_PROFILE {
        return Err(DecodeError::Claim {
            claim: "eat_profile",
            why: "not urn:smtrust:eat:v1",
        });
    }
    let nonce = Nonce::from_slice(&jws::from_b64url(&w.eat_nonce, "eat_nonce")?)?;
    check_text(&w.hwmodel, "hwmodel")?;
    check_text(&w.swversion, "swversion")?;
    let debug = DebugState::from_code(w.dbgstat).ok_or(DecodeError::Claim {
        claim: "dbgstat",
        why: "not 0-4",
    })?;
    if w.measurements.is_empty() || w.measurements.len() > MAX_MEASUREMENTS {
        return Err(DecodeError::Claim {
            claim: "measurements",
            why: "must hold 1 to 64 entries",
        });
    }
    let mut measurements: Vec<Measurement> = Vec::with_capacity(w.measurements.len());
    for m in w.measurements {
        check_text(&m.name, "measurements.name")?;
        if m.alg != "sm3" {
            return Err(DecodeError::Claim {
                claim: "measurements.alg",
                why: "only sm3",
            });
        }
        if measurements.iter().any(|x| x.name == m.name) {
            return Err(DecodeError::Claim {
                claim: "measurements.name",
                why: "duplicate name",
            });
        }
        let digest = parse_digest(&m.digest, "measurements.digest")?;
        measurements.push(Measurement::from_digest(m.name, m.kind, digest));
    }
    Ok(Claims {
        device_id: w.sub,
        nonce,
        issued_at: w.iat,
        product_model: w.hwmodel,
        firmware_version: w.swversion,
        debug,
        measurements,
    })
}
