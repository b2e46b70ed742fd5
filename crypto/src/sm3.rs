//! SM3 (GB/T 32905), HMAC-SM3 (RFC 2104) and HKDF-SM3 (RFC 5869 over HMAC-SM3).

use digest::{Digest, KeyInit, Mac};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::Error;

/// The SM3 hash as a `digest` type, for APIs generic over a hash (HMAC, HKDF, rustls).
pub use ::sm3::Sm3;

/// Length of an SM3 digest.
pub const DIGEST_LEN: usize = 32;

/// SM3 of `data`.
pub fn digest(data: &[u8]) -> [u8; DIGEST_LEN] {
    Sm3::digest(data).into()
}

/// SM3 over several parts, as if concatenated.
pub fn digest_parts(parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    let mut h = Sm3::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// HMAC-SM3 as a `digest::Mac` type.
pub type HmacSm3 = hmac::Hmac<Sm3>;

/// HMAC-SM3 of `data` under `key`.
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; DIGEST_LEN] {
    // HMAC accepts keys of any length (RFC 2104 §2), so this cannot fail.
    let mut mac = <HmacSm3 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Check an HMAC-SM3 tag in constant time.
pub fn hmac_verify(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    let expected = hmac(key, data);
    expected.ct_eq(tag).into()
}

#[cold]
fn unreachable_hmac() -> HmacSm3 {
    // HMAC's key length is unbounded; reaching here is a bug in the hmac crate.
    <HmacSm3 as KeyInit>::new(&Default::default())
}

/// HKDF-Extract (RFC 5869 §2.2) with HMAC-SM3: the pseudorandom key.
pub fn hkdf_extract(salt: &[u8], ikm: &[u8]) -> Zeroizing<[u8; DIGEST_LEN]> {
    Zeroizing::new(hmac(salt, ikm))
}

/// HKDF-Expand (RFC 5869 §2.3) with HMAC-SM3 into `okm` (at most 255 × 32 bytes).
pub fn hkdf_expand(prk: &[u8], info: &[u8], okm: &mut [u8]) -> Result<(), Error> {
    let hk = hkdf::Hkdf::<Sm3>::from_prk(prk).map_err(|_| Error::InvalidLength {
        what: "HKDF PRK",
        len: prk.len(),
    })?;
    hk.expand(info, okm).map_err(|_| Error::InvalidLength {
        what: "HKDF output",
        len: okm.len(),
    })
}

/// HKDF (extract then expand) with HMAC-SM3.
pub fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], okm: &mut [u8]) -> Result<(), Error> {
    let prk = hkdf_extract(salt, ikm);
    hkdf_expand(prk.as_slice(), info, okm)
}

#[cfg(test)]
mod tests {
    use super::*;

    // GB/T 32905-2016 Appendix A, example 1 and 2.
    #[test]
    fn gbt32905_examples() {
        assert_eq!(
            hex::encode(digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            hex::encode(digest(&b"abcd".repeat(16))),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
        assert_eq!(digest_parts(&[b"ab", b"c"]), digest(b"abc"));
    }

    #[test]
    fn hmac_constant_time_check() {
        let tag = hmac(b"key", b"data");
        assert!(hmac_verify(b"key", b"data", &tag));
        let mut bad = tag;
        bad[31] ^= 1;
        assert!(!hmac_verify(b"key", b"data", &bad));
        assert!(!hmac_verify(b"key", b"data", &tag[..31]));
    }

    // RFC 5869 structure: extract-then-expand equals the one-shot, and T(1) = HMAC(PRK, info || 0x01).
    #[test]
    fn hkdf_matches_rfc5869_definition() {
        let prk = hkdf_extract(b"salt", b"input key material");
        assert_eq!(prk.as_slice(), &hmac(b"salt", b"input key material"));
        let mut okm = [0u8; 80];
        hkdf(b"salt", b"input key material", b"info", &mut okm).expect("80 <= 255*32");
        let t1 = hmac(prk.as_slice(), b"info\x01");
        let t2 = hmac(prk.as_slice(), &[&t1[..], b"info\x02"].concat());
        let t3 = hmac(prk.as_slice(), &[&t2[..], b"info\x03"].concat());
        assert_eq!(&okm[..32], &t1);
        assert_eq!(&okm[32..64], &t2);
        assert_eq!(&okm[64..], &t3[..16]);
        let mut too_long = vec![0u8; 255 * 32 + 1];
        assert!(hkdf(b"s", b"k", b"i", &mut too_long).is_err());
    }
}
