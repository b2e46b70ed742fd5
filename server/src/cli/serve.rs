//! `smtrust serve`: run one node (CA HTTP, TLS 1.3-SM API, optionally the gateway) until interrupted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use crate::admin_socket::NodeCommand;
use crate::cli::keystore::{UnlockArgs, open_unsealed};
use crate::node::{Node, NodeOptions};

/// Arguments of `smtrust serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The TLS 1.3-SM API (EST, attestation).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub(crate) api: SocketAddr,
    /// Plain HTTP for CRLs, CA certificates and OCSP.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) http: SocketAddr,
    /// DNS names for the service's TLS certificate (repeat the flag).
    #[arg(long = "dns-name", default_value = "localhost")]
    pub(crate) dns_names: Vec<String>,
    /// Gateway listeners (TOML, `[[listener]]` tables; see docs/configuration.md). None: no gateway.
    #[arg(long)]
    pub(crate) gateway: Option<PathBuf>,
    /// Attestation store URL (`sqlite://…?mode=rwc` or `postgres://…`); default `<data-dir>/attest.db`.
    #[arg(long, env = "SMTRUST_ATTEST_URL")]
    pub(crate) attest_url: Option<String>,
    /// On Ctrl-C or SIGTERM: how long admitted gateway sessions may go on before they are closed
    /// (new connections are refused at once).
    #[arg(long, default_value_t = 10)]
    pub(crate) drain_seconds: u64,
    /// EST re-enrollment grace: a device whose certificate expired less than this ago may still renew it
    /// with simplereenroll (e.g. 7d, 36h; 0 disables).
    #[arg(long, default_value = "7d", value_parser = crate::cli::ca::parse_duration)]
    pub(crate) est_reenroll_grace: std::time::Duration,
    /// Most pre-signed OCSP answers kept in memory (least recently used go first; about 1 KB each).
    #[arg(long, default_value_t = smtrust_ca::ocsp::DEFAULT_CACHE_ENTRIES)]
    pub(crate) ocsp_cache_entries: usize,
    #[command(flatten)]
    pub(crate) unlock: UnlockArgs,
}

pub(crate) fn run(
    args: &ServeArgs,
    data_dir: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let data_dir = crate::cli::data_dir(data_dir)?;
    let keystore = Arc::new(open_unsealed(&data_dir, &args.unlock)?);
    let gateway = match &args.gateway {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("read the gateway config {}", p.display()))?;
            Some(smtrust_gateway::Config::from_toml(&text)?)
        }
        None => None,
    };
    let policy_store = crate::cli::policy::store::Store::new(&data_dir);
    let policy_version = policy_store.active()?;
    let opts = NodeOptions {
        api_bind: args.api,
        http_bind: args.http,
        dns_names: args.dns_names.clone(),
        gateway,
        attest_url: args.attest_url.clone(),
        est_reenroll_grace: args.est_reenroll_grace,
        ocsp_cache_entries: args.ocsp_cache_entries,
        // The active version of `smtrust policy apply` (version 0: the shipped default bundle).
        policy: Some(policy_store.sources(policy_version)?),
        policy_version,
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        // Before the ready line: a SIGHUP sent as soon as it appears must not kill the process. Streams made
        // once, not a `ctrl_c()` per loop turn: a signal that comes while a reload or renewal runs is kept.
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        // The local admin endpoint first: `smtrust keystore seal|status` reach the running server through it.
        let admin = crate::admin_socket::serve(
            &smtrust_keystore::admin::socket_path(&data_dir),
            Arc::clone(&keystore),
        )
        .await?;
        let mut node = Node::start(&data_dir, keystore, opts).await?;
        admin.attach_est(node.est.clone());
        let (commands_tx, mut commands) = tokio::sync::mpsc::channel::<NodeCommand>(4);
        admin.attach_commands(commands_tx);
        let listening = serde_json::json!({
            "api": format!("https://{}", node.api_addr),
            "http": format!("http://{}", node.http_addr),
            "gateway": node.gateway_listeners(),
            "trust_chain": smtrust_ca::home::ca_dir(&data_dir).join("chain.pem"),
        });
        if json {
            println!("{listening}");
        } else {
            println!("smtrust is serving (Ctrl-C stops it):");
            println!(
                "  API (TLS 1.3-SM, EST + attestation)  https://{}",
                node.api_addr
            );
            println!(
                "  CRL / OCSP / CA certificates         http://{}",
                node.http_addr
            );
            for (name, addr) in node.gateway_listeners() {
                println!("  gateway listener {name:<20} {addr}");
            }
        }
        let reload = node
            .gateway
            .as_ref()
            .map(|(gw, _)| follow_policy(policy_store, gw.clone(), policy_version));
        // Ctrl-C (an operator at a terminal) or SIGTERM (systemd, container runtimes) stop; SIGHUP and
        // `POST /gateway/reload` on the admin socket re-read the gateway config and apply it live;
        // `POST /service/renew` renews the service certificates now.
        loop {
            tokio::select! {
                _ = int.recv() => break,
                _ = term.recv() => break,
                _ = hup.recv() => {
                    // The outcome is logged inside; nobody waits for an answer.
                    let _ = reload_gateway(&mut node, args.gateway.as_deref()).await;
                }
                Some(command) = commands.recv() => match command {
                    NodeCommand::GatewayReload(reply) => {
                        let _ = reply.send(reload_gateway(&mut node, args.gateway.as_deref()).await);
                    }
                    NodeCommand::RenewCertificates(reply) => {
                        let outcome = node.renew_certificates().await.map_err(|e| {
                            tracing::error!(error = %format!("{e:#}"), "service certificate renewal failed");
                            format!("{e:#}")
                        });
                        let _ = reply.send(outcome);
                    }
                },
            }
        }
        if let Some(r) = reload {
            r.abort();
        }
        node.shutdown(std::time::Duration::from_secs(args.drain_seconds))
            .await;
        if let Err(e) = admin.shutdown().await {
            tracing::warn!(error = %e, "admin socket");
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Re-read the `--gateway` file and apply it to the running gateway (`Node::reload_gateway`): all or nothing,
/// admitted sessions untouched. The outcome is logged; a bad file or a refused config leaves the running
/// gateway as it was.
async fn reload_gateway(node: &mut Node, path: Option<&Path>) -> Result<serde_json::Value, String> {
    let outcome = async {
        let Some(path) = path else {
            anyhow::bail!("`smtrust serve` was started without --gateway: nothing to reload");
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read the gateway config {}", path.display()))?;
        let config = smtrust_gateway::Config::from_toml(&text)?;
        node.reload_gateway(config).await
    }
    .await;
    match outcome {
        Ok(r) => {
            tracing::info!(added = ?r.added, removed = ?r.removed, moved = ?r.moved, changed = ?r.changed,
                limits_changed = r.limits_changed, "gateway config reloaded");
            Ok(serde_json::json!({
                "added": r.added, "removed": r.removed, "moved": r.moved, "changed": r.changed,
                "limits_changed": r.limits_changed, "listeners": node.gateway_listeners(),
            }))
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "gateway reload refused; the running config stays");
            Err(format!("{e:#}"))
        }
    }
}

/// How often the running server looks at `<data-dir>/policy/active`.
const POLICY_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Policy hot reload: `smtrust policy apply|rollback` rewrite `<data-dir>/policy/active` atomically;
/// when the version there changes, the gateway activates it and re-decides live MQTT sessions. Polling
/// a one-line file needs no signal, pid file or socket, and works whoever runs the CLI.
fn follow_policy(
    store: crate::cli::policy::store::Store,
    gateway: smtrust_gateway::Gateway,
    mut version: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLICY_POLL);
        loop {
            tick.tick().await;
            let next = match store.active() {
                Ok(v) if v != version => v,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "policy reload: reading the active version");
                    continue;
                }
            };
            let bundle = store
                .sources(next)
                .and_then(|s| Ok(smtrust_policy::Bundle::compile(s)?));
            match bundle {
                Ok(bundle) => {
                    gateway.activate_policy(bundle, next);
                    tracing::info!(version = next, "policy reloaded into the running gateway");
                }
                // Keep deciding with the old version; do not retry the broken one every second.
                Err(e) => tracing::error!(version = next, error = %e, "policy reload failed"),
            }
            version = next;
        }
    })
}
