//! A minimal HTTPS/1.1 exchange over TLS 1.3-SM for the demo's devices: one request per connection
//! (`Connection: close`), the status code and the body back. Sessions resume through the client config's ticket
//! store, so a device's second request costs no SM2 handshake signature.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Send `method path` with optional `(content type, body)` and extra header lines; returns (status, body).
pub(crate) async fn request(
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
    extra_headers: &str,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let connector = rumqttc::tokio_rustls::TlsConnector::from(config);
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let mut tls = connector.connect(name, tcp).await?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra_headers}"
    );
    if let Some((ct, b)) = body {
        req.push_str(&format!(
            "Content-Type: {ct}\r\nContent-Length: {}\r\n",
            b.len()
        ));
    } else if method == "POST" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some((_, b)) = body {
        bytes.extend_from_slice(b);
    }
    tls.write_all(&bytes).await?;
    let mut buf = Vec::new();
    tls.read_to_end(&mut buf).await.or_else(|e| {
        // A server may close without close_notify after `Connection: close`.
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Ok(0)
        } else {
            Err(e)
        }
    })?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of HTTP headers")?;
    let head = String::from_utf8_lossy(buf.get(..split).unwrap_or_default()).into_owned();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status line")?;
    Ok((code, buf.get(split + 4..).unwrap_or_default().to_vec()))
}
