//! Points of y² = x³ − 3x + b in Jacobian coordinates (x = X/Z², y = Y/Z³; Z = 0 is the point at infinity),
//! with the a = −3 doubling and the incomplete addition formulas of the Explicit-Formulas Database
//! (dbl-2001-b, add-2007-bl, madd-2007-bl). The exceptional cases (equal or opposite inputs, infinity) are
//! branched on: these routines are variable-time and only ever see public values (signature verification).

use super::field::Fe;

/// An affine point (never infinity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Affine {
    pub(crate) x: Fe,
    pub(crate) y: Fe,
}

impl Affine {
    pub(crate) fn neg(self) -> Affine {
        Affine {
            x: self.x,
            y: self.y.neg(),
        }
    }
}

/// A point in Jacobian coordinates.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Jacobian {
    x: Fe,
    y: Fe,
    z: Fe,
}

impl From<Affine> for Jacobian {
    fn from(p: Affine) -> Self {
        Jacobian {
            x: p.x,
            y: p.y,
            z: Fe::ONE,
        }
    }
}

impl Jacobian {
    pub(crate) const INFINITY: Jacobian = Jacobian {
        x: Fe::ONE,
        y: Fe::ONE,
        z: Fe::ZERO,
    };

    pub(crate) fn is_infinity(&self) -> bool {
        self.z.is_zero()
    }

    pub(crate) fn x(&self) -> Fe {
        self.x
    }

    pub(crate) fn z(&self) -> Fe {
        self.z
    }

    pub(crate) fn neg(self) -> Jacobian {
        Jacobian {
            x: self.x,
            y: self.y.neg(),
            z: self.z,
        }
    }

    /// The affine form; `None` for infinity. One inversion: for table set-up and tests, not the verify loop.
    pub(crate) fn to_affine(self) -> Option<Affine> {
        if self.is_infinity() {
            return None;
        }
        let zi = self.z.invert();
        let zi2 = zi.square();
        Some(Affine {
            x: self.x.mul(zi2),
            y: self.y.mul(zi2.mul(zi)),
        })
    }

    /// The affine forms of `points` with one inversion (Montgomery's trick); `None` if any is infinity.
    pub(crate) fn batch_to_affine(points: &[Jacobian]) -> Option<Vec<Affine>> {
        // prefix[i] = z_0 · … · z_(i−1)
        let mut prefix = Vec::with_capacity(points.len());
        let mut acc = Fe::ONE;
        for p in points {
            if p.is_infinity() {
                return None;
            }
            prefix.push(acc);
            acc = acc.mul(p.z);
        }
        let mut inv = acc.invert();
        let mut out = vec![
            Affine {
                x: Fe::ZERO,
                y: Fe::ZERO
            };
            points.len()
        ];
        for ((p, pre), slot) in points.iter().zip(prefix).zip(out.iter_mut()).rev() {
            let zi = inv.mul(pre);
            inv = inv.mul(p.z);
            let zi2 = zi.square();
            *slot = Affine {
                x: p.x.mul(zi2),
                y: p.y.mul(zi2.mul(zi)),
            };
        }
        Some(out)
    }

    /// 2·self (dbl-2001-b, a = −3: 3M + 5S). Infinity doubles to infinity (Z3 = 2·Y·Z = 0).
    pub(crate) fn double(self) -> Jacobian {
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x.mul(gamma);
        let t = self.x.sub(delta).mul(self.x.add(delta));
        let alpha = t.double().add(t);
        let beta4 = beta.double().double();
        let x3 = alpha.square().sub(beta4.double());
        let z3 = self.y.add(self.z).square().sub(gamma).sub(delta);
        let gamma2_8 = gamma.square().double().double().double();
        let y3 = alpha.mul(beta4.sub(x3)).sub(gamma2_8);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// self + q for affine q (madd-2007-bl: 7M + 4S).
    pub(crate) fn add_affine(self, q: &Affine) -> Jacobian {
        if self.is_infinity() {
            return Jacobian::from(*q);
        }
        let z1z1 = self.z.square();
        let u2 = q.x.mul(z1z1);
        let s2 = q.y.mul(self.z).mul(z1z1);
        let h = u2.sub(self.x);
        let rr = s2.sub(self.y);
        if h.is_zero() {
            // Same x: the same point (double) or its negation (infinity).
            return if rr.is_zero() {
                self.double()
            } else {
                Jacobian::INFINITY
            };
        }
        let hh = h.square();
        let i = hh.double().double();
        let j = h.mul(i);
        let r = rr.double();
        let v = self.x.mul(i);
        let x3 = r.square().sub(j).sub(v.double());
        let y3 = r.mul(v.sub(x3)).sub(self.y.mul(j).double());
        let z3 = self.z.add(h).square().sub(z1z1).sub(hh);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// self + q (add-2007-bl: 11M + 5S).
    pub(crate) fn add(self, q: &Jacobian) -> Jacobian {
        if self.is_infinity() {
            return *q;
        }
        if q.is_infinity() {
            return self;
        }
        let z1z1 = self.z.square();
        let z2z2 = q.z.square();
        let u1 = self.x.mul(z2z2);
        let u2 = q.x.mul(z1z1);
        let s1 = self.y.mul(q.z).mul(z2z2);
        let s2 = q.y.mul(self.z).mul(z1z1);
        let h = u2.sub(u1);
        let rr = s2.sub(s1);
        if h.is_zero() {
            return if rr.is_zero() {
                self.double()
            } else {
                Jacobian::INFINITY
            };
        }
        let i = h.double().square();
        let j = h.mul(i);
        let r = rr.double();
        let v = u1.mul(i);
        let x3 = r.square().sub(j).sub(v.double());
        let y3 = r.mul(v.sub(x3)).sub(s1.mul(j).double());
        let z3 = self.z.add(q.z).square().sub(z1z1).sub(z2z2).mul(h);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }
}
