//! Factory batches over the API (TLS 1.3-SM) for line controllers: both modes of `smtrust factory batch`,
//! with the same engine, journal and crash safety (docs/factory.md, "HTTP API").
//!
//! - `POST /factory/v1/batches`: body JSON Lines `{"device_id", "csr"}` (PEM or base64 DER), as the CLI reads;
//!   answers 202 `{"batch_id", "state"}` once the batch is planned (every device journaled). The same body
//!   again names the same batch: it resumes an interrupted batch (node restart) or re-reports a finished one.
//! - `POST /factory/v1/batches?mode=keygen[&kdf_iterations=N]`: body JSON Lines `{"device_id", ...attributes}`,
//!   the batch passphrase in the `Smtrust-Bundle-Passphrase` header; the node generates the keys and writes
//!   bundles as `smtrust factory batch --manifest` does (derived per-device passwords).
//! - `GET /factory/v1/batches/{id}`: state (`queued`, `running`, `done`, `failed`, `interrupted`), the
//!   report (counts, every refusal with its line and reason), the chain, and for key-generation batches the
//!   bundle KDF parameters (`bundle_kdf`, as `bundle-kdf.json`).
//! - `GET /factory/v1/batches/{id}/certificates`: JSON Lines `{"device_id", "serial", "cert"}` (PEM).
//! - `GET /factory/v1/batches/{id}/bundles`: JSON Lines `{"device_id", "serial", "key", "cert"}`: the
//!   encrypted PKCS#8 PEM and the certificate PEM of each bundle (key-generation batches).
//!
//! Who may call: a line controller, i.e. a client certificate issued by this CA under a profile of kind
//! `admin-client`, active in the CA store, whose subject carries `OU=smtrust-line-controller`. No
//! certificate: 401. Any other certificate (a device's, an administrator's without the role): 403.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use der::Decode;
use smtrust_ca::factory::{BatchSpec, Factory, InputFormat, Issuer, KeyProtection, Mode};
use smtrust_ca::home::OpenedCa;
use smtrust_ca::{CertStatus, ProfileKind, Profiles, Serial};

/// The subject organizationalUnitName that marks an admin-client certificate as a line controller's.
pub(crate) const LINE_CONTROLLER_OU: &str = "smtrust-line-controller";
/// Largest request body: 100,000 CSRs as JSON Lines are ~60 MB.
const MAX_BODY: usize = 128 * 1024 * 1024;
/// Lifetime of certificates issued through the API, as the CLI's default.
const DAYS: u32 = 3650;
/// Request header carrying a key-generation batch's passphrase (the line's secret; never logged).
pub(crate) const PASSPHRASE_HEADER: &str = "smtrust-bundle-passphrase";

/// State shared by the factory routes.
#[derive(Clone)]
pub(crate) struct FactoryApi {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    ca: Arc<OpenedCa>,
    profiles: Profiles,
    jobs: Mutex<HashMap<String, Job>>,
    /// One batch issues at a time: each uses every core.
    running: Mutex<()>,
}

#[derive(Clone, Debug)]
enum Job {
    Queued,
    Running,
    Done,
    Failed(String),
}

impl FactoryApi {
    /// The routes' state for the node's CA; its profiles come from `<data>/ca/profiles.toml` as the CA's do.
    pub(crate) fn new(data_dir: &std::path::Path, ca: Arc<OpenedCa>) -> anyhow::Result<Self> {
        let path = smtrust_ca::home::ca_dir(data_dir).join("profiles.toml");
        let profiles = if path.exists() {
            Profiles::from_toml(&std::fs::read_to_string(&path)?)?
        } else {
            Profiles::default()
        };
        Ok(Self {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_path_buf(),
                ca,
                profiles,
                jobs: Mutex::new(HashMap::new()),
                running: Mutex::new(()),
            }),
        })
    }

    fn factory(&self) -> anyhow::Result<Factory> {
        let ca = &self.inner.ca;
        let issuer = Issuer::from_ca(ca.issuing.clone(), ca.chain_pem.clone(), DAYS);
        let db = self.inner.data_dir.join(smtrust_ca::home::DB_FILE);
        Ok(Factory::open(&db, issuer)?)
    }

    fn set(&self, id: &str, job: Job) {
        if let Ok(mut j) = self.inner.jobs.lock() {
            j.insert(id.to_owned(), job);
        }
    }

    fn get(&self, id: &str) -> Option<Job> {
        self.inner.jobs.lock().ok()?.get(id).cloned()
    }

    /// Why `leaf` may not run batches, or `None` if it is a line controller's.
    async fn refusal(&self, leaf: &[u8]) -> Option<&'static str> {
        let Ok(cert) = x509_cert::Certificate::from_der(leaf) else {
            return Some("client certificate does not decode");
        };
        let tbs = cert.tbs_certificate();
        // The API's verifier lets recently expired peers through for EST re-enrollment only.
        if tbs.validity().not_after.to_unix_duration().as_secs() < crate::cli::factory::unix_now() {
            return Some("client certificate has expired");
        }
        let Some(serial) = Serial::from_slice(tbs.serial_number().as_bytes()) else {
            return Some("client certificate was not issued by this CA");
        };
        let record = match self.inner.ca.service.show(&serial).await {
            Ok(Some(r)) => r,
            Ok(None) => return Some("client certificate was not issued by this CA"),
            Err(e) => {
                tracing::error!(error = %e, "factory API: CA store lookup failed");
                return Some("client certificate could not be checked");
            }
        };
        if record.der.as_deref() != Some(leaf) || record.status != CertStatus::Active {
            return Some("client certificate is not active in the CA store");
        }
        let kind = record
            .profile
            .as_deref()
            .and_then(|p| self.inner.profiles.get(p))
            .map(|p| p.kind);
        if kind != Some(ProfileKind::AdminClient) {
            return Some("only admin-client certificates may run factory batches");
        }
        let ou = der::asn1::ObjectIdentifier::new_unwrap("2.5.4.11");
        let is_line = tbs
            .subject()
            .iter()
            .filter(|a| a.oid == ou)
            .any(|a| a.value.value() == LINE_CONTROLLER_OU.as_bytes());
        if !is_line {
            return Some("admin certificate without OU=smtrust-line-controller");
        }
        None
    }
}

/// The factory routes, behind the line-controller check.
pub(crate) fn router(api: FactoryApi) -> Router {
    Router::new()
        .route("/factory/v1/batches", post(create))
        .route("/factory/v1/batches/{id}", get(status))
        .route("/factory/v1/batches/{id}/certificates", get(certificates))
        .route("/factory/v1/batches/{id}/bundles", get(bundles))
        .route_layer(middleware::from_fn_with_state(api.clone(), line_controller))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn refuse(status: StatusCode, code: &'static str, message: &str) -> Response {
    json(
        status,
        &serde_json::json!({"code": code, "message": message}),
    )
}

fn internal(e: &anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "factory API failed");
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the batch could not be processed; see the node's log",
    )
}

async fn line_controller(State(api): State<FactoryApi>, req: Request, next: Next) -> Response {
    let leaf = req
        .extensions()
        .get::<smtrust_tls::serve::Peer>()
        .and_then(|p| p.leaf.clone());
    let Some(leaf) = leaf else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a line controller's client certificate is required",
        );
    };
    match api.refusal(&leaf).await {
        None => next.run(req).await,
        Some(why) => refuse(StatusCode::FORBIDDEN, "forbidden", why),
    }
}

/// Run `f` on its own thread (the journal drives SQLite through a runtime of its own).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await
        .map_err(|_| anyhow::anyhow!("factory thread ended without an answer"))?
}

/// What a POST asks for: the mode and, in key-generation mode, how to protect the keys.
struct Order {
    mode: Mode,
    keys: Option<KeyProtection>,
}

/// Read `?mode=` / `?kdf_iterations=` and the passphrase header; `Err` is why it is a bad request (400).
fn order(uri: &Uri, headers: &HeaderMap) -> Result<Order, &'static str> {
    let mut mode = Mode::Csr;
    let mut iterations = smtrust_ca::factory::BATCH_KDF_ITERATIONS;
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("mode", "csr") => mode = Mode::Csr,
            ("mode", "keygen") => mode = Mode::KeyGen,
            ("kdf_iterations", n) => {
                iterations = n
                    .parse()
                    .ok()
                    .filter(|n| {
                        (smtrust_crypto::pkcs8::MIN_ITERATIONS
                            ..=smtrust_crypto::pkcs8::MAX_ITERATIONS)
                            .contains(n)
                    })
                    .ok_or("kdf_iterations must be a number in 1000..=10000000")?;
            }
            _ => return Err("query parameters: mode=csr|keygen, kdf_iterations=N"),
        }
    }
    if mode == Mode::Csr {
        return Ok(Order { mode, keys: None });
    }
    // The header's bytes stay in the request's buffers until it is dropped; our copy is zeroized.
    let passphrase = headers
        .get(PASSPHRASE_HEADER)
        .map(|v| zeroize::Zeroizing::new(v.as_bytes().to_vec()))
        .filter(|p| !p.is_empty())
        .ok_or("key-generation mode needs the Smtrust-Bundle-Passphrase header")?;
    Ok(Order {
        mode,
        keys: Some(KeyProtection::DerivedPassphrase {
            passphrase,
            iterations,
        }),
    })
}

async fn create(
    State(api): State<FactoryApi>,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let order = match order(&uri, &headers) {
        Ok(o) => o,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, "bad_request", why),
    };
    drop(headers);
    if body.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "empty",
            "the body must be JSON Lines of {\"device_id\", \"csr\"} (or {\"device_id\", ...} with mode=keygen)",
        );
    }
    match plan_and_start(api, order, body).await {
        Ok((id, job)) => json(
            StatusCode::ACCEPTED,
            &serde_json::json!({"batch_id": id, "state": state_name(&job)}),
        ),
        Err(e) => match e.downcast_ref::<smtrust_ca::factory::FactoryError>() {
            Some(smtrust_ca::factory::FactoryError::Manifest(why)) => {
                refuse(StatusCode::BAD_REQUEST, "bad_manifest", why)
            }
            _ if e.is::<PassphraseMismatch>() => refuse(
                StatusCode::CONFLICT,
                "passphrase_mismatch",
                &PassphraseMismatch.to_string(),
            ),
            _ => internal(&e),
        },
    }
}

/// Store the body durably, plan the batch, and start issuing it in the background.
async fn plan_and_start(
    api: FactoryApi,
    order: Order,
    body: axum::body::Bytes,
) -> anyhow::Result<(String, Job)> {
    let (tx, rx) = tokio::sync::oneshot::channel::<anyhow::Result<(String, Job)>>();
    std::thread::spawn(move || {
        let Order { mode, keys } = order;
        let planned = (|| {
            // The same body in the other mode is another batch: keep its upload and outputs apart.
            let (prefix, format) = match mode {
                Mode::KeyGen => ("keygen-", InputFormat::KeysJsonl),
                _ => ("", InputFormat::CsrJsonl),
            };
            let name = format!(
                "{prefix}{}",
                hex::encode(smtrust_crypto::sm3::digest(&body))
            );
            let root = api.inner.data_dir.join("factory");
            let input = root.join("uploads").join(format!("{name}.jsonl"));
            write_durably(&input, &body)?;
            let spec = BatchSpec::new(
                mode,
                input,
                format,
                root.join("batches").join(&name),
                crate::cli::factory::unix_now(),
            );
            let mut factory = api.factory()?;
            let id = factory.plan(&spec, keys.as_ref())?;
            if let Some(k) = &keys {
                same_passphrase(&mut factory, &id, k)?;
            }
            anyhow::Ok((factory, id))
        })();
        let (mut factory, id) = match planned {
            Ok(x) => x,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        if let Some(job @ (Job::Queued | Job::Running)) = api.get(&id) {
            let _ = tx.send(Ok((id, job)));
            return;
        }
        api.set(&id, Job::Queued);
        let _ = tx.send(Ok((id.clone(), Job::Queued)));
        let _one = api.inner.running.lock();
        api.set(&id, Job::Running);
        let job = match factory.resume(&id, keys.as_ref(), &mut |_| {}) {
            Ok(r) => {
                tracing::info!(batch = %id, issued = r.issued, refused = r.refused, "factory batch over the API done");
                Job::Done
            }
            Err(e) => {
                tracing::error!(batch = %id, error = %e, "factory batch over the API failed");
                Job::Failed(e.to_string())
            }
        };
        api.set(&id, job);
    });
    rx.await
        .map_err(|_| anyhow::anyhow!("factory thread ended without an answer"))?
}

/// A resumed key-generation batch was given another passphrase than its bundles are under.
#[derive(Debug)]
struct PassphraseMismatch;

impl std::fmt::Display for PassphraseMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the passphrase does not open the bundles this batch already wrote")
    }
}

impl std::error::Error for PassphraseMismatch {}

/// Refuse to resume an unfinished batch under another passphrase: its bundles would be under mixed passwords.
/// The factory API and `smtrust factory resume` both call it. Costs one batch KDF, only when the batch has
/// pending devices and a bundle to check against: an issued device's, else any bundle already in place (a
/// resume adopts those too, so one written just before a crash counts).
pub(crate) fn same_passphrase(
    factory: &mut Factory,
    id: &str,
    keys: &KeyProtection,
) -> anyhow::Result<()> {
    let KeyProtection::DerivedPassphrase {
        passphrase,
        iterations,
    } = keys
    else {
        return Ok(());
    };
    let report = factory.report(id)?;
    if report.pending == 0 {
        return Ok(());
    }
    let Some(salt) = factory.kdf_salt(id)?.and_then(|s| hex::decode(s).ok()) else {
        return Ok(());
    };
    let issued = factory.certificates(id)?.into_iter().next().map(|c| c.0);
    let Some(device) = issued.or_else(|| first_bundle(&report.out.join("bundles"))) else {
        return Ok(());
    };
    let path = report.out.join("bundles").join(format!("{device}.pem"));
    let text = std::fs::read(&path)?;
    let blocks = smtrust_crypto::pem::blocks(&text)?;
    let key = blocks
        .first()
        .ok_or_else(|| anyhow::anyhow!("{}: empty bundle", path.display()))?;
    let master = smtrust_ca::factory::BatchKdf::master(passphrase, &salt, *iterations)?;
    let pw = smtrust_ca::factory::BatchKdf::device_password(&master, &device)?;
    smtrust_crypto::pkcs8::decrypt_encrypted(&key.1, pw.as_bytes())
        .map_err(|_| PassphraseMismatch)?;
    Ok(())
}

/// The device ID of some bundle under its final name (`<device>.pem`) in `dir`.
fn first_bundle(dir: &std::path::Path) -> Option<String> {
    std::fs::read_dir(dir).ok()?.find_map(|e| {
        let name = e.ok()?.file_name().into_string().ok()?;
        name.strip_suffix(".pem").map(str::to_owned)
    })
}

/// Temporary name, fsync, rename, fsync of the directory: the upload is whole or absent after a crash.
fn write_durably(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no parent directory"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn state_name(job: &Job) -> &'static str {
    match job {
        Job::Queued => "queued",
        Job::Running => "running",
        Job::Done => "done",
        Job::Failed(_) => "failed",
    }
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn status(State(api): State<FactoryApi>, Path(id): Path<String>) -> Response {
    if !valid_id(&id) {
        return refuse(StatusCode::NOT_FOUND, "unknown_batch", "no such batch");
    }
    let job = api.get(&id);
    let a = api.clone();
    let key = id.clone();
    let report = blocking(move || Ok(a.factory()?.report(&key)?)).await;
    let report = match report {
        Ok(r) => r,
        Err(e) if is_unknown(&e) => {
            return refuse(StatusCode::NOT_FOUND, "unknown_batch", "no such batch");
        }
        Err(e) => return internal(&e),
    };
    let (state, error) = match job {
        Some(Job::Failed(why)) => ("failed", Some(why)),
        Some(j) => (state_name(&j), None),
        // Not started by this node process: finished, or interrupted by a restart (POST it again).
        None if report.pending == 0 => ("done", None),
        None => ("interrupted", None),
    };
    // Not secret: a flashing station needs them to derive the bundle passwords (docs/factory.md).
    let bundle_kdf = (report.mode == Mode::KeyGen)
        .then(|| std::fs::read(report.out.join("bundle-kdf.json")).ok())
        .flatten()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    json(
        StatusCode::OK,
        &serde_json::json!({"batch_id": id, "state": state, "error": error, "report": report,
                            "chain": api.inner.ca.chain_pem, "bundle_kdf": bundle_kdf}),
    )
}

fn is_unknown(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<smtrust_ca::factory::FactoryError>(),
        Some(smtrust_ca::factory::FactoryError::UnknownBatch(_))
    )
}

async fn certificates(State(api): State<FactoryApi>, Path(id): Path<String>) -> Response {
    if !valid_id(&id) {
        return refuse(StatusCode::NOT_FOUND, "unknown_batch", "no such batch");
    }
    let a = api.clone();
    let key = id.clone();
    let listed = blocking(move || {
        let mut f = a.factory()?;
        f.report(&key)?; // unknown batch → 404
        let mut out = String::new();
        for (device, serial, der) in f.certificates(&key)? {
            let pem = smtrust_crypto::pem::encode("CERTIFICATE", &der)?;
            let line =
                serde_json::json!({"device_id": device, "serial": serial, "cert": pem.as_str()});
            out.push_str(&line.to_string());
            out.push('\n');
        }
        Ok(out)
    })
    .await;
    match listed {
        Ok(body) => ([(header::CONTENT_TYPE, "application/jsonl")], body).into_response(),
        Err(e) if is_unknown(&e) => refuse(StatusCode::NOT_FOUND, "unknown_batch", "no such batch"),
        Err(e) => internal(&e),
    }
}

async fn bundles(State(api): State<FactoryApi>, Path(id): Path<String>) -> Response {
    if !valid_id(&id) {
        return refuse(StatusCode::NOT_FOUND, "unknown_batch", "no such batch");
    }
    let a = api.clone();
    let key = id.clone();
    let listed = blocking(move || {
        let mut f = a.factory()?;
        let report = f.report(&key)?; // unknown batch → 404
        if report.mode != Mode::KeyGen {
            return Ok(None);
        }
        let mut out = String::new();
        for (device, serial, der) in f.certificates(&key)? {
            let path = report.out.join("bundles").join(format!("{device}.pem"));
            let text = std::fs::read(&path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            // Only the encrypted key block leaves; the file's order is key, certificate, chain.
            let blocks = smtrust_crypto::pem::blocks(&text)?;
            let key_block = blocks
                .first()
                .filter(|(label, _)| label.as_str() == "ENCRYPTED PRIVATE KEY")
                .ok_or_else(|| anyhow::anyhow!("{}: no encrypted key block", path.display()))?;
            let key_pem = smtrust_crypto::pem::encode("ENCRYPTED PRIVATE KEY", &key_block.1)?;
            let cert = smtrust_crypto::pem::encode("CERTIFICATE", &der)?;
            let line = serde_json::json!({"device_id": device, "serial": serial,
                                          "key": key_pem.as_str(), "cert": cert.as_str()});
            out.push_str(&line.to_string());
            out.push('\n');
        }
        Ok(Some(out))
    })
    .await;
    match listed {
        Ok(Some(body)) => ([(header::CONTENT_TYPE, "application/jsonl")], body).into_response(),
        Ok(None) => refuse(
            StatusCode::CONFLICT,
            "not_keygen",
            "a CSR batch has no bundles; GET its certificates",
        ),
        Err(e) if is_unknown(&e) => refuse(StatusCode::NOT_FOUND, "unknown_batch", "no such batch"),
        Err(e) => internal(&e),
    }
}
