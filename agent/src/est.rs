//! The EST client (RFC 7030) over TLS 1.3-SM: hyper's HTTP/1.1 client on a tokio-rustls stream configured by
//! [`smtrust_tls::client_config`]. One connection per operation (EST is rare per device).

pub mod response;

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use smtrust_tls::{Credentials, RevokedSet, Sm2ChainVerifier, TrustRoots, UnknownStatus};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::Error;

/// Where the smtrust API server (EST, attestation) is and how to recognise it.
#[derive(Debug, Clone)]
pub struct EstServer {
    addr: String,
    server_name: ServerName<'static>,
    label: Option<String>,
    roots: Vec<CertificateDer<'static>>,
    timeout: Duration,
}

/// A request body.
pub(crate) struct Body {
    pub(crate) content_type: &'static str,
    /// Sent with `Content-Transfer-Encoding: base64` (EST).
    pub(crate) base64: bool,
    pub(crate) bytes: Bytes,
}

/// An HTTP answer, as the agent needs it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
}

impl EstServer {
    /// The server at `addr` (`host:port`), whose TLS certificate must name `server_name` (DNS SAN) and chain
    /// to one of `roots` (DER; installed in the device at manufacture).
    pub fn new(addr: &str, server_name: &str, roots: Vec<Vec<u8>>) -> Result<Self, Error> {
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| Error::Transport(format!("invalid server name {server_name:?}")))?;
        Ok(Self {
            addr: addr.to_owned(),
            server_name,
            label: None,
            roots: roots.into_iter().map(CertificateDer::from).collect(),
            timeout: Duration::from_secs(30),
        })
    }

    /// Use the issuing CA served at `/.well-known/est/<label>/` instead of the default one.
    pub fn with_label(mut self, label: &str) -> Self {
        self.label = Some(label.to_owned());
        self
    }

    /// Time allowed for one operation (connect, handshake, request, response). Default 30 s.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn path(&self, op: &str) -> String {
        match &self.label {
            Some(l) => format!("/.well-known/est/{l}/{op}"),
            None => format!("/.well-known/est/{op}"),
        }
    }

    /// Run one EST operation. `client` is the TLS client certificate (bootstrap or current device
    /// certificate), `auth` an `Authorization` header value, `csr` a DER CSR (sent base64).
    pub(crate) async fn call(
        &self,
        client: Option<&Credentials>,
        op: &str,
        auth: Option<&str>,
        csr: Option<&[u8]>,
    ) -> Result<Answer, Error> {
        let body = csr.map(|der| Body {
            content_type: "application/pkcs10",
            base64: true,
            bytes: Bytes::from(crate::csr::base64_lines(der)),
        });
        self.request(client, op, &self.path(op), auth, body).await
    }

    /// One request to `path` on the server (POST with `body`, else GET), named `what` in errors.
    pub(crate) async fn request(
        &self,
        client: Option<&Credentials>,
        what: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<Body>,
    ) -> Result<Answer, Error> {
        tokio::time::timeout(
            self.timeout,
            self.call_inner(client, what, path, auth, body),
        )
        .await
        .map_err(|_| Error::Transport(format!("{what}: timed out after {:?}", self.timeout)))?
    }

    async fn call_inner(
        &self,
        client: Option<&Credentials>,
        op: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<Body>,
    ) -> Result<Answer, Error> {
        let t = |e: &dyn std::fmt::Display| Error::Transport(format!("{op}: {e}"));
        let roots = TrustRoots::new(&self.roots).map_err(smtrust_tls::Error::from)?;
        let verifier =
            Sm2ChainVerifier::new(roots, Arc::new(RevokedSet::new()), UnknownStatus::Allow);
        let cfg = smtrust_tls::client_config(verifier, client)?;
        let tcp = TcpStream::connect(&self.addr).await.map_err(|e| t(&e))?;
        let tls = TlsConnector::from(Arc::new(cfg))
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| t(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| t(&e))?;
        let driver = tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "EST connection ended");
            }
        });
        let host = match &self.server_name {
            ServerName::DnsName(d) => d.as_ref().to_owned(),
            other => other.to_str().into_owned(),
        };
        let mut req = hyper::Request::builder()
            .uri(path)
            .header(header::HOST, host);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let body = match body {
            Some(b) => {
                req = req
                    .method(hyper::Method::POST)
                    .header(header::CONTENT_TYPE, b.content_type);
                if b.base64 {
                    req = req.header("content-transfer-encoding", "base64");
                }
                b.bytes
            }
            None => {
                req = req.method(hyper::Method::GET);
                Bytes::new()
            }
        };
        let req = req.body(Full::new(body)).map_err(|e| t(&e))?;
        let resp = sender.send_request(req).await.map_err(|e| t(&e))?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, response::MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| t(&*e))?
            .to_bytes()
            .to_vec();
        driver.abort();
        let header = |h: header::HeaderName| {
            parts
                .headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if parts.status != hyper::StatusCode::OK {
            let message: String = String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(400)
                .collect();
            return Err(Error::Refused {
                status: parts.status.as_u16(),
                message,
                retry_after: header(header::RETRY_AFTER).and_then(|v| v.parse().ok()),
            });
        }
        Ok(Answer {
            content_type: header(header::CONTENT_TYPE).unwrap_or_default(),
            body,
        })
    }

    /// `GET cacerts`: the issuing CA chain (DER, as the server lists it).
    pub async fn cacerts(&self) -> Result<Vec<Vec<u8>>, Error> {
        let a = self.call(None, "cacerts", None, None).await?;
        response::certs_only(&a.body)
    }
}
