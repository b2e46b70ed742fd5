//! The issuing CA as the factory uses it: [`crate::Issuer`] with the built-in device-identity profile.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::asn1::BitString;
use der::{Decode, Encode};
use smtrust_crypto::sm2::{CertId, Sm2PublicKey, Sm2SecretKey};
use smtrust_crypto::x509::{public_key_to_spki_der, sm2_with_sm3};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::FactoryError;
use crate::{
    CsrDistId, DeviceId, IssuerConfig, Namespace, Profile, ProfileKind, Serial, VerifiedCsr,
};

/// The issuing CA of a batch: a [`crate::Issuer`] (namespace enforced by it), the device profile and the
/// chain written into bundles.
pub struct Issuer {
    ca: Arc<crate::Issuer>,
    profile: Profile,
    chain_pem: String,
    public_key: Sm2PublicKey,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// From PEM: `chain_pem` holds the issuer certificate first, then any above it; `key` is the issuer's
    /// private key (PKCS#8 or SEC1, PEM or DER; `passphrase` if encrypted). Device ids must start with
    /// `namespace` (empty: any); certificates live `days`.
    pub fn from_pem(
        chain_pem: &str,
        key: &[u8],
        passphrase: Option<&[u8]>,
        namespace: &str,
        days: u32,
    ) -> Result<Self, FactoryError> {
        let blocks = smtrust_crypto::pem::blocks(chain_pem.as_bytes())?;
        let mut chain = String::new();
        let mut first = None;
        for (label, der) in &blocks {
            if label == "CERTIFICATE" {
                first.get_or_insert_with(|| der.to_vec());
                chain.push_str(&smtrust_crypto::pem::encode("CERTIFICATE", der)?);
            }
        }
        let cert_der = first.ok_or_else(|| FactoryError::Issuer("no CERTIFICATE block".into()))?;
        let sk = smtrust_crypto::pem::decode_private_key(key, passphrase)?;
        let mut config = IssuerConfig::new("factory");
        config.namespace =
            Namespace::new(namespace).map_err(|e| FactoryError::Issuer(e.to_string()))?;
        let ca = crate::Issuer::import(&cert_der, Arc::new(sk.signing_key(CertId)?), config)
            .map_err(|e| FactoryError::Issuer(e.to_string()))?;
        Ok(Self::from_ca(Arc::new(ca), chain, days))
    }

    /// The issuing CA of `smtrust ca init` (see [`crate::home`]): `chain_pem` is the issuing CA first, then
    /// the certificates above it. Its namespace and label apply; certificates live `days`.
    pub fn from_ca(ca: Arc<crate::Issuer>, chain_pem: String, days: u32) -> Self {
        let mut profile = Profile::builtin("factory-device", ProfileKind::DeviceIdentity);
        profile.validity_secs = u64::from(days) * 86_400;
        let public_key = ca.signer().public_key().clone();
        Self {
            ca,
            profile,
            chain_pem,
            public_key,
        }
    }

    /// The issuer label: the `issuer` of the CA store's rows.
    pub fn label(&self) -> &str {
        self.ca.label()
    }

    /// The profile name recorded with each certificate.
    pub fn profile_name(&self) -> &str {
        &self.profile.name
    }

    /// The issuer certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        self.ca.certificate_der()
    }

    /// The chain as PEM, issuer first (what a bundle's chain section holds).
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// The issuer's public key.
    pub fn public_key(&self) -> &Sm2PublicKey {
        &self.public_key
    }

    /// The namespace prefix device ids must carry.
    pub fn namespace(&self) -> &str {
        self.ca.config().namespace.prefix()
    }

    /// SM3 of the issuer certificate, hex: the journal's key for "this CA".
    pub fn fingerprint(&self) -> String {
        hex::encode(smtrust_crypto::sm3::digest(self.ca.certificate_der()))
    }

    /// Issue through [`crate::Issuer::prepare`] and [`crate::Issuer::sign`]. `Ok(Err(reason))` is a refusal
    /// of this device (the requester must act); `Err` stops the batch.
    pub(crate) fn issue(
        &self,
        device_id: &str,
        csr: &VerifiedCsr,
        serial: &[u8],
        now: u64,
    ) -> Result<Result<Vec<u8>, String>, FactoryError> {
        let refuse = |e: crate::Error| -> Result<Result<Vec<u8>, String>, FactoryError> {
            if e.is_request_error() {
                Ok(Err(e.to_string()))
            } else {
                Err(FactoryError::Issuer(e.to_string()))
            }
        };
        let id = match DeviceId::new(device_id) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let prepared = match self.ca.prepare(&self.profile, csr, Some(&id), &[]) {
            Ok(p) => p,
            Err(e) => return refuse(e),
        };
        let serial = Serial::from_slice(serial)
            .ok_or_else(|| FactoryError::Issuer("journal serial has the wrong length".into()))?;
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(now);
        match self.ca.sign(&prepared, serial, at) {
            Ok(c) => Ok(Ok(c.der)),
            Err(e) => refuse(e),
        }
    }
}

/// The request a generated key stands for: the factory made the key itself, so possession is given.
pub(crate) fn generated_key_request(
    device_id: &str,
    sk: &Sm2SecretKey,
) -> Result<VerifiedCsr, FactoryError> {
    let spki_der = public_key_to_spki_der(sk.public_key())?;
    Ok(VerifiedCsr {
        subject: Name::from_str(&format!("CN={device_id}"))?,
        public_key: sk.public_key().clone(),
        spki: SubjectPublicKeyInfoOwned::from_der(&spki_der)?,
        requested_extensions: Vec::new(),
        signed_with: CsrDistId::GmT,
        der: Vec::new(),
    })
}

/// A development issuer: a self-signed SM2 CA named `CN=<name>` (via [`crate::Issuer::create_root`]),
/// returned as (certificate PEM, key PEM). For tests, benchmarks and `smtrust factory dev-issuer`.
pub fn self_signed_issuer(name: &str, now: u64) -> Result<(String, String), FactoryError> {
    let sk = Sm2SecretKey::generate()?;
    let serial = Serial::random().map_err(|e| FactoryError::Issuer(e.to_string()))?;
    let ca = crate::Issuer::create_root(
        Arc::new(sk.signing_key(CertId)?),
        &format!("CN={name}"),
        20 * 365 * 86_400,
        crate::CaLimits { path_len: Some(0) },
        serial,
        SystemTime::UNIX_EPOCH + Duration::from_secs(now),
        IssuerConfig::new("factory-dev"),
    )
    .map_err(|e| FactoryError::Issuer(e.to_string()))?;
    let cert_pem = smtrust_crypto::pem::encode("CERTIFICATE", ca.certificate_der())?.to_string();
    let key_pem = smtrust_crypto::pem::encode_private_key(&sk)?.to_string();
    Ok((cert_pem, key_pem))
}

/// A CSR for tests and benchmarks, as a device would make it.
#[derive(Debug)]
#[non_exhaustive]
pub struct DevCsr {
    /// The CSR, DER.
    pub der: Vec<u8>,
}

/// Make a PKCS#10 CSR with subject `CN=<device_id>`, signed by `sk` under the certificate ID.
pub fn make_csr(device_id: &str, sk: &Sm2SecretKey) -> Result<DevCsr, FactoryError> {
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: Name::from_str(&format!("CN={device_id}"))?,
        public_key: SubjectPublicKeyInfoOwned::from_der(&public_key_to_spki_der(sk.public_key())?)?,
        attributes: Default::default(),
    };
    let sig = sk.signing_key(CertId)?.sign(&info.to_der()?)?;
    let req = CertReq {
        info,
        algorithm: sm2_with_sm3(),
        signature: BitString::from_bytes(sig.as_der())?,
    };
    Ok(DevCsr { der: req.to_der()? })
}
