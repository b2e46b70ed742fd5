//! Width-w non-adjacent form of a 256-bit scalar: digits that are 0 or odd in (−2^(w−1), 2^(w−1)), at most one
//! non-zero in any w consecutive positions, Σ dᵢ·2ⁱ = k. Variable-time (public scalars only).

/// Digits of a value below 2^256: positions 0..=256.
pub(crate) const LEN: usize = 257;

/// The width-`w` NAF of the big-endian 256-bit `k` (2 ≤ w ≤ 8), least significant digit first.
pub(crate) fn recode(k_be: &[u8; 32], w: u32) -> [i8; LEN] {
    // Five little-endian limbs: subtracting a negative digit can carry into bit 256.
    let mut k = [0u64; 5];
    for (limb, chunk) in k.iter_mut().zip(k_be.rchunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *limb = u64::from_be_bytes(b);
    }
    let window = 1u64 << w;
    let half = 1i64 << (w - 1);
    let mut out = [0i8; LEN];
    for slot in out.iter_mut() {
        if k.iter().all(|&l| l == 0) {
            break;
        }
        if k[0] & 1 == 1 {
            let m = (k[0] & (window - 1)) as i64;
            let d = if m >= half { m - (1i64 << w) } else { m };
            #[allow(clippy::cast_possible_truncation)] // |d| < 2^(w−1) ≤ 2^7
            {
                *slot = d as i8;
            }
            if d > 0 {
                sub_small(&mut k, d.unsigned_abs());
            } else {
                add_small(&mut k, d.unsigned_abs());
            }
        }
        shr1(&mut k);
    }
    out
}

fn sub_small(k: &mut [u64; 5], v: u64) {
    let mut borrow = v;
    for limb in k.iter_mut() {
        let (r, b) = limb.overflowing_sub(borrow);
        *limb = r;
        borrow = u64::from(b);
        if borrow == 0 {
            break;
        }
    }
}

fn add_small(k: &mut [u64; 5], v: u64) {
    let mut carry = v;
    for limb in k.iter_mut() {
        let (r, c) = limb.overflowing_add(carry);
        *limb = r;
        carry = u64::from(c);
        if carry == 0 {
            break;
        }
    }
}

fn shr1(k: &mut [u64; 5]) {
    let mut carry = 0u64;
    for limb in k.iter_mut().rev() {
        let next = *limb & 1;
        *limb = (*limb >> 1) | (carry << 63);
        carry = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Σ dᵢ·2ⁱ as a big-endian 33-byte number (digits may be negative, so accumulate in i128 chunks).
    fn evaluate(digits: &[i8; LEN]) -> Vec<u8> {
        // Horner from the top digit: acc = 2·acc + d, on a little-endian u64 vector with signed carries.
        let mut acc = [0i128; 6];
        for &d in digits.iter().rev() {
            let mut carry = 0i128;
            for limb in acc.iter_mut() {
                let v = *limb * 2 + carry;
                *limb = v & 0xffff_ffff_ffff_ffff;
                carry = v >> 64;
            }
            acc[0] += i128::from(d);
            // normalise
            let mut carry = 0i128;
            for limb in acc.iter_mut() {
                let v = *limb + carry;
                *limb = v & 0xffff_ffff_ffff_ffff;
                carry = v >> 64;
            }
        }
        let mut out = Vec::new();
        for limb in acc.iter().rev() {
            let limb = u64::try_from(*limb).expect("normalised limbs are in [0, 2^64)");
            out.extend_from_slice(&limb.to_be_bytes());
        }
        out
    }

    proptest! {
        #[test]
        fn recodes_to_the_same_value_with_sparse_odd_digits(k in any::<[u8; 32]>(), w in 2u32..=8) {
            let digits = recode(&k, w);
            let mut expected = vec![0u8; 16];
            expected.extend_from_slice(&k);
            prop_assert_eq!(evaluate(&digits), expected);
            let bound = 1i16 << (w - 1);
            let mut last_nonzero: Option<usize> = None;
            for (i, &d) in digits.iter().enumerate() {
                if d != 0 {
                    prop_assert!(d % 2 != 0 && i16::from(d).abs() < bound, "digit {} at {}", d, i);
                    if let Some(j) = last_nonzero {
                        prop_assert!(i - j >= w as usize, "digits at {} and {} closer than {}", j, i, w);
                    }
                    last_nonzero = Some(i);
                }
            }
        }
    }

    #[test]
    fn extremes() {
        assert!(recode(&[0; 32], 5).iter().all(|&d| d == 0));
        let all = recode(&[0xff; 32], 5);
        let mut expected = vec![0u8; 16];
        expected.extend_from_slice(&[0xff; 32]);
        assert_eq!(evaluate(&all), expected);
        assert_ne!(all[256], 0, "2^256 − 1 needs the 257th digit");
    }
}
