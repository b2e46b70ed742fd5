//! An in-memory client/server pair: bytes move between two rustls connections with no sockets.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

pub struct Pair {
    pub client: ClientConnection,
    pub server: ServerConnection,
}

/// Move all pending TLS bytes from one side to the other; returns bytes moved.
fn pump<A, B>(
    from: &mut rustls::ConnectionCommon<A>,
    to: &mut rustls::ConnectionCommon<B>,
) -> Result<usize, rustls::Error> {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).expect("write_tls to a Vec");
    }
    let n = buf.len();
    let mut rd = &buf[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd).expect("read_tls from a slice");
        to.process_new_packets()?;
    }
    Ok(n)
}

/// Which side failed, and how.
#[derive(Debug)]
pub enum Failed {
    Client(rustls::Error),
    Server(rustls::Error),
}

impl Failed {
    pub fn server(&self) -> Option<&rustls::Error> {
        match self {
            Failed::Server(e) => Some(e),
            Failed::Client(_) => None,
        }
    }
    pub fn client(&self) -> Option<&rustls::Error> {
        match self {
            Failed::Client(e) => Some(e),
            Failed::Server(_) => None,
        }
    }
}

impl Pair {
    pub fn new(client: Arc<ClientConfig>, server: Arc<ServerConfig>, name: &str) -> Self {
        let name = ServerName::try_from(name.to_owned()).expect("name");
        Self {
            client: ClientConnection::new(client, name).expect("client"),
            server: ServerConnection::new(server).expect("server"),
        }
    }

    /// One round of flights both ways.
    pub fn round(&mut self) -> Result<usize, Failed> {
        let a = pump(&mut self.client, &mut self.server).map_err(Failed::Server)?;
        let b = pump(&mut self.server, &mut self.client).map_err(Failed::Client)?;
        Ok(a + b)
    }

    /// Run until both sides finished the handshake (and post-handshake messages such as tickets arrived).
    pub fn handshake(&mut self) -> Result<(), Failed> {
        for _ in 0..10 {
            let moved = self.round()?;
            if !self.client.is_handshaking() && !self.server.is_handshaking() && moved == 0 {
                return Ok(());
            }
        }
        panic!("handshake did not converge");
    }

    /// Client → server application data, returned as the server read it.
    pub fn client_to_server(&mut self, data: &[u8]) -> Vec<u8> {
        // In slices, so the receiver's plaintext buffer (rustls caps it) is drained as it fills.
        let mut out = Vec::new();
        for chunk in data.chunks(8192) {
            self.client.writer().write_all(chunk).expect("write");
            self.round().expect("transfer");
            out.extend(read_all(self.server.reader()));
        }
        out
    }

    /// Server → client application data.
    pub fn server_to_client(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in data.chunks(8192) {
            self.server.writer().write_all(chunk).expect("write");
            self.round().expect("transfer");
            out.extend(read_all(self.client.reader()));
        }
        out
    }
}

fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    out
}
