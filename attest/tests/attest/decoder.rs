//! Property tests on the evidence decoder: never panics, rejects every mutation of a valid token that it does
//! not authenticate, and round-trips what the device side encodes.

use proptest::prelude::*;

use smtrust_attest::device::sign_evidence;
use smtrust_attest::{Status, decode_evidence};

use crate::pki::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode_evidence(&data);
    }

    #[test]
    fn dotted_base64_never_panics(parts in proptest::collection::vec("[A-Za-z0-9_-]{0,64}", 0..5)) {
        let _ = decode_evidence(parts.join(".").as_bytes());
    }
}

#[test]
fn round_trip_and_mutations() {
    let b = Bench::new();
    let d = b.pki.device("ctw-0000000100");
    let nonce = b.challenge(&d.id, 300);
    let c = claims(&d, &nonce);
    let ev = sign_evidence(&c, &d.chain, &d.key).unwrap();
    let decoded = decode_evidence(ev.as_bytes()).unwrap();
    assert_eq!(decoded.claims, c);
    assert_eq!(decoded.chain, d.chain);
    // Single-byte changes spread over the whole token (header, payload, signature, dots): each either fails
    // to decode or fails authentication, so none affirms.
    let step = (ev.len() / 150).max(1);
    for (i, pos) in (0..ev.len()).step_by(step).enumerate() {
        let mut m = ev.clone().into_bytes();
        m[pos] = [b'A', b'.', b'_', 0xff, b'0'][i % 5];
        if m == ev.as_bytes() {
            continue;
        }
        let a = b.appraiser.check(&m, &Statuses::default(), now());
        assert!(!a.authenticated(), "mutation at {pos} authenticated");
        let r = b.appraiser.finish(a, None, None, now()).unwrap();
        assert_ne!(r.result.status, Status::Affirming);
    }
}
