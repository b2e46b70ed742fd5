//! Which protocol a client speaks, from the first bytes of its first record, before any TLS stack sees them:
//! TLS (record version 0x03XX: RFC 8446 §5.1 says the field MUST be ignored, and rustls accepts any 0x03XX) or
//! TLCP (GB/T 38636, version 0x0101),
//! so a TLCP stack can be slotted in beside rustls.

/// A protocol the listener can dispatch to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// TLS (any 0x03XX record version; TLS 1.3 negotiates inside the ClientHello).
    Tls,
    /// TLCP, GB/T 38636-2020.
    Tlcp,
}

/// Why the bytes are not (yet) a ClientHello record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SniffError {
    /// Not enough bytes yet: read at least `needed` in total and call again.
    #[error("need {needed} bytes")]
    Incomplete {
        /// Total bytes needed.
        needed: usize,
    },
    /// The first record is not a handshake record carrying a ClientHello.
    #[error("not a TLS/TLCP ClientHello: content type {content_type:#04x}, version {version:#06x}")]
    NotClientHello {
        /// Record content type.
        content_type: u8,
        /// Record version.
        version: u16,
    },
}

/// Bytes [`sniff`] reads: the 5-byte record header plus the handshake type.
pub const SNIFF_LEN: usize = 6;
const HANDSHAKE: u8 = 0x16;
const CLIENT_HELLO: u8 = 0x01;
/// The largest TLS plaintext record (RFC 8446 §5.1) plus slack for TLCP's identical limit.
const MAX_RECORD: u16 = (1 << 14) + 256;

/// Classify the first bytes a client sent. Never consumes: the caller replays the bytes into the chosen stack.
pub fn sniff(first: &[u8]) -> Result<Protocol, SniffError> {
    let Some(&[content_type, major, minor, len_hi, len_lo, msg_type]) =
        first.first_chunk::<SNIFF_LEN>()
    else {
        return Err(SniffError::Incomplete { needed: SNIFF_LEN });
    };
    let version = u16::from_be_bytes([major, minor]);
    let len = u16::from_be_bytes([len_hi, len_lo]);
    let not = SniffError::NotClientHello {
        content_type,
        version,
    };
    if content_type != HANDSHAKE || msg_type != CLIENT_HELLO || len == 0 || len > MAX_RECORD {
        return Err(not);
    }
    match version {
        0x0101 => Ok(Protocol::Tlcp),
        0x0300..=0x03ff => Ok(Protocol::Tls),
        _ => Err(not),
    }
}
