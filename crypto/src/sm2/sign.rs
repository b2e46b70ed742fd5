//! SM2 signatures (GB/T 32918.2 §6–7) in DER form.

use core::fmt;

use elliptic_curve::Curve;
use elliptic_curve::ff::PrimeField;
use elliptic_curve::ops::Reduce;
use zeroize::Zeroizing;

use super::distid::{self, DistinguishingId};
use super::fast::{self, PreparedKey};
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

    #[cfg(test)]
    pub(super) fn parsed_for_tests(&self) -> sm2::dsa::Signature {
        self.parsed
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

/// An SM2 signing key bound to distinguishing ID `I`. The scalar lives in one heap box, zeroized on drop.
/// Not `Clone`.
pub struct Sm2SigningKey<I: DistinguishingId> {
    d: Box<Zeroizing<sm2::Scalar>>,
    /// (1 + d)⁻¹ mod n, fixed per key: computed once instead of once per signature.
    d_plus_1_inv: Box<Zeroizing<sm2::Scalar>>,
    za: [u8; 32],
    public: Sm2PublicKey,
    id: I,
}

impl<I: DistinguishingId> Sm2SigningKey<I> {
    /// From the secret and its already computed public key: the `sm2` crate's `SigningKey` would compute [d]G
    /// (its slow path) and `Z_A` again, and cannot zeroize itself.
    pub(super) fn from_parts(
        secret: &sm2::SecretKey,
        public: Sm2PublicKey,
        id: I,
    ) -> Result<Self, Error> {
        let d = Box::new(Zeroizing::new(*secret.to_nonzero_scalar()));
        let inv = Option::<sm2::Scalar>::from((**d + sm2::Scalar::ONE).invert()).ok_or(
            Error::Internal("1 + d is invertible for every accepted key"),
        )?;
        let za = distid::za(id.as_str(), public.inner())?;
        Ok(Self {
            d,
            d_plus_1_inv: Box::new(Zeroizing::new(inv)),
            za,
            public,
            id,
        })
    }

    /// Sign `msg` (the signer computes `e = SM3(Z_A || msg)`); deterministic nonce (RFC 6979 with HMAC-SM3),
    /// the same signature the `sm2` crate makes.
    pub fn sign(&self, msg: &[u8]) -> Result<Sm2Signature, Error> {
        let e = digest_scalar(&self.za, msg);
        let sig = sign_digest(&self.d, &self.d_plus_1_inv, &e)?;
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

/// e = SM3(Z_A || M) as a scalar (GB/T 32918.2 §6.1 A1–A2).
fn digest_scalar(za: &[u8; 32], msg: &[u8]) -> sm2::Scalar {
    let e = crate::sm3::digest_parts(&[za, msg]);
    <sm2::Scalar as Reduce<sm2::FieldBytes>>::reduce(&sm2::FieldBytes::from(e))
}

/// GB/T 32918.2 §6.1 A3–A7 with k from RFC 6979 (HMAC-SM3), as the `sm2` crate derives it, [k]G by the
/// constant-time fixed-base multiplication in `fast`, and (1 + d)⁻¹ precomputed per key. Written here because
/// the crate inverts 1 + d on every signature and makes [k]G affine with its slowest routine (divstep
/// inversion); the signatures are byte-for-byte the crate's (tested).
fn sign_digest(
    d: &sm2::Scalar,
    d_plus_1_inv: &sm2::Scalar,
    e: &sm2::Scalar,
) -> Result<sm2::dsa::Signature, Error> {
    let d_bytes = Zeroizing::new(<[u8; 32]>::from(d.to_repr()));
    let e_bytes: [u8; 32] = e.to_repr().into();
    let mut kgen = rfc6979::KGenerator::<sm3::Sm3, sm2::U256>::new(
        d_bytes.as_slice(),
        &e_bytes,
        &[],
        &sm2::Sm2::ORDER,
    );
    // r = 0, r + k = n or s = 0 happen with probability ~2^-256 each; the next RFC 6979 candidate is used.
    for _ in 0..4 {
        let mut k_bytes = Zeroizing::new(sm2::FieldBytes::default());
        kgen.fill_next_k(&mut k_bytes);
        let Some(k) = Option::<sm2::Scalar>::from(sm2::Scalar::from_repr(*k_bytes)) else {
            continue;
        };
        let k = Zeroizing::new(k);
        let k_arr = Zeroizing::new(<[u8; 32]>::from(*k_bytes));
        let x1 = fast::mul_base_x(&k_arr).ok_or(Error::Internal("base-point table"))?;
        let r = *e + <sm2::Scalar as Reduce<sm2::FieldBytes>>::reduce(&sm2::FieldBytes::from(x1));
        if bool::from(r.is_zero() | (r + *k).is_zero()) {
            continue;
        }
        let s = *d_plus_1_inv * (*k - r * d);
        if bool::from(s.is_zero()) {
            continue;
        }
        return sm2::dsa::Signature::from_scalars(r, s)
            .map_err(|_| Error::Internal("r and s are in [1, n-1]"));
    }
    Err(Error::Internal("SM2 signing found no usable nonce"))
}

impl<I: DistinguishingId> fmt::Debug for Sm2SigningKey<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sm2SigningKey")
            .field("id", &self.id)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// An SM2 verifying key bound to distinguishing ID `I` (`Z_A` and the key's table for the fast verify computed
/// once).
#[derive(Clone)]
pub struct Sm2VerifyingKey<I: DistinguishingId> {
    public: sm2::PublicKey,
    za: [u8; 32],
    prepared: PreparedKey,
    id: I,
}

impl<I: DistinguishingId> Sm2VerifyingKey<I> {
    pub(super) fn new(public: sm2::PublicKey, id: I) -> Result<Self, Error> {
        let za = distid::za(id.as_str(), &public)?;
        let prepared = PreparedKey::new(&public)
            .ok_or(Error::Internal("a validated public key is a curve point"))?;
        Ok(Self {
            public,
            za,
            prepared,
            id,
        })
    }

    /// Verify a parsed signature over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &Sm2Signature) -> Result<(), Error> {
        let e = digest_scalar(&self.za, msg);
        if fast::verify_prehash(&self.prepared, &e, &sig.parsed.r(), &sig.parsed.s()) {
            Ok(())
        } else {
            Err(Error::BadSignature)
        }
    }

    /// Parse a DER signature strictly and verify it over `msg`.
    pub fn verify_der(&self, msg: &[u8], der: &[u8]) -> Result<(), Error> {
        let sig = Sm2Signature::from_der(der)?;
        self.verify(msg, &sig)
    }

    /// The public key.
    pub fn public_key(&self) -> Sm2PublicKey {
        Sm2PublicKey::from_inner(self.public)
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
        let key = Sm2VerifyingKey::new(*public.inner(), super::super::CustomId::new("")?)?;
        key.verify(msg, &sig)
    }
}
