//! The device side: measure, then build and sign evidence. Uses nothing of the server side (no stores, no
//! tokio), so the agent can call it.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use smtrust_crypto::sm2::{CertId, Sm2Signer};

use crate::Error;
use crate::evidence::{Claims, ClaimsWire, EVIDENCE_TYP, HeaderWire, Measurement, MeasurementKind};
use crate::jws::{self, ALG_SM2_SM3};

/// SM3 of a file's contents, streamed.
pub fn measure_file(
    name: impl Into<String>,
    kind: MeasurementKind,
    path: &Path,
) -> Result<Measurement, Error> {
    use digest::Digest;
    use smtrust_crypto::sm3::Sm3;
    use std::io::Read;
    let err = |source| Error::Measure {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(err)?;
    let mut hasher = Sm3::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    let digest: [u8; 32] = hasher.finalize().into();
    Ok(Measurement::from_digest(name, kind, digest))
}

/// Encode `claims` with the certificate chain (`chain_der`, leaf first) and sign with the device's identity key.
/// Returns the evidence token (ASCII) to send to the verifier.
pub fn sign_evidence(
    claims: &Claims,
    chain_der: &[Vec<u8>],
    signer: &dyn Sm2Signer<CertId>,
) -> Result<String, Error> {
    let header = HeaderWire {
        alg: ALG_SM2_SM3.to_string(),
        typ: EVIDENCE_TYP.to_string(),
        x5c: chain_der.iter().map(|c| STANDARD.encode(c)).collect(),
    };
    jws::sign(&header, &ClaimsWire::from_claims(claims), signer)
}

/// The body of `POST /attest/v1/challenge` (`{"nonce": "<b64url>", "expires_at": <unix secs>}`), parsed on the
/// device.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChallengeResponse {
    /// The nonce to put in the evidence.
    pub nonce: crate::Nonce,
    /// Submit before this time (Unix seconds).
    pub expires_at: u64,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeWire {
    nonce: String,
    expires_at: u64,
}

/// Parses a challenge response body (at most 1 KiB; unknown members refused).
pub fn parse_challenge(body: &[u8]) -> Result<ChallengeResponse, Error> {
    const MAX: usize = 1024;
    if body.len() > MAX {
        return Err(crate::DecodeError::TooLarge {
            len: body.len(),
            max: MAX,
        }
        .into());
    }
    let wire: ChallengeWire = serde_json::from_slice(body)?;
    let bytes = jws::from_b64url(&wire.nonce, "nonce")?;
    Ok(ChallengeResponse {
        nonce: crate::Nonce::from_slice(&bytes)?,
        expires_at: wire.expires_at,
    })
}

/// What the device reports about itself, besides the nonce: everything [`Claims`] holds.
#[derive(Debug, Clone)]
#[allow(clippy::exhaustive_structs)] // plain data the agent fills from its config
pub struct DeviceState {
    /// The device ID (as in its certificate's SAN URI).
    pub device_id: crate::DeviceId,
    /// Product model (evidence `hwmodel`).
    pub product_model: String,
    /// Firmware version (evidence `swversion`).
    pub firmware_version: String,
    /// Debug state.
    pub debug: crate::DebugState,
    /// Measurements, e.g. from [`measure_file`].
    pub measurements: Vec<Measurement>,
}

/// The agent's one call: a challenge response body and the device's state → the evidence token to `POST` to
/// `/attest/v1/evidence` (as `application/jose`). `now` is the device's clock (Unix seconds).
pub fn evidence_for_challenge(
    challenge_body: &[u8],
    state: &DeviceState,
    now: u64,
    chain_der: &[Vec<u8>],
    signer: &dyn Sm2Signer<CertId>,
) -> Result<String, Error> {
    let challenge = parse_challenge(challenge_body)?;
    let claims = Claims::new(
        state.device_id.clone(),
        challenge.nonce,
        now,
        state.product_model.clone(),
        state.firmware_version.clone(),
        state.debug,
        state.measurements.clone(),
    );
    sign_evidence(&claims, chain_der, signer)
}
