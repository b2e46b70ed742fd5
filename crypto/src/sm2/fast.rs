//! Fast SM2 arithmetic on fiat-crypto's field. Verification (GB/T 32918.2 §7): [s]G + [t]P in one
//! variable-time double-and-add chain over Jacobian coordinates, w-NAF digits for both scalars, a static table of
//! odd multiples of G and a per-key table of odd multiples of P, and the final comparison done projectively (no
//! inversion). Signing's [k]G: the constant-time fixed-base multiplication of `base`.
//!
//! Why by hand: the `sm2` crate verifies with its constant-time machinery (complete projective formulas,
//! constant-time table lookups for both scalars, a field inversion at the end), which is right for secrets and
//! about 2.5× slower than needed for signatures, where every input is public. No maintained crate offers a
//! constant-time-where-it-matters, fast-where-it-may SM2 verify on fiat-crypto's field; the field arithmetic
//! itself is fiat-crypto's (formally verified), and the `sm2` crate stays the oracle in the tests.

mod base;
mod comb;
mod field;
mod point;
mod wnaf;

pub(crate) use base::{mul_base_sec1, mul_base_x};

use std::sync::{Arc, LazyLock};

use elliptic_curve::sec1::ToSec1Point;
use field::{Fe, P_BE, hex32};
use point::{Affine, Jacobian};

/// The group order n, big-endian.
const N_BE: [u8; 32] = hex32("fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123");
/// The curve coefficients a = p − 3 and b, and the base point G (GB/T 32918.5), big-endian.
pub(crate) const A_BE: [u8; 32] =
    hex32("fffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffc");
pub(crate) const B_BE: [u8; 32] =
    hex32("28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93");
pub(crate) const GX_BE: [u8; 32] =
    hex32("32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7");
pub(crate) const GY_BE: [u8; 32] =
    hex32("bc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0");

/// w-NAF width for s (the static G table holds 2^(w−2) = 64 points, 4 KiB) and for t (8 points per key).
const G_WINDOW: u32 = 8;
const P_WINDOW: u32 = 5;

/// 1G, 3G, …, 127G in affine form (computed once; inversions are fine here).
static G_TABLE: LazyLock<Option<[Affine; 64]>> = LazyLock::new(|| {
    let g = Affine {
        x: Fe::from_be_bytes(&GX_BE)?,
        y: Fe::from_be_bytes(&GY_BE)?,
    };
    let odd = odd_multiples::<64>(Jacobian::from(g));
    let mut out = [g; 64];
    for (slot, p) in out.iter_mut().zip(odd) {
        *slot = p.to_affine()?;
    }
    Some(out)
});

/// 1Q, 3Q, …, (2N−1)Q.
fn odd_multiples<const N: usize>(q: Jacobian) -> [Jacobian; N] {
    let twice = q.double();
    let mut out = [q; N];
    for i in 1..N {
        if let Some(prev) = out.get(i - 1).copied()
            && let Some(slot) = out.get_mut(i)
        {
            *slot = prev.add(&twice);
        }
    }
    out
}

/// A public key prepared for fast verification: odd multiples of P for the t·P half, or, for a key registered
/// with [`register`], its comb table.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // inline: most keys verify once, a Box would be an allocation each
pub(crate) enum PreparedKey {
    Odd([Jacobian; 8]),
    Comb(Arc<comb::CombTable>),
}

/// `x || y` of a validated public key.
fn coordinates(public: &sm2::PublicKey) -> Option<[u8; 64]> {
    let sec1 = public.to_sec1_point(false);
    sec1.as_bytes().get(1..65)?.try_into().ok()
}

impl PreparedKey {
    /// From a validated public key (on the curve, not infinity).
    pub(crate) fn new(public: &sm2::PublicKey) -> Option<Self> {
        let xy = coordinates(public)?;
        if let Some(table) = comb::lookup(&xy) {
            return Some(Self::Comb(table));
        }
        let (x, y) = xy.split_at(32);
        let p = Affine {
            x: Fe::from_be_bytes(x.try_into().ok()?)?,
            y: Fe::from_be_bytes(y.try_into().ok()?)?,
        };
        Some(Self::Odd(odd_multiples::<8>(Jacobian::from(p))))
    }

    #[cfg(test)]
    pub(crate) fn is_comb(&self) -> bool {
        matches!(self, Self::Comb(_))
    }
}

/// Give `public` a comb table so that verifying keys made for it afterwards verify without doublings; for keys
/// that verify many signatures. Returns whether it has one (false once [`comb::MAX_REGISTERED`] keys have).
pub(crate) fn register(public: &sm2::PublicKey) -> bool {
    coordinates(public).is_some_and(|xy| comb::register(&xy))
}

/// Verify (r, s) over the digest scalar e for this key: with t = r + s mod n ≠ 0 and (x1, y1) = [s]G + [t]P not
/// infinity, accept iff (e + x1) mod n = r. `r` and `s` are already known to lie in [1, n − 1].
pub(crate) fn verify_prehash(
    key: &PreparedKey,
    e: &sm2::Scalar,
    r: &sm2::Scalar,
    s: &sm2::Scalar,
) -> bool {
    let t = *r + s;
    if bool::from(t.is_zero()) {
        return false;
    }
    let Some(g_table) = G_TABLE.as_ref() else {
        return false;
    };
    let acc = match key {
        PreparedKey::Odd(odd) => double_mul(g_table, odd, s, &t),
        PreparedKey::Comb(table) => match comb::double_mul(table, s, &t) {
            Some(acc) => acc,
            None => return false,
        },
    };
    if acc.is_infinity() {
        return false;
    }
    x_matches(&acc, &(*r - e).to_bytes().into())
}

/// [s]G + [t]P: one doubling chain, adding table entries where the w-NAF digits are non-zero.
fn double_mul(
    g_table: &[Affine; 64],
    odd: &[Jacobian; 8],
    s: &sm2::Scalar,
    t: &sm2::Scalar,
) -> Jacobian {
    let sd = wnaf::recode(&s.to_bytes().into(), G_WINDOW);
    let td = wnaf::recode(&t.to_bytes().into(), P_WINDOW);
    let top = sd
        .iter()
        .zip(td.iter())
        .rposition(|(a, b)| *a != 0 || *b != 0)
        .unwrap_or(0);
    let mut acc = Jacobian::INFINITY;
    for (&a, &b) in sd.iter().zip(td.iter()).take(top + 1).rev() {
        acc = acc.double();
        if a != 0
            && let Some(q) = g_table.get(usize::from(a.unsigned_abs() / 2))
        {
            acc = acc.add_affine(&if a > 0 { *q } else { q.neg() });
        }
        if b != 0
            && let Some(q) = odd.get(usize::from(b.unsigned_abs() / 2))
        {
            acc = acc.add(&if b > 0 { *q } else { q.neg() });
        }
    }
    acc
}

/// Whether the affine x of `p` (X/Z²), reduced mod n, equals c: x < p < 2n, so x is c or c + n.
fn x_matches(p: &Jacobian, c_be: &[u8; 32]) -> bool {
    let z2 = p.z().square();
    let matches = |cand: &[u8; 32]| Fe::from_be_bytes(cand).is_some_and(|c| c.mul(z2) == p.x());
    if matches(c_be) {
        return true;
    }
    match add_be(c_be, &N_BE) {
        Some(cn) if cn < P_BE => matches(&cn),
        _ => false,
    }
}

/// a + b for big-endian 256-bit values; `None` on overflow.
fn add_be(a: &[u8; 32], b: &[u8; 32]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b).rev() {
        let v = u16::from(*x) + u16::from(*y) + carry;
        *o = (v & 0xff) as u8;
        carry = v >> 8;
    }
    (carry == 0).then_some(out)
}

#[cfg(test)]
#[path = "fast/tests.rs"]
mod tests;
