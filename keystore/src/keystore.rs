//! The façade callers hold: typed signing handles over any [`Backend`].

use core::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use der::{Decode, Encode};
use smtrust_crypto::sm2::{
    CertId, DistinguishingId, Sm2PublicKey, Sm2Signature, Sm2Signer, Tls13Id,
};
use zeroize::Zeroizing;

use crate::Error;
use crate::backend::{Backend, InitMethod, Status, Unlock};
use crate::key::{KeyId, KeyInfo, KeyPurpose, KeyUse};
use crate::sealed::SealedDir;

/// The keystore: cheap to clone, `Send + Sync`, every method takes `&self`.
#[derive(Clone)]
pub struct Keystore {
    backend: Arc<dyn Backend>,
}

impl core::fmt::Debug for Keystore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Keystore").finish_non_exhaustive()
    }
}

/// A distinguishing ID a handle can sign with; maps the type to the [`KeyUse`] the purpose must permit.
pub trait HandleId: DistinguishingId + Default {
    /// The use checked against the key's purpose.
    const USE: KeyUse;
}

impl HandleId for CertId {
    const USE: KeyUse = KeyUse::SignCertId;
}

impl HandleId for Tls13Id {
    const USE: KeyUse = KeyUse::SignTls13Id;
}

/// A signing handle: signs with one stored key under ID `I`, never holds key bytes. Signing fails with
/// [`Error::Sealed`] once the keystore is sealed and [`Error::NotFound`] once the key is destroyed.
pub struct KeyHandle<I: HandleId> {
    backend: Arc<dyn Backend>,
    id: KeyId,
    public: Sm2PublicKey,
    _id: PhantomData<fn() -> I>,
}

impl<I: HandleId> KeyHandle<I> {
    /// The key's id.
    pub fn key_id(&self) -> KeyId {
        self.id
    }
}

impl<I: HandleId> Clone for KeyHandle<I> {
    fn clone(&self) -> Self {
        Self {
            backend: Arc::clone(&self.backend),
            id: self.id,
            public: self.public.clone(),
            _id: PhantomData,
        }
    }
}

impl<I: HandleId> core::fmt::Debug for KeyHandle<I> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyHandle")
            .field("id", &self.id)
            .field("distid", &I::default())
            .field("public", &self.public)
            .finish()
    }
}

impl<I: HandleId> Sm2Signer<I> for KeyHandle<I> {
    fn public_key(&self) -> &Sm2PublicKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Sm2Signature, smtrust_crypto::Error> {
        // `Sm2Signer` speaks the crypto crate's error; keystore refusals (sealed, destroyed, purpose) become
        // an `Internal` naming the refusal, and are logged with the real cause.
        self.backend.sign(&self.id, I::USE, msg).map_err(|e| {
            tracing::debug!(key_id = %self.id, error = %e, "keystore handle refused to sign");
            match e {
                Error::Crypto(c) => c,
                Error::Sealed => smtrust_crypto::Error::Internal("keystore is sealed"),
                Error::NotFound { .. } => smtrust_crypto::Error::Internal("key was destroyed"),
                _ => smtrust_crypto::Error::Internal("keystore refused to sign"),
            }
        })
    }
}

/// The SM2 public key inside a DER certificate.
pub(crate) fn certificate_public_key(der: &[u8]) -> Result<Sm2PublicKey, Error> {
    let cert = x509_cert::Certificate::from_der(der).map_err(Error::InvalidCertificate)?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(Error::InvalidCertificate)?;
    Ok(smtrust_crypto::x509::public_key_from_spki_der(&spki)?)
}

impl Keystore {
    /// A keystore over any backend.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self { backend }
    }

    /// `smtrust keystore init`: create a software sealed store in `dir`. Returns the share texts for
    /// [`InitMethod::Shares`] (empty for a passphrase). The store is left sealed.
    pub fn init_dir(dir: &Path, method: InitMethod<'_>) -> Result<Vec<Zeroizing<String>>, Error> {
        SealedDir::init(dir, method)
    }

    /// Open the software sealed store in `dir`, sealed.
    pub fn open_dir(dir: &Path) -> Result<Self, Error> {
        Ok(Self::new(Arc::new(SealedDir::open(dir)?)))
    }

    /// `smtrust keystore status`: works while sealed.
    pub fn status(&self) -> Result<Status, Error> {
        self.backend.status()
    }

    /// `smtrust keystore unseal`.
    pub fn unseal(&self, unlock: Unlock<'_>) -> Result<(), Error> {
        self.backend.unseal(unlock)
    }

    /// `smtrust keystore seal`: wipes the master and every decrypted key from memory.
    pub fn seal(&self) {
        self.backend.seal();
    }

    /// `smtrust keystore rotate-master`: new master, every data key re-wrapped; returns the new generation.
    pub fn rotate_master(&self) -> Result<u64, Error> {
        self.backend.rotate_master()
    }

    /// Generate a key pair for `purpose`.
    pub fn generate(&self, purpose: KeyPurpose, label: &str) -> Result<KeyId, Error> {
        Ok(self.backend.generate(purpose, label)?.id)
    }

    /// Import a private key made elsewhere (an offline root): PKCS#8 or SEC1, PEM or DER, encrypted
    /// PKCS#8 with `passphrase` once the crypto crate reads it.
    pub fn import_pkcs8(
        &self,
        purpose: KeyPurpose,
        label: &str,
        data: &[u8],
        passphrase: Option<&[u8]>,
    ) -> Result<KeyId, Error> {
        let secret = smtrust_crypto::pem::decode_private_key(data, passphrase)?;
        Ok(self.backend.import(purpose, label, secret)?.id)
    }

    /// `smtrust keystore list`: every key's public metadata (refused while sealed: the metadata is only
    /// authenticated by the master).
    pub fn list(&self) -> Result<Vec<KeyInfo>, Error> {
        self.backend.list()
    }

    /// One key's public metadata.
    pub fn info(&self, id: &KeyId) -> Result<KeyInfo, Error> {
        self.backend.info(id)
    }

    /// The key's public key.
    pub fn public_key(&self, id: &KeyId) -> Result<Sm2PublicKey, Error> {
        Ok(self.backend.info(id)?.public_key)
    }

    /// Store a certificate (DER) with the key; its public key must be the key's.
    pub fn set_certificate(&self, id: &KeyId, der: &[u8]) -> Result<(), Error> {
        self.backend.set_certificate(id, der).map(|_| ())
    }

    /// The stored certificate (DER), if any.
    pub fn certificate(&self, id: &KeyId) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.backend.info(id)?.certificate)
    }

    fn handle<I: HandleId>(&self, id: &KeyId) -> Result<KeyHandle<I>, Error> {
        let info = self.backend.info(id)?;
        if !info.purpose.permits(I::USE) {
            return Err(Error::PurposeForbids {
                id: *id,
                purpose: info.purpose,
                requested: I::USE,
            });
        }
        Ok(KeyHandle {
            backend: Arc::clone(&self.backend),
            id: *id,
            public: info.public_key,
            _id: PhantomData,
        })
    }

    /// A handle signing with the certificate ID, for certificates, CRLs, OCSP, attestation results and
    /// audit checkpoints. Wrap it in `smtrust_crypto::x509::X509Signer::new(&handle)` for x509-cert builders.
    pub fn signer_cert(&self, id: &KeyId) -> Result<KeyHandle<CertId>, Error> {
        self.handle(id)
    }

    /// A handle signing with the RFC 8998 TLS 1.3 ID, for CertificateVerify.
    pub fn signer_tls(&self, id: &KeyId) -> Result<KeyHandle<Tls13Id>, Error> {
        self.handle(id)
    }

    /// The one API that returns private key material: a [`KeyPurpose::DeviceExport`] key as encrypted PKCS#8
    /// DER (PBES2, PBKDF2-HMAC-SHA256, SM4-CBC) under `passphrase`. Emits an `info!` audit event.
    pub fn export_device_key(
        &self,
        id: &KeyId,
        passphrase: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.backend.export_device_key(id, passphrase)
    }

    /// Destroy a key: its record is deleted and its decrypted copy wiped.
    pub fn destroy(&self, id: &KeyId) -> Result<(), Error> {
        self.backend.destroy(id)
    }
}
