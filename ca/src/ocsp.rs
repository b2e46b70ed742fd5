//! OCSP responder (RFC 6960): the one parser for OCSP requests, and responses signed by a delegated OCSP
//! signer (a certificate with id-kp-OCSPSigning and id-pkix-ocsp-nocheck issued by the CA it answers for).
//!
//! CertIDs hashed with SHA-1 (what `openssl ocsp` sends) and SM3 are both answered. Responses without a
//! nonce are cached per (serial, hash) until they are half-way to nextUpdate or the status changes, so serving
//! them is a lookup; a request with a nonce gets a freshly signed response echoing it (RFC 8954).

pub mod asn1;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use const_oid::db::rfc5912;
use der::asn1::{BitString, GeneralizedTime, Null, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use sha1::Digest;
use smtrust_crypto::x509::CertSigner;
use x509_cert::Certificate;
use x509_cert::ext::Extension;

use self::asn1::{
    BasicOcspResponse, CertId, CertStatus as AsnStatus, OcspRequest, OcspResponse,
    OcspResponseStatus, ResponderId, ResponseBytes, ResponseData, RevokedInfo, SingleResponse,
};
use crate::authority::Issuer;
use crate::revocation::{CertStatus, RevocationReason};
use crate::serial::Serial;
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

/// A pre-signed response and when to re-sign it (Unix seconds).
type Cached = (u64, Arc<Vec<u8>>);

/// An OCSP responder for one issuing CA, signing with its delegated OCSP signer.
pub struct Responder {
    label: String,
    hashes: IssuerHashes,
    signer: Arc<dyn CertSigner>,
    signer_cert: Certificate,
    key_hash: Vec<u8>,
    validity: Duration,
    cache: RwLock<HashMap<(Serial, CertIdHash), Cached>>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("issuer", &self.label)
            .finish_non_exhaustive()
    }
}

/// Default response validity (nextUpdate − thisUpdate).
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(3600);

impl Responder {
    /// A responder for `issuer`, signing with the delegated OCSP signer `signer` whose certificate (issued by
    /// `issuer` with the `ocsp` profile) is `signer_cert_der`.
    pub fn new(
        issuer: &Issuer,
        signer_cert_der: &[u8],
        signer: Arc<dyn CertSigner>,
        validity: Duration,
    ) -> Result<Self, Error> {
        let hashes = IssuerHashes::of(issuer.certificate())?;
        let signer_cert = Certificate::from_der(signer_cert_der)
            .map_err(|e| RequestError::malformed("OCSP signer certificate", &e))?;
        let spki_der = signer_cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()?;
        if smtrust_crypto::x509::public_key_from_spki_der(&spki_der)? != *signer.public_key() {
            return Err(
                RequestError::Import("OCSP signer key does not match its certificate").into(),
            );
        }
        let key_hash = sha1::Sha1::digest(
            signer_cert
                .tbs_certificate()
                .subject_public_key_info()
                .subject_public_key
                .raw_bytes(),
        )
        .to_vec();
        Ok(Self {
            label: issuer.label().to_owned(),
            hashes,
            signer,
            signer_cert,
            key_hash,
            validity,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// The issuer label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// For each CertID: the serial to look up if it names this issuer, else `None` (answered unknown).
    pub fn serials(&self, req: &ParsedRequest) -> Vec<Option<Serial>> {
        req.cert_ids
            .iter()
            .map(|id| {
                self.hashes
                    .matches(id)
                    .and_then(|_| Serial::from_slice(id.serial_number.as_bytes()))
            })
            .collect()
    }

    /// A cached pre-signed response for a single-certificate request without a nonce, if still fresh.
    pub fn cached(&self, req: &ParsedRequest, now: SystemTime) -> Option<Arc<Vec<u8>>> {
        let key = self.cache_key(req)?;
        let cache = self.cache.read().ok()?;
        let (refresh_at, der) = cache.get(&key)?;
        (unix(now) < *refresh_at).then(|| der.clone())
    }

    fn cache_key(&self, req: &ParsedRequest) -> Option<(Serial, CertIdHash)> {
        if req.nonce.is_some() {
            return None;
        }
        let [id] = req.cert_ids.as_slice() else {
            return None;
        };
        let h = self.hashes.matches(id)?;
        Some((Serial::from_slice(id.serial_number.as_bytes())?, h))
    }

    /// Drop the cached response of `serial` (its status changed).
    pub fn invalidate(&self, serial: &Serial) {
        // Two keys per serial, removed directly: a scan of the whole cache per revocation made bursts O(N·M).
        if let Ok(mut c) = self.cache.write() {
            c.remove(&(*serial, CertIdHash::Sha1));
            c.remove(&(*serial, CertIdHash::Sm3));
        }
    }

    /// Build and sign the response; `statuses` are in request order (from [`Self::serials`] and the store).
    /// Caches it when it is cacheable.
    pub fn respond(
        &self,
        req: &ParsedRequest,
        statuses: &[OcspStatus],
        now: SystemTime,
    ) -> Result<Arc<Vec<u8>>, Error> {
        let this_update = gtime(unix(now))?;
        let next = unix(now).saturating_add(self.validity.as_secs());
        let mut responses = Vec::with_capacity(req.cert_ids.len());
        for (i, id) in req.cert_ids.iter().enumerate() {
            let status = statuses.get(i).copied().unwrap_or(OcspStatus::Unknown);
            let cert_status = match status {
                OcspStatus::Good => AsnStatus::Good(Null),
                OcspStatus::Unknown => AsnStatus::Unknown(Null),
                OcspStatus::Revoked { at, reason } => AsnStatus::Revoked(RevokedInfo {
                    revocation_time: gtime(at)?,
                    revocation_reason: (reason != RevocationReason::Unspecified)
                        .then(|| crate::crl::to_crl_reason(reason)),
                }),
            };
            responses.push(SingleResponse {
                cert_id: id.clone(),
                cert_status,
                this_update,
                next_update: Some(gtime(next)?),
                single_extensions: None,
            });
        }
        let data = ResponseData {
            responder_id: ResponderId::ByKey(OctetString::new(self.key_hash.clone())?),
            produced_at: this_update,
            responses,
            response_extensions: req.nonce.clone().map(|n| vec![n]),
        };
        let tbs = data.to_der()?;
        let sig = self.signer.sign(&tbs)?;
        let basic = BasicOcspResponse {
            tbs_response_data: data,
            signature_algorithm: smtrust_crypto::x509::sm2_with_sm3(),
            signature: BitString::from_bytes(sig.as_der())?,
            certs: Some(vec![self.signer_cert.clone()]),
        };
        let resp = OcspResponse {
            response_status: OcspResponseStatus::Successful,
            response_bytes: Some(ResponseBytes {
                response_type: OCSP_BASIC,
                response: OctetString::new(basic.to_der()?)?,
            }),
        };
        let der_bytes = Arc::new(resp.to_der()?);
        if let Some(key) = self.cache_key(req)
            && let Ok(mut c) = self.cache.write()
        {
            // Refresh half-way to nextUpdate so a cached answer is never near expiry.
            let refresh_at = unix(now).saturating_add(self.validity.as_secs() / 2);
            c.insert(key, (refresh_at, der_bytes.clone()));
        }
        Ok(der_bytes)
    }
}

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
