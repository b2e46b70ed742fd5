//! Record layer round trip through a connected pair, for both suites, over payload sizes that cross record
//! boundaries (16 KiB plaintext records).

use std::cell::RefCell;
use std::sync::Arc;

use proptest::prelude::*;
use smtrust_tls::{Resumption, TLS_SM4_CCM_SM3, TLS_SM4_GCM_SM3};

use crate::World;
use crate::pair::Pair;

fn pair(suite: rustls::SupportedCipherSuite) -> Pair {
    let w = World::new();
    let client = smtrust_tls::client_config_with_suites(w.verifier(), None, &[suite]).unwrap();
    let mut p = Pair::new(
        Arc::new(client),
        w.server_config(false, Resumption::Off),
        "localhost",
    );
    p.handshake().unwrap();
    p
}

#[test]
fn round_trip_any_payload_both_suites() {
    for suite in [TLS_SM4_GCM_SM3, TLS_SM4_CCM_SM3] {
        let p = RefCell::new(pair(suite));
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 48,
            ..ProptestConfig::default()
        });
        runner
            .run(&proptest::collection::vec(any::<u8>(), 0..40_000), |data| {
                let mut p = p.borrow_mut();
                prop_assert_eq!(&p.client_to_server(&data), &data);
                prop_assert_eq!(&p.server_to_client(&data), &data);
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn tampered_record_is_refused() {
    use std::io::Write;
    let mut p = pair(TLS_SM4_GCM_SM3);
    p.client.writer().write_all(b"integrity").unwrap();
    let mut buf = Vec::new();
    p.client.write_tls(&mut buf).unwrap();
    let last = buf.len() - 1;
    buf[last] ^= 1;
    p.server.read_tls(&mut &buf[..]).unwrap();
    assert_eq!(
        p.server.process_new_packets().unwrap_err(),
        rustls::Error::DecryptError
    );
}
