//! Topic name and filter parsing never panics; whatever parses round-trips exactly.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| smtrust_policy::fuzzing::topic(data));
