//! Key exchange on curveSM2 (RFC 8998 §3.1: group 41, uncompressed points, shared secret = x-coordinate).

use rustls::crypto::{ActiveKeyExchange, SharedSecret, SupportedKxGroup};
use rustls::{Error, NamedGroup, PeerMisbehaved};
use smtrust_crypto::sm2::EphemeralSecret;

/// curveSM2, TLS NamedGroup 41 (0x0029).
pub const CURVE_SM2: NamedGroup = NamedGroup::Unknown(0x0029);

/// The curveSM2 key exchange group.
#[derive(Debug)]
pub(crate) struct CurveSm2;

pub(crate) static CURVE_SM2_GROUP: CurveSm2 = CurveSm2;

impl SupportedKxGroup for CurveSm2 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let secret = EphemeralSecret::generate().map_err(|_| Error::FailedToGetRandomBytes)?;
        let public = secret.public_bytes();
        Ok(Box::new(ActiveSm2 { secret, public }))
    }

    fn name(&self) -> NamedGroup {
        CURVE_SM2
    }

    fn usable_for_version(&self, version: rustls::ProtocolVersion) -> bool {
        // RFC 8998 defines curveSM2 for TLS 1.3 only.
        version == rustls::ProtocolVersion::TLSv1_3
    }
}

struct ActiveSm2 {
    secret: EphemeralSecret,
    public: [u8; smtrust_crypto::sm2::UNCOMPRESSED_POINT_LEN],
}

impl ActiveKeyExchange for ActiveSm2 {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, Error> {
        // Off-curve, compressed, identity or wrong-length shares are all the peer's fault.
        let shared = self
            .secret
            .agree(peer_pub_key)
            .map_err(|_| Error::from(PeerMisbehaved::InvalidKeyShare))?;
        Ok(SharedSecret::from(&shared[..]))
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        CURVE_SM2
    }
}
