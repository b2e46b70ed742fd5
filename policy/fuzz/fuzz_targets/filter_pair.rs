//! Matching, inclusion and overlap agree with each other on any filters and topic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| smtrust_policy::fuzzing::filter_pair(data));
