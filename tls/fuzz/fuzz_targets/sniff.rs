#![no_main]
// The listener's first look at a client: `sniff` on the raw bytes, then rustls's Acceptor and `offers_sm` on
// whatever ClientHello it parses. Never panics; `sniff` reads only its 6-byte window and accepts only a
// handshake record whose first message is a ClientHello.
use smtrust_tls::{Protocol, SNIFF_LEN, SniffError, offers_sm, sniff};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let verdict = sniff(data);
    match data.get(..SNIFF_LEN) {
        None => assert_eq!(verdict, Err(SniffError::Incomplete { needed: SNIFF_LEN })),
        Some(head) => {
            assert_eq!(verdict, sniff(head), "sniff must look at the header only");
            if let Ok(p) = verdict {
                assert_eq!((head[0], head[5]), (0x16, 0x01));
                assert_eq!(p == Protocol::Tlcp, head[1..3] == [0x01, 0x01]);
            }
        }
    }

    let mut acceptor = rustls::server::Acceptor::default();
    let mut rd = data;
    while !rd.is_empty() {
        match acceptor.read_tls(&mut rd) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if let Ok(Some(accepted)) = acceptor.accept() {
        let hello = accepted.client_hello();
        let sm = offers_sm(&hello);
        // What rustls serves, the listener must not turn away: an RFC 8998 offer in a record within
        // RFC 8446's 2^14 limit (sniff is stricter than rustls there, by design) sniffed as TLS.
        let len = data.get(3..5).map(|l| u16::from_be_bytes([l[0], l[1]]));
        if sm && len.is_some_and(|l| l <= 1 << 14) {
            assert_eq!(verdict, Ok(Protocol::Tls));
        }
    }
});
