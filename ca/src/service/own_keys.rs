//! Certificates for the service's own keys (keystore handles): the API and gateway TLS keys, the attestation
//! and passport signers. The keystore and the CA are one trust domain, so there is no CSR: a TLS-purpose key
//! cannot sign one with the certificate ID, by design of the keystore's purposes.

use smtrust_crypto::sm2::Sm2PublicKey;

use super::CaService;
use crate::authority::IssuedCert;
use crate::csr::{CsrDistId, VerifiedCsr};
use crate::profile::Profile;
use crate::store::Store;
use crate::{Error, StoreError};

impl<S: Store> CaService<S> {
    /// Issue a certificate for `public_key` (a key this service holds) under `profile` (not necessarily one of
    /// the named profiles: the caller may add SAN URIs such as `urn:smtrust:service:attestation`), with
    /// `subject` (RFC 4514) and `dns_names`. Recorded like every certificate, so it can be revoked.
    pub async fn issue_for_key(
        &self,
        issuer: &str,
        profile: &Profile,
        public_key: &Sm2PublicKey,
        subject: &str,
        dns_names: &[String],
    ) -> Result<IssuedCert, Error> {
        let iss = self.issuer(issuer)?;
        let spki_der = smtrust_crypto::x509::public_key_to_spki_der(public_key)?;
        let spki = <spki::SubjectPublicKeyInfoOwned as der::Decode>::from_der(&spki_der)?;
        let pseudo = VerifiedCsr {
            subject: subject.parse()?,
            public_key: public_key.clone(),
            spki,
            requested_extensions: vec![],
            signed_with: CsrDistId::GmT,
            der: vec![],
        };
        let prepared = iss.prepare(profile, &pseudo, None, dns_names);
        let mut out = self.sign_and_record(iss, vec![prepared]).await?;
        out.pop()
            .unwrap_or(Err(StoreError::Corrupt("empty result").into()))
    }
}
