//! The sealed record: one private key on disk.
//!
//! ```text
//! record    = magic "SMTKREC\x01"
//!             header
//!             generation  u64          master generation that wraps the data key
//!             dk_nonce    12 bytes
//!             dk_wrapped  16 + 16      SM4-GCM(master, dk,  aad = "smtrust-keystore/dk/v1" || generation || header)
//!             sk_nonce    12 bytes
//!             sk_sealed   32 + 16      SM4-GCM(dk, scalar, aad = "smtrust-keystore/sk/v1" || header)
//! header    = id 16 | purpose u8 | algorithm u8 | created u64 | label_len u16 | label
//!             | public_key 65 (SEC1 uncompressed) | cert_len u32 | cert DER
//! ```
//! All integers are big-endian. Because the header is associated data of both layers, changing the id,
//! purpose, algorithm, label, public key or certificate, or moving a record under another id or generation,
//! makes authentication fail and nothing is decrypted.

use smtrust_crypto::sm2::{Sm2PublicKey, Sm2SecretKey};
use smtrust_crypto::sm4::{self, AeadMode, NONCE_LEN, Sm4Key, TAG_LEN};
use zeroize::Zeroizing;

use crate::key::{Algorithm, KeyId, KeyInfo, KeyPurpose, MAX_LABEL};
use crate::reader::{FormatError, Reader};

const MAGIC: &[u8; 8] = b"SMTKREC\x01";
const DK_AAD: &[u8] = b"smtrust-keystore/dk/v1";
const SK_AAD: &[u8] = b"smtrust-keystore/sk/v1";
/// Largest certificate stored with a key.
pub(crate) const MAX_CERT: usize = 32 * 1024;
/// Largest record file read.
pub(crate) const MAX_RECORD: usize = MAX_CERT + MAX_LABEL + 512;

/// A parsed record. Its `header_bytes` are kept exactly as read, since they are the associated data.
#[derive(Clone)]
pub(crate) struct SealedRecord {
    pub(crate) info: KeyInfo,
    header_bytes: Vec<u8>,
    pub(crate) generation: u64,
    dk_nonce: [u8; NONCE_LEN],
    dk_wrapped: [u8; 16 + TAG_LEN],
    sk_nonce: [u8; NONCE_LEN],
    sk_sealed: [u8; 32 + TAG_LEN],
}

/// Authentication failed: wrong master, or the record was altered or moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unauthentic;

fn encode_header(info: &KeyInfo) -> Vec<u8> {
    let cert = info.certificate.as_deref().unwrap_or_default();
    let mut h = Vec::with_capacity(100 + info.label.len() + cert.len());
    h.extend_from_slice(info.id.as_bytes());
    h.push(info.purpose.code());
    h.push(info.algorithm.code());
    h.extend_from_slice(&info.created.to_be_bytes());
    // Lengths are checked by `check_label` and `MAX_CERT` before a record is made.
    h.extend_from_slice(
        &u16::try_from(info.label.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    h.extend_from_slice(info.label.as_bytes());
    h.extend_from_slice(&info.public_key.to_sec1_uncompressed());
    h.extend_from_slice(&u32::try_from(cert.len()).unwrap_or(u32::MAX).to_be_bytes());
    h.extend_from_slice(cert);
    h
}

fn dk_aad(generation: u64, header: &[u8]) -> Vec<u8> {
    [DK_AAD, &generation.to_be_bytes(), header].concat()
}

fn sk_aad(header: &[u8]) -> Vec<u8> {
    [SK_AAD, header].concat()
}

fn nonce() -> Result<[u8; NONCE_LEN], smtrust_crypto::Error> {
    smtrust_crypto::rng::bytes::<NONCE_LEN>()
}

fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], smtrust_crypto::Error> {
    v.try_into()
        .map_err(|_| smtrust_crypto::Error::Internal("AEAD output length"))
}

impl SealedRecord {
    /// Seal `secret` under a fresh data key wrapped by `master`.
    pub(crate) fn seal(
        info: KeyInfo,
        secret: &Sm2SecretKey,
        master: &Sm4Key,
        generation: u64,
    ) -> Result<Self, smtrust_crypto::Error> {
        let dk = Sm4Key::generate()?;
        Self::seal_with(info, secret, &dk, master, generation)
    }

    fn seal_with(
        info: KeyInfo,
        secret: &Sm2SecretKey,
        dk: &Sm4Key,
        master: &Sm4Key,
        generation: u64,
    ) -> Result<Self, smtrust_crypto::Error> {
        let header_bytes = encode_header(&info);
        let dk_nonce = nonce()?;
        let dk_wrapped = fixed(&sm4::seal(
            AeadMode::Gcm,
            master,
            &dk_nonce,
            &dk_aad(generation, &header_bytes),
            dk.expose_secret(),
        )?)?;
        let sk_nonce = nonce()?;
        let scalar = secret.to_bytes();
        let sk_sealed = fixed(&sm4::seal(
            AeadMode::Gcm,
            dk,
            &sk_nonce,
            &sk_aad(&header_bytes),
            scalar.as_slice(),
        )?)?;
        Ok(Self {
            info,
            header_bytes,
            generation,
            dk_nonce,
            dk_wrapped,
            sk_nonce,
            sk_sealed,
        })
    }

    fn unwrap_dk(&self, master: &Sm4Key) -> Result<Sm4Key, Unauthentic> {
        let dk = Zeroizing::new(
            sm4::open(
                AeadMode::Gcm,
                master,
                &self.dk_nonce,
                &dk_aad(self.generation, &self.header_bytes),
                &self.dk_wrapped,
            )
            .map_err(|_| Unauthentic)?,
        );
        Sm4Key::from_slice(&dk).map_err(|_| Unauthentic)
    }

    /// Decrypt the private key; checks it matches the header's public key.
    pub(crate) fn open(&self, master: &Sm4Key) -> Result<Sm2SecretKey, Unauthentic> {
        let dk = self.unwrap_dk(master)?;
        let scalar = Zeroizing::new(
            sm4::open(
                AeadMode::Gcm,
                &dk,
                &self.sk_nonce,
                &sk_aad(&self.header_bytes),
                &self.sk_sealed,
            )
            .map_err(|_| Unauthentic)?,
        );
        let sk = Sm2SecretKey::from_bytes(&scalar).map_err(|_| Unauthentic)?;
        if sk.public_key() != &self.info.public_key {
            return Err(Unauthentic);
        }
        Ok(sk)
    }

    /// The same record with its data key wrapped under another master and generation; the sealed private
    /// key is copied unchanged.
    pub(crate) fn rewrap(
        &self,
        old: &Sm4Key,
        new: &Sm4Key,
        generation: u64,
    ) -> Result<Self, crate::Error> {
        let dk = self
            .unwrap_dk(old)
            .map_err(|_| crate::Error::Internal("rewrap of an unauthentic record"))?;
        let dk_nonce = nonce()?;
        let dk_wrapped = fixed(&sm4::seal(
            AeadMode::Gcm,
            new,
            &dk_nonce,
            &dk_aad(generation, &self.header_bytes),
            dk.expose_secret(),
        )?)?;
        Ok(Self {
            generation,
            dk_nonce,
            dk_wrapped,
            ..self.clone()
        })
    }

    /// The record re-sealed with new public metadata (a certificate), same data key, fresh nonces.
    pub(crate) fn with_info(
        &self,
        info: KeyInfo,
        secret: &Sm2SecretKey,
        master: &Sm4Key,
    ) -> Result<Self, crate::Error> {
        let dk = self
            .unwrap_dk(master)
            .map_err(|_| crate::Error::Internal("reseal of an unauthentic record"))?;
        Ok(Self::seal_with(info, secret, &dk, master, self.generation)?)
    }

    /// The file bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAGIC.len() + self.header_bytes.len() + 140);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.header_bytes);
        out.extend_from_slice(&self.generation.to_be_bytes());
        out.extend_from_slice(&self.dk_nonce);
        out.extend_from_slice(&self.dk_wrapped);
        out.extend_from_slice(&self.sk_nonce);
        out.extend_from_slice(&self.sk_sealed);
        out
    }

    /// Parse a record file: the whole input, nothing allocated beyond the input's size.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        Reader::ensure(bytes.len() <= MAX_RECORD, "record size", 0)?;
        let mut r = Reader::new(bytes);
        let magic = r.take(MAGIC.len(), "magic")?;
        Reader::ensure(magic == MAGIC, "magic", 0)?;
        let header_start = r.pos();
        let id = KeyId::from_bytes(r.array("key id")?);
        let at = r.pos();
        let purpose = KeyPurpose::from_code(r.u8("purpose")?);
        let purpose = purpose.ok_or(FormatError {
            what: "purpose",
            offset: at,
        })?;
        let at = r.pos();
        let algorithm = Algorithm::from_code(r.u8("algorithm")?);
        let algorithm = algorithm.ok_or(FormatError {
            what: "algorithm",
            offset: at,
        })?;
        let created = r.u64("created")?;
        let at = r.pos();
        let label_len = usize::from(r.u16("label length")?);
        Reader::ensure((1..=MAX_LABEL).contains(&label_len), "label length", at)?;
        let at = r.pos();
        let label = core::str::from_utf8(r.take(label_len, "label")?)
            .map_err(|_| FormatError {
                what: "label",
                offset: at,
            })?
            .to_owned();
        let at = r.pos();
        let public_key =
            Sm2PublicKey::from_sec1_bytes(r.take(65, "public key")?).map_err(|_| FormatError {
                what: "public key",
                offset: at,
            })?;
        let at = r.pos();
        let cert_len = usize::try_from(r.u32("certificate length")?).unwrap_or(usize::MAX);
        Reader::ensure(cert_len <= MAX_CERT, "certificate length", at)?;
        let cert = r.take(cert_len, "certificate")?;
        let certificate = (!cert.is_empty()).then(|| cert.to_vec());
        let header_end = r.pos();
        let header_bytes = bytes
            .get(header_start..header_end)
            .ok_or(FormatError {
                what: "header",
                offset: header_start,
            })?
            .to_vec();
        let generation = r.u64("generation")?;
        let dk_nonce = r.array("data key nonce")?;
        let dk_wrapped = r.array("wrapped data key")?;
        let sk_nonce = r.array("private key nonce")?;
        let sk_sealed = r.array("sealed private key")?;
        r.finish()?;
        Ok(Self {
            info: KeyInfo {
                id,
                purpose,
                algorithm,
                label,
                created,
                public_key,
                certificate,
            },
            header_bytes,
            generation,
            dk_nonce,
            dk_wrapped,
            sk_nonce,
            sk_sealed,
        })
    }
}
