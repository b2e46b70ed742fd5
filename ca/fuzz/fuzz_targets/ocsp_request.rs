#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| smtrust_ca::fuzzing::ocsp_request(data));
