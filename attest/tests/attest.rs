//! Integration tests for smtrust-attest: one binary, one module per concern.
#![allow(unreachable_pub)] // test-only modules share helpers with `pub`
#![allow(
    clippy::unwrap_used,
    reason = "test fixtures: a failure is a failed test"
)]

#[path = "attest/pki.rs"]
mod pki;

#[path = "attest/appraisal.rs"]
mod appraisal;
#[path = "attest/decoder.rs"]
mod decoder;
#[path = "attest/http.rs"]
mod http;
#[path = "attest/openssl.rs"]
mod openssl;
#[path = "attest/references.rs"]
mod references;
#[path = "attest/stores.rs"]
mod stores;
