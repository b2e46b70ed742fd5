//! Certificate serial numbers: 16 random bytes, top bit clear (RFC 5280 §4.1.2.2: positive, ≤ 20 octets).

use core::fmt;
use core::str::FromStr;

use x509_cert::serial_number::SerialNumber;

use crate::Error;

/// Length of a serial in bytes.
pub const SERIAL_LEN: usize = 16;

/// A certificate serial. Made fresh only by [`Serial::random`]; parsed back from hex or certificates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial([u8; SERIAL_LEN]);

impl Serial {
    /// 16 bytes from the OS CSPRNG with the top bit cleared; the first byte is non-zero so the DER INTEGER is
    /// always exactly 16 octets (no sign pad, no stripped zero).
    pub fn random() -> Result<Self, Error> {
        loop {
            let mut b = smtrust_crypto::rng::bytes::<SERIAL_LEN>()?;
            b[0] &= 0x7f;
            if b[0] != 0 {
                return Ok(Self(b));
            }
        }
    }

    /// The big-endian bytes.
    pub fn as_bytes(&self) -> &[u8; SERIAL_LEN] {
        &self.0
    }

    /// Lower-case hex (32 characters), the form stored in the database and shown by the CLI.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// From an x509-cert serial: must be exactly the 16-octet form this CA writes.
    pub fn from_serial_number(sn: &SerialNumber) -> Option<Self> {
        Self::from_slice(sn.as_bytes())
    }

    /// From exactly 16 bytes with the top bit clear.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        let arr: [u8; SERIAL_LEN] = b.try_into().ok()?;
        (arr[0] & 0x80 == 0).then_some(Self(arr))
    }

    /// As x509-cert's type.
    pub fn to_serial_number(&self) -> Result<SerialNumber, Error> {
        Ok(SerialNumber::new(&self.0)?)
    }
}

impl FromStr for Serial {
    type Err = crate::RequestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || crate::RequestError::Malformed {
            what: "serial",
            detail: "expected 32 hex digits with the top bit clear".into(),
            position: None,
        };
        let s = s.strip_prefix("0x").unwrap_or(s);
        let v = hex::decode(s).map_err(|_| bad())?;
        Self::from_slice(&v).ok_or_else(bad)
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_positive_16_octets_and_round_trip() {
        for _ in 0..200 {
            let s = Serial::random().unwrap();
            assert_eq!(s.as_bytes()[0] & 0x80, 0);
            assert_ne!(s.as_bytes()[0], 0);
            let sn = s.to_serial_number().unwrap();
            assert_eq!(sn.as_bytes().len(), SERIAL_LEN);
            assert_eq!(Serial::from_serial_number(&sn), Some(s));
            assert_eq!(s.to_hex().parse::<Serial>().unwrap(), s);
        }
    }

    #[test]
    fn top_bit_set_is_not_a_serial() {
        assert!(Serial::from_slice(&[0x80; 16]).is_none());
        assert!("ff".parse::<Serial>().is_err());
    }
}
