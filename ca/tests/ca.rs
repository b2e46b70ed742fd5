//! Integration tests of the CA: one binary, one module per concern.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures fail loudly

#[path = "ca/concurrent.rs"]
mod concurrent;
#[path = "ca/delta.rs"]
mod delta;
#[path = "ca/fixture.rs"]
mod fixture;
#[path = "ca/issuance.rs"]
mod issuance;
#[path = "ca/ocsp.rs"]
mod ocsp;
#[path = "ca/ocsp_get.rs"]
mod ocsp_get;
#[path = "ca/ocsp_presign.rs"]
mod ocsp_presign;
#[path = "ca/refusals.rs"]
mod refusals;
#[path = "ca/renewal.rs"]
mod renewal;
#[path = "ca/revocation.rs"]
mod revocation;
