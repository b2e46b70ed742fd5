//! System figures for the gateway (TLS 1.3-SM, TCP mode), release build:
//!
//! ```text
//! cargo run --release -p smtrust-gateway --example bench -- all
//! cargo run --release -p smtrust-gateway --example bench -- idle 10000 http
//! cargo run --release -p smtrust-gateway --example bench -- requests
//! ```
//!
//! - `handshakes`: full SM2 mutual-auth handshakes/s through the gateway (no resumption), 4
//!   concurrent clients for 5 s, each handshake followed by a 1-byte echo (so it was admitted);
//! - `throughput`: 64 MiB through the gateway to an echo upstream vs straight to a TLS-SM echo
//!   server, in 64 KiB windows, MiB/s each way;
//! - `latency`: 2,000 sequential 64-byte round trips, p50/p99, through the gateway vs direct;
//! - `idle N MODE`: memory per idle admitted connection: a child process opens N admitted
//!   connections (and runs the echo upstream), this process runs only the gateway and reports
//!   its RSS growth / sessions. Both processes raise their soft fd limit to the hard one. In
//!   `http` mode an idle admitted connection holds one fd in the gateway (the upstream is opened
//!   at the first request), so 10,000 fit a 20,000 hard limit; in `tcp` mode it holds two (device
//!   and upstream), so N must stay below the hard limit / 2 (`all` runs http 10,000, tcp 9,900).
//! - `requests`: `http` mode, GETs with a 64-byte answer for 3 s each: HTTP/1.1 keep-alive on 1
//!   and on 16 connections, HTTP/2 (ALPN `h2`) with 1 and 16 concurrent streams on one connection;
//!   requests/s, p50/p99. Every request is a policy decision; the passport is signed once per
//!   connection and reused.
//!
//! Clients and gateway share the machine's cores: the figures are lower bounds for the gateway.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

#[path = "bench/requests.rs"]
mod requests;

use rustls::pki_types::{CertificateDer, ServerName};
use smtrust_ca::{
    CaLimits, CaService, IssueRequest, Issuer, IssuerConfig, Profiles, Serial, SqlStore,
};
use smtrust_crypto::sm2::{CertId, Sm2SecretKey, Tls13Id};
use smtrust_gateway::{Config, Gateway, SmTls};
use smtrust_tls::{
    ClientAuth, Credentials, Resumption, RevokedSet, Sm2ChainVerifier, TrustRoots, UnknownStatus,
};
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Test material passed to the child process (hex lines): root, leaf, issuing CA, device key.
struct Material {
    root: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: Sm2SecretKey,
}

impl Material {
    fn client(&self) -> Arc<rustls::ClientConfig> {
        let v = Sm2ChainVerifier::new(
            TrustRoots::new(std::slice::from_ref(&self.root)).unwrap(),
            Arc::new(RevokedSet::new()),
            UnknownStatus::Refuse,
        );
        let creds = Credentials::new(
            Arc::new(self.key.signing_key(Tls13Id).unwrap()),
            self.chain.clone(),
        )
        .unwrap();
        let mut c = smtrust_tls::client_config(v, Some(&creds)).unwrap();
        c.resumption = rustls::client::Resumption::disabled();
        Arc::new(c)
    }
    fn lines(&self) -> String {
        let h = |c: &CertificateDer<'_>| hex::encode(c.as_ref());
        format!(
            "{}\n{}\n{}\n{}\n",
            h(&self.root),
            h(&self.chain[0]),
            h(&self.chain[1]),
            hex::encode(*self.key.to_bytes())
        )
    }
    fn read(lines: &mut impl Iterator<Item = String>) -> Self {
        let mut next = || hex::decode(lines.next().unwrap()).unwrap();
        let root = CertificateDer::from(next());
        let chain = vec![CertificateDer::from(next()), CertificateDer::from(next())];
        let key = Sm2SecretKey::from_bytes(&next()).unwrap();
        Self { root, chain, key }
    }
}

struct Pki {
    server_key: Sm2SecretKey,
    server_chain: Vec<CertificateDer<'static>>,
    device: Material,
}

#[allow(clippy::disallowed_methods)]
async fn pki() -> Pki {
    let svc = CaService::new(
        SqlStore::open_sqlite_memory().await.unwrap(),
        Profiles::default(),
    );
    let t = SystemTime::now();
    let k = || Sm2SecretKey::generate().unwrap();
    let root = Issuer::create_root(
        Arc::new(k().signing_key(CertId).unwrap()),
        "CN=bench root",
        86400 * 3650,
        CaLimits::path_len(Some(1)),
        Serial::random().unwrap(),
        t,
        IssuerConfig::new("root"),
    )
    .unwrap();
    let inter = root
        .create_intermediate(
            Arc::new(k().signing_key(CertId).unwrap()),
            "CN=bench devices",
            86400 * 365,
            CaLimits::path_len(Some(0)),
            Serial::random().unwrap(),
            t,
            IssuerConfig::new("devices"),
        )
        .unwrap();
    let (root_der, inter_der) = (
        CertificateDer::from(root.certificate_der().to_vec()),
        CertificateDer::from(inter.certificate_der().to_vec()),
    );
    svc.add_issuer(root);
    svc.add_issuer(inter);
    let csr = |sk: &Sm2SecretKey, subject: &str| {
        use der::Encode;
        use x509_cert::builder::{Builder, RequestBuilder};
        let s = sk.signing_key(CertId).unwrap();
        RequestBuilder::new(subject.parse().unwrap())
            .unwrap()
            .build::<_, smtrust_crypto::x509::DerSignature>(&smtrust_crypto::x509::X509Signer::new(
                &s,
            ))
            .unwrap()
            .to_der()
            .unwrap()
    };
    let server_key = k();
    let mut req = IssueRequest::new(csr(&server_key, "CN=gateway"), None);
    req.dns_names = vec!["localhost".into()];
    let server = svc.issue("devices", "server", req).await.unwrap();
    let dev_key = k();
    let dev = svc
        .issue(
            "devices",
            "device",
            IssueRequest::new(csr(&dev_key, "CN=ctw-bench-1"), None),
        )
        .await
        .unwrap();
    Pki {
        server_key,
        server_chain: vec![CertificateDer::from(server.der), inter_der.clone()],
        device: Material {
            root: root_der,
            chain: vec![CertificateDer::from(dev.der), inter_der],
            key: dev_key,
        },
    }
}

async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            // As a platform would (and as the direct server does): no Nagle delay on echoes.
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A TLS-SM echo server without the gateway (the "direct" baseline).
async fn direct_server(p: &Pki) -> SocketAddr {
    let v = Sm2ChainVerifier::new(
        TrustRoots::new(std::slice::from_ref(&p.device.root)).unwrap(),
        Arc::new(RevokedSet::new()),
        UnknownStatus::Refuse,
    );
    let creds = Credentials::new(
        Arc::new(p.server_key.signing_key(Tls13Id).unwrap()),
        p.server_chain.clone(),
    )
    .unwrap();
    let cfg = Arc::new(
        smtrust_tls::server_config(&creds, ClientAuth::Required(v), Resumption::Off).unwrap(),
    );
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let a = acceptor.clone();
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                if let Ok(tls) = a.accept(s).await {
                    let (mut r, mut w) = tokio::io::split(tls);
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                }
            });
        }
    });
    addr
}

async fn gateway(p: &Pki, upstream: SocketAddr, mode: &str) -> smtrust_gateway::Running {
    let config = Config::from_toml(&format!(
        "[[listener]]\nname = \"main\"\nbind = \"127.0.0.1:0\"\nmode = \"{mode}\"\nupstream = \"{upstream}\"\n[limits]\nmax_connections = 20000\nhandshakes_per_source = 1000000\nhandshake_timeout_ms = 60000\n"
    ))
    .unwrap();
    let tls = SmTls::new(
        Arc::new(p.server_key.signing_key(Tls13Id).unwrap()),
        p.server_chain.clone(),
        TrustRoots::new(std::slice::from_ref(&p.device.root)).unwrap(),
    )
    .resumption(Resumption::Off);
    // The default bundle plus GETs under /bench/ for the `requests` arm.
    let mut policy = smtrust_policy::BundleSources::default_bundle();
    policy.policies.push_str(
        "\n@id(\"bench-get\")\npermit (principal is Device, action == Action::\"http_request\", resource)\n  when { context.method == \"GET\" && context.path like \"/bench/*\" };\n",
    );
    let policy = smtrust_policy::Bundle::compile(policy).unwrap();
    Gateway::builder(config, Arc::new(smtrust_policy::Engine::new(policy)))
        .sm_tls(tls)
        .passport(smtrust_gateway::PassportSigner::new(
            Arc::new(p.server_key.signing_key(CertId).unwrap()),
            &p.server_chain,
        ))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap()
}

async fn connect(
    cfg: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let _ = tcp.set_nodelay(true);
    let mut s = tokio_rustls::TlsConnector::from(Arc::clone(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    // One echoed byte: the connection was admitted and reached the upstream.
    s.write_all(b"!").await.unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    s
}

async fn handshakes(p: &Pki, addr: SocketAddr) -> f64 {
    let cfg = p.device.client();
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(5);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (cfg, done) = (Arc::clone(&cfg), Arc::clone(&done));
            tokio::spawn(async move {
                while Instant::now() < until {
                    drop(connect(&cfg, addr).await);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let t = Instant::now();
    for x in tasks {
        x.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64()
}

async fn throughput(p: &Pki, addr: SocketAddr) -> f64 {
    // Echoed in 64 KiB windows, written then read back from one task: a window fits the socket
    // buffers, and each window pays one round trip (as a request/response platform would).
    const TOTAL: usize = 64 << 20;
    const WINDOW: usize = 64 << 10;
    let mut s = connect(&p.device.client(), addr).await;
    let out = vec![0x5au8; WINDOW];
    let mut back = vec![0u8; WINDOW];
    let t = Instant::now();
    for _ in 0..TOTAL / WINDOW {
        s.write_all(&out).await.unwrap();
        s.read_exact(&mut back).await.unwrap();
    }
    TOTAL as f64 / t.elapsed().as_secs_f64() / f64::from(1u32 << 20)
}

async fn latency(p: &Pki, addr: SocketAddr) -> (Duration, Duration) {
    let mut s = connect(&p.device.client(), addr).await;
    let msg = [7u8; 64];
    let mut back = [0u8; 64];
    let mut v = Vec::with_capacity(2200);
    for _ in 0..2200 {
        let t = Instant::now();
        s.write_all(&msg).await.unwrap();
        s.read_exact(&mut back).await.unwrap();
        v.push(t.elapsed());
    }
    // The first 200 warm up.
    let mut v = v.split_off(200);
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Raises the soft open-files limit to the hard one (10,000 held connections need more than the
/// usual 1,024); returns the new limit.
fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    l.current = l.maximum;
    let _ = setrlimit(Resource::Nofile, l);
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// A TLS 1.3-SM handshake only (an idle `http` device sends nothing until its first request).
async fn handshake_only(
    cfg: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::clone(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// Child: echo upstream + N idle admitted connections; talks to the parent over stdin/stdout.
async fn idle_child(n: usize, mode: &str) {
    raise_fd_limit();
    let http = mode == "http";
    let mut lines = std::io::stdin().lock().lines().map(Result::unwrap);
    let m = Material::read(&mut lines);
    println!("{}", echo_server().await);
    let gw: SocketAddr = lines.next().unwrap().parse().unwrap();
    let cfg = m.client();
    let mut held = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(100) {
        let batch: Vec<_> = (0..100.min(n - chunk * 100))
            .map(|_| {
                let cfg = Arc::clone(&cfg);
                tokio::spawn(async move {
                    if http {
                        handshake_only(&cfg, gw).await
                    } else {
                        connect(&cfg, gw).await
                    }
                })
            })
            .collect();
        for b in batch {
            held.push(b.await.unwrap());
        }
    }
    println!("ready {}", held.len());
    let _ = lines.next(); // parent says done
}

async fn idle(p: &Pki, n: usize, mode: &str) {
    let limit = raise_fd_limit();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["idle-child", &n.to_string(), mode])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut to = child.stdin.take().unwrap();
    let mut from = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    to.write_all(p.device.lines().as_bytes()).unwrap();
    let echo: SocketAddr = from.next().unwrap().unwrap().parse().unwrap();
    let running = gateway(p, echo, mode).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib();
    writeln!(to, "{}", running.local_addr("main").unwrap()).unwrap();
    let ready = tokio::task::spawn_blocking(move || from.next().unwrap().unwrap())
        .await
        .unwrap();
    // The last handshakes finish (and register) on the gateway side a moment after the client's.
    let deadline = Instant::now() + Duration::from_secs(30);
    while running.gateway().session_count() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib();
    let sessions = running.gateway().session_count();
    println!(
        "idle {mode}: {ready}; gateway sessions {sessions} (fd limit {limit}); RSS {before} KiB -> {after} KiB; {:.1} KiB per admitted idle connection",
        after.saturating_sub(before) as f64 / sessions.max(1) as f64
    );
    let _ = writeln!(to, "done");
    let _ = child.wait();
    running.shutdown().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map_or("all", String::as_str);
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mode = args.get(3).map_or("http", String::as_str);
    if what == "idle-child" {
        return idle_child(n, mode).await;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());
    let p = pki().await;
    let echo = echo_server().await;
    let gw = gateway(&p, echo, "tcp").await;
    let via = gw.local_addr("main").unwrap();
    let direct = direct_server(&p).await;
    if matches!(what, "all" | "handshakes") {
        println!(
            "handshakes/s (full SM2 mutual auth, 4 clients): gateway {:.0}, direct {:.0}",
            handshakes(&p, via).await,
            handshakes(&p, direct).await
        );
    }
    if matches!(what, "all" | "throughput") {
        println!(
            "throughput MiB/s (64 MiB echoed, TLS_SM4_GCM_SM3): gateway {:.1}, direct {:.1}",
            throughput(&p, via).await,
            throughput(&p, direct).await
        );
    }
    if matches!(what, "all" | "latency") {
        let (g50, g99) = latency(&p, via).await;
        let (d50, d99) = latency(&p, direct).await;
        println!(
            "latency 64 B round trip: gateway p50 {g50:?} p99 {g99:?}; direct p50 {d50:?} p99 {d99:?}; added p50 {:?} p99 {:?}",
            g50.saturating_sub(d50),
            g99.saturating_sub(d99)
        );
    }
    gw.shutdown().await;
    if matches!(what, "all" | "requests") {
        requests::run(&p, gateway(&p, requests::platform().await, "http").await).await;
    }
    if what == "idle" {
        idle(&p, n, mode).await;
    } else if what == "all" {
        idle(&p, 10_000, "http").await;
        idle(&p, 9_900, "tcp").await;
    }
}
