#![no_main]
// Decoding a sealed record or master never panics, and whatever decodes re-encodes to the same bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(enc) = smtrust_keystore::fuzzing::decode_record(data) {
        assert_eq!(enc, data);
    }
    if let Some(enc) = smtrust_keystore::fuzzing::decode_master(data) {
        assert_eq!(enc, data);
    }
});
