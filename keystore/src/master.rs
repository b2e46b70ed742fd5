//! The sealed master key of one generation, and how its key-encryption key (KEK) is obtained.
//!
//! ```text
//! master  = magic "SMTKMST\x01" | generation u64 | method | nonce 12 | wrapped 16 + 16
//! method  = 0x01 | m_cost u32 (KiB) | t_cost u32 | p_cost u32 | salt 16      Argon2id(passphrase) -> KEK
//!         | 0x02 | threshold u8 | count u8 | set_id 16                       Shamir shares of the KEK
//! wrapped = SM4-GCM(KEK, master, aad = "smtrust-keystore/master/v1" || every byte before the nonce)
//! ```
//! The KEK stays the same when the master rotates, so operators keep their passphrase or shares; the
//! Argon2 parameters and the share set id are authenticated with the master.

use argon2::{Algorithm, Argon2, Params, Version};
use smtrust_crypto::sm4::{self, AeadMode, KEY_LEN, NONCE_LEN, Sm4Key, TAG_LEN};
use zeroize::Zeroizing;

use crate::reader::{FormatError, Reader};

const MAGIC: &[u8; 8] = b"SMTKMST\x01";
const AAD: &[u8] = b"smtrust-keystore/master/v1";
/// Largest master file read.
pub(crate) const MAX_MASTER: usize = 128;

/// Argon2id cost parameters (RFC 9106). Stored with the sealed master, so a store made with other costs
/// still opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Argon2Params {
    /// The default: 64 MiB, 3 passes, 1 lane (RFC 9106 §4 second recommendation's memory and passes; one
    /// lane because the crate runs lanes sequentially here). About 0.2–0.4 s per unseal on one core.
    pub const DEFAULT: Self = Self {
        m_cost: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };

    /// Largest memory cost accepted from a file (1 GiB): a crafted file must not exhaust memory.
    pub const MAX_M_COST: u32 = 1024 * 1024;

    /// Explicit costs, checked against what Argon2 and [`Self::MAX_M_COST`] allow.
    pub fn new(m_cost: u32, t_cost: u32, p_cost: u32) -> Option<Self> {
        let p = Self {
            m_cost,
            t_cost,
            p_cost,
        };
        p.valid().then_some(p)
    }

    fn valid(&self) -> bool {
        (1..=64).contains(&self.t_cost)
            && (1..=16).contains(&self.p_cost)
            && self.m_cost <= Self::MAX_M_COST
            && self.m_cost >= 8 * self.p_cost
    }
}

/// How the KEK is obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Passphrase {
        params: Argon2Params,
        salt: [u8; 16],
    },
    Shares {
        threshold: u8,
        count: u8,
        set_id: [u8; 16],
    },
}

#[derive(Clone)]
pub(crate) struct SealedMaster {
    pub(crate) generation: u64,
    pub(crate) method: Method,
    nonce: [u8; NONCE_LEN],
    wrapped: [u8; KEY_LEN + TAG_LEN],
}

/// Argon2id(passphrase, salt) → 16-byte KEK.
pub(crate) fn passphrase_kek(
    passphrase: &[u8],
    params: Argon2Params,
    salt: &[u8; 16],
) -> Result<Sm4Key, crate::Error> {
    let p = Params::new(params.m_cost, params.t_cost, params.p_cost, Some(KEY_LEN))
        .map_err(|_| crate::Error::Internal("Argon2 parameters were validated"))?;
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(passphrase, salt, out.as_mut_slice())
        .map_err(|_| crate::Error::Internal("Argon2id with validated parameters"))?;
    Ok(Sm4Key::from_bytes(*out))
}

fn encode_prefix(generation: u64, method: &Method) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&generation.to_be_bytes());
    match method {
        Method::Passphrase { params, salt } => {
            v.push(1);
            v.extend_from_slice(&params.m_cost.to_be_bytes());
            v.extend_from_slice(&params.t_cost.to_be_bytes());
            v.extend_from_slice(&params.p_cost.to_be_bytes());
            v.extend_from_slice(salt);
        }
        Method::Shares {
            threshold,
            count,
            set_id,
        } => {
            v.push(2);
            v.push(*threshold);
            v.push(*count);
            v.extend_from_slice(set_id);
        }
    }
    v
}

impl SealedMaster {
    /// Wrap `master` under `kek`.
    pub(crate) fn seal(
        generation: u64,
        method: Method,
        kek: &Sm4Key,
        master: &Sm4Key,
    ) -> Result<Self, smtrust_crypto::Error> {
        let nonce = smtrust_crypto::rng::bytes::<NONCE_LEN>()?;
        let aad = [AAD, &encode_prefix(generation, &method)].concat();
        let ct = sm4::seal(AeadMode::Gcm, kek, &nonce, &aad, master.expose_secret())?;
        let wrapped = ct
            .as_slice()
            .try_into()
            .map_err(|_| smtrust_crypto::Error::Internal("AEAD output length"))?;
        Ok(Self {
            generation,
            method,
            nonce,
            wrapped,
        })
    }

    /// Unwrap the master; `None` if `kek` is wrong or the file was altered.
    pub(crate) fn open(&self, kek: &Sm4Key) -> Option<Sm4Key> {
        let aad = [AAD, &encode_prefix(self.generation, &self.method)].concat();
        let m =
            Zeroizing::new(sm4::open(AeadMode::Gcm, kek, &self.nonce, &aad, &self.wrapped).ok()?);
        Sm4Key::from_slice(&m).ok()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = encode_prefix(self.generation, &self.method);
        v.extend_from_slice(&self.nonce);
        v.extend_from_slice(&self.wrapped);
        v
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        Reader::ensure(bytes.len() <= MAX_MASTER, "master size", 0)?;
        let mut r = Reader::new(bytes);
        let magic = r.take(MAGIC.len(), "magic")?;
        Reader::ensure(magic == MAGIC, "magic", 0)?;
        let generation = r.u64("generation")?;
        let at = r.pos();
        let method = match r.u8("method")? {
            1 => {
                let at = r.pos();
                let params = Argon2Params {
                    m_cost: r.u32("argon2 m_cost")?,
                    t_cost: r.u32("argon2 t_cost")?,
                    p_cost: r.u32("argon2 p_cost")?,
                };
                Reader::ensure(params.valid(), "argon2 parameters", at)?;
                Method::Passphrase {
                    params,
                    salt: r.array("salt")?,
                }
            }
            2 => {
                let at = r.pos();
                let threshold = r.u8("threshold")?;
                let count = r.u8("share count")?;
                Reader::ensure(threshold >= 2 && threshold <= count, "share threshold", at)?;
                Method::Shares {
                    threshold,
                    count,
                    set_id: r.array("share set id")?,
                }
            }
            _ => {
                return Err(FormatError {
                    what: "method",
                    offset: at,
                });
            }
        };
        let nonce = r.array("nonce")?;
        let wrapped = r.array("wrapped master")?;
        r.finish()?;
        Ok(Self {
            generation,
            method,
            nonce,
            wrapped,
        })
    }
}
