//! Integration tests of the CA: one binary, one module per concern.

#[path = "ca/fixture.rs"]
mod fixture;
#[path = "ca/issuance.rs"]
mod issuance;
#[path = "ca/ocsp.rs"]
mod ocsp;
#[path = "ca/refusals.rs"]
mod refusals;
#[path = "ca/revocation.rs"]
mod revocation;
