//! SM2 key pairs.

use core::fmt;

use elliptic_curve::sec1::ToSec1Point;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::distid::DistinguishingId;
use super::sign::{Sm2SigningKey, Sm2VerifyingKey};
use crate::{Error, KeyError};

/// An SM2 private key. Zeroized on drop; not `Clone`; `Debug` shows only the public key.
pub struct Sm2SecretKey {
    inner: sm2::SecretKey,
    public: Sm2PublicKey,
}

/// An SM2 public key: a point on the SM2 curve, never the point at infinity.
#[derive(Clone, PartialEq, Eq)]
pub struct Sm2PublicKey {
    inner: sm2::PublicKey,
}

impl Sm2SecretKey {
    /// A fresh key from the OS random source.
    pub fn generate() -> Result<Self, Error> {
        // Rejection sampling over 32-byte strings: d must be in [1, n-2] (GB/T 32918.1 §6.1); the bound on tries
        // makes a broken RNG an error instead of a hang.
        for _ in 0..64 {
            let bytes = Zeroizing::new(crate::rng::bytes::<32>()?);
            if let Ok(k) = Self::from_bytes(bytes.as_slice()) {
                return Ok(k);
            }
        }
        Err(Error::Random)
    }

    /// A key from its 32-byte big-endian scalar. Rejects 0 and values ≥ n − 1 (for which 1 + d has no inverse).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != 32 {
            return Err(Error::InvalidLength {
                what: "SM2 private key",
                len: bytes.len(),
            });
        }
        let inner = sm2::SecretKey::from_slice(bytes).map_err(|_| KeyError::InvalidValue)?;
        // d = n - 1 makes (1 + d) non-invertible: the signing formula of GB/T 32918.2 §6.1 A6 fails.
        let d = inner.to_nonzero_scalar();
        let one_plus_d: sm2::Scalar = *d + sm2::Scalar::ONE;
        if bool::from(one_plus_d.is_zero()) {
            return Err(KeyError::InvalidValue.into());
        }
        Ok(Self::from_inner(inner))
    }

    pub(crate) fn from_inner(inner: sm2::SecretKey) -> Self {
        // [d]G by the fast constant-time path (the crate's own `public_key()` spends a third of key generation
        // in its inversion); the SEC1 parse checks the result is on the curve, else the crate's path is used.
        let d = Zeroizing::new(<[u8; 32]>::from(inner.to_bytes()));
        let fast = super::fast::mul_base_sec1(&d)
            .and_then(|sec1| sm2::PublicKey::from_sec1_bytes(&sec1).ok());
        let public = Sm2PublicKey {
            inner: fast.unwrap_or_else(|| inner.public_key()),
        };
        Self { inner, public }
    }

    /// The public half.
    pub fn public_key(&self) -> &Sm2PublicKey {
        &self.public
    }

    /// A signing key bound to a distinguishing ID.
    pub fn signing_key<I: DistinguishingId>(&self, id: I) -> Result<Sm2SigningKey<I>, Error> {
        Sm2SigningKey::from_parts(&self.inner, self.public.clone(), id)
    }

    /// The 32-byte scalar, for sealing in the keystore or encoding. Zeroized when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.inner.to_bytes().into())
    }

    pub(crate) fn inner(&self) -> &sm2::SecretKey {
        &self.inner
    }

    /// Constant-time equality of the private scalars.
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.to_bytes()
            .as_slice()
            .ct_eq(other.to_bytes().as_slice())
            .into()
    }
}

impl fmt::Debug for Sm2SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sm2SecretKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Sm2PublicKey {
    /// Length of the uncompressed SEC1 encoding `04 || x || y`.
    pub const UNCOMPRESSED_LEN: usize = 65;

    /// Parse a SEC1 point (uncompressed or compressed). Rejects off-curve points and the point at infinity.
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let inner = sm2::PublicKey::from_sec1_bytes(bytes).map_err(|_| KeyError::InvalidValue)?;
        Ok(Self { inner })
    }

    /// The uncompressed SEC1 encoding `04 || x || y` (65 bytes).
    pub fn to_sec1_uncompressed(&self) -> [u8; 65] {
        let p = self.inner.to_sec1_point(false);
        let mut out = [0u8; 65];
        let bytes = p.as_bytes();
        if bytes.len() == 65 {
            out.copy_from_slice(bytes);
        }
        out
    }

    /// A verifying key bound to a distinguishing ID (computes `Z_A` once).
    pub fn verifying_key<I: DistinguishingId>(&self, id: I) -> Result<Sm2VerifyingKey<I>, Error> {
        Sm2VerifyingKey::new(self.inner, id)
    }

    /// Give this key a precomputed table (33 KiB, ~0.5 ms once) so that every verifying key made for it from
    /// now on verifies about three times faster: for keys that check many signatures (trust anchors, issuing
    /// CAs, OCSP responders), never for keys that arrive with requests. Process-wide; returns whether the key
    /// has a table (false once 256 keys have one).
    pub fn precompute_for_verification(&self) -> bool {
        super::fast::register(&self.inner)
    }

    /// SM3 fingerprint of the uncompressed point (used as a key identifier).
    pub fn sm3_fingerprint(&self) -> [u8; 32] {
        crate::sm3::digest(&self.to_sec1_uncompressed())
    }

    pub(crate) fn inner(&self) -> &sm2::PublicKey {
        &self.inner
    }

    pub(crate) fn from_inner(inner: sm2::PublicKey) -> Self {
        Self { inner }
    }
}

impl fmt::Debug for Sm2PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.to_sec1_uncompressed();
        write!(f, "Sm2PublicKey(")?;
        for x in b.iter().skip(1).take(8) {
            write!(f, "{x:02x}")?;
        }
        write!(f, "…)")
    }
}

impl spki::EncodePublicKey for Sm2PublicKey {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        self.inner.to_public_key_der()
    }
}
