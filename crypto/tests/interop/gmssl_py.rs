//! PyPI `gmssl` 3.2.2 (pure Python): SM2 signatures both ways. It takes and gives raw `r || s` as 128 hex
//! digits and always uses the ID 1234567812345678; its constructor mangles public keys, so `.public_key` is set
//! after construction (peers.md).

use smtrust_crypto::sm2::{CertId, Sm2Signature};
use smtrust_test_support::{PyGmssl, require};

use crate::{our_key, random};

const VERIFY: &str = "\
import sys
from gmssl import sm2
c = sm2.CryptSM2(private_key=None, public_key='')
c.public_key = sys.argv[1]
print('OK' if c.verify_with_sm3(sys.argv[3], bytes.fromhex(sys.argv[2])) else 'BAD')
";

const SIGN: &str = "\
import sys
from gmssl import sm2
c = sm2.CryptSM2(private_key=sys.argv[1], public_key='')
c.public_key = sys.argv[2]
print(c.sign_with_sm3(bytes.fromhex(sys.argv[3])))
";

#[test]
fn pygmssl_verifies_our_signatures_and_we_verify_theirs() {
    let Some(py) = require(PyGmssl) else { return };
    let (sk, _) = our_key();
    let pub_hex = hex::encode(&sk.public_key().to_sec1_uncompressed()[1..]);
    let signer = sk.signing_key(CertId).expect("signer");
    let vk = sk.public_key().verifying_key(CertId).expect("vk");
    for len in [0, 1, 32, 100] {
        let msg = random(len);
        let sig = signer.sign(&msg).expect("sign");
        let out = py
            .run_script(
                VERIFY,
                [&pub_hex, &hex::encode(&msg), &hex::encode(sig.to_raw())],
            )
            .expect("python runs");
        assert_eq!(
            out.stdout_str().trim(),
            "OK",
            "len {len}: {}",
            out.combined()
        );
        // A signature over other bytes is refused by the peer too (the check is real).
        let out = py
            .run_script(
                VERIFY,
                [&pub_hex, &hex::encode(b"other"), &hex::encode(sig.to_raw())],
            )
            .expect("python runs");
        assert_eq!(out.stdout_str().trim(), "BAD", "{}", out.combined());

        let out = py
            .run_script(
                SIGN,
                [
                    &hex::encode(sk.to_bytes().as_slice()),
                    &pub_hex,
                    &hex::encode(&msg),
                ],
            )
            .expect("python runs");
        assert!(out.success(), "{}", out.combined());
        let raw = hex::decode(out.stdout_str().trim()).expect("hex r||s");
        let theirs = Sm2Signature::from_raw(&raw).expect("64-byte r||s");
        vk.verify(&msg, &theirs)
            .expect("we verify PyPI gmssl's signature");
        vk.verify_der(&msg, theirs.as_der())
            .expect("and its DER form");
    }
}
