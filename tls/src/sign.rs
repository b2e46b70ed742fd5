//! sm2sig_sm3 (0x0708) CertificateVerify signing through an [`Sm2Signer<Tls13Id>`]: the private key stays
//! wherever the signer keeps it (software key, keystore handle, later an HSM).

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::{PrivateKeyDer, SubjectPublicKeyInfoDer};
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use smtrust_crypto::sm2::{Sm2Signer, Tls13Id};

/// sm2sig_sm3, TLS SignatureScheme 0x0708 (RFC 8998 §3.2).
pub const SM2SIG_SM3: SignatureScheme = SignatureScheme::Unknown(0x0708);

/// A rustls signing key backed by an SM2 signer bound to the RFC 8998 ID `TLSv1.3+GM+Cipher+Suite`.
pub struct Sm2TlsKey {
    signer: Arc<dyn Sm2Signer<Tls13Id>>,
    spki: Vec<u8>,
}

impl Sm2TlsKey {
    /// Wrap a signer. The type parameter makes a certificate-ID signer a compile error here.
    pub fn new(signer: Arc<dyn Sm2Signer<Tls13Id>>) -> Result<Self, crate::Error> {
        let spki = smtrust_crypto::x509::public_key_to_spki_der(signer.public_key())?;
        Ok(Self { signer, spki })
    }
}

impl fmt::Debug for Sm2TlsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sm2TlsKey")
            .field("public", self.signer.public_key())
            .finish_non_exhaustive()
    }
}

impl SigningKey for Sm2TlsKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered.contains(&SM2SIG_SM3).then(|| {
            Box::new(Sm2TlsSigner {
                signer: Arc::clone(&self.signer),
            }) as Box<dyn Signer>
        })
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        // Lets rustls's keys_match() compare the signer with the end-entity certificate.
        Some(SubjectPublicKeyInfoDer::from(self.spki.as_slice()))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        // Only TLS 1.2 suite selection reads this; SM2 has no TLS 1.2 SignatureAlgorithm code.
        SignatureAlgorithm::Unknown(8)
    }
}

struct Sm2TlsSigner {
    signer: Arc<dyn Sm2Signer<Tls13Id>>,
}

impl fmt::Debug for Sm2TlsSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sm2TlsSigner")
    }
}

impl Signer for Sm2TlsSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.signer
            .sign(message)
            .map(|s| s.as_der().to_vec())
            .map_err(|e| rustls::Error::Other(rustls::OtherError(Arc::new(e))))
    }

    fn scheme(&self) -> SignatureScheme {
        SM2SIG_SM3
    }
}

/// The provider's key loader refuses key bytes: smtrust reaches private keys only through signers
/// ([`crate::ServerIdentity`]), so a config built from PEM bytes fails loudly instead of bypassing the keystore.
#[derive(Debug)]
pub(crate) struct NoKeyBytes;

pub(crate) static NO_KEY_BYTES: NoKeyBytes = NoKeyBytes;

impl rustls::crypto::KeyProvider for NoKeyBytes {
    fn load_private_key(
        &self,
        _key_der: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        Err(rustls::Error::General(
            "smtrust-tls loads no key bytes: pass an Sm2Signer<Tls13Id>".into(),
        ))
    }
}
