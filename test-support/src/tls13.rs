//! Tongsuo `s_server` / `s_client` with the RFC 8998 TLS 1.3-SM flags from shared/notes/peers.md.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, ChildStdin};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::tool::collect;
use crate::{Error, Output, Tool, free_port};

/// TLS 1.3 with TLS_SM4_GCM_SM3, curveSM2, sm2sig_sm3 only (strict RFC 8998).
pub const SM_TLS13_FLAGS: [&str; 8] = [
    "-tls1_3",
    "-ciphersuites",
    "TLS_SM4_GCM_SM3",
    "-groups",
    "curveSM2",
    "-sigalgs",
    "sm2sig_sm3",
    "-enable_sm_tls13_strict",
];

/// How long [`TongsuoServer::spawn`] waits for `ACCEPT`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// What a Tongsuo TLS 1.3-SM server presents and demands.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Server certificate (PEM).
    pub cert: PathBuf,
    /// Server key (PEM).
    pub key: PathBuf,
    /// When set, client certificates are required (`-Verify 1`) and checked against this CA file.
    pub client_ca: Option<PathBuf>,
    /// Port on 127.0.0.1; a free one when `None`.
    pub port: Option<u16>,
    /// More `s_server` arguments (e.g. `-no_middlebox`, `-num_tickets 0` for GmSSL clients).
    pub extra: Vec<String>,
}

impl ServerConfig {
    /// A server with `cert` and `key`, no client authentication, any free port.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
            port: None,
            extra: Vec::new(),
        }
    }
}

/// A running `s_server`, killed when dropped. Its stdout and stderr are collected together.
#[derive(Debug)]
pub struct TongsuoServer {
    child: Child,
    // Held open: s_server exits when its stdin reaches EOF.
    _stdin: Option<ChildStdin>,
    port: u16,
    output: Arc<Mutex<Vec<u8>>>,
}

impl TongsuoServer {
    /// Starts `s_server` on 127.0.0.1 and waits until it prints `ACCEPT`.
    pub fn spawn(tongsuo: &Tool, cfg: &ServerConfig) -> Result<Self, Error> {
        let port = match cfg.port {
            Some(p) => p,
            None => free_port()?,
        };
        let mut cmd = tongsuo.command();
        cmd.arg("s_server")
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"));
        cmd.args(SM_TLS13_FLAGS)
            .arg("-cert")
            .arg(&cfg.cert)
            .arg("-key")
            .arg(&cfg.key);
        if let Some(ca) = &cfg.client_ca {
            cmd.arg("-CAfile").arg(ca).args(["-Verify", "1"]);
        }
        cmd.args(&cfg.extra);
        let mut child = tongsuo.spawn_piped(&mut cmd)?;
        let output = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            child.stdout.take().map(boxed),
            child.stderr.take().map(boxed),
        ]
        .into_iter()
        .flatten()
        {
            let sink = Arc::clone(&output);
            thread::spawn(move || pump(pipe, &sink));
        }
        let mut server = Self {
            _stdin: child.stdin.take(),
            child,
            port,
            output,
        };
        let start = Instant::now();
        while !server.output().contains("ACCEPT") {
            if server.child.try_wait()?.is_some() || start.elapsed() > READY_TIMEOUT {
                return Err(Error::NotReady {
                    program: tongsuo.program().to_owned(),
                    output: server.output(),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its address, 127.0.0.1:port.
    pub fn addr(&self) -> SocketAddr {
        (Ipv4Addr::LOCALHOST, self.port).into()
    }

    /// Everything it printed so far (application data received is echoed here).
    pub fn output(&self) -> String {
        let buf = self.output.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Waits until its output contains `needle`; false after `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.output().contains(needle) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.output().contains(needle)
    }
}

impl Drop for TongsuoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn boxed<R: Read + Send + 'static>(r: R) -> Box<dyn Read + Send> {
    Box::new(r)
}

fn pump(mut pipe: Box<dyn Read + Send>, sink: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = pipe.read(&mut buf) {
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            break;
        };
        sink.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(chunk);
    }
}

/// What a Tongsuo TLS 1.3-SM client trusts and presents.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// CA file that must verify the server (`-verify_return_error`).
    pub ca: PathBuf,
    /// Client certificate and key (PEM), when the server asks for one.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// More `s_client` arguments (`-servername`, `-no_middlebox`, ...).
    pub extra: Vec<String>,
}

impl ClientConfig {
    /// A client that trusts `ca` and has no certificate of its own.
    pub fn new(ca: impl Into<PathBuf>) -> Self {
        Self {
            ca: ca.into(),
            cert: None,
            extra: Vec::new(),
        }
    }
}

/// Runs `s_client` against 127.0.0.1:`port`, sends `send`, keeps stdin open for `linger` (so the reply and
/// the session report arrive), then closes it. Judge the result from the output: Tongsuo prints
/// `Verify return code: 0 (ok)` and the negotiated `Cipher is TLS_SM4_GCM_SM3`.
pub fn tongsuo_client(
    tongsuo: &Tool,
    port: u16,
    cfg: &ClientConfig,
    send: &[u8],
    linger: Duration,
) -> Result<Output, Error> {
    let mut cmd = tongsuo.command();
    cmd.arg("s_client")
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"));
    cmd.args(SM_TLS13_FLAGS)
        .arg("-CAfile")
        .arg(&cfg.ca)
        .arg("-verify_return_error");
    if let Some((cert, key)) = &cfg.cert {
        cmd.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    cmd.args(&cfg.extra);
    let child = tongsuo.spawn_piped(&mut cmd)?;
    collect(
        child,
        send.to_vec(),
        linger,
        tongsuo.timeout(),
        tongsuo.program(),
    )
}

/// GmSSL's own key file for `tls13_client -key .. -pass ..` (an `ENCRYPTED PRIVATE KEY` it can read).
#[derive(Debug, Clone)]
pub struct GmsslClientCert {
    /// Client certificate (PEM).
    pub cert: PathBuf,
    /// Encrypted PKCS#8 key GmSSL reads (PBKDF2 PRF 1.2.156.10197.1.401.2, SM4-CBC).
    pub key: PathBuf,
    /// Its password (test material only).
    pub pass: String,
}

/// Runs `gmssl tls13_client` against 127.0.0.1:`port` (TLS_SM4_GCM_SM3 only, no SNI). It always exits 0, and
/// its `Connection established` means only TCP: judge the handshake by what the server received.
/// A server it talks to must not send the middlebox CCS nor tickets (Tongsuo: `-no_middlebox -num_tickets 0`).
pub fn gmssl_tls13_client(
    gmssl: &Tool,
    port: u16,
    ca: &std::path::Path,
    cert: Option<&GmsslClientCert>,
    send: &[u8],
    linger: Duration,
) -> Result<Output, Error> {
    let mut cmd = gmssl.command();
    cmd.args(["tls13_client", "-host", "127.0.0.1", "-port"])
        .arg(port.to_string());
    cmd.arg("-cacert").arg(ca);
    if let Some(c) = cert {
        cmd.arg("-cert")
            .arg(&c.cert)
            .arg("-key")
            .arg(&c.key)
            .arg("-pass")
            .arg(&c.pass);
    }
    let child = gmssl.spawn_piped(&mut cmd)?;
    collect(
        child,
        send.to_vec(),
        linger,
        gmssl.timeout(),
        gmssl.program(),
    )
}
