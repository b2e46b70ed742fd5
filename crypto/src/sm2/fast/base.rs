//! Constant-time [k]G for secret k (signing nonces, key generation): signed radix-16 digits, a static table of
//! 1..8 · 16^i · G for each of the 65 digit positions (33 KiB), every entry of a row read for each digit, and the
//! complete mixed addition of Renes–Costello–Batina (ePrint 2015/1060, Algorithm 5, a = −3) in homogeneous
//! projective coordinates, so no step branches on k. The result's x is made affine with the fixed-chain inversion.
//!
//! Why by hand: the `sm2` crate's base-point multiplication is also constant-time, but it only returns the
//! point through `to_affine()`, whose inversion (fiat-crypto's divstep) costs as much as a third of a signature.

use std::sync::LazyLock;

use super::field::Fe;
use super::point::{Affine, Jacobian};

/// Digit positions: 64 nibbles of a 256-bit scalar plus the final carry.
pub(crate) const ROWS: usize = 65;

struct Table {
    rows: [[Affine; 8]; ROWS],
    b: Fe,
}

/// Row i holds (j + 1) · 16^i · G for j in 0..8. Built once with the variable-time Jacobian code: G is public.
static TABLE: LazyLock<Option<Table>> = LazyLock::new(|| {
    let g = Affine {
        x: Fe::from_be_bytes(&super::GX_BE)?,
        y: Fe::from_be_bytes(&super::GY_BE)?,
    };
    let b = Fe::from_be_bytes(&super::B_BE)?;
    let mut rows = [[g; 8]; ROWS];
    let mut base = Jacobian::from(g);
    for row in rows.iter_mut() {
        let mut multiple = base;
        for slot in row.iter_mut() {
            *slot = multiple.to_affine()?;
            multiple = multiple.add(&base);
        }
        base = base.double().double().double().double();
    }
    Some(Table { rows, b })
});

/// A point (X : Y : Z) with x = X/Z, y = Y/Z; the identity is (0 : 1 : 0).
#[derive(Clone, Copy)]
struct Proj {
    x: Fe,
    y: Fe,
    z: Fe,
}

impl Proj {
    const IDENTITY: Proj = Proj {
        x: Fe::ZERO,
        y: Fe::ONE,
        z: Fe::ZERO,
    };

    fn select(self, other: Proj, choice: u8) -> Proj {
        Proj {
            x: self.x.select(other.x, choice),
            y: self.y.select(other.y, choice),
            z: self.z.select(other.z, choice),
        }
    }

    /// self + q for affine q ≠ identity; complete for every self (identity included), no branches.
    fn add_mixed(self, q: &Affine, b: Fe) -> Proj {
        let (x1, y1, z1) = (self.x, self.y, self.z);
        let (x2, y2) = (q.x, q.y);
        let t0 = x1.mul(x2);
        let t1 = y1.mul(y2);
        let t3 = x2.add(y2).mul(x1.add(y1)).sub(t0.add(t1));
        let t4 = y2.mul(z1).add(y1);
        let mut y3 = x2.mul(z1).add(x1);
        let mut z3 = b.mul(z1);
        let mut x3 = y3.sub(z3);
        z3 = x3.double();
        x3 = x3.add(z3);
        z3 = t1.sub(x3);
        x3 = t1.add(x3);
        y3 = b.mul(y3);
        let t1 = z1.double();
        let t2 = t1.add(z1);
        y3 = y3.sub(t2).sub(t0);
        let t1 = y3.double();
        y3 = t1.add(y3);
        let t1 = t0.double();
        let t0 = t1.add(t0).sub(t2);
        let t1 = t4.mul(y3);
        let t2 = t0.mul(y3);
        y3 = x3.mul(z3).add(t2);
        x3 = t3.mul(x3).sub(t1);
        z3 = t4.mul(z3).add(t3.mul(t0));
        Proj {
            x: x3,
            y: y3,
            z: z3,
        }
    }
}

/// Row i of the base-point table: (j + 1) · 16^i · G for j in 0..8 (for the variable-time comb verify).
pub(crate) fn g_rows() -> Option<&'static [[Affine; 8]; ROWS]> {
    TABLE.as_ref().map(|t| &t.rows)
}

/// Signed radix-16 digits of the big-endian k, least significant first: each in [−8, 8], Σ dᵢ·16ⁱ = k.
/// Arithmetic only, no branches on k.
pub(crate) fn digits(k_be: &[u8; 32]) -> [i8; ROWS] {
    let mut out = [0i8; ROWS];
    let mut carry: u8 = 0;
    let nibbles = k_be.iter().rev().flat_map(|b| [b & 0x0f, b >> 4]);
    for (slot, n) in out.iter_mut().zip(nibbles) {
        let v = n + carry; // 0..=16
        carry = (v + 8) >> 4;
        // v − 16·carry ∈ [−8, 7], computed in i16 and narrowed (no secret-dependent branch).
        let d = i16::from(v) - 16 * i16::from(carry);
        #[allow(clippy::cast_possible_truncation)] // d ∈ [−8, 7]
        {
            *slot = d as i8;
        }
    }
    if let Some(last) = out.last_mut() {
        *last = carry as i8;
    }
    out
}

/// 1 if a == b, else 0, without a branch (`subtle`'s comparison, behind its optimisation barrier).
fn ct_eq_u8(a: u8, b: u8) -> u8 {
    subtle::ConstantTimeEq::ct_eq(&a, &b).unwrap_u8()
}

/// The affine x (big-endian) of [k]G for a secret k ∈ [1, n − 1]; `None` only if the table could not be built.
pub(crate) fn mul_base_x(k_be: &[u8; 32]) -> Option<[u8; 32]> {
    let (p, zi) = mul_base(k_be)?;
    Some(p.x.mul(zi).to_be_bytes())
}

/// The affine point [k]G as uncompressed SEC1 `04 || x || y`, for a secret k ∈ [1, n − 1].
pub(crate) fn mul_base_sec1(k_be: &[u8; 32]) -> Option<[u8; 65]> {
    let (p, zi) = mul_base(k_be)?;
    let mut out = [0u8; 65];
    out[0] = 0x04;
    out[1..33].copy_from_slice(&p.x.mul(zi).to_be_bytes());
    out[33..].copy_from_slice(&p.y.mul(zi).to_be_bytes());
    Some(out)
}

/// [k]G in projective form with 1/Z. k ∈ [1, n − 1] never gives the identity, so Z ≠ 0.
fn mul_base(k_be: &[u8; 32]) -> Option<(Proj, Fe)> {
    let table = TABLE.as_ref()?;
    let mut acc = Proj::IDENTITY;
    let digits = zeroize::Zeroizing::new(digits(k_be));
    for (row, &d) in table.rows.iter().zip(digits.iter()) {
        let d = d as u8; // two's complement bits of the digit
        let negative = d >> 7;
        let abs = (d ^ 0u8.wrapping_sub(negative)).wrapping_add(negative);
        let mut q = *row.first()?;
        for (j, entry) in (1u8..).zip(row.iter()) {
            let hit = ct_eq_u8(abs, j);
            q.x = q.x.select(entry.x, hit);
            q.y = q.y.select(entry.y, hit);
        }
        q.y = q.y.select(q.y.neg(), negative);
        let sum = acc.add_mixed(&q, table.b);
        acc = sum.select(acc, ct_eq_u8(abs, 0));
    }
    let zi = acc.z.invert();
    Some((acc, zi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn digits_recompose() {
        for k in [[0u8; 32], [0xff; 32], [0x88; 32], [0x77; 32]] {
            let d = digits(&k);
            // Horner over the digits, in i128 limbs of 64 bits.
            let mut acc = [0i128; 5];
            for &x in d.iter().rev() {
                let mut carry = 0i128;
                for limb in acc.iter_mut() {
                    let v = *limb * 16 + carry;
                    *limb = v & 0xffff_ffff_ffff_ffff;
                    carry = v >> 64;
                }
                acc[0] += i128::from(x);
                let mut carry = 0i128;
                for limb in acc.iter_mut() {
                    let v = *limb + carry;
                    *limb = v & 0xffff_ffff_ffff_ffff;
                    carry = v >> 64;
                }
            }
            let mut be = Vec::new();
            for limb in acc.iter().rev().skip(1) {
                be.extend_from_slice(&u64::try_from(*limb).expect("limb").to_be_bytes());
            }
            assert_eq!(acc[4], 0);
            assert_eq!(be, k.to_vec());
            assert!(d.iter().all(|x| (-8..=8).contains(x)));
        }
    }

    #[test]
    fn ct_eq_u8_is_equality() {
        for a in 0..=255u8 {
            for b in [0u8, 1, 7, 8, 128, 255] {
                assert_eq!(ct_eq_u8(a, b) == 1, a == b);
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_sm2_crate(k in any::<[u8; 32]>()) {
            use elliptic_curve::point::AffineCoordinates;
            use elliptic_curve::{Group, PrimeField};
            let Some(s) = Option::<sm2::Scalar>::from(sm2::Scalar::from_repr(k.into())) else {
                return Ok(());
            };
            prop_assume!(!bool::from(s.is_zero()));
            let want: [u8; 32] = sm2::ProjectivePoint::mul_by_generator(&s).to_affine().x().into();
            prop_assert_eq!(mul_base_x(&k), Some(want));
            let full = sm2::PublicKey::from_secret_scalar(&sm2::NonZeroScalar::new(s).expect("non-zero"));
            let sec1 = elliptic_curve::sec1::ToSec1Point::to_sec1_point(&full, false);
            prop_assert_eq!(mul_base_sec1(&k).map(|b| b.to_vec()), Some(sec1.as_bytes().to_vec()));
        }
    }

    #[test]
    fn small_and_extreme_scalars() {
        use elliptic_curve::point::AffineCoordinates;
        use elliptic_curve::{Group, PrimeField};
        let n_minus = |i: u64| -sm2::Scalar::from(i);
        for s in [
            sm2::Scalar::ONE,
            sm2::Scalar::from(2u64),
            sm2::Scalar::from(8u64),
            sm2::Scalar::from(16u64),
            sm2::Scalar::from(0x88u64),
            n_minus(1),
            n_minus(8),
            n_minus(9),
        ] {
            let k: [u8; 32] = s.to_repr().into();
            let want: [u8; 32] = sm2::ProjectivePoint::mul_by_generator(&s)
                .to_affine()
                .x()
                .into();
            assert_eq!(mul_base_x(&k), Some(want), "{s:?}");
        }
    }
}
