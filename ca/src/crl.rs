//! CRLs (RFC 5280 §5): full and delta, signed by the issuing CA.
//!
//! `TbsCertList` is filled here rather than with x509-cert 0.3.0's `CrlBuilder`, which copies the issuer
//! certificate's own AKI into the CRL; for an intermediate that names the root's key and OpenSSL then fails
//! with "unable to get certificate CRL". Our AKI is the issuer's SKI.

use std::time::SystemTime;

use const_oid::db::rfc5280;
use der::Encode;
use der::asn1::{BitString, Uint};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::time::Time;
use x509_cert::{Version, ext::pkix::FreshestCrl};

use crate::Error;
use crate::authority::{Issuer, ext};
use crate::revocation::RevocationReason;
use crate::serial::Serial;

/// One revoked (or, in a delta, un-held) certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CrlEntry {
    /// The serial.
    pub serial: Serial,
    /// revocationDate, Unix seconds.
    pub revoked_at: u64,
    /// The reason; `None` with `removed` for removeFromCRL.
    pub reason: Option<RevocationReason>,
    /// Delta CRLs only: a held certificate was resumed (reason removeFromCRL, RFC 5280 §5.2.4).
    pub removed: bool,
}

impl CrlEntry {
    /// A revoked or held entry.
    pub fn revoked(serial: Serial, revoked_at: u64, reason: RevocationReason) -> Self {
        Self {
            serial,
            revoked_at,
            reason: Some(reason),
            removed: false,
        }
    }

    /// A removeFromCRL entry (delta CRLs).
    pub fn removed(serial: Serial, at: u64) -> Self {
        Self {
            serial,
            revoked_at: at,
            reason: None,
            removed: true,
        }
    }
}

/// Which CRL to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrlKind {
    /// A full CRL.
    Full,
    /// A delta CRL on top of the full CRL numbered `base`.
    Delta {
        /// The base CRL's number (deltaCRLIndicator).
        base: u64,
    },
}

fn reason_ext(code: CrlReason) -> Result<x509_cert::ext::Extension, Error> {
    ext::ext(rfc5280::ID_CE_CRL_REASONS, false, &code)
}

pub(crate) fn to_crl_reason(r: RevocationReason) -> CrlReason {
    match r {
        RevocationReason::Unspecified => CrlReason::Unspecified,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::CaCompromise => CrlReason::CaCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::CertificateHold => CrlReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => CrlReason::AaCompromise,
    }
}

fn time(secs: u64) -> Result<Time, Error> {
    Ok(Time::try_from(
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs),
    )?)
}

fn uint(n: u64) -> Result<Uint, Error> {
    Ok(Uint::new(&n.to_be_bytes())?)
}

/// Build and sign a CRL. `number` is the cRLNumber (monotonic per issuer, shared by full and delta CRLs).
pub fn build(
    issuer: &Issuer,
    kind: CrlKind,
    number: u64,
    entries: &[CrlEntry],
    this_update: SystemTime,
    next_update: SystemTime,
) -> Result<Vec<u8>, Error> {
    let mut revoked = Vec::with_capacity(entries.len());
    for e in entries {
        let mut exts = Vec::new();
        if e.removed {
            exts.push(reason_ext(CrlReason::RemoveFromCRL)?);
        } else if let Some(r) = e.reason {
            // RFC 5280 §5.3.1: the reason code SHOULD be absent rather than unspecified.
            if r != RevocationReason::Unspecified {
                exts.push(reason_ext(to_crl_reason(r))?);
            }
        }
        revoked.push(RevokedCert {
            serial_number: e.serial.to_serial_number()?,
            revocation_date: time(e.revoked_at)?,
            crl_entry_extensions: (!exts.is_empty()).then_some(exts),
        });
    }
    let mut crl_exts = vec![
        ext::aki(issuer.key_id())?,
        ext::ext(rfc5280::ID_CE_CRL_NUMBER, false, &uint(number)?)?,
    ];
    match kind {
        CrlKind::Full => {
            if let Some(u) = &issuer.config().delta_crl_url {
                let f: Vec<DistributionPoint> = vec![ext::distribution_point(u)?];
                crl_exts.push(ext::ext(
                    rfc5280::ID_CE_FRESHEST_CRL,
                    false,
                    &FreshestCrl(f),
                )?);
            }
        }
        CrlKind::Delta { base } => {
            crl_exts.push(ext::ext(
                rfc5280::ID_CE_DELTA_CRL_INDICATOR,
                true,
                &uint(base)?,
            )?);
        }
    }
    let tbs = TbsCertList {
        version: Version::V2,
        signature: smtrust_crypto::x509::sm2_with_sm3(),
        issuer: issuer.subject().clone(),
        this_update: Time::try_from(this_update)?,
        next_update: Some(Time::try_from(next_update)?),
        revoked_certificates: (!revoked.is_empty()).then_some(revoked),
        crl_extensions: Some(crl_exts),
    };
    let tbs_der = tbs.to_der()?;
    let sig = issuer.signer().sign(&tbs_der)?;
    let crl = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: smtrust_crypto::x509::sm2_with_sm3(),
        signature: BitString::from_bytes(sig.as_der())?,
    };
    Ok(crl.to_der()?)
}

/// PEM `X509 CRL`.
pub fn to_pem(der: &[u8]) -> String {
    smtrust_crypto::pem::encode("X509 CRL", der)
        .map(|z| z.to_string())
        .unwrap_or_default()
}
