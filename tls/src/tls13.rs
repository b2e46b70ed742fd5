//! The RFC 8998 TLS 1.3 cipher suites: TLS_SM4_GCM_SM3 (0x00C6) and TLS_SM4_CCM_SM3 (0x00C7), their SM4 record
//! protection (12-byte nonces, 16-byte tags, RFC 8446 §5.2 record layout) and HKDF over HMAC-SM3.

use aead::{AeadInOut, KeyInit};
use rustls::crypto::CipherSuiteCommon;
use rustls::crypto::cipher::{
    AeadKey, InboundOpaqueMessage, InboundPlainMessage, Iv, MessageDecrypter, MessageEncrypter,
    NONCE_LEN, Nonce, OutboundOpaqueMessage, OutboundPlainMessage, PrefixedPayload,
    Tls13AeadAlgorithm, UnsupportedOperationError, make_tls13_aad,
};
use rustls::crypto::tls13::HkdfUsingHmac;
use rustls::{
    CipherSuite, ConnectionTrafficSecrets, ContentType, Error, ProtocolVersion,
    SupportedCipherSuite, Tls13CipherSuite,
};
use smtrust_crypto::sm4::{KEY_LEN, Sm4Ccm, Sm4Gcm, TAG_LEN};

use crate::hash::SM3;
use crate::hmac::HMAC_SM3;

/// TLS_SM4_GCM_SM3 (RFC 8998 §2).
pub const TLS_SM4_GCM_SM3_ID: CipherSuite = CipherSuite::Unknown(0x00C6);
/// TLS_SM4_CCM_SM3 (RFC 8998 §2).
pub const TLS_SM4_CCM_SM3_ID: CipherSuite = CipherSuite::Unknown(0x00C7);

/// Records per key before a key update: RFC 8446 §5.5's AES-GCM figure; SM4 has the same 128-bit block.
const CONFIDENTIALITY_LIMIT: u64 = 1 << 24;

/// TLS_SM4_GCM_SM3.
pub const TLS_SM4_GCM_SM3: SupportedCipherSuite = SupportedCipherSuite::Tls13(&SM4_GCM_SUITE);
/// TLS_SM4_CCM_SM3.
pub const TLS_SM4_CCM_SM3: SupportedCipherSuite = SupportedCipherSuite::Tls13(&SM4_CCM_SUITE);

static SM4_GCM_SUITE: Tls13CipherSuite = Tls13CipherSuite {
    common: CipherSuiteCommon {
        suite: TLS_SM4_GCM_SM3_ID,
        hash_provider: &SM3,
        confidentiality_limit: CONFIDENTIALITY_LIMIT,
    },
    hkdf_provider: &HkdfUsingHmac(&HMAC_SM3),
    aead_alg: &Sm4Aead::Gcm,
    // RFC 8998 defines no QUIC header protection for SM4.
    quic: None,
};

static SM4_CCM_SUITE: Tls13CipherSuite = Tls13CipherSuite {
    common: CipherSuiteCommon {
        suite: TLS_SM4_CCM_SM3_ID,
        hash_provider: &SM3,
        confidentiality_limit: CONFIDENTIALITY_LIMIT,
    },
    hkdf_provider: &HkdfUsingHmac(&HMAC_SM3),
    aead_alg: &Sm4Aead::Ccm,
    // RFC 8998 defines no QUIC header protection for SM4.
    quic: None,
};

/// Is this one of the RFC 8998 suites?
pub fn is_sm_suite(suite: CipherSuite) -> bool {
    suite == TLS_SM4_GCM_SM3_ID || suite == TLS_SM4_CCM_SM3_ID
}

enum Sm4Aead {
    Gcm,
    Ccm,
}

/// One direction's record protection: the keyed cipher and the static IV of RFC 8446 §5.3.
enum Keyed {
    Gcm(Box<Sm4Gcm>),
    Ccm(Box<Sm4Ccm>),
}

impl Keyed {
    fn new(alg: &Sm4Aead, key: &AeadKey) -> Result<Self, Error> {
        let k: [u8; KEY_LEN] = key.as_ref().try_into().map_err(|_| Error::EncryptError)?;
        Ok(match alg {
            Sm4Aead::Gcm => Keyed::Gcm(Box::new(Sm4Gcm::new(&k.into()))),
            Sm4Aead::Ccm => Keyed::Ccm(Box::new(Sm4Ccm::new(&k.into()))),
        })
    }

    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], Error> {
        let n = (*nonce).into();
        let tag = match self {
            Keyed::Gcm(c) => c.encrypt_inout_detached(&n, aad, buf.into()),
            Keyed::Ccm(c) => c.encrypt_inout_detached(&n, aad, buf.into()),
        };
        tag.map(Into::into).map_err(|_| Error::EncryptError)
    }

    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), Error> {
        let n = (*nonce).into();
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| Error::DecryptError)?;
        let tag = tag.into();
        let ok = match self {
            Keyed::Gcm(c) => c.decrypt_inout_detached(&n, aad, buf.into(), &tag),
            Keyed::Ccm(c) => c.decrypt_inout_detached(&n, aad, buf.into(), &tag),
        };
        ok.map_err(|_| Error::DecryptError)
    }
}

/// A cipher that refuses every record: used only if keying failed, so the connection fails closed.
struct Broken;

impl MessageEncrypter for Broken {
    fn encrypt(
        &mut self,
        _: OutboundPlainMessage<'_>,
        _: u64,
    ) -> Result<OutboundOpaqueMessage, Error> {
        Err(Error::EncryptError)
    }
    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        payload_len + 1 + TAG_LEN
    }
}

impl MessageDecrypter for Broken {
    fn decrypt<'a>(
        &mut self,
        _: InboundOpaqueMessage<'a>,
        _: u64,
    ) -> Result<InboundPlainMessage<'a>, Error> {
        Err(Error::DecryptError)
    }
}

struct Sm4Record {
    cipher: Keyed,
    iv: Iv,
}

impl Tls13AeadAlgorithm for Sm4Aead {
    fn encrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageEncrypter> {
        match Keyed::new(self, &key) {
            Ok(cipher) => Box::new(Sm4Record { cipher, iv }),
            Err(_) => Box::new(Broken),
        }
    }

    fn decrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageDecrypter> {
        match Keyed::new(self, &key) {
            Ok(cipher) => Box::new(Sm4Record { cipher, iv }),
            Err(_) => Box::new(Broken),
        }
    }

    fn key_len(&self) -> usize {
        KEY_LEN
    }

    fn extract_keys(
        &self,
        _key: AeadKey,
        _iv: Iv,
    ) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        // rustls 0.23's ConnectionTrafficSecrets has no SM4 variant; only kTLS needs this.
        Err(UnsupportedOperationError)
    }
}

impl MessageEncrypter for Sm4Record {
    fn encrypt(
        &mut self,
        msg: OutboundPlainMessage<'_>,
        seq: u64,
    ) -> Result<OutboundOpaqueMessage, Error> {
        // TLSInnerPlaintext = content || type (no padding), then the tag (RFC 8446 §5.2).
        let total_len = self.encrypted_payload_len(msg.payload.len());
        let mut payload = PrefixedPayload::with_capacity(total_len);
        payload.extend_from_chunks(&msg.payload);
        payload.extend_from_slice(&msg.typ.to_array());
        let nonce = Nonce::new(&self.iv, seq).0;
        let aad = make_tls13_aad(total_len);
        let tag = self.cipher.seal(&nonce, &aad, payload.as_mut())?;
        payload.extend_from_slice(&tag);
        Ok(OutboundOpaqueMessage::new(
            ContentType::ApplicationData,
            ProtocolVersion::TLSv1_2,
            payload,
        ))
    }

    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        payload_len + 1 + TAG_LEN
    }
}

impl MessageDecrypter for Sm4Record {
    fn decrypt<'a>(
        &mut self,
        mut msg: InboundOpaqueMessage<'a>,
        seq: u64,
    ) -> Result<InboundPlainMessage<'a>, Error> {
        let payload = &mut msg.payload;
        let total = payload.len();
        let plain_len = total.checked_sub(TAG_LEN).ok_or(Error::DecryptError)?;
        let nonce = Nonce::new(&self.iv, seq).0;
        let aad = make_tls13_aad(total);
        let (body, tag) = payload.split_at_mut(plain_len);
        self.cipher.open(&nonce, &aad, body, tag)?;
        payload.truncate(plain_len);
        msg.into_tls13_unpadded_message()
    }
}
