//! Peer quirks we can meet without weakening anything.
//!
//! rustls 0.23's TLS 1.3 server always sends the middlebox-compatibility ChangeCipherSpec (RFC 8446 §D.4) after
//! its ServerHello, whatever the client's legacy_session_id. GmSSL 3.1.1's `tls13_client` aborts on it
//! (bad_record_mac) although RFC 8446 §5 says clients must ignore it. The dummy CCS is unprotected, outside the
//! transcript and carries nothing, so dropping it on the way out changes no security property.

use std::io::{self, Write};

/// A writer for a server's TLS output that drops TLS 1.3 dummy ChangeCipherSpec records (`14 03 03 00 01 01`)
/// and passes every other record through unchanged. Use it only for clients that sent an empty
/// legacy_session_id (GmSSL), i.e. clients that asked for no middlebox compatibility.
#[derive(Debug)]
pub struct StripMiddleboxCcs<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

const CCS_RECORD: [u8; 6] = [0x14, 0x03, 0x03, 0x00, 0x01, 0x01];
const HEADER: usize = 5;

impl<W: Write> StripMiddleboxCcs<W> {
    /// Wrap the transport.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            pending: Vec::new(),
        }
    }

    /// The transport.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Forward every complete record in `pending`, keeping an incomplete tail.
    fn drain(&mut self) -> io::Result<()> {
        let mut at = 0;
        while let Some(hdr) = self.pending.get(at..at + HEADER) {
            let len = usize::from(u16::from_be_bytes([hdr[3], hdr[4]]));
            let Some(record) = self.pending.get(at..at + HEADER + len) else {
                break;
            };
            if record != CCS_RECORD {
                self.inner.write_all(record)?;
            }
            at += HEADER + len;
        }
        self.pending.drain(..at);
        Ok(())
    }
}

impl<W: Write> Write for StripMiddleboxCcs<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.drain()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
