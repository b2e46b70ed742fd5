#![no_main]
// Arbitrary DER through the certificate paths a peer reaches: `DeviceIdentity::from_certificate` and the SM2
// chain verifier (as end entity for both purposes, and as an intermediate under a real leaf), against a fixed
// Tongsuo-made root (seeds/cert, see seeds/make.sh). Never panics; garbage never verifies.
use std::sync::{Arc, OnceLock};

use rustls::pki_types::{CertificateDer, UnixTime};
use smtrust_tls::{
    DeviceIdentity, Purpose, RevokedSet, Sm2ChainVerifier, TrustRoots, UnknownStatus,
};

const ROOT: &[u8] = include_bytes!("../seeds/cert/root.der");
const DEVICE: &[u8] = include_bytes!("../seeds/cert/device.der");
const SERVER: &[u8] = include_bytes!("../seeds/cert/server.der");

fn verifier() -> &'static Sm2ChainVerifier {
    static V: OnceLock<Sm2ChainVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let roots = TrustRoots::new(&[CertificateDer::from(ROOT)]).expect("seed root parses");
        Sm2ChainVerifier::new(roots, Arc::new(RevokedSet::new()), UnknownStatus::Refuse)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let cert = CertificateDer::from(data);
    let _ = DeviceIdentity::from_certificate(&cert);
    // Inside the seed certificates' validity (2026..2036), so seeds exercise the whole path.
    let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000));
    let v = verifier();
    // Only the root signed anything, and only these two leaves for these purposes: a mutant must never pass.
    if v.verify(&cert, &[], Purpose::Client, None, now).is_ok() {
        assert_eq!(data, DEVICE);
    }
    if v.verify(&cert, &[], Purpose::Server, None, now).is_ok() {
        assert_eq!(data, SERVER);
    }
    let _ = v.verify(
        &CertificateDer::from(DEVICE),
        &[cert],
        Purpose::Client,
        None,
        now,
    );
});
