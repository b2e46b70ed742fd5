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
