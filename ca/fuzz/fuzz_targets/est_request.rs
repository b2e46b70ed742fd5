//! EST request bodies (RFC 7030 §4.2.1): header checks, base64, then the CSR parser. Never panics.
//! The first byte picks the Content-Type / Content-Transfer-Encoding combination; the rest is the body.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((sel, body)) = data.split_first() else {
        return;
    };
    let content_type = match sel & 3 {
        0 => Some("application/pkcs10"),
        1 => Some("Application/PKCS10; charset=us-ascii"),
        2 => None,
        _ => Some("multipart/mixed; boundary=x"),
    };
    let transfer = if sel & 4 == 0 { Some("base64") } else { None };
    if let Ok(der) = smtrust_ca::est::pkcs10(content_type, transfer, body) {
        let _ = smtrust_ca::csr::parse_and_verify(&der);
    }
    let _ = smtrust_ca::est::decode_base64(body);
});
