//! The demo's world: a temporary data directory with a fresh keystore and CA, the embedded platform
//! (MQTT broker), and one smtrust node with its gateway in front of that platform.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use smtrust_ca::Namespace;
use smtrust_ca::home::InitOptions;
use smtrust_keystore::{Argon2Params, InitMethod, Keystore, Unlock};
use zeroize::Zeroizing;

use crate::node::{Node, NodeOptions};

/// The issuing CA's label and the device namespace of the demo.
pub(crate) const LABEL: &str = "line1";
pub(crate) const NAMESPACE: &str = "ctw-";

/// The demo bundle: the default one (own topics only) plus one HTTP route for attested devices.
const DEMO_POLICIES: &str = r#"
@id("device-http-status")
permit (principal is Device, action == Action::"http_request", resource)
when { principal.attested && context.method == "GET" && context.path == "/api/v1/status" };
"#;

pub(crate) struct World {
    /// Removed when the demo ends (kept with `--keep-running` until the process stops).
    pub(crate) dir: tempfile::TempDir,
    pub(crate) node: Node,
    pub(crate) broker: SocketAddr,
}

#[allow(clippy::disallowed_methods)] // the demo reads the clock
pub(crate) async fn build(devices: usize) -> anyhow::Result<World> {
    raise_fd_limit();
    let dir = tempfile::Builder::new()
        .prefix("smtrust-demo-")
        .tempdir()
        .context("create the demo's data directory")?;
    let data = dir.path();
    // A keystore under a random passphrase that lives only in this process.
    let pass = Zeroizing::new(hex::encode(smtrust_crypto::rng::bytes::<24>()?).into_bytes());
    let ks_dir = data.join("keystore");
    Keystore::init_dir(
        &ks_dir,
        InitMethod::Passphrase {
            passphrase: &pass,
            params: Argon2Params::DEFAULT,
        },
    )?;
    let ks = Keystore::open_dir(&ks_dir)?;
    ks.unseal(Unlock::Passphrase(&pass))?;
    let ks = Arc::new(ks);

    let mut opts = InitOptions::new(LABEL);
    opts.namespace = Namespace::new(NAMESPACE)?;
    opts.organization = Some("smtrust demo".into());
    smtrust_ca::home::init(data, &ks, opts, SystemTime::now())
        .await
        .context("initialise the demo CA")?;

    let broker = crate::platform::start_broker(devices + 64)?;
    let app = crate::platform::start_app(&smtrust_ca::home::ca_dir(data).join("chain.pem")).await?;
    let gateway = smtrust_gateway::Config::from_toml(&format!(
        r#"
[[listener]]
name = "mqtt"
bind = "127.0.0.1:0"
mode = "mqtt"
upstream = "{broker}"

[[listener]]
name = "http"
bind = "127.0.0.1:0"
mode = "http"
upstream = "{app}"

[limits]
max_connections = {max}
handshakes_per_source = 1000000

[admin]
bind = "127.0.0.1:0"
"#,
        max = devices * 2 + 64
    ))?;
    let mut policy = smtrust_policy::BundleSources::default_bundle();
    policy.policies.push_str(DEMO_POLICIES);
    let node = Node::start(
        data,
        ks,
        NodeOptions {
            api_bind: "127.0.0.1:0".parse()?,
            http_bind: "127.0.0.1:0".parse()?,
            dns_names: vec!["localhost".into()],
            gateway: Some(gateway),
            attest_url: None,
            est_reenroll_grace: smtrust_ca::est::DEFAULT_REENROLL_GRACE,
            ocsp_cache_entries: smtrust_ca::ocsp::DEFAULT_CACHE_ENTRIES,
            policy: Some(policy),
            // Not from a policy store: the demo's one bundle.
            policy_version: 1,
        },
    )
    .await?;
    Ok(World { dir, node, broker })
}

/// Each device holds a few sockets through the gateway: lift the soft descriptor limit to the hard one.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        l.current = l.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, l) {
            tracing::warn!(error = %e, "could not raise the open-file limit");
        }
    }
}
