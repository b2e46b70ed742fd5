//! OCSP responder (RFC 6960): the one parser for OCSP requests, and responses signed by a delegated OCSP
//! signer (a certificate with id-kp-OCSPSigning and id-pkix-ocsp-nocheck issued by the CA it answers for).
//!
//! CertIDs hashed with SHA-1 (what `openssl ocsp` sends) and SM3 are both answered. Serving is a lookup: the
//! single-certificate, nonce-less answer of each (serial, hash) is signed ahead of requests by the worker
//! (`CaService::spawn_ocsp`) when the certificate is issued or its status changes, re-signed before it is
//! half-way to nextUpdate while clients keep asking, and kept in a bounded LRU cache; a miss (an evicted or
//! never pre-signed serial) signs on the request path and caches the answer. A request with a nonce (RFC 8954)
//! or several CertIDs cannot be answered ahead of time: it is signed per request.

pub mod asn1;
mod cache;
pub(crate) mod responder;

pub(crate) use cache::Key as CacheKey;

pub use responder::{DEFAULT_CACHE_ENTRIES, MAX_PENDING, OcspStats, Responder};

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use const_oid::db::rfc5912;
use der::asn1::{GeneralizedTime, ObjectIdentifier};
use der::{Decode, Encode};
use sha1::Digest;
use x509_cert::Certificate;
use x509_cert::ext::Extension;

use self::asn1::{CertId, OcspRequest, OcspResponse, OcspResponseStatus};
use crate::revocation::{CertStatus, RevocationReason};
use crate::{Error, RequestError};

/// id-pkix-ocsp-basic.
pub const OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-pkix-ocsp-nonce.
pub const OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// SM3 (GM/T 0006).
pub const SM3: ObjectIdentifier = smtrust_crypto::x509::oid::SM3;
/// Largest OCSP request accepted.
pub const MAX_REQUEST_LEN: usize = 8 * 1024;
/// Most certificates asked about in one request.
pub const MAX_REQUESTS: usize = 32;
/// Longest nonce accepted (RFC 8954: 1–32 octets; a little slack for the inner OCTET STRING header).
pub const MAX_NONCE_LEN: usize = 64;

/// The hash of a CertID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertIdHash {
    /// SHA-1 (1.3.14.3.2.26).
    Sha1,
    /// SM3 (1.2.156.10197.1.401).
    Sm3,
}

/// A parsed, size-checked OCSP request.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ParsedRequest {
    /// The requests, in order.
    pub cert_ids: Vec<CertId>,
    /// The nonce extension, as received, if any.
    pub nonce: Option<Extension>,
}

/// Parse a DER `OCSPRequest` (POST body).
pub fn parse_request(der_bytes: &[u8]) -> Result<ParsedRequest, RequestError> {
    if der_bytes.len() > MAX_REQUEST_LEN {
        return Err(RequestError::TooLarge {
            what: "OCSP request",
            len: der_bytes.len(),
            max: MAX_REQUEST_LEN,
        });
    }
    let req = OcspRequest::from_der(der_bytes)
        .map_err(|e| RequestError::malformed("OCSP request", &e))?;
    let tbs = req.tbs_request;
    if tbs.version.is_some_and(|v| v != 0) {
        return Err(RequestError::Malformed {
            what: "OCSP request",
            detail: "version is not v1".into(),
            position: None,
        });
    }
    if tbs.request_list.is_empty() || tbs.request_list.len() > MAX_REQUESTS {
        return Err(RequestError::TooLarge {
            what: "OCSP requestList",
            len: tbs.request_list.len(),
            max: MAX_REQUESTS,
        });
    }
    let nonce = tbs
        .request_extensions
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.extn_id == OCSP_NONCE);
    if let Some(n) = &nonce {
        let len = n.extn_value.as_bytes().len();
        if len == 0 || len > MAX_NONCE_LEN {
            return Err(RequestError::TooLarge {
                what: "OCSP nonce",
                len,
                max: MAX_NONCE_LEN,
            });
        }
    }
    Ok(ParsedRequest {
        cert_ids: tbs.request_list.into_iter().map(|r| r.req_cert).collect(),
        nonce,
    })
}

/// Parse the base64 path segment of an HTTP GET request (RFC 6960 Appendix A.1), URL-decoded first.
pub fn parse_get_path(segment: &str) -> Result<ParsedRequest, RequestError> {
    if segment.len() > MAX_REQUEST_LEN * 2 {
        return Err(RequestError::TooLarge {
            what: "OCSP GET path",
            len: segment.len(),
            max: MAX_REQUEST_LEN * 2,
        });
    }
    let decoded = percent_decode(segment).ok_or_else(|| RequestError::Malformed {
        what: "OCSP GET path",
        detail: "bad percent-encoding".into(),
        position: None,
    })?;
    let der_bytes = base64::engine::general_purpose::STANDARD
        .decode(decoded.trim())
        .map_err(|e| RequestError::Malformed {
            what: "OCSP GET path",
            detail: format!("base64: {e}"),
            position: None,
        })?;
    parse_request(&der_bytes)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let h = b.get(i + 1..i + 3)?;
            let h = core::str::from_utf8(h).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The hashes of one issuer, as CertIDs carry them.
#[derive(Clone, Debug)]
struct IssuerHashes {
    sha1: (Vec<u8>, Vec<u8>),
    sm3: (Vec<u8>, Vec<u8>),
}

impl IssuerHashes {
    fn of(cert: &Certificate) -> Result<Self, Error> {
        let tbs = cert.tbs_certificate();
        let name = tbs.subject().to_der()?;
        let key = tbs.subject_public_key_info().subject_public_key.raw_bytes();
        Ok(Self {
            sha1: (
                sha1::Sha1::digest(&name).to_vec(),
                sha1::Sha1::digest(key).to_vec(),
            ),
            sm3: (
                smtrust_crypto::sm3::digest(&name).to_vec(),
                smtrust_crypto::sm3::digest(key).to_vec(),
            ),
        })
    }

    fn matches(&self, id: &CertId) -> Option<CertIdHash> {
        let alg = &id.hash_algorithm;
        let params_ok = alg.parameters.as_ref().is_none_or(|p| p.is_null());
        if !params_ok {
            return None;
        }
        let (kind, (n, k)) = if alg.oid == rfc5912::ID_SHA_1 {
            (CertIdHash::Sha1, &self.sha1)
        } else if alg.oid == SM3 {
            (CertIdHash::Sm3, &self.sm3)
        } else {
            return None;
        };
        (id.issuer_name_hash.as_bytes() == n.as_slice()
            && id.issuer_key_hash.as_bytes() == k.as_slice())
        .then_some(kind)
    }
}

/// The answer for one certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OcspStatus {
    /// Issued by this CA and not revoked.
    Good,
    /// Revoked (or on hold) at `at` for `reason`.
    Revoked {
        /// Unix seconds.
        at: u64,
        /// Why.
        reason: RevocationReason,
    },
    /// Not issued by this CA, or reserved but never issued.
    Unknown,
}

impl From<Option<CertStatus>> for OcspStatus {
    fn from(s: Option<CertStatus>) -> Self {
        match s {
            Some(CertStatus::Active) => Self::Good,
            Some(CertStatus::Hold { at }) => Self::Revoked {
                at,
                reason: RevocationReason::CertificateHold,
            },
            Some(CertStatus::Revoked { at, reason }) => Self::Revoked { at, reason },
            _ => Self::Unknown,
        }
    }
}

/// Default response validity (nextUpdate − thisUpdate).
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(3600);

/// An unsigned error response (`malformedRequest`, `internalError`, ...).
pub fn error_response(status: OcspResponseStatus) -> Vec<u8> {
    OcspResponse {
        response_status: status,
        response_bytes: None,
    }
    .to_der()
    .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, 0x02])
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn gtime(secs: u64) -> Result<GeneralizedTime, Error> {
    Ok(GeneralizedTime::from_unix_duration(Duration::from_secs(
        secs,
    ))?)
}

/// The key-hash ResponderID of a certificate, for tests and clients.
pub fn key_hash(cert: &Certificate) -> Vec<u8> {
    sha1::Sha1::digest(
        cert.tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes(),
    )
    .to_vec()
}
