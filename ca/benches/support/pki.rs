//! A root → issuing CA `line7` (namespace `ctw-`) → leaves PKI over a store, with line7's delegated OCSP
//! signer, and device CSRs made the way the agent makes them (`agent/src/csr.rs`: CN=<device id>, GM/T ID).

use std::sync::Arc;
use std::time::SystemTime;

use der::Encode;
use smtrust_ca::{
    CaLimits, CaService, IssueRequest, Issuer, IssuerConfig, Namespace, Profiles, Responder,
    Serial, SqlStore,
};
use smtrust_crypto::sm2::{CertId, Sm2SecretKey};
use smtrust_crypto::x509::{CertSigner, DerSignature, X509Signer};
use x509_cert::builder::{Builder, RequestBuilder};

/// The issuing CA's label.
pub const ISSUER: &str = "line7";

#[allow(clippy::disallowed_methods)] // benches read the clock
pub fn now() -> SystemTime {
    SystemTime::now()
}

fn signer() -> (Arc<dyn CertSigner>, Sm2SecretKey) {
    let sk = Sm2SecretKey::generate().expect("SM2 key");
    (Arc::new(sk.signing_key(CertId).expect("signing key")), sk)
}

/// A device CSR as the agent builds it.
pub fn device_csr(device_id: &str) -> Vec<u8> {
    let (_, sk) = signer();
    csr(&sk, &format!("CN={device_id}"))
}

fn csr(sk: &Sm2SecretKey, subject: &str) -> Vec<u8> {
    let signing = sk.signing_key(CertId).expect("signing key");
    let signer = X509Signer::new(&signing);
    RequestBuilder::new(subject.parse().expect("subject"))
        .expect("request builder")
        .build::<_, DerSignature>(&signer)
        .expect("CSR")
        .to_der()
        .expect("CSR DER")
}

/// Issuance requests for `ids`, CSRs made on every core.
pub fn requests(ids: &[String]) -> Vec<IssueRequest> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = ids.len().div_ceil(cores).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .chunks(per)
            .map(|c| {
                s.spawn(move || {
                    c.iter()
                        .map(|id| IssueRequest::new(device_csr(id), None))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("CSR thread"))
            .collect()
    })
}

/// A tag unique to this run (a PostgreSQL database keeps earlier runs' active devices).
pub fn run_tag() -> String {
    let b = smtrust_crypto::rng::bytes::<6>().expect("rng");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The service over `store` with root, `line7` and line7's OCSP responder.
pub async fn pki(store: SqlStore) -> CaService<SqlStore> {
    let svc = CaService::new(store, Profiles::default());
    let t = now();
    let (root_signer, _) = signer();
    let root = Issuer::create_root(
        root_signer,
        "CN=smtrust bench root,O=smtrust bench,C=CN",
        20 * 365 * 86400,
        CaLimits::path_len(Some(1)),
        Serial::random().expect("serial"),
        t,
        IssuerConfig::new("root"),
    )
    .expect("root");
    let mut cfg = IssuerConfig::new(ISSUER);
    cfg.namespace = Namespace::new("ctw-").expect("namespace");
    cfg.organization = Some("smtrust bench".into());
    cfg.crl_url = Some("http://127.0.0.1/crl/line7.crl".into());
    cfg.delta_crl_url = Some("http://127.0.0.1/crl/line7-delta.crl".into());
    cfg.ocsp_url = Some("http://127.0.0.1/ocsp/line7".into());
    cfg.ca_issuers_url = Some("http://127.0.0.1/ca/line7.crt".into());
    let (inter_signer, _) = signer();
    let inter = root
        .create_intermediate(
            inter_signer,
            "CN=smtrust bench line7 CA,O=smtrust bench,C=CN",
            10 * 365 * 86400,
            CaLimits::path_len(Some(0)),
            Serial::random().expect("serial"),
            t,
            cfg,
        )
        .expect("intermediate");
    svc.add_issuer(root);
    let inter = svc.add_issuer(inter);
    let (ocsp_signer, ocsp_sk) = signer();
    let ocsp_cert = svc
        .issue(
            ISSUER,
            "ocsp",
            IssueRequest::new(csr(&ocsp_sk, "CN=line7 OCSP responder"), None),
        )
        .await
        .expect("OCSP signer certificate");
    svc.set_responder(
        Responder::new(
            &inter,
            &ocsp_cert.der,
            ocsp_signer,
            smtrust_ca::ocsp::DEFAULT_VALIDITY,
        )
        .expect("responder"),
    );
    svc
}

/// The machine's load averages (`/proc/loadavg`), printed next to figures.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// CPU time of this process so far, user + system over all threads (`/proc/self/stat`, 10 ms ticks).
pub fn cpu_time() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name is in parentheses and may hold spaces; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse::<u64>().ok())
        .sum();
    std::time::Duration::from_millis(ticks * 10)
}

/// CPU time spent per item over the timed regions of one benchmark.
#[derive(Default)]
pub struct CpuPerItem {
    items: std::sync::atomic::AtomicU64,
    micros: std::sync::atomic::AtomicU64,
}

impl CpuPerItem {
    /// Time `f`, which handles `items` items: returns its wall time and counts its CPU time.
    pub fn measure<T>(&self, items: usize, f: impl FnOnce() -> T) -> (std::time::Duration, T) {
        use std::sync::atomic::Ordering::Relaxed;
        let c0 = cpu_time();
        let t0 = std::time::Instant::now();
        let out = f();
        let wall = t0.elapsed();
        let cpu = cpu_time().saturating_sub(c0);
        self.items.fetch_add(items as u64, Relaxed);
        self.micros
            .fetch_add(u64::try_from(cpu.as_micros()).unwrap_or(u64::MAX), Relaxed);
        (wall, out)
    }

    /// Print the CPU time per item and the rate it allows on every core of this machine.
    pub fn report(&self, name: &str) {
        use std::sync::atomic::Ordering::Relaxed;
        let n = self.items.load(Relaxed);
        if n == 0 {
            return; // filtered out
        }
        let per = self.micros.load(Relaxed) as f64 / n as f64;
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        eprintln!(
            "{name}: {per:.0} µs CPU per item over {n} items (all threads); CPU-bound ceiling {:.0}/s on {cores} cores; load average {}",
            cores as f64 * 1e6 / per.max(1.0),
            load()
        );
    }
}
