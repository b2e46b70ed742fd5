//! HMAC-SM3 (RFC 2104 over SM3): the PRF under TLS 1.3's HKDF for the RFC 8998 suites.

use digest::{KeyInit, Mac};
use rustls::crypto::hmac::{Hmac, Key, Tag};
use smtrust_crypto::sm3::{DIGEST_LEN, HmacSm3};

/// HMAC-SM3 for rustls.
#[derive(Debug)]
pub(crate) struct HmacSm3Alg;

pub(crate) static HMAC_SM3: HmacSm3Alg = HmacSm3Alg;

impl Hmac for HmacSm3Alg {
    fn with_key(&self, key: &[u8]) -> Box<dyn Key> {
        // HMAC takes keys of any length (RFC 2104 §2): the slice constructor cannot fail; fall back to the
        // crypto crate's one-shot on the impossible path rather than panic.
        match <HmacSm3 as KeyInit>::new_from_slice(key) {
            Ok(mac) => Box::new(HmacSm3Key(mac)),
            Err(_) => Box::new(HmacSm3Key(<HmacSm3 as KeyInit>::new(&Default::default()))),
        }
    }

    fn hash_output_len(&self) -> usize {
        DIGEST_LEN
    }
}

/// A keyed HMAC-SM3 state; cloned per tag so the key schedule is computed once.
struct HmacSm3Key(HmacSm3);

impl Key for HmacSm3Key {
    fn sign_concat(&self, first: &[u8], middle: &[&[u8]], last: &[u8]) -> Tag {
        let mut mac = self.0.clone();
        mac.update(first);
        for m in middle {
            mac.update(m);
        }
        mac.update(last);
        Tag::new(&mac.finalize().into_bytes())
    }

    fn tag_len(&self) -> usize {
        DIGEST_LEN
    }
}
