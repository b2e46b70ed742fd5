//! Arithmetic modulo the SM2 prime p = 2^256 − 2^224 − 2^96 + 2^64 − 1, on fiat-crypto's formally verified
//! Montgomery routines (the same code the `sm2` crate runs, which does not export its field type).

use fiat_crypto::sm2_64::{
    fiat_sm2_add, fiat_sm2_from_bytes, fiat_sm2_from_montgomery,
    fiat_sm2_montgomery_domain_field_element as Mont, fiat_sm2_mul,
    fiat_sm2_non_montgomery_domain_field_element as Plain, fiat_sm2_nonzero, fiat_sm2_opp,
    fiat_sm2_selectznz, fiat_sm2_set_one, fiat_sm2_square, fiat_sm2_sub, fiat_sm2_to_bytes,
    fiat_sm2_to_montgomery,
};

/// p, big-endian.
pub(crate) const P_BE: [u8; 32] =
    hex32("fffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffff");

/// An element of GF(p) in Montgomery form. Limbs are always fully reduced, so limb equality is value equality.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fe([u64; 4]);

impl Fe {
    pub(crate) const ZERO: Fe = Fe([0; 4]);
    pub(crate) const ONE: Fe = {
        let mut one = Mont([0; 4]);
        fiat_sm2_set_one(&mut one);
        Fe(one.0)
    };

    /// From 32 big-endian bytes; `None` unless the value is below p.
    pub(crate) fn from_be_bytes(bytes: &[u8; 32]) -> Option<Fe> {
        // Big-endian byte strings of equal length compare like the numbers they encode.
        if bytes >= &P_BE {
            return None;
        }
        let mut le = *bytes;
        le.reverse();
        let mut plain = [0u64; 4];
        fiat_sm2_from_bytes(&mut plain, &le);
        let mut m = Mont([0; 4]);
        fiat_sm2_to_montgomery(&mut m, &Plain(plain));
        Some(Fe(m.0))
    }

    /// 32 big-endian bytes.
    pub(crate) fn to_be_bytes(self) -> [u8; 32] {
        let mut plain = Plain([0; 4]);
        fiat_sm2_from_montgomery(&mut plain, &Mont(self.0));
        let mut out = [0u8; 32];
        fiat_sm2_to_bytes(&mut out, &plain.0);
        out.reverse();
        out
    }

    pub(crate) fn is_zero(self) -> bool {
        let mut nz = 0u64;
        fiat_sm2_nonzero(&mut nz, &self.0);
        nz == 0
    }

    pub(crate) fn mul(self, rhs: Fe) -> Fe {
        let mut out = Mont([0; 4]);
        fiat_sm2_mul(&mut out, &Mont(self.0), &Mont(rhs.0));
        Fe(out.0)
    }

    pub(crate) fn square(self) -> Fe {
        let mut out = Mont([0; 4]);
        fiat_sm2_square(&mut out, &Mont(self.0));
        Fe(out.0)
    }

    pub(crate) fn add(self, rhs: Fe) -> Fe {
        let mut out = Mont([0; 4]);
        fiat_sm2_add(&mut out, &Mont(self.0), &Mont(rhs.0));
        Fe(out.0)
    }

    pub(crate) fn sub(self, rhs: Fe) -> Fe {
        let mut out = Mont([0; 4]);
        fiat_sm2_sub(&mut out, &Mont(self.0), &Mont(rhs.0));
        Fe(out.0)
    }

    pub(crate) fn neg(self) -> Fe {
        let mut out = Mont([0; 4]);
        fiat_sm2_opp(&mut out, &Mont(self.0));
        Fe(out.0)
    }

    pub(crate) fn double(self) -> Fe {
        self.add(self)
    }

    /// `b` if `choice` is 1, else `self`, in constant time (fiat's cmov).
    pub(crate) fn select(self, b: Fe, choice: u8) -> Fe {
        let mut out = [0u64; 4];
        fiat_sm2_selectznz(&mut out, choice & 1, &self.0, &b.0);
        Fe(out)
    }

    /// self squared n times.
    fn sqn(self, n: u32) -> Fe {
        let mut a = self;
        for _ in 0..n {
            a = a.square();
        }
        a
    }

    /// self^(p−2) = self⁻¹ (0 for 0), by a fixed addition chain: 256 squarings and 15 multiplications whatever
    /// the input, so constant-time (the signer inverts the Z of [k]G with it). p − 2 in bits, from the top:
    /// 31 ones, 0, 128 ones, 32 zeros, 32 ones, 30 ones, 0, 1.
    pub(crate) fn invert(self) -> Fe {
        let x = self;
        let x2 = x.sqn(1).mul(x);
        let x3 = x2.sqn(1).mul(x);
        let x6 = x3.sqn(3).mul(x3);
        let x12 = x6.sqn(6).mul(x6);
        let x24 = x12.sqn(12).mul(x12);
        let x30 = x24.sqn(6).mul(x6);
        let x31 = x30.sqn(1).mul(x);
        let x32 = x31.sqn(1).mul(x);
        let mut acc = x31.sqn(1);
        for _ in 0..4 {
            acc = acc.sqn(32).mul(x32);
        }
        acc = acc.sqn(32);
        acc = acc.sqn(32).mul(x32);
        acc = acc.sqn(30).mul(x30);
        acc.sqn(2).mul(x)
    }

    /// self^(p−2) by plain square-and-multiply over the bits of p − 2: the tests' reference for `invert`.
    #[cfg(test)]
    pub(crate) fn invert_by_bits(self) -> Fe {
        let mut exp = P_BE;
        exp[31] = 0xfd;
        let mut acc = Fe::ONE;
        for byte in exp {
            for bit in (0..8).rev() {
                acc = acc.square();
                if (byte >> bit) & 1 == 1 {
                    acc = acc.mul(self);
                }
            }
        }
        acc
    }
}

impl core::fmt::Debug for Fe {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Fe(")?;
        for b in self.to_be_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// 64 hex digits to 32 bytes at compile time (constants only; a bad digit fails the build).
#[allow(clippy::panic)] // const evaluation: a panic here is a compile error, never a run-time one
pub(crate) const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lower-case hex digit"),
        }
    }
    let b = s.as_bytes();
    assert!(b.len() == 64, "64 hex digits");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}
