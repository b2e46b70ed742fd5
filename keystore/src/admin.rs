//! The local admin endpoint of a running server, on a Unix socket (`<data-dir>/admin.sock`, mode 0600):
//! `POST /keystore/seal` wipes the master from the server's memory, `GET /keystore/status` reports the
//! [`Status`](crate::Status) as JSON. Only the socket's owner (and root) can connect: the file mode is the
//! access control, so the socket is created in a private directory and renamed into place already 0600.
//!
//! The client half ([`request`]) is plain std (blocking, for the CLI); the server half needs the `admin`
//! feature (axum over a tokio `UnixListener`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Error;

#[cfg(feature = "admin")]
mod serve;
#[cfg(feature = "admin")]
pub use serve::{AdminSocket, router, serve_router_unix, serve_unix};

/// The socket's file name under the data directory.
pub const SOCKET_NAME: &str = "admin.sock";
/// Route of the seal call.
pub const SEAL_PATH: &str = "/keystore/seal";
/// Route of the status call.
pub const STATUS_PATH: &str = "/keystore/status";

/// How long the client waits for the server to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest reply read (the replies are a few hundred bytes of JSON).
const MAX_REPLY: u64 = 64 * 1024;
const MAX_HEADERS: usize = 32;

/// An admin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminRequest {
    /// `POST /keystore/seal`.
    Seal,
    /// `GET /keystore/status`.
    Status,
}

/// What the server answered: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminReply {
    /// HTTP status code (200 on success).
    pub status: u16,
    /// The JSON body.
    pub body: String,
}

/// The admin socket path for a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// Send one admin call to the server listening on `socket` and read its reply (blocking).
/// A server that is not running shows as [`Error::Io`] (connection refused or no such file).
pub fn request(socket: &Path, req: AdminRequest) -> Result<AdminReply, Error> {
    let io = |source| Error::Io {
        path: socket.to_owned(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(io)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let (method, path) = match req {
        AdminRequest::Seal => ("POST", SEAL_PATH),
        AdminRequest::Status => ("GET", STATUS_PATH),
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    stream.take(MAX_REPLY).read_to_end(&mut raw).map_err(io)?;
    parse_reply(socket, &raw)
}

/// Parse a complete `Connection: close` reply: status line and headers with httparse, the rest is the body.
fn parse_reply(socket: &Path, raw: &[u8]) -> Result<AdminReply, Error> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let malformed = |offset| Error::Malformed {
        path: socket.to_owned(),
        what: "admin reply",
        offset,
    };
    let body_at = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(malformed(raw.len())),
        Err(_) => return Err(malformed(0)),
    };
    let status = resp.code.ok_or_else(|| malformed(0))?;
    let body = raw.get(body_at..).ok_or_else(|| malformed(body_at))?;
    let body = String::from_utf8(body.to_vec())
        .map_err(|e| malformed(body_at + e.utf8_error().valid_up_to()))?;
    Ok(AdminReply { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_reply_and_refuses_a_truncated_one() {
        let p = Path::new("admin.sock");
        let raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{\"sealed\":true}";
        let r = parse_reply(p, raw).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "{\"sealed\":true}");
        let truncated = b"HTTP/1.1 200 OK\r\ncontent-ty";
        assert!(matches!(
            parse_reply(p, truncated),
            Err(Error::Malformed { offset, .. }) if offset == truncated.len()
        ));
        assert!(matches!(
            parse_reply(p, b"\x00garbage\r\n\r\n"),
            Err(Error::Malformed { .. })
        ));
    }
}
