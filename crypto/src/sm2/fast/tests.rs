//! The fast path against the `sm2` crate (constant-time reference arithmetic) as the oracle.

use super::*;
use elliptic_curve::Group;
use elliptic_curve::ops::Reduce;
use elliptic_curve::point::AffineCoordinates;
use proptest::prelude::*;
use signature::hazmat::PrehashVerifier;
use sm2::{FieldBytes, ProjectivePoint, Scalar};

fn scalar(bytes: [u8; 32]) -> Scalar {
    <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(bytes))
}

fn public(p: ProjectivePoint) -> sm2::PublicKey {
    sm2::PublicKey::from_affine(p.to_affine()).expect("not infinity")
}

/// The oracle's x coordinate of [s]G + [t]P, or None for infinity.
fn oracle_x(s: &Scalar, t: &Scalar, p: ProjectivePoint) -> Option<[u8; 32]> {
    let sum = ProjectivePoint::generator() * s + p * t;
    (!bool::from(sum.is_identity())).then(|| sum.to_affine().x().into())
}

/// Ours, through the same loop `verify_prehash` runs.
fn fast_x(s: &Scalar, t: &Scalar, p: ProjectivePoint) -> Option<[u8; 32]> {
    // Built directly: another test may have registered this key, which would give it a comb table.
    let xy = coordinates(&public(p)).expect("coordinates");
    let (x, y) = xy.split_at(32);
    let affine = Affine {
        x: Fe::from_be_bytes(x.try_into().expect("32")).expect("x"),
        y: Fe::from_be_bytes(y.try_into().expect("32")).expect("y"),
    };
    let odd = odd_multiples::<8>(Jacobian::from(affine));
    let g = G_TABLE.as_ref().expect("table");
    double_mul(g, &odd, s, t)
        .to_affine()
        .map(|a| a.x.to_be_bytes())
}

fn oracle_verify(p: &sm2::PublicKey, e: &Scalar, r: &Scalar, s: &Scalar) -> bool {
    let Ok(sig) = sm2::dsa::Signature::from_scalars(*r, *s) else {
        return false;
    };
    let vk = crate::sm2::distid::verifying_key("", *p).expect("vk");
    vk.verify_prehash(&e.to_bytes(), &sig).is_ok()
}

#[test]
fn field_inverse_round_trip_and_range() {
    let a = Fe::from_be_bytes(&[0x5a; 32]).expect("below p");
    assert_eq!(a.mul(a.invert()), Fe::ONE);
    assert_eq!(Fe::from_be_bytes(&a.to_be_bytes()), Some(a));
    assert_eq!(
        Fe::from_be_bytes(&P_BE),
        None,
        "p itself is not a field element"
    );
    assert_eq!(Fe::from_be_bytes(&[0xff; 32]), None);
    let mut p_minus_1 = P_BE;
    p_minus_1[31] = 0xfe;
    let m1 = Fe::from_be_bytes(&p_minus_1).expect("p − 1");
    assert_eq!(m1, Fe::ONE.neg());
    assert!(m1.add(Fe::ONE).is_zero());
}

#[test]
fn g_table_holds_the_odd_multiples_of_the_standard_base_point() {
    let table = G_TABLE.as_ref().expect("table");
    for (i, entry) in table.iter().enumerate() {
        let k = Scalar::from(2 * i as u64 + 1);
        let want = (ProjectivePoint::generator() * k).to_affine();
        assert_eq!(
            entry.x.to_be_bytes(),
            <[u8; 32]>::from(want.x()),
            "{}G",
            2 * i + 1
        );
    }
}

#[test]
fn exceptional_keys_agree_with_the_oracle() {
    // P = ±G, ±2G, 3G: the joint chain meets equal and opposite points, exercising the doubling and
    // infinity branches of the additions.
    let g = ProjectivePoint::generator();
    let keys = [
        g,
        -g,
        g.double(),
        -g.double(),
        g * Scalar::from(3u64),
        g * Scalar::from(127u64),
    ];
    let scalars = [
        Scalar::ONE,
        Scalar::from(2u64),
        Scalar::from(127u64),
        -Scalar::ONE,
        -Scalar::from(127u64),
        scalar([0xa5; 32]),
    ];
    for p in keys {
        for s in &scalars {
            for t in &scalars {
                assert_eq!(fast_x(s, t, p), oracle_x(s, t, p), "s={s:?} t={t:?}");
            }
        }
    }
}

#[test]
fn a_sum_at_infinity_is_rejected() {
    // P = dG and s = −t·d: [s]G + [t]P = O. Both implementations must refuse whatever r is.
    let d = scalar([0x37; 32]);
    let p = public(ProjectivePoint::generator() * d);
    let key = PreparedKey::new(&p).expect("prepared");
    let t = scalar([0x42; 32]);
    let s = -(t * d);
    let r = t - s;
    let e = scalar([0x11; 32]);
    assert!(!verify_prehash(&key, &e, &r, &s));
    assert!(!oracle_verify(&p, &e, &r, &s));
}

#[test]
fn x_coordinates_at_or_above_n_are_reduced() {
    // A point R whose x lies in [n, p), then a key and signature for which [s]G + [t]P = R (t = 1, P = R − sG,
    // r = 1 − s, e = r − x mod n): only the "x = c + n" branch of the comparison accepts it.
    let mut x = N_BE;
    let r_point = loop {
        let mut sec1 = vec![0x02];
        sec1.extend_from_slice(&x);
        if let Ok(pk) = sm2::PublicKey::from_sec1_bytes(&sec1) {
            break pk.to_projective();
        }
        x = add_be(&x, &{
            let mut one = [0u8; 32];
            one[31] = 1;
            one
        })
        .expect("no overflow");
        assert!(x < P_BE);
    };
    let s = scalar([0x77; 32]);
    let p = public(r_point - ProjectivePoint::generator() * s);
    let r = Scalar::ONE - s;
    let e = r - scalar(x);
    let key = PreparedKey::new(&p).expect("prepared");
    assert!(
        oracle_verify(&p, &e, &r, &s),
        "oracle accepts the crafted signature"
    );
    assert!(verify_prehash(&key, &e, &r, &s), "so must we");
    let r2 = r + Scalar::ONE;
    let s2 = s - Scalar::ONE; // keeps t = 1
    assert!(!verify_prehash(&key, &e, &r2, &s2));
    assert!(!oracle_verify(&p, &e, &r2, &s2));
}

/// Ours through the comb tables of a registered key.
fn comb_x(s: &Scalar, t: &Scalar, p: ProjectivePoint) -> Option<[u8; 32]> {
    let pk = public(p);
    assert!(register(&pk));
    let Some(PreparedKey::Comb(table)) = PreparedKey::new(&pk) else {
        panic!("a registered key has its comb table");
    };
    comb::double_mul(&table, s, t)
        .expect("tables")
        .to_affine()
        .map(|a| a.x.to_be_bytes())
}

#[test]
fn comb_tables_agree_with_the_oracle_on_exceptional_keys() {
    let g = ProjectivePoint::generator();
    let scalars = [
        Scalar::ONE,
        Scalar::from(8u64),
        -Scalar::ONE,
        -Scalar::from(9u64),
        scalar([0x5c; 32]),
    ];
    for p in [g, -g, g * Scalar::from(16u64), g * Scalar::from(3u64)] {
        for s in &scalars {
            for t in &scalars {
                assert_eq!(comb_x(s, t, p), oracle_x(s, t, p), "s={s:?} t={t:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_inversion_chain_is_fermat(a in any::<[u8; 32]>()) {
        let Some(a) = Fe::from_be_bytes(&a) else { return Ok(()) };
        prop_assert_eq!(a.invert(), a.invert_by_bits());
        if !a.is_zero() {
            prop_assert_eq!(a.mul(a.invert()), Fe::ONE);
        }
    }

    #[test]
    fn double_mul_agrees_with_the_oracle(s in any::<[u8; 32]>(), t in any::<[u8; 32]>(), d in any::<[u8; 32]>()) {
        let d = scalar(d);
        prop_assume!(!bool::from(d.is_zero()));
        let p = ProjectivePoint::generator() * d;
        let (s, t) = (scalar(s), scalar(t));
        prop_assert_eq!(fast_x(&s, &t, p), oracle_x(&s, &t, p));
    }

    #[test]
    fn verdicts_agree_with_the_oracle(
        d in any::<[u8; 32]>(),
        e in any::<[u8; 32]>(),
        k in any::<[u8; 32]>(),
        flip in 0usize..4,
    ) {
        // A valid signature made with the textbook formula, then one of: untouched, r changed, s changed, e changed.
        let d = scalar(d);
        let k = scalar(k);
        prop_assume!(!bool::from(d.is_zero() | k.is_zero() | (d + Scalar::ONE).is_zero()));
        let p = public(ProjectivePoint::generator() * d);
        let e = scalar(e);
        let x1 = scalar((ProjectivePoint::generator() * k).to_affine().x().into());
        let r = e + x1;
        let dinv = Option::<Scalar>::from((d + Scalar::ONE).invert()).expect("invertible");
        let s = dinv * (k - r * d);
        prop_assume!(!bool::from(r.is_zero() | s.is_zero()));
        let (e, r, s) = match flip {
            0 => (e, r, s),
            1 => (e, r + Scalar::ONE, s),
            2 => (e, r, s + Scalar::ONE),
            _ => (e + Scalar::ONE, r, s),
        };
        prop_assume!(!bool::from(r.is_zero() | s.is_zero()));
        let key = PreparedKey::new(&p).expect("prepared");
        let ours = verify_prehash(&key, &e, &r, &s);
        prop_assert_eq!(ours, oracle_verify(&p, &e, &r, &s));
        prop_assert_eq!(ours, flip == 0);
    }
}

proptest! {
    // Each case registers a key in the process-wide registry (at most comb::MAX_REGISTERED keys): few cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn comb_verdicts_agree_with_the_oracle(
        d in any::<[u8; 32]>(),
        e in any::<[u8; 32]>(),
        k in any::<[u8; 32]>(),
        flip in 0usize..3,
    ) {
        let d = scalar(d);
        let k = scalar(k);
        prop_assume!(!bool::from(d.is_zero() | k.is_zero() | (d + Scalar::ONE).is_zero()));
        let p = public(ProjectivePoint::generator() * d);
        prop_assert!(register(&p));
        let key = PreparedKey::new(&p).expect("prepared");
        prop_assert!(key.is_comb());
        let e = scalar(e);
        let x1 = scalar((ProjectivePoint::generator() * k).to_affine().x().into());
        let r = e + x1;
        let dinv = Option::<Scalar>::from((d + Scalar::ONE).invert()).expect("invertible");
        let s = dinv * (k - r * d);
        prop_assume!(!bool::from(r.is_zero() | s.is_zero()));
        let (r, s) = match flip {
            0 => (r, s),
            1 => (r + Scalar::ONE, s),
            _ => (r, s + Scalar::ONE),
        };
        prop_assume!(!bool::from(r.is_zero() | s.is_zero()));
        let ours = verify_prehash(&key, &e, &r, &s);
        prop_assert_eq!(ours, oracle_verify(&p, &e, &r, &s));
        prop_assert_eq!(ours, flip == 0);
    }
}
