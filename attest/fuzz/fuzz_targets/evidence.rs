#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| smtrust_attest::fuzzing::decode_evidence(data));
