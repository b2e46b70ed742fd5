//! PKCS#10 (RFC 2986) certification requests: the one parser for CSR bytes.
//!
//! The SM2 signature is verified over the exact received `CertificationRequestInfo` bytes with the GM/T 0009
//! ID `1234567812345678`. OpenSSL 3 signs with an EMPTY ID unless given `-sigopt distid:1234567812345678`; such
//! a CSR is recognised (verified with the empty ID) and reported as [`CsrDistId::Empty`], and the profile
//! decides (refused by default with [`crate::RequestError::EmptyIdCsr`], which quotes the fixed command).

use der::{Decode, Encode};
use smtrust_crypto::sm2::{CertId, Sm2PublicKey};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, ExtensionReq};

use crate::RequestError;
use const_oid::AssociatedOid;

/// Largest CSR accepted (PEM or DER). Real SM2 CSRs are under 1 KiB.
pub const MAX_CSR_LEN: usize = 16 * 1024;
/// Most extensions a CSR may request.
pub const MAX_REQUESTED_EXTENSIONS: usize = 16;

/// Which distinguishing ID the CSR's signature verified with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CsrDistId {
    /// The GM/T 0009 ID `1234567812345678`.
    GmT,
    /// The empty ID (OpenSSL 3 without `-sigopt distid:`).
    Empty,
}

/// A CSR whose signature verified.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VerifiedCsr {
    /// The requested subject.
    pub subject: Name,
    /// The SM2 public key.
    pub public_key: Sm2PublicKey,
    /// The SPKI as received.
    pub spki: SubjectPublicKeyInfoOwned,
    /// Extensions requested in the `extensionRequest` attribute.
    pub requested_extensions: Vec<Extension>,
    /// Which ID the signature verified with.
    pub signed_with: CsrDistId,
    /// The DER of the whole CSR.
    pub der: Vec<u8>,
}

/// Parse a CSR (PEM `CERTIFICATE REQUEST` or DER) and verify its SM2 signature.
pub fn parse_and_verify(input: &[u8]) -> Result<VerifiedCsr, RequestError> {
    if input.len() > MAX_CSR_LEN {
        return Err(RequestError::TooLarge {
            what: "CSR",
            len: input.len(),
            max: MAX_CSR_LEN,
        });
    }
    let der = if input.starts_with(b"-----BEGIN") || input.windows(11).any(|w| w == b"-----BEGIN ")
    {
        pem_to_der(input)?
    } else {
        input.to_vec()
    };
    let parts = smtrust_crypto::x509::split_signed(&der).map_err(crypto_to_request)?;
    if !smtrust_crypto::x509::is_sm2_with_sm3(&parts.algorithm) {
        return Err(RequestError::SignatureAlgorithm {
            oid: parts.algorithm.oid.to_string(),
        });
    }
    let req = CertReq::from_der(&der).map_err(|e| RequestError::malformed("CSR", &e))?;
    let spki_der = req
        .info
        .public_key
        .to_der()
        .map_err(|e| RequestError::malformed("CSR public key", &e))?;
    let public_key =
        smtrust_crypto::x509::public_key_from_spki_der(&spki_der).map_err(crypto_to_request)?;
    let signed_with = match public_key
        .verifying_key(CertId)
        .and_then(|vk| vk.verify_der(parts.tbs, parts.signature))
    {
        Ok(()) => CsrDistId::GmT,
        Err(_) => {
            smtrust_crypto::sm2::danger::verify_with_empty_id(
                &public_key,
                parts.tbs,
                parts.signature,
            )
            .map_err(|_| RequestError::BadCsrSignature)?;
            CsrDistId::Empty
        }
    };
    let mut requested_extensions = Vec::new();
    for attr in req.info.attributes.iter() {
        if attr.oid != ExtensionReq::OID {
            continue;
        }
        for v in attr.values.iter() {
            let er: ExtensionReq = v
                .decode_as()
                .map_err(|e| RequestError::malformed("CSR extensionRequest", &e))?;
            requested_extensions.extend(er.0);
        }
    }
    if requested_extensions.len() > MAX_REQUESTED_EXTENSIONS {
        return Err(RequestError::TooLarge {
            what: "CSR extension list",
            len: requested_extensions.len(),
            max: MAX_REQUESTED_EXTENSIONS,
        });
    }
    Ok(VerifiedCsr {
        subject: req.info.subject,
        public_key,
        spki: req.info.public_key,
        requested_extensions,
        signed_with,
        der,
    })
}

fn pem_to_der(input: &[u8]) -> Result<Vec<u8>, RequestError> {
    let blocks = smtrust_crypto::pem::blocks(input).map_err(crypto_to_request)?;
    for (label, der) in blocks {
        if label == "CERTIFICATE REQUEST" || label == "NEW CERTIFICATE REQUEST" {
            return Ok(der.to_vec());
        }
    }
    Err(RequestError::Malformed {
        what: "CSR",
        detail: "no CERTIFICATE REQUEST PEM block".into(),
        position: None,
    })
}

pub(crate) fn crypto_to_request(e: smtrust_crypto::Error) -> RequestError {
    match e {
        smtrust_crypto::Error::Key(k) => RequestError::NotSm2(k),
        smtrust_crypto::Error::Der { kind, position } => RequestError::Malformed {
            what: "DER",
            detail: kind,
            position,
        },
        smtrust_crypto::Error::InvalidLength { what, len } => RequestError::TooLarge {
            what,
            len,
            max: smtrust_crypto::x509::MAX_SIGNED_DER,
        },
        smtrust_crypto::Error::Pem(p) => RequestError::Malformed {
            what: "PEM",
            detail: p,
            position: None,
        },
        smtrust_crypto::Error::MalformedSignature(_) | smtrust_crypto::Error::BadSignature => {
            RequestError::BadCsrSignature
        }
        other => RequestError::Malformed {
            what: "CSR",
            detail: other.to_string(),
            position: None,
        },
    }
}
