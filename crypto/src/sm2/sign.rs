//! SM2 signatures (GB/T 32918.2 §6–7) in DER form.

use core::fmt;

use signature::{Signer, Verifier};

use super::distid::{self, DistinguishingId};
use super::key::Sm2PublicKey;
use crate::Error;

/// A canonical DER `SEQUENCE { r INTEGER, s INTEGER }` SM2 signature with r, s in [1, n-1].
#[derive(Clone, PartialEq, Eq)]
pub struct Sm2Signature {
    der: Vec<u8>,
    parsed: sm2::dsa::Signature,
}

impl Sm2Signature {
    /// Parse strictly: canonical DER only (minimal integers, definite lengths, no trailing bytes), r and s in
    /// [1, n-1].
    pub fn from_der(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > 80 {
            return Err(Error::MalformedSignature(
                "longer than any SM2 DER signature",
            ));
        }
        let der = sm2::dsa::DerSignature::from_bytes(bytes)
            .map_err(|_| Error::MalformedSignature("not a DER SEQUENCE of two INTEGERs"))?;
        let parsed = sm2::dsa::Signature::try_from(der)
            .map_err(|_| Error::MalformedSignature("r or s outside [1, n-1]"))?;
        // Re-encoding must reproduce the input exactly: rejects BER leniencies the parser may have accepted.
        if parsed.to_der().as_bytes() != bytes {
            return Err(Error::MalformedSignature("non-canonical DER"));
        }
        Ok(Self {
            der: bytes.to_vec(),
            parsed,
        })
    }

    /// From the raw 64-byte `r || s` form some libraries use (PyPI gmssl, GM/T 0009 SDF devices).
    pub fn from_raw(raw: &[u8]) -> Result<Self, Error> {
        let parsed = sm2::dsa::Signature::from_slice(raw)
            .map_err(|_| Error::MalformedSignature("raw r||s: 64 bytes with r, s in [1, n-1]"))?;
        Ok(Self::from_parsed(parsed))
    }

    fn from_parsed(parsed: sm2::dsa::Signature) -> Self {
        Self {
            der: parsed.to_der().to_vec(),
            parsed,
        }
    }

    /// The DER encoding.
    pub fn as_der(&self) -> &[u8] {
        &self.der
    }

    /// The raw 64-byte `r || s` form.
    pub fn to_raw(&self) -> [u8; 64] {
        self.parsed.to_bytes().into()
    }
}

impl fmt::Debug for Sm2Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sm2Signature({} DER bytes)", self.der.len())
    }
}

/// Something that signs with an SM2 key under distinguishing ID `I`: a software key ([`Sm2SigningKey`]) or a
/// keystore handle (later an HSM or SDF device), so `ca`, `attest` and `tls` never hold key bytes.
pub trait Sm2Signer<I: DistinguishingId>: Send + Sync {
    /// The public key that verifies this signer's signatures.
    fn public_key(&self) -> &Sm2PublicKey;
    /// Sign `msg` (the signer computes `SM3(Z_A || msg)` with its ID).
    fn sign(&self, msg: &[u8]) -> Result<Sm2Signature, Error>;
}

impl<I: DistinguishingId> Sm2Signer<I> for Sm2SigningKey<I> {
    fn public_key(&self) -> &Sm2PublicKey {
        &self.public
    }
    fn sign(&self, msg: &[u8]) -> Result<Sm2Signature, Error> {
        Sm2SigningKey::sign(self, msg)
    }
}

/// An SM2 signing key bound to distinguishing ID `I`.
///
/// The `sm2` crate's key object does not zeroize itself; on drop it is overwritten in place with a fixed
/// throwaway key (best effort, see `Drop`). Not `Clone`.
pub struct Sm2SigningKey<I: DistinguishingId> {
    key: Box<sm2::dsa::SigningKey>,
    public: Sm2PublicKey,
    id: I,
}

impl<I: DistinguishingId> Sm2SigningKey<I> {
    pub(super) fn from_parts(key: sm2::dsa::SigningKey, id: I) -> Self {
        let public = Sm2PublicKey::from_inner(sm2::PublicKey::from(key.verifying_key()));
        Self {
            key: Box::new(key),
            public,
            id,
        }
    }

    /// Sign `msg` (the signer computes `e = SM3(Z_A || msg)`); deterministic nonce (RFC 6979 with HMAC-SM3).
    pub fn sign(&self, msg: &[u8]) -> Result<Sm2Signature, Error> {
        let sig: sm2::dsa::Signature = self
            .key
            .try_sign(msg)
            .map_err(|_| Error::Internal("SM2 signing failed (r + k = n, probability 2^-256)"))?;
        Ok(Sm2Signature::from_parsed(sig))
    }

    /// The public key.
    pub fn public_key(&self) -> &Sm2PublicKey {
        &self.public
    }

    /// The distinguishing ID this key signs with.
    pub fn id(&self) -> &I {
        &self.id
    }
}

impl<I: DistinguishingId> Drop for Sm2SigningKey<I> {
    fn drop(&mut self) {
        // Overwrite the heap copy of the scalar; black_box keeps the store from being optimised away before
        // the deallocation. Upstream `sm2` does not zeroize `SigningKey` (see sm-field-notes).
        *self.key = distid::wipe_key();
        core::hint::black_box(&self.key);
    }
}

impl<I: DistinguishingId> fmt::Debug for Sm2SigningKey<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sm2SigningKey")
            .field("id", &self.id)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// An SM2 verifying key bound to distinguishing ID `I` (`Z_A` computed once).
#[derive(Clone)]
pub struct Sm2VerifyingKey<I: DistinguishingId> {
    key: sm2::dsa::VerifyingKey,
    id: I,
}

impl<I: DistinguishingId> Sm2VerifyingKey<I> {
    pub(super) fn from_parts(key: sm2::dsa::VerifyingKey, id: I) -> Self {
        Self { key, id }
    }

    /// Verify a parsed signature over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &Sm2Signature) -> Result<(), Error> {
        self.key
            .verify(msg, &sig.parsed)
            .map_err(|_| Error::BadSignature)
    }

    /// Parse a DER signature strictly and verify it over `msg`.
    pub fn verify_der(&self, msg: &[u8], der: &[u8]) -> Result<(), Error> {
        let sig = Sm2Signature::from_der(der)?;
        self.verify(msg, &sig)
    }

    /// The public key.
    pub fn public_key(&self) -> Sm2PublicKey {
        Sm2PublicKey::from_inner(sm2::PublicKey::from(&self.key))
    }

    /// The distinguishing ID.
    pub fn id(&self) -> &I {
        &self.id
    }
}

impl<I: DistinguishingId> fmt::Debug for Sm2VerifyingKey<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sm2VerifyingKey")
            .field("id", &self.id)
            .field("public", &self.public_key())
            .finish()
    }
}

pub(super) mod danger {
    use super::*;

    /// Verify with the EMPTY distinguishing ID: what OpenSSL 3 uses when `-sigopt distid:` is not given.
    /// Only for deciding what to do with such CSRs; never for trust decisions on certificates.
    pub fn verify_with_empty_id(
        public: &Sm2PublicKey,
        msg: &[u8],
        der: &[u8],
    ) -> Result<(), Error> {
        let sig = Sm2Signature::from_der(der)?;
        let key = distid::verifying_key("", *public.inner())?;
        key.verify(msg, &sig.parsed)
            .map_err(|_| Error::BadSignature)
    }
}
