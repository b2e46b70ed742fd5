#![no_main]
// Parsing a share text never panics.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = smtrust_keystore::fuzzing::parse_share(text);
    }
});
