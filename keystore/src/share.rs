//! Printable, checksummed Shamir shares of the key-encryption key.
//!
//! A share reads `smtrust-share-<index>-<payload hex>-<checksum hex>`, where
//!
//! ```text
//! payload  = version 0x01 | threshold u8 | count u8 | index u8 | set_id 16 | y 16      (36 bytes, 72 hex)
//! checksum = SM3("smtrust-share/v1" || payload)[0..4]                                   (8 hex)
//! ```
//! The index is printed twice (once for people, once inside the checksummed payload) and must agree. The
//! checksum catches typos and damage; it is not a MAC: a share forged consistently is caught later, when the
//! reconstructed key fails to open the sealed master. The set id ties shares to one keystore.
//!
//! Splitting and combining use `vsss-rs`'s GF(2^8) Shamir scheme, whose field arithmetic avoids lookup
//! tables (no secret-dependent memory access).

use smtrust_crypto::sm4::{KEY_LEN, Sm4Key};
use subtle::ConstantTimeEq;
use vsss_rs::{Gf256, IdentifierGf256};
use zeroize::Zeroizing;

use crate::UnsealError;

const PREFIX: &str = "smtrust-share-";
const CHECK_DOMAIN: &[u8] = b"smtrust-share/v1";
const VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 4 + 16 + KEY_LEN;
/// Longest share text accepted (with room for whitespace the operator typed).
pub(crate) const MAX_SHARE_TEXT: usize = 256;

/// One decoded share. The `y` bytes are secret.
pub(crate) struct Share {
    pub(crate) threshold: u8,
    pub(crate) count: u8,
    pub(crate) index: u8,
    pub(crate) set_id: [u8; 16],
    y: Zeroizing<[u8; KEY_LEN]>,
}

/// A share's text could not be read: wrong shape or checksum. Deliberately carries no detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadShare;

fn checksum(payload: &[u8]) -> [u8; 4] {
    let d = smtrust_crypto::sm3::digest_parts(&[CHECK_DOMAIN, payload]);
    [d[0], d[1], d[2], d[3]]
}

impl Share {
    fn encode(&self) -> Zeroizing<String> {
        let mut payload = Zeroizing::new(Vec::with_capacity(PAYLOAD_LEN));
        payload.extend_from_slice(&[VERSION, self.threshold, self.count, self.index]);
        payload.extend_from_slice(&self.set_id);
        payload.extend_from_slice(self.y.as_slice());
        let hex_payload = Zeroizing::new(hex::encode(payload.as_slice()));
        Zeroizing::new(format!(
            "{PREFIX}{}-{}-{}",
            self.index,
            hex_payload.as_str(),
            hex::encode(checksum(&payload))
        ))
    }

    /// Parse one share's text. ASCII whitespace anywhere is ignored; hex is case-insensitive.
    pub(crate) fn parse(text: &str) -> Result<Self, BadShare> {
        if text.len() > MAX_SHARE_TEXT {
            return Err(BadShare);
        }
        let compact: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_ascii_whitespace())
                .map(|c| c.to_ascii_lowercase())
                .collect(),
        );
        let rest = compact.strip_prefix(PREFIX).ok_or(BadShare)?;
        let mut parts = rest.split('-');
        let (Some(index), Some(payload_hex), Some(check_hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(BadShare);
        };
        let index: u8 = index.parse().map_err(|_| BadShare)?;
        let mut payload = Zeroizing::new([0u8; PAYLOAD_LEN]);
        hex::decode_to_slice(payload_hex, payload.as_mut_slice()).map_err(|_| BadShare)?;
        let mut check = [0u8; 4];
        hex::decode_to_slice(check_hex, &mut check).map_err(|_| BadShare)?;
        if !bool::from(checksum(payload.as_slice()).ct_eq(&check)) {
            return Err(BadShare);
        }
        let [version, threshold, count, inner_index, rest @ ..] = *payload;
        let (set_id, y) = rest.split_at(16);
        let set_id: [u8; 16] = set_id.try_into().map_err(|_| BadShare)?;
        let y: [u8; KEY_LEN] = y.try_into().map_err(|_| BadShare)?;
        let y = Zeroizing::new(y);
        if version != VERSION
            || inner_index != index
            || index == 0
            || index > count
            || threshold < 2
            || threshold > count
        {
            return Err(BadShare);
        }
        Ok(Self {
            threshold,
            count,
            index,
            set_id,
            y,
        })
    }
}

/// Split `kek` into `count` printable shares, any `threshold` of which rebuild it.
pub(crate) fn split(
    kek: &Sm4Key,
    threshold: u8,
    count: u8,
    set_id: [u8; 16],
) -> Result<Vec<Zeroizing<String>>, crate::Error> {
    if threshold < 2 || threshold > count {
        return Err(crate::Error::InvalidShareParams { threshold, count });
    }
    let ids = (1..=count).map(|i| IdentifierGf256(Gf256(i)));
    // The OS RNG; `UnwrapErr` turns an OS RNG failure into a panic inside vsss-rs, which takes only
    // infallible RNGs. That is a broken machine, not untrusted input.
    let rng = rand_core::UnwrapErr(getrandom::SysRng);
    let raw = Gf256::split_bytes_with_participant_ids_iter(
        usize::from(threshold),
        usize::from(count),
        kek.expose_secret(),
        rng,
        ids,
    )
    .map_err(|_| crate::Error::InvalidShareParams { threshold, count })?;
    let raw: Vec<Zeroizing<Vec<u8>>> = raw.into_iter().map(Zeroizing::new).collect();
    raw.iter()
        .map(|v| {
            let (&index, y) = v
                .split_first()
                .ok_or(crate::Error::Internal("share shape"))?;
            let y: [u8; KEY_LEN] = y
                .try_into()
                .map_err(|_| crate::Error::Internal("share length"))?;
            Ok(Share {
                threshold,
                count,
                index,
                set_id,
                y: Zeroizing::new(y),
            }
            .encode())
        })
        .collect()
}

/// Rebuild the KEK from share texts, checking each against the store's share set.
pub(crate) fn combine<S: AsRef<str>>(
    texts: &[S],
    threshold: u8,
    count: u8,
    set_id: &[u8; 16],
) -> Result<Sm4Key, UnsealError> {
    let mut shares: Vec<Share> = Vec::with_capacity(texts.len());
    for (i, t) in texts.iter().enumerate() {
        let position = i + 1;
        let s = Share::parse(t.as_ref()).map_err(|_| UnsealError::CorruptedShare { position })?;
        if s.threshold != threshold || s.count != count || !bool::from(s.set_id.ct_eq(set_id)) {
            return Err(UnsealError::ForeignShare { position });
        }
        if shares.iter().any(|o| o.index == s.index) {
            return Err(UnsealError::DuplicateShare { index: s.index });
        }
        shares.push(s);
    }
    if shares.len() < usize::from(threshold) {
        return Err(UnsealError::TooFewShares {
            got: shares.len(),
            need: usize::from(threshold),
        });
    }
    let raw: Vec<Zeroizing<Vec<u8>>> = shares
        .iter()
        .map(|s| Zeroizing::new([&[s.index][..], s.y.as_slice()].concat()))
        .collect();
    let plain: Vec<Vec<u8>> = raw.iter().map(|v| v.to_vec()).collect();
    let plain = Zeroizing::new(plain);
    let secret = Zeroizing::new(
        Gf256::combine_bytes(plain.as_slice()).map_err(|_| UnsealError::SharesDoNotMatch)?,
    );
    Sm4Key::from_slice(&secret).map_err(|_| UnsealError::SharesDoNotMatch)
}

/// Parse without a store (fuzzing and property tests): `Some(index)` for a well-formed share.
pub(crate) fn parse_index(text: &str) -> Option<u8> {
    Share::parse(text).ok().map(|s| s.index)
}
