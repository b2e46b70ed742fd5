#![no_main]
// Our SM2 arithmetic (sign, verify on both paths, keygen) against the RustCrypto `sm2` crate.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    smtrust_crypto::fuzzing::verify_differential(data);
    smtrust_crypto::fuzzing::keygen_differential(data);
});
