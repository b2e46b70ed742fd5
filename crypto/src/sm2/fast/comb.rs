//! Verification without doublings for keys that verify many signatures (trust anchors, CA keys, OCSP
//! responders): the key gets the same 65 × 8 table of (j + 1) · 16^i · P that G has, and [s]G + [t]P is the sum of
//! one table entry per non-zero signed radix-16 digit of s and of t — about 120 mixed additions instead of 256
//! doublings and 70 additions. Variable-time: keys, signatures and digests are public. A table is 33 KiB and
//! takes about half a millisecond to build, so only keys registered through [`register`] get one.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use super::base::{self, ROWS};
use super::field::Fe;
use super::point::{Affine, Jacobian};

/// At most this many keys keep a table (33 KiB each); registrations beyond it are declined.
pub(crate) const MAX_REGISTERED: usize = 256;

/// (j + 1) · 16^i · P.
#[derive(Debug)]
pub(crate) struct CombTable {
    rows: Box<[[Affine; 8]; ROWS]>,
}

static REGISTRY: LazyLock<RwLock<HashMap<[u8; 64], Arc<CombTable>>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

impl CombTable {
    fn new(p: Affine) -> Option<CombTable> {
        // Jacobian multiples first, then all 520 made affine with one inversion (Montgomery's trick).
        let mut jac = Vec::with_capacity(ROWS * 8);
        let mut base = Jacobian::from(p);
        for _ in 0..ROWS {
            let mut multiple = base;
            for _ in 0..8 {
                jac.push(multiple);
                multiple = multiple.add(&base);
            }
            base = base.double().double().double().double();
        }
        let affine = Jacobian::batch_to_affine(&jac)?;
        let mut rows = Box::new([[p; 8]; ROWS]);
        for (slot, a) in rows.iter_mut().flatten().zip(affine) {
            *slot = a;
        }
        Some(CombTable { rows })
    }
}

/// Give the key `x || y` a table so later verifications under it skip the doublings. Returns whether the key
/// has one now (false if the registry is full or the point is invalid).
pub(crate) fn register(xy: &[u8; 64]) -> bool {
    if lookup(xy).is_some() {
        return true;
    }
    let (Ok(x), Ok(y)) = (
        <&[u8; 32]>::try_from(&xy[..32]),
        <&[u8; 32]>::try_from(&xy[32..]),
    ) else {
        return false;
    };
    let (Some(x), Some(y)) = (Fe::from_be_bytes(x), Fe::from_be_bytes(y)) else {
        return false;
    };
    let Some(table) = CombTable::new(Affine { x, y }) else {
        return false;
    };
    let Ok(mut map) = REGISTRY.write() else {
        return false;
    };
    if map.len() >= MAX_REGISTERED && !map.contains_key(xy) {
        return false;
    }
    map.entry(*xy).or_insert_with(|| Arc::new(table));
    true
}

/// The table of a registered key.
pub(crate) fn lookup(xy: &[u8; 64]) -> Option<Arc<CombTable>> {
    REGISTRY.read().ok()?.get(xy).cloned()
}

/// [s]G + [t]P from the two tables.
pub(crate) fn double_mul(p: &CombTable, s: &sm2::Scalar, t: &sm2::Scalar) -> Option<Jacobian> {
    let g = base::g_rows()?;
    let sd = base::digits(&s.to_bytes().into());
    let td = base::digits(&t.to_bytes().into());
    let mut acc = Jacobian::INFINITY;
    for (((g_row, p_row), &a), &b) in g.iter().zip(p.rows.iter()).zip(sd.iter()).zip(td.iter()) {
        for (row, d) in [(g_row, a), (p_row, b)] {
            if d != 0
                && let Some(q) = row.get(usize::from(d.unsigned_abs()) - 1)
            {
                acc = acc.add_affine(&if d > 0 { *q } else { q.neg() });
            }
        }
    }
    Some(acc)
}
