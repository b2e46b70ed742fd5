//! SM2 (GB/T 32918, GM/T 0003): keys, signatures with a typed distinguishing ID, public-key encryption and
//! the curveSM2 key agreement TLS 1.3 uses (RFC 8998 §3.1).
//!
//! Signatures leave this module only as DER `SEQUENCE { r, s }` ([`Sm2Signature`]): X.509, CSRs, CRLs, OCSP
//! and TLS all carry that form, and raw `r || s` yields certificates other implementations reject.

mod distid;
mod fast;
mod key;
mod kx;
mod pke;
mod sign;

pub use distid::{CertId, CustomId, DistinguishingId, Tls13Id};
pub use key::{Sm2PublicKey, Sm2SecretKey};
pub use kx::{EphemeralSecret, SHARED_SECRET_LEN, UNCOMPRESSED_POINT_LEN};
pub use pke::{MAX_PLAINTEXT, decrypt_c1c3c2, decrypt_der, encrypt_c1c3c2, encrypt_der};
pub use sign::{Sm2Signature, Sm2Signer, Sm2SigningKey, Sm2VerifyingKey};

/// Operations that are needed for interoperability but weaken a guarantee. Reviewers grep for `danger`.
pub mod danger {
    pub use super::sign::danger::verify_with_empty_id;
}

/// Entry points for fuzz targets.
#[doc(hidden)]
pub mod fuzzing {
    use super::{
        CertId, CustomId, DistinguishingId, Sm2PublicKey, Sm2SecretKey, Sm2Signature, distid,
    };

    /// Parse a DER signature strictly (must never panic).
    pub fn parse_signature(data: &[u8]) -> Result<Sm2Signature, crate::Error> {
        Sm2Signature::from_der(data)
    }

    /// Parse a DER signature; one that parses must re-encode to exactly the input, and survive the raw form.
    pub fn signature_round_trip(data: &[u8]) {
        if let Ok(sig) = Sm2Signature::from_der(data) {
            assert_eq!(sig.as_der(), data, "accepted a non-canonical signature");
            let raw = Sm2Signature::from_raw(&sig.to_raw());
            assert_eq!(raw.as_ref(), Ok(&sig), "raw round trip");
        }
    }

    /// Parse an SM2 ciphertext in both forms with a fixed key (must never panic).
    pub fn decrypt_any(data: &[u8]) {
        let sk = Sm2SecretKey::from_bytes(&[0x11; 32]).ok();
        if let Some(sk) = sk {
            let _ = super::decrypt_der(&sk, data);
            let _ = super::decrypt_c1c3c2(&sk, data);
        }
    }

    /// Parse an uncompressed or compressed SEC1 point (must never panic).
    pub fn parse_point(data: &[u8]) {
        let _ = Sm2PublicKey::from_sec1_bytes(data);
    }

    /// Flags in byte 0 of [`verify_differential`]'s input.
    const RAW: u8 = 1;
    const COMB: u8 = 2;
    const CUSTOM_ID: u8 = 4;

    /// Differential check of our SM2 signer and verifier (crypto/src/sm2/fast) against the `sm2` crate; panics
    /// on any disagreement. Byte 0: bit 0 raw mode, bit 1 comb table, bit 2 custom ID, bits 3–5 the edit.
    /// Sign mode: `pos || id_len || d (32) || id (id_len % 8) || msg`: our signature must equal the crate's
    /// byte for byte, then the edit (1 flip bit `pos` of r, 2 of s, 3 of the message, 4 negate the key, 5 the
    /// key of d with bit `pos` flipped, 6 s = −r, 7 swap r and s) and both verdicts must agree. Raw mode:
    /// `SEC1 key (65; 33 used if compressed) || r || s || msg` under the empty ID, verdicts agree. With the comb
    /// bit, d (sign) or the key (raw) is `SM3(first byte)·G`: 256 keys, all fitting the comb registry.
    pub fn verify_differential(data: &[u8]) {
        let Some((&flags, rest)) = data.split_first() else {
            return;
        };
        if flags & RAW != 0 {
            raw_mode(flags, rest);
        } else {
            sign_mode(flags, rest);
        }
    }

    /// Our key generation (the fast [d]G) against the `sm2` crate's for the first 32 bytes as d.
    pub fn keygen_differential(data: &[u8]) {
        let Some(d) = data.get(..32) else {
            return;
        };
        let reference = sm2::SecretKey::from_slice(d);
        match Sm2SecretKey::from_bytes(d) {
            Ok(sk) => {
                let reference = reference.expect("the sm2 crate accepts every scalar we accept");
                let want = Sm2PublicKey::from_inner(reference.public_key());
                assert_eq!(sk.public_key(), &want, "[d]G differs from the sm2 crate's");
            }
            // We also reject d = n − 1 (1 + d is not invertible).
            Err(_) => assert!(
                reference.is_err() || d == (-sm2::Scalar::ONE).to_bytes().as_slice(),
                "we reject a scalar the sm2 crate accepts"
            ),
        }
    }

    fn sign_mode(flags: u8, data: &[u8]) {
        let Some(([pos, id_len, seed @ ..], rest)) = data.split_first_chunk::<34>() else {
            return;
        };
        let seed = if flags & COMB != 0 {
            crate::sm3::digest(&seed[..1])
        } else {
            *seed
        };
        let Ok(sk) = Sm2SecretKey::from_bytes(&seed) else {
            return;
        };
        let (id, msg) = rest.split_at(usize::from(id_len % 8).min(rest.len()));
        if flags & CUSTOM_ID != 0 {
            let Ok(id) = CustomId::new(String::from_utf8_lossy(id)) else {
                return;
            };
            sign_and_edit(flags, *pos, &sk, id, msg);
        } else {
            sign_and_edit(flags, *pos, &sk, CertId, msg);
        }
    }

    fn sign_and_edit<I: DistinguishingId>(
        flags: u8,
        pos: u8,
        sk: &Sm2SecretKey,
        id: I,
        msg: &[u8],
    ) {
        use signature::Signer;
        let reference =
            distid::signing_key(id.as_str(), sk.inner()).expect("reference signing key");
        let want: sm2::dsa::Signature = reference.try_sign(msg).expect("the sm2 crate signs");
        let sig = sk
            .signing_key(id.clone())
            .expect("signing key")
            .sign(msg)
            .expect("we sign");
        assert_eq!(
            sig.to_raw(),
            <[u8; 64]>::from(want.to_bytes()),
            "signature differs"
        );

        let (mut raw, mut msg, mut public) = (sig.to_raw(), msg.to_vec(), sk.public_key().clone());
        let (byte, bit) = (usize::from(pos / 8), 1u8 << (pos % 8));
        let edit = (flags >> 3) & 7;
        match edit {
            1 | 2 => raw
                .iter_mut()
                .skip(usize::from(edit - 1) * 32 + byte)
                .take(1)
                .for_each(|b| *b ^= bit),
            3 => match msg.len() {
                0 => msg.push(pos),
                len => msg
                    .iter_mut()
                    .skip(byte % len)
                    .take(1)
                    .for_each(|b| *b ^= bit),
            },
            4 => {
                let mut point = public.to_sec1_uncompressed();
                let odd = point[64] & 1;
                point[0] = 0x02 | (odd ^ 1);
                public = Sm2PublicKey::from_sec1_bytes(&point[..33]).expect("−P is a point");
            }
            5 => {
                let mut other = *sk.to_bytes();
                other.iter_mut().skip(byte).take(1).for_each(|b| *b ^= bit);
                let Ok(other) = Sm2SecretKey::from_bytes(&other) else {
                    return;
                };
                public = other.public_key().clone();
            }
            6 => raw[32..].copy_from_slice(&(-*want.r()).to_bytes()),
            7 => raw.rotate_left(32),
            _ => {}
        }
        // Keys outside the 256 comb keys never take a registry slot.
        let comb = flags & COMB != 0 && !matches!(edit, 4 | 5);
        let valid = verdicts_agree(comb, &public, id, &msg, &raw);
        assert!(edit != 0 || valid, "a fresh signature does not verify");
    }

    fn raw_mode(flags: u8, data: &[u8]) {
        let Some((fixed, msg)) = data.split_first_chunk::<{ 65 + 64 }>() else {
            return;
        };
        let (key, raw) = fixed.split_at(65);
        let public = if flags & COMB != 0 {
            Sm2SecretKey::from_bytes(&crate::sm3::digest(&key[..1]))
                .map(|sk| sk.public_key().clone())
        } else {
            let len = if matches!(key[0], 2 | 3) { 33 } else { 65 };
            Sm2PublicKey::from_sec1_bytes(&key[..len])
        };
        if let (Ok(public), Ok(raw)) = (public, <[u8; 64]>::try_from(raw)) {
            verdicts_agree(
                flags & COMB != 0,
                &public,
                CustomId::new("").expect("the empty ID is short"),
                msg,
                &raw,
            );
        }
    }

    /// Our verdict (the odd-multiples path, then with `comb` the comb path) equals the crate's; returns it.
    fn verdicts_agree<I: DistinguishingId>(
        comb: bool,
        public: &Sm2PublicKey,
        id: I,
        msg: &[u8],
        raw: &[u8; 64],
    ) -> bool {
        use signature::Verifier;
        let ours = Sm2Signature::from_raw(raw);
        let theirs = sm2::dsa::Signature::from_slice(raw);
        assert_eq!(ours.is_ok(), theirs.is_ok(), "raw signature parse differs");
        let (Ok(ours), Ok(theirs)) = (ours, theirs) else {
            return false;
        };
        let reference =
            distid::verifying_key(id.as_str(), *public.inner()).expect("reference verifying key");
        let want = reference.verify(msg, &theirs).is_ok();
        let vk = public.verifying_key(id.clone()).expect("verifying key");
        assert_eq!(vk.verify(msg, &ours).is_ok(), want, "verdict differs");
        if comb && public.precompute_for_verification() {
            let vk = public.verifying_key(id).expect("verifying key");
            assert_eq!(vk.verify(msg, &ours).is_ok(), want, "comb verdict differs");
        }
        want
    }
}

#[cfg(test)]
#[path = "sm2/tests.rs"]
mod tests;
