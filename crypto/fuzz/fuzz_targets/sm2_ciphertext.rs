#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| smtrust_crypto::fuzzing::decrypt_any(data));
