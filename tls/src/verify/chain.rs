//! Path building and checks for SM2 chains: webpki does the path, expiry, EKU, basicConstraints, path length
//! and name constraints; this adds KeyUsage on the end entity, the revocation hook, and a diagnosis that tells a
//! wrong distinguishing ID from a plain bad signature.

use std::sync::Arc;

use der::Decode;
use rustls::DistinguishedName;
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use smtrust_crypto::sm2::{CertId, Sm2PublicKey, Tls13Id};
use webpki::{EndEntityCert, KeyUsage};
use x509_cert::ext::pkix::KeyUsages;

use super::{CHAIN_ALGS, CertRef, RevocationCheck, RevocationStatus, UnknownStatus};
use crate::error::{ConfigError, Refusal};

/// Which side's certificate is checked (the EKU purpose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Purpose {
    /// serverAuth.
    Server,
    /// clientAuth.
    Client,
}

/// Parsed trust anchors plus the subjects a server lists in CertificateRequest.certificate_authorities.
#[derive(Debug, Clone)]
pub struct TrustRoots {
    anchors: Vec<TrustAnchor<'static>>,
    subjects: Vec<DistinguishedName>,
}

impl TrustRoots {
    /// Trust these CA certificates (DER). At least one is required.
    pub fn new(certs: &[CertificateDer<'_>]) -> Result<Self, ConfigError> {
        let mut anchors = Vec::with_capacity(certs.len());
        for (index, c) in certs.iter().enumerate() {
            let ta = webpki::anchor_from_trusted_cert(c).map_err(|e| ConfigError::TrustAnchor {
                index,
                reason: format!("{e:?}"),
            })?;
            anchors.push(ta.to_owned());
        }
        if anchors.is_empty() {
            return Err(ConfigError::TrustAnchor {
                index: 0,
                reason: "no trust anchors".into(),
            });
        }
        let subjects = anchors
            .iter()
            .map(|a| DistinguishedName::in_sequence(a.subject.as_ref()))
            .collect();
        Ok(Self { anchors, subjects })
    }

    /// The anchors' subject names (full DER).
    pub fn subjects(&self) -> &[DistinguishedName] {
        &self.subjects
    }
}

/// Verifies an SM2 chain for one purpose against [`TrustRoots`] and a [`RevocationCheck`].
#[derive(Debug, Clone)]
pub struct Sm2ChainVerifier {
    roots: Arc<TrustRoots>,
    revocation: Arc<dyn RevocationCheck>,
    unknown: UnknownStatus,
}

impl Sm2ChainVerifier {
    /// A verifier; `unknown` decides what a [`RevocationStatus::Unknown`] answer means.
    pub fn new(
        roots: TrustRoots,
        revocation: Arc<dyn RevocationCheck>,
        unknown: UnknownStatus,
    ) -> Self {
        Self {
            roots: Arc::new(roots),
            revocation,
            unknown,
        }
    }

    /// The roots.
    pub fn roots(&self) -> &TrustRoots {
        &self.roots
    }

    /// Verify `end_entity` (+ `intermediates`) for `purpose` at `now`; with `server_name`, also that the
    /// certificate names it.
    pub fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        purpose: Purpose,
        server_name: Option<&ServerName<'_>>,
        now: UnixTime,
    ) -> Result<(), Refusal> {
        let ee = EndEntityCert::try_from(end_entity)
            .map_err(|e| Refusal::BadCertificate(format!("{e:?}")))?;
        let usage = match purpose {
            Purpose::Server => KeyUsage::server_auth(),
            Purpose::Client => KeyUsage::client_auth(),
        };
        let path = ee
            .verify_for_usage(
                CHAIN_ALGS,
                &self.roots.anchors,
                intermediates,
                now,
                usage,
                None,
                None,
            )
            .map_err(|e| self.refusal(e, end_entity, intermediates))?;
        check_key_usage(end_entity)?;
        if let Some(name) = server_name {
            ee.verify_is_valid_for_subject_name(name)
                .map_err(|_| Refusal::NameMismatch)?;
        }
        // Revocation: the end entity, then each intermediate of the path that was actually built.
        let mut certs: Vec<(&[u8], &[u8])> = vec![(ee.serial(), ee.issuer())];
        certs.extend(
            path.intermediate_certificates()
                .map(|c| (c.serial(), c.issuer())),
        );
        for (depth, (serial, issuer)) in certs.into_iter().enumerate() {
            let issuer = wrap_sequence(issuer);
            let status = self.revocation.status(
                &CertRef {
                    serial,
                    issuer: &issuer,
                    depth,
                },
                now,
            );
            let serial = hex::encode(serial);
            match (status, self.unknown) {
                (RevocationStatus::Good, _) | (RevocationStatus::Unknown, UnknownStatus::Allow) => {
                }
                (RevocationStatus::Revoked, _) => return Err(Refusal::Revoked { serial }),
                (RevocationStatus::Suspended, _) => return Err(Refusal::Suspended { serial }),
                (RevocationStatus::Unknown, UnknownStatus::Refuse) => {
                    return Err(Refusal::RevocationUnknown { serial });
                }
            }
        }
        Ok(())
    }

    fn refusal(
        &self,
        e: webpki::Error,
        ee: &CertificateDer<'_>,
        inter: &[CertificateDer<'_>],
    ) -> Refusal {
        use webpki::Error as W;
        match e {
            W::UnknownIssuer => Refusal::UnknownCa,
            W::CertExpired { time, not_after } => Refusal::Expired {
                not_after: not_after.as_secs(),
                now: time.as_secs(),
            },
            W::CertNotValidYet { .. } => Refusal::NotYetValid,
            W::RequiredEkuNotFoundContext(_) | W::EmptyEkuExtension => {
                Refusal::WrongKeyUsage("extended key usage lacks the purpose")
            }
            W::CaUsedAsEndEntity => Refusal::WrongKeyUsage("CA certificate used as end entity"),
            W::NameConstraintViolation => Refusal::NameConstraint,
            W::PathLenConstraintViolated => Refusal::PathLength,
            W::InvalidSignatureForPublicKey => self.diagnose_id(ee, inter),
            W::UnsupportedSignatureAlgorithmContext(_)
            | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
                Refusal::BadCertificate("signature algorithm is not SM2-with-SM3".into())
            }
            other => Refusal::BadCertificate(format!("{other:?}")),
        }
    }

    /// A chain signature failed: does some link verify under another ID? Only runs on the failure path.
    fn diagnose_id(&self, ee: &CertificateDer<'_>, inter: &[CertificateDer<'_>]) -> Refusal {
        let mut keys: Vec<Sm2PublicKey> = inter.iter().filter_map(|c| cert_key(c)).collect();
        keys.extend(self.roots.anchors.iter().filter_map(|a| {
            let spki = webpki::spki_for_anchor(a);
            smtrust_crypto::x509::public_key_from_spki_der(spki.as_ref()).ok()
        }));
        for signed in std::iter::once(ee).chain(inter.iter()) {
            let Ok(parts) = smtrust_crypto::x509::split_signed(signed.as_ref()) else {
                continue;
            };
            for k in keys.iter().take(16) {
                if k.verifying_key(CertId)
                    .and_then(|v| v.verify_der(parts.tbs, parts.signature))
                    .is_ok()
                {
                    continue;
                }
                // Diagnosis only: the chain is already refused; this names why.
                if smtrust_crypto::sm2::danger::verify_with_empty_id(k, parts.tbs, parts.signature)
                    .is_ok()
                {
                    return Refusal::WrongDistinguishingId("certificate signed with the empty ID");
                }
                if k.verifying_key(Tls13Id)
                    .and_then(|v| v.verify_der(parts.tbs, parts.signature))
                    .is_ok()
                {
                    return Refusal::WrongDistinguishingId(
                        "certificate signed with the TLS 1.3 ID",
                    );
                }
            }
        }
        Refusal::BadSignature
    }
}

/// The SM2 key of a certificate, if it has one.
pub(crate) fn cert_key(cert: &CertificateDer<'_>) -> Option<Sm2PublicKey> {
    let c = x509_cert::Certificate::from_der(cert.as_ref()).ok()?;
    let spki = der::Encode::to_der(c.tbs_certificate().subject_public_key_info()).ok()?;
    smtrust_crypto::x509::public_key_from_spki_der(&spki).ok()
}

/// RFC 5280 §4.2.1.3: when KeyUsage is present, a TLS end entity needs digitalSignature. webpki does not look.
fn check_key_usage(cert: &CertificateDer<'_>) -> Result<(), Refusal> {
    let c = x509_cert::Certificate::from_der(cert.as_ref())
        .map_err(|e| Refusal::BadCertificate(e.to_string()))?;
    let ku = c
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::KeyUsage>()
        .map_err(|e| Refusal::BadCertificate(e.to_string()))?;
    match ku {
        Some((_, ku)) if !ku.0.contains(KeyUsages::DigitalSignature) => {
            Err(Refusal::WrongKeyUsage("key usage lacks digitalSignature"))
        }
        _ => Ok(()),
    }
}

/// Put back the SEQUENCE header webpki strips from Names (an over-long Name cannot reach here: webpki parsed it).
fn wrap_sequence(contents: &[u8]) -> Vec<u8> {
    der::asn1::AnyRef::new(der::Tag::Sequence, contents)
        .and_then(|a| der::Encode::to_der(&a))
        .unwrap_or_default()
}
