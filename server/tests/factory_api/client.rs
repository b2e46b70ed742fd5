//! The node under test and an HTTP/1.1 client of its API over TLS 1.3-SM: one TLS configuration per
//! identity, one connection per request, answers read to the end.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtrust_crypto::sm2::{Sm2SecretKey, Tls13Id};

use super::PASS;

/// A running `smtrust serve`, killed on drop.
pub(crate) struct Node {
    child: Child,
    api: String,
    /// The node's CA chain, issuing CA first (DER).
    pub(crate) trust: Vec<Vec<u8>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `serve` on loopback ports over the data directory `data`.
pub(crate) fn start_node(data: &Path) -> Node {
    let (child, v) = smtrust_test_support::cli::Cli::new(env!("CARGO_BIN_EXE_smtrust"), data)
        .env("SMTRUST_PASSPHRASE", PASS)
        .spawn_ready(&[
            "--json",
            "serve",
            "--api",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ]);
    let api = v["api"]
        .as_str()
        .expect("api address")
        .trim_start_matches("https://")
        .to_owned();
    let chain = std::fs::read(data.join("ca").join("chain.pem")).expect("chain");
    let trust = smtrust_crypto::pem::blocks(&chain)
        .expect("pem")
        .into_iter()
        .map(|(_, d)| d.to_vec())
        .collect();
    Node { child, api, trust }
}

/// A key and its certificate (DER), as issued by the test's fixture.
pub(crate) type Identity = (Sm2SecretKey, Vec<u8>);

impl Node {
    /// A client without a certificate.
    pub(crate) fn anonymous(&self) -> Client<'_> {
        self.client_for(None)
    }

    /// A client presenting `who`'s certificate.
    pub(crate) fn client(&self, who: &Identity) -> Client<'_> {
        self.client_for(Some(who))
    }

    fn client_for(&self, who: Option<&Identity>) -> Client<'_> {
        let roots = smtrust_tls::TrustRoots::new(
            &self
                .trust
                .iter()
                .map(|d| rustls::pki_types::CertificateDer::from(d.clone()))
                .collect::<Vec<_>>(),
        )
        .expect("roots");
        let verifier = smtrust_tls::Sm2ChainVerifier::new(
            roots,
            Arc::new(smtrust_tls::RevokedSet::new()),
            smtrust_tls::UnknownStatus::Refuse,
        );
        let creds = who.map(|(sk, cert)| {
            smtrust_tls::Credentials::new(
                Arc::new(sk.signing_key(Tls13Id).expect("signer")),
                vec![rustls::pki_types::CertificateDer::from(cert.clone())],
            )
            .expect("credentials")
        });
        let config = smtrust_tls::client_config(verifier, creds.as_ref()).expect("client config");
        Client {
            node: self,
            config: Arc::new(config),
        }
    }
}

/// One identity's view of the API.
pub(crate) struct Client<'a> {
    node: &'a Node,
    config: Arc<rustls::ClientConfig>,
}

/// An answer: status code and (de-chunked) body.
pub(crate) struct Reply {
    pub(crate) code: u16,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        json(&self.body)
    }

    /// The body, lossily decoded (for failure messages).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client<'_> {
    /// `GET path`.
    pub(crate) fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], b"")
    }

    /// `POST path` with a JSON Lines body.
    pub(crate) fn post(&self, path: &str, body: &[u8]) -> Reply {
        self.request("POST", path, &[], body)
    }

    /// [`Client::post`] with extra headers.
    pub(crate) fn post_with(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        self.request("POST", path, headers, body)
    }

    /// `GET /factory/v1/batches/{id}`.
    pub(crate) fn batch(&self, id: &str) -> Reply {
        self.get(&format!("/factory/v1/batches/{id}"))
    }

    /// Poll the batch until it is done (at most 300 s); its status.
    pub(crate) fn wait_done(&self, id: &str) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let r = self.batch(id);
            assert_eq!(r.code, 200, "{}", r.text());
            let v = r.json();
            match v["state"].as_str() {
                Some("done") => return v,
                Some("queued" | "running") => {}
                other => panic!("batch state {other:?}: {v}"),
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "batch not done: {v}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(self.config.clone(), name).expect("conn");
        let tcp = std::net::TcpStream::connect(&self.node.api).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(120)))
            .expect("timeout");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/jsonl\r\n{extra}Content-Length: {}\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes()).expect("send");
        tls.write_all(body).expect("send body");
        let mut buf = Vec::new();
        // The server may close without close_notify; what was read is the answer.
        let read = tls.read_to_end(&mut buf);
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| {
                panic!(
                    "no HTTP answer ({read:?}): {}",
                    String::from_utf8_lossy(&buf)
                )
            });
        let status_line = String::from_utf8_lossy(&buf[..split]).into_owned();
        let code: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status");
        let mut body = buf[split + 4..].to_vec();
        if status_line
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        Reply { code, body }
    }
}

/// `body` as JSON.
pub(crate) fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").expect("chunk size");
        let size = usize::from_str_radix(
            std::str::from_utf8(&b[..eol]).expect("chunk size").trim(),
            16,
        )
        .expect("hex size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}
