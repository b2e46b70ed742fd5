//! Path building and checks for SM2 chains: webpki does the path, expiry, EKU, basicConstraints, path length
//! and name constraints; this adds KeyUsage on the end entity, the revocation hook, and a diagnosis that tells a
//! wrong distinguishing ID from a plain bad signature.

use std::sync::Arc;
use std::time::Duration;

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
            // An anchor checks a signature in every handshake it trusts: give its key the comb table.
            if let Some(key) = cert_key(c) {
                key.precompute_for_verification();
            }
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
    /// How long past its notAfter an end-entity certificate is still accepted (zero: not at all).
    expiry_grace: Duration,
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
            expiry_grace: Duration::ZERO,
        }
    }

    /// Also accept an end-entity certificate up to `grace` past its notAfter (zero, the default, disables
    /// this). Everything else is still checked: the path is verified at the certificate's notAfter (every
    /// signature, EKU, constraint), each intermediate must be valid now, and revocation is asked now. Meant
    /// for one purpose only, RFC 7030 re-enrollment "shortly after expiry": the server must then let such a
    /// peer reach nothing but renewal (see [`crate::serve::Peer::expired_in_grace`]).
    pub fn with_expiry_grace(mut self, grace: Duration) -> Self {
        self.expiry_grace = grace;
        self
    }

    /// The grace set by [`Sm2ChainVerifier::with_expiry_grace`].
    pub fn expiry_grace(&self) -> Duration {
        self.expiry_grace
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
        let verify_at = |at| {
            ee.verify_for_usage(
                CHAIN_ALGS,
                &self.roots.anchors,
                intermediates,
                at,
                usage,
                None,
                None,
            )
        };
        let path = match verify_at(now) {
            Ok(p) => p,
            Err(webpki::Error::CertExpired { .. }) if self.within_grace(end_entity, now) => {
                // Only the end entity's notAfter is relaxed: the path is verified at that instant, then every
                // intermediate must still be valid now.
                let at = UnixTime::since_unix_epoch(Duration::from_secs(
                    not_after(end_entity).unwrap_or(0),
                ));
                let p = verify_at(at).map_err(|e| self.refusal(e, end_entity, intermediates))?;
                for c in p.intermediate_certificates() {
                    let na = not_after(&c.der()).unwrap_or(0);
                    if na < now.as_secs() {
                        return Err(Refusal::Expired {
                            not_after: na,
                            now: now.as_secs(),
                        });
                    }
                }
                p
            }
            Err(e) => return Err(self.refusal(e, end_entity, intermediates)),
        };
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

    /// Whether `end_entity` expired less than the grace ago at `now`.
    fn within_grace(&self, end_entity: &CertificateDer<'_>, now: UnixTime) -> bool {
        !self.expiry_grace.is_zero()
            && not_after(end_entity).is_some_and(|na| {
                na < now.as_secs() && now.as_secs() - na <= self.expiry_grace.as_secs()
            })
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

/// A certificate's notAfter, Unix seconds.
pub(crate) fn not_after(cert: &CertificateDer<'_>) -> Option<u64> {
    let c = x509_cert::Certificate::from_der(cert.as_ref()).ok()?;
    c.tbs_certificate()
        .validity()
        .not_after
        .to_system_time()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
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
