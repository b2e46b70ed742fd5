//! Appraisal, the sync core: evidence bytes + certificate status + nonce outcome + reference values → result.
//!
//! Two phases so storage stays outside: [`Appraiser::check`] decodes and authenticates (chain, SAN URI,
//! status, evidence signature); the caller then consumes the nonce (only for authenticated evidence, so a
//! forger cannot burn a device's challenge) and looks up reference values; [`Appraiser::finish`] compares and
//! produces the result. Every finding becomes a reason; nothing here returns "affirming" unless every check
//! ran and passed.

use std::time::{Duration, SystemTime};

use smtrust_crypto::sm2::CertId;

use crate::chain::{ChainFailure, TrustAnchors, VerifiedLeaf};
use crate::challenge::{Nonce, NonceOutcome};
use crate::ear::{AttestationResult, Reason, TrustVector, claim};
use crate::evidence::{Evidence, MeasurementKind, decode_evidence};
use crate::identity::unix;
use crate::jws::DecodeError;
use crate::reference::ReferenceValues;
use crate::{DeviceId, Error};

/// What the CA says about a certificate now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertStatus {
    /// Issued by us and neither revoked nor suspended.
    Good,
    /// Revoked.
    Revoked,
    /// Suspended (certificateHold).
    Suspended,
    /// Not a serial this issuer issued.
    Unknown,
}

/// The certificate a status question is about.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CertRef<'a> {
    /// The issuer's Name, DER.
    pub issuer_name: &'a [u8],
    /// SM3 of the issuer's uncompressed public key.
    pub issuer_key_sm3: &'a [u8; 32],
    /// Serial number (DER INTEGER content bytes).
    pub serial: &'a [u8],
}

/// Revocation and suspension, answered by the CA (the server wires `ca`'s in-memory revocation set here).
/// Sync and fast: called once per appraisal.
pub trait CertificateStatus: Send + Sync {
    /// Status of `cert` at `now`.
    fn status(&self, cert: &CertRef<'_>, now: SystemTime) -> CertStatus;
}

/// Appraisal settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AppraisalConfig {
    /// How long a result is valid (`exp - iat`). Default 1 hour.
    pub result_validity: Duration,
}

impl Default for AppraisalConfig {
    fn default() -> Self {
        Self {
            result_validity: Duration::from_secs(3600),
        }
    }
}

/// The appraiser: trust anchors (with their verified-path cache) and settings. Share it across threads.
#[derive(Debug)]
pub struct Appraiser {
    anchors: TrustAnchors,
    config: AppraisalConfig,
}

/// Evidence after the first phase.
#[derive(Debug)]
pub struct Checked {
    decode_error: Option<DecodeError>,
    evidence: Option<Evidence>,
    leaf: Option<VerifiedLeaf>,
    authenticated: bool,
    vector: TrustVector,
    reasons: Vec<Reason>,
}

impl Checked {
    /// True when the chain leads to our CA, the SAN URI names the claimed device and the evidence signature
    /// verifies with the leaf's key (the certificate may still be revoked).
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    /// The nonce to consume: only for authenticated evidence.
    pub fn nonce(&self) -> Option<&Nonce> {
        self.evidence
            .as_ref()
            .filter(|_| self.authenticated)
            .map(|e| &e.claims.nonce)
    }

    /// Why the evidence did not decode (then there is nothing else to appraise).
    pub fn decode_error(&self) -> Option<&DecodeError> {
        self.decode_error.as_ref()
    }

    /// Takes the decode error out, for a caller that refuses undecodable input outright.
    pub fn take_decode_error(&mut self) -> Option<DecodeError> {
        self.decode_error.take()
    }

    /// The claimed device ID, if the evidence decoded.
    pub fn device_id(&self) -> Option<&DeviceId> {
        self.evidence.as_ref().map(|e| &e.claims.device_id)
    }

    /// `(product model, firmware version)` to look reference values up by, if the evidence decoded.
    pub fn reference_key(&self) -> Option<(&str, &str)> {
        self.evidence.as_ref().map(|e| {
            (
                e.claims.product_model.as_str(),
                e.claims.firmware_version.as_str(),
            )
        })
    }
}

/// A finished appraisal.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Appraisal {
    /// The result, unsigned.
    pub result: AttestationResult,
    /// Authenticated and fresh: safe to store as this device's latest result and to act on. Results for
    /// unauthenticated or replayed evidence are returned to the caller but must not overwrite a device's
    /// state (anyone could send them).
    pub bound: bool,
}

fn worsen(slot: &mut i8, value: i8) {
    // Our claim constants grow with severity.
    if value > *slot {
        *slot = value;
    }
}

impl Appraiser {
    /// An appraiser for evidence whose chains lead to `anchors`.
    pub fn new(anchors: TrustAnchors, config: AppraisalConfig) -> Self {
        Self { anchors, config }
    }

    /// The anchors (e.g. to verify results with the same cache).
    pub fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    /// Phase 1: decode and authenticate.
    pub fn check(
        &self,
        evidence: &[u8],
        status: &dyn CertificateStatus,
        now: SystemTime,
    ) -> Checked {
        let mut c = Checked {
            decode_error: None,
            evidence: None,
            leaf: None,
            authenticated: false,
            vector: TrustVector::default(),
            reasons: Vec::new(),
        };
        let ev = match decode_evidence(evidence) {
            Ok(ev) => ev,
            Err(e) => {
                c.vector.instance_identity = claim::CRYPTO_FAILED;
                c.reasons.push(Reason::Malformed {
                    detail: e.to_string(),
                });
                c.decode_error = Some(e);
                return c;
            }
        };
        match self.anchors.verify(&ev.certificates, &ev.chain, now) {
            Err(f) => {
                c.vector.instance_identity = claim::CONTRAINDICATED;
                c.reasons.push(chain_reason(f));
            }
            Ok(leaf) => {
                let san = ev.claims.device_id.san_uri();
                let sig_ok = leaf
                    .key
                    .verifying_key(CertId)
                    .and_then(|vk| vk.verify(&ev.signing_input, &ev.signature))
                    .is_ok();
                if !leaf.san_uris.contains(&san) {
                    c.reasons.push(Reason::DeviceIdMismatch);
                    worsen(&mut c.vector.instance_identity, claim::CONTRAINDICATED);
                }
                if !sig_ok {
                    c.reasons.push(Reason::EvidenceSignatureInvalid);
                    worsen(&mut c.vector.instance_identity, claim::CRYPTO_FAILED);
                }
                c.authenticated = sig_ok && c.reasons.is_empty();
                let cert = CertRef {
                    issuer_name: &leaf.issuer_name,
                    issuer_key_sm3: &leaf.issuer_key_sm3,
                    serial: &leaf.serial,
                };
                let reason = match status.status(&cert, now) {
                    CertStatus::Good => None,
                    CertStatus::Revoked => Some(Reason::CertificateRevoked),
                    CertStatus::Suspended => Some(Reason::CertificateSuspended),
                    CertStatus::Unknown => Some(Reason::CertificateStatusUnknown),
                };
                if let Some(r) = reason {
                    c.reasons.push(r);
                    worsen(&mut c.vector.instance_identity, claim::CONTRAINDICATED);
                }
                c.leaf = Some(leaf);
            }
        }
        c.evidence = Some(ev);
        c
    }

    /// Phase 2: freshness and reference values. `nonce` is what consuming [`Checked::nonce`] found (`None`
    /// when it was not consumed); `refs` the latest reference values for [`Checked::reference_key`].
    pub fn finish(
        &self,
        checked: Checked,
        nonce: Option<NonceOutcome>,
        refs: Option<&ReferenceValues>,
        now: SystemTime,
    ) -> Result<Appraisal, Error> {
        let Checked {
            decode_error: _,
            evidence,
            leaf,
            authenticated,
            mut vector,
            mut reasons,
        } = checked;
        let mut fresh = false;
        if let Some(ev) = evidence.as_ref().filter(|_| authenticated) {
            let (r, ok) = match nonce {
                Some(NonceOutcome::Fresh(ch)) if ch.device_id == ev.claims.device_id => {
                    (None, true)
                }
                Some(NonceOutcome::Fresh(_)) => (Some(Reason::NonceOtherDevice), false),
                Some(NonceOutcome::Expired(ch)) => (
                    Some(Reason::NonceExpired {
                        expired_at: ch.expires_at,
                    }),
                    false,
                ),
                Some(NonceOutcome::AlreadyUsed(_)) => (Some(Reason::NonceReplayed), false),
                Some(NonceOutcome::Unknown) | None => (Some(Reason::NonceUnknown), false),
            };
            fresh = ok;
            match r {
                Some(r) => {
                    reasons.push(r);
                    worsen(&mut vector.instance_identity, claim::CONTRAINDICATED);
                }
                None => worsen(&mut vector.instance_identity, claim::AFFIRMING),
            }
            compare(ev, refs, &mut vector, &mut reasons);
        }
        let issued_at = unix(now)?;
        let result = AttestationResult {
            status: vector.status(),
            trust_vector: vector,
            reasons,
            device_id: evidence.as_ref().map(|e| e.claims.device_id.clone()),
            cert_serial: leaf.as_ref().map(|l| hex::encode(&l.serial)),
            nonce: evidence
                .as_ref()
                .map(|e| crate::jws::b64url(e.claims.nonce.as_bytes())),
            policy_id: refs.map(ReferenceValues::policy_id),
            issued_at,
            expires_at: issued_at.saturating_add(self.config.result_validity.as_secs()),
        };
        Ok(Appraisal {
            bound: authenticated && fresh,
            result,
        })
    }
}

fn compare(
    ev: &Evidence,
    refs: Option<&ReferenceValues>,
    v: &mut TrustVector,
    reasons: &mut Vec<Reason>,
) {
    let Some(refs) = refs else {
        reasons.push(Reason::FirmwareUnknown {
            product_model: ev.claims.product_model.clone(),
            firmware_version: ev.claims.firmware_version.clone(),
        });
        worsen(&mut v.executables, claim::UNRECOGNIZED);
        worsen(&mut v.configuration, claim::UNRECOGNIZED);
        worsen(&mut v.hardware, claim::UNRECOGNIZED);
        return;
    };
    worsen(&mut v.executables, claim::AFFIRMING);
    worsen(&mut v.configuration, claim::AFFIRMING);
    worsen(&mut v.hardware, claim::AFFIRMING);
    let slot = |v: &mut TrustVector, kind: MeasurementKind, value: i8| match kind {
        MeasurementKind::Configuration => worsen(&mut v.configuration, value),
        _ => worsen(&mut v.executables, value),
    };
    for r in &refs.measurements {
        match ev.claims.measurements.iter().find(|m| m.name == r.name) {
            None => {
                reasons.push(Reason::MeasurementMissing {
                    name: r.name.clone(),
                });
                slot(v, r.kind, claim::CONTRAINDICATED);
            }
            Some(m) if m.kind != r.kind || !r.digests.contains(&m.digest) => {
                reasons.push(Reason::MeasurementMismatch {
                    name: r.name.clone(),
                });
                slot(v, r.kind, claim::CONTRAINDICATED);
            }
            Some(_) => {}
        }
    }
    for m in &ev.claims.measurements {
        if !refs.measurements.iter().any(|r| r.name == m.name) {
            reasons.push(Reason::MeasurementUnexpected {
                name: m.name.clone(),
            });
            slot(v, m.kind, claim::UNRECOGNIZED);
        }
    }
    if ev.claims.debug == crate::evidence::DebugState::Enabled && !refs.debug_allowed {
        reasons.push(Reason::DebugEnabled);
        worsen(&mut v.hardware, claim::CONTRAINDICATED);
    }
}

fn chain_reason(f: ChainFailure) -> Reason {
    match f {
        ChainFailure::UnknownIssuer { index } => Reason::CertificateForeign { index },
        ChainFailure::BadSignature { index } => Reason::CertificateBadSignature { index },
        ChainFailure::Expired { index, not_after } => {
            Reason::CertificateExpired { index, not_after }
        }
        ChainFailure::NotYetValid { index, not_before } => {
            Reason::CertificateNotYetValid { index, not_before }
        }
        ChainFailure::NotSm2 { index }
        | ChainFailure::NotCa { index }
        | ChainFailure::Malformed { index } => Reason::CertificateUnusable { index },
    }
}
