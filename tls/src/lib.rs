#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accept;
mod compat;
mod config;
mod error;
mod hash;
mod hmac;
mod identity;
mod kx;
#[cfg(feature = "axum")]
pub mod serve;
mod sign;
mod sniff;
mod tls13;
pub mod verify;

// The public interface is:
pub use accept::{DualConfig, Refused, Stack, international_server_config, offers_sm};
pub use compat::StripMiddleboxCcs;
pub use config::{
    ClientAuth, Credentials, Resumption, SM_SUITES, check_sm_coupling, client_config,
    client_config_with_suites, server_config, server_config_with_suites,
};
pub use error::{ConfigError, Error, IdentityError, Refusal};
pub use identity::{
    DEVICE_URN_PREFIX, DeviceId, DeviceIdentity, MAX_DEVICE_ID_LEN, Sm3Fingerprint,
};
pub use kx::CURVE_SM2;
pub use sign::{SM2SIG_SM3, Sm2TlsKey};
pub use sniff::{Protocol, SNIFF_LEN, SniffError, sniff};
pub use tls13::{
    TLS_SM4_CCM_SM3, TLS_SM4_CCM_SM3_ID, TLS_SM4_GCM_SM3, TLS_SM4_GCM_SM3_ID, is_sm_suite,
};
pub use verify::{
    CertRef, Purpose, RevocationCheck, RevocationStatus, RevokedSet, Sm2ChainVerifier, TrustRoots,
    UnknownStatus,
};

use rustls::crypto::CryptoProvider;

/// The RFC 8998 provider: TLS_SM4_GCM_SM3 then TLS_SM4_CCM_SM3, curveSM2 only, sm2sig_sm3 only (the coupling
/// RFC 8998 requires holds because nothing else is in it). Key bytes are refused: use [`Credentials`].
pub fn provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: vec![TLS_SM4_GCM_SM3, TLS_SM4_CCM_SM3],
        kx_groups: vec![&kx::CURVE_SM2_GROUP],
        signature_verification_algorithms: verify::SM_ALGORITHMS,
        secure_random: &Rng,
        key_provider: &sign::NO_KEY_BYTES,
    }
}

/// The OS random source through the crypto crate.
#[derive(Debug)]
struct Rng;

impl rustls::crypto::SecureRandom for Rng {
    fn fill(&self, buf: &mut [u8]) -> Result<(), rustls::crypto::GetRandomFailed> {
        smtrust_crypto::rng::fill(buf).map_err(|_| rustls::crypto::GetRandomFailed)
    }
}
