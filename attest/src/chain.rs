//! Certificate path validation to our CA (RFC 5280 §6, the subset a private device PKI needs): each link's
//! SM2 signature over the exact received TBS bytes, validity at the given time, CA bit on issuers, and the
//! leaf's SAN URI.
//!
//! Intermediates whose path to an anchor was verified once are cached by the SM3 of their DER, with their
//! verifying key and the validity window of their whole path, so a steady-state appraisal verifies only the
//! leaf's signature (and the evidence's). Verified leaves are cached the same way, keyed by the SM3 of their DER
//! and checked against the issuer's key on every hit, so a device that attests again costs no certificate
//! signature at all; validity windows are still checked at each call, and revocation is the caller's
//! (`CertificateStatus`), asked every time.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use der::{Decode, Encode};
use smtrust_crypto::sm2::{CertId, Sm2PublicKey, Sm2VerifyingKey};
use smtrust_crypto::x509::{is_sm2_with_sm3, public_key_from_spki_der, split_signed};
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, SubjectAltName};

use crate::Error;

/// Most cached intermediates; the cache is emptied when full (a private PKI has a handful).
const CACHE_LIMIT: usize = 1024;
/// Most cached device leaves (about 300 bytes each).
const LEAF_CACHE_LIMIT: usize = 100_000;

/// Why a chain did not lead to a trust anchor. `index` 0 is the leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainFailure {
    /// No anchor and no following certificate names this certificate's issuer: a foreign certificate.
    UnknownIssuer {
        /// The certificate whose issuer is unknown.
        index: usize,
    },
    /// A signature did not verify with the issuer's key.
    BadSignature {
        /// The certificate whose signature failed.
        index: usize,
    },
    /// Not SM2-with-SM3, or an issuer key that is not SM2.
    NotSm2 {
        /// The certificate.
        index: usize,
    },
    /// An issuer without the CA bit in basicConstraints.
    NotCa {
        /// The certificate used as an issuer.
        index: usize,
    },
    /// Past notAfter at appraisal time.
    Expired {
        /// The certificate (`usize::MAX`: a trust anchor).
        index: usize,
        /// Its notAfter, Unix seconds.
        not_after: u64,
    },
    /// Before notBefore at appraisal time.
    NotYetValid {
        /// The certificate (`usize::MAX`: a trust anchor).
        index: usize,
        /// Its notBefore, Unix seconds.
        not_before: u64,
    },
    /// A certificate we could not read further (extensions, SPKI).
    Malformed {
        /// The certificate.
        index: usize,
    },
}

/// What a verified chain tells about the leaf.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifiedLeaf {
    /// The leaf's SM2 public key.
    pub key: Sm2PublicKey,
    /// The leaf's serial number (DER INTEGER content bytes).
    pub serial: Vec<u8>,
    /// The issuer's Name, DER.
    pub issuer_name: Vec<u8>,
    /// SM3 of the issuer's uncompressed public key.
    pub issuer_key_sm3: [u8; 32],
    /// URIs in the leaf's subjectAltName.
    pub san_uris: Vec<String>,
}

#[derive(Clone)]
struct Issuer {
    key: Sm2PublicKey,
    vk: Sm2VerifyingKey<CertId>,
    not_before: u64,
    not_after: u64,
}

struct Anchor {
    subject: Vec<u8>,
    der: Vec<u8>,
    issuer: Issuer,
}

/// Our CA certificates (roots, or the intermediates we choose to anchor on), with the cache of verified paths.
pub struct TrustAnchors {
    anchors: Vec<Anchor>,
    verified: RwLock<HashMap<[u8; 32], Arc<Issuer>>>,
    leaves: RwLock<HashMap<[u8; 32], Arc<CachedLeaf>>>,
}

/// A leaf whose signature verified under the issuer key `leaf.issuer_key_sm3`.
struct CachedLeaf {
    leaf: VerifiedLeaf,
    not_before: u64,
    not_after: u64,
}

impl core::fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TrustAnchors")
            .field("anchors", &self.anchors.len())
            .finish_non_exhaustive()
    }
}

fn unix(t: &x509_cert::time::Time) -> u64 {
    t.to_unix_duration().as_secs()
}

/// `anchor`: a configured trust anchor, whose key checks every device chain and so gets the comb table.
fn issuer_from_cert(cert: &Certificate, anchor: bool) -> Option<Issuer> {
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .ok()?;
    let key = public_key_from_spki_der(&spki).ok()?;
    if anchor {
        key.precompute_for_verification();
    }
    let vk = key.verifying_key(CertId).ok()?;
    let v = cert.tbs_certificate().validity();
    Some(Issuer {
        key,
        vk,
        not_before: unix(&v.not_before),
        not_after: unix(&v.not_after),
    })
}

fn is_ca(cert: &Certificate) -> bool {
    matches!(
        cert.tbs_certificate().get_extension::<BasicConstraints>(),
        Ok(Some((_, BasicConstraints { ca: true, .. })))
    )
}

impl TrustAnchors {
    /// Anchors from DER certificates. Each must be an SM2 CA certificate.
    pub fn from_der(certs: &[Vec<u8>]) -> Result<Self, Error> {
        let mut anchors = Vec::with_capacity(certs.len());
        for (index, der) in certs.iter().enumerate() {
            let bad = |why| Error::InvalidAnchor { index, why };
            let cert = Certificate::from_der(der).map_err(|_| bad("not a DER certificate"))?;
            if !is_ca(&cert) {
                return Err(bad("basicConstraints CA bit not set"));
            }
            let issuer = issuer_from_cert(&cert, true).ok_or(bad("public key is not SM2"))?;
            let subject = cert
                .tbs_certificate()
                .subject()
                .to_der()
                .map_err(|_| bad("subject does not encode"))?;
            anchors.push(Anchor {
                subject,
                der: der.clone(),
                issuer,
            });
        }
        if anchors.is_empty() {
            return Err(Error::InvalidAnchor {
                index: 0,
                why: "no anchors given",
            });
        }
        Ok(Self {
            anchors,
            verified: RwLock::new(HashMap::new()),
            leaves: RwLock::new(HashMap::new()),
        })
    }

    /// Anchors from PEM text holding one or more `CERTIFICATE` blocks.
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        let blocks = smtrust_crypto::pem::blocks(pem)?;
        let ders: Vec<Vec<u8>> = blocks
            .into_iter()
            .filter(|(label, _)| label == "CERTIFICATE")
            .map(|(_, der)| der.to_vec())
            .collect();
        Self::from_der(&ders)
    }

    /// Verify `chain` (leaf first; the anchor itself may end it) at `now`.
    pub fn verify(
        &self,
        certs: &[Certificate],
        ders: &[Vec<u8>],
        now: SystemTime,
    ) -> Result<VerifiedLeaf, ChainFailure> {
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let leaf = certs.first().ok_or(ChainFailure::Malformed { index: 0 })?;
        let leaf_der = ders.first().ok_or(ChainFailure::Malformed { index: 0 })?;
        let issuer = self.issuer_of(certs, ders, 0, now)?;
        let fp = smtrust_crypto::sm3::digest(leaf_der);
        let cached = self.leaves.read().ok().and_then(|m| m.get(&fp).cloned());
        if let Some(c) = cached
            && c.leaf.issuer_key_sm3 == issuer.key.sm3_fingerprint()
        {
            check_window(0, c.not_before, c.not_after, now)?;
            return Ok(c.leaf.clone());
        }
        verify_link(leaf_der, &issuer.vk, 0)?;
        let v = leaf.tbs_certificate().validity();
        let (not_before, not_after) = (unix(&v.not_before), unix(&v.not_after));
        check_window(0, not_before, not_after, now)?;
        let malformed = ChainFailure::Malformed { index: 0 };
        let spki = leaf
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|_| malformed.clone())?;
        let key = public_key_from_spki_der(&spki).map_err(|_| ChainFailure::NotSm2 { index: 0 })?;
        let san_uris = match leaf.tbs_certificate().get_extension::<SubjectAltName>() {
            Ok(Some((_, san))) => san
                .0
                .iter()
                .filter_map(|g| match g {
                    GeneralName::UniformResourceIdentifier(u) => Some(u.as_str().to_string()),
                    _ => None,
                })
                .collect(),
            Ok(None) => Vec::new(),
            Err(_) => return Err(malformed),
        };
        let verified = VerifiedLeaf {
            key,
            serial: leaf.tbs_certificate().serial_number().as_bytes().to_vec(),
            issuer_name: leaf
                .tbs_certificate()
                .issuer()
                .to_der()
                .map_err(|_| ChainFailure::Malformed { index: 0 })?,
            issuer_key_sm3: issuer.key.sm3_fingerprint(),
            san_uris,
        };
        if let Ok(mut m) = self.leaves.write() {
            // A fleet re-attests periodically; bounded, emptied when full like the issuer cache.
            if m.len() >= LEAF_CACHE_LIMIT {
                m.clear();
            }
            m.insert(
                fp,
                Arc::new(CachedLeaf {
                    leaf: verified.clone(),
                    not_before,
                    not_after,
                }),
            );
        }
        Ok(verified)
    }

    /// The verified issuer of `certs[i]`, its path's validity checked at `now`.
    fn issuer_of(
        &self,
        certs: &[Certificate],
        ders: &[Vec<u8>],
        i: usize,
        now: u64,
    ) -> Result<Arc<Issuer>, ChainFailure> {
        let cert = certs.get(i).ok_or(ChainFailure::Malformed { index: i })?;
        let issuer_name = cert
            .tbs_certificate()
            .issuer()
            .to_der()
            .map_err(|_| ChainFailure::Malformed { index: i })?;
        let j = i + 1;
        // The anchor may be sent as the chain's last element: it is an anchor, not an intermediate.
        let next_is_anchor = ders
            .get(j)
            .is_some_and(|d| self.anchors.iter().any(|a| &a.der == d));
        if ders.get(j).is_none() || next_is_anchor {
            let anchor = self
                .anchors
                .iter()
                .find(|a| a.subject == issuer_name)
                .ok_or(ChainFailure::UnknownIssuer { index: i })?;
            let a = &anchor.issuer;
            check_window(usize::MAX, a.not_before, a.not_after, now)?;
            return Ok(Arc::new(a.clone()));
        }
        let next_der = ders
            .get(j)
            .ok_or(ChainFailure::UnknownIssuer { index: i })?;
        let fp = smtrust_crypto::sm3::digest(next_der);
        let cached = self.verified.read().ok().and_then(|m| m.get(&fp).cloned());
        if let Some(c) = cached {
            check_window(j, c.not_before, c.not_after, now)?;
            return Ok(c);
        }
        let next = certs.get(j).ok_or(ChainFailure::Malformed { index: j })?;
        let subject = next
            .tbs_certificate()
            .subject()
            .to_der()
            .map_err(|_| ChainFailure::Malformed { index: j })?;
        if subject != issuer_name {
            return Err(ChainFailure::UnknownIssuer { index: i });
        }
        if !is_ca(next) {
            return Err(ChainFailure::NotCa { index: j });
        }
        let me = issuer_from_cert(next, false).ok_or(ChainFailure::NotSm2 { index: j })?;
        let parent = self.issuer_of(certs, ders, j, now)?;
        verify_link(next_der, &parent.vk, j)?;
        let path = Arc::new(Issuer {
            not_before: me.not_before.max(parent.not_before),
            not_after: me.not_after.min(parent.not_after),
            ..me
        });
        check_window(j, path.not_before, path.not_after, now)?;
        if let Ok(mut m) = self.verified.write() {
            if m.len() >= CACHE_LIMIT {
                m.clear();
            }
            m.insert(fp, Arc::clone(&path));
        }
        Ok(path)
    }
}

fn verify_link(
    der: &[u8],
    issuer: &Sm2VerifyingKey<CertId>,
    index: usize,
) -> Result<(), ChainFailure> {
    let parts = split_signed(der).map_err(|_| ChainFailure::Malformed { index })?;
    if !is_sm2_with_sm3(&parts.algorithm) {
        return Err(ChainFailure::NotSm2 { index });
    }
    issuer
        .verify_der(parts.tbs, parts.signature)
        .map_err(|_| ChainFailure::BadSignature { index })
}

fn check_window(
    index: usize,
    not_before: u64,
    not_after: u64,
    now: u64,
) -> Result<(), ChainFailure> {
    if now < not_before {
        return Err(ChainFailure::NotYetValid { index, not_before });
    }
    if now > not_after {
        return Err(ChainFailure::Expired { index, not_after });
    }
    Ok(())
}
