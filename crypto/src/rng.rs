//! Randomness from the operating system.
//!
//! Every random value smtrust needs (keys, nonces, serials, IVs) comes through here, so a test or an HSM can
//! be pointed at one place.

use crate::Error;

/// Fill `buf` with random bytes from the OS CSPRNG.
pub fn fill(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|_| Error::Random)
}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut b = [0u8; N];
    fill(&mut b)?;
    Ok(b)
}

/// The OS random source as a `rand_core` RNG, for APIs that take one.
pub(crate) fn os() -> getrandom::SysRng {
    getrandom::SysRng
}
