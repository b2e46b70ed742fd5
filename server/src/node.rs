//! One smtrust node, built from a data directory: the CA with its CRL and OCSP over plain HTTP, the API over
//! TLS 1.3-SM (EST enrollment, attestation), the policy engine, and the gateway in front of the platform.
//! `smtrust serve` runs one until stopped; `smtrust demo` runs one on a temporary directory.

mod api;
mod attestation;
pub(crate) mod factory;
mod identity;
mod revocations;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::CertificateDer;
use smtrust_ca::SqlStore;
use smtrust_ca::home::OpenedCa;
use smtrust_keystore::Keystore;
use smtrust_policy::Engine;
use smtrust_tls::{Sm2ChainVerifier, TrustRoots, UnknownStatus};
use tokio::sync::watch;

pub(crate) use api::Est;
pub(crate) use revocations::Revocations;

/// The attestation service over the node's SQL store.
pub(crate) type Attest = smtrust_attest::AttestationService<
    smtrust_attest::sql::SqlStore,
    smtrust_attest::sql::SqlStore,
    attestation::Results,
>;

/// Where a node listens and what it serves.
#[derive(Debug, Clone)]
pub(crate) struct NodeOptions {
    /// TLS 1.3-SM API (EST, attestation); client certificates optional.
    pub(crate) api_bind: SocketAddr,
    /// Plain HTTP: CRLs, CA certificates, OCSP (signed objects need no TLS).
    pub(crate) http_bind: SocketAddr,
    /// DNS names in the service's TLS certificate (clients check them).
    pub(crate) dns_names: Vec<String>,
    /// The gateway's listeners; none: no gateway on this node.
    pub(crate) gateway: Option<smtrust_gateway::Config>,
    /// The attestation store (`sqlite://…?mode=rwc` or `postgres://…`); default `<data>/attest.db`.
    pub(crate) attest_url: Option<String>,
    /// The policy bundle; none: the default bundle.
    pub(crate) policy: Option<smtrust_policy::BundleSources>,
    /// Its number in the policy store (`smtrust policy versions`, 0: the default bundle): what
    /// decisions, passports and the gateway's `/metrics` carry.
    pub(crate) policy_version: u64,
    /// EST re-enrollment grace after expiry (`EstConfig::reenroll_grace`; zero disables).
    pub(crate) est_reenroll_grace: std::time::Duration,
    /// Bound of the OCSP response cache (entries).
    pub(crate) ocsp_cache_entries: usize,
}

/// A running node. Dropping it does not stop the tasks: call [`Node::shutdown`].
pub(crate) struct Node {
    pub(crate) data_dir: PathBuf,
    pub(crate) ca: Arc<OpenedCa>,
    pub(crate) attest: Arc<Attest>,
    /// EST (enrollment tokens are minted through it).
    pub(crate) est: Est,
    /// Issuing CA, then root: what devices and clients trust.
    pub(crate) trust_der: Vec<Vec<u8>>,
    pub(crate) api_addr: SocketAddr,
    pub(crate) http_addr: SocketAddr,
    pub(crate) gateway: Option<(smtrust_gateway::Gateway, smtrust_gateway::Running)>,
    renewal: identity::Renewal,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("data_dir", &self.data_dir)
            .field("api_addr", &self.api_addr)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Open the CA of `data_dir` with the unsealed `keystore` and start everything `opts` asks for.
    #[allow(clippy::disallowed_methods)] // the node reads the clock
    pub(crate) async fn start(
        data_dir: &Path,
        keystore: Arc<Keystore>,
        opts: NodeOptions,
    ) -> anyhow::Result<Self> {
        let now = std::time::SystemTime::now();
        let ca = smtrust_ca::home::open(data_dir, &keystore, now)
            .await
            .context("open the CA (create it with `smtrust ca init`)")?;
        let ca = Arc::new(ca);
        let label = ca.manifest.label.clone();
        let issuing_der = ca.issuing.certificate_der().to_vec();
        let trust_der = vec![issuing_der.clone(), ca.root_der.clone()];

        // The in-memory revocation index, then the service's own keys.
        let mut issuers = vec![(label.clone(), name_der(&issuing_der)?)];
        issuers.push((ca.manifest.root_label.clone(), name_der(&ca.root_der)?));
        let (revocations, revoked_at_start) = Revocations::load(&ca.service, issuers).await?;
        let mut tasks = vec![revocations.follow(ca.service.subscribe())];
        let svc = &ca.service;
        let tls_key = identity::ensure(
            &keystore,
            svc,
            &label,
            &trust_der,
            &identity::TLS,
            &opts.dns_names,
            now,
        )
        .await?;
        let att_key = identity::ensure(
            &keystore,
            svc,
            &label,
            &trust_der,
            &identity::ATTESTATION,
            &[],
            now,
        )
        .await?;

        // Attestation: appraise against our own CA, status from the revocation index.
        let attest_url = opts.attest_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}?mode=rwc", data_dir.join("attest.db").display())
        });
        let store = smtrust_attest::sql::SqlStore::connect(&attest_url)
            .await
            .context("open the attestation store")?;
        let anchors = smtrust_attest::TrustAnchors::from_der(&trust_der)?;
        let appraiser = smtrust_attest::Appraiser::new(anchors, Default::default());
        let results = attestation::Results::new(store.clone());
        let attest = Arc::new(Attest::new(
            appraiser,
            store.clone(),
            store,
            results.clone(),
            revocations.clone(),
            identity::cert_signer(&keystore, &att_key)?,
            att_key.chain.clone(),
            Default::default(),
        ));
        let bundle = match opts.policy.clone() {
            Some(sources) => smtrust_policy::Bundle::compile(sources)?,
            None => smtrust_policy::Bundle::default_bundle()?,
        };
        let engine = Arc::new(Engine::with_version(bundle, opts.policy_version));

        // TLS for the API: client certificates optional (EST bootstrap and token enrollment have none).
        let roots = TrustRoots::new(&trust_certs(&trust_der))?;
        let verifier =
            Sm2ChainVerifier::new(roots.clone(), revocations.clone(), UnknownStatus::Refuse)
                // EST re-enrollment shortly after expiry (the same grace as api::est); such a peer reaches
                // only simplereenroll (est::expired_peer_guard in api::serve_api).
                .with_expiry_grace(opts.est_reenroll_grace);
        let creds = smtrust_tls::Credentials::new(
            identity::tls_signer(&keystore, &tls_key)?,
            trust_certs(&tls_key.chain),
        )?;
        // One replaceable certificate for the API and the gateway: renewal swaps it for both.
        let tls_cert = Arc::new(smtrust_gateway::ServerCert::new(
            identity::tls_signer(&keystore, &tls_key)?,
            trust_certs(&tls_key.chain),
        )?);
        let mut api_tls = smtrust_tls::server_config(
            &creds,
            smtrust_tls::ClientAuth::Optional(verifier),
            smtrust_tls::Resumption::default(),
        )?;
        api_tls.cert_resolver = tls_cert.clone();
        let api_tls = Arc::new(api_tls);

        let (stop, stop_rx) = watch::channel(false);
        // OCSP answers signed at issuance / status change and refreshed off the request path, until stop.
        ca.service
            .set_ocsp_cache_entries(&label, opts.ocsp_cache_entries)?;
        tasks.push(ca.service.spawn_ocsp(stop_rx.clone()));
        let est = api::est(&ca, &label, opts.est_reenroll_grace)?;
        let http = tokio::net::TcpListener::bind(opts.http_bind)
            .await
            .with_context(|| format!("bind {}", opts.http_bind))?;
        let api = tokio::net::TcpListener::bind(opts.api_bind)
            .await
            .with_context(|| format!("bind {}", opts.api_bind))?;
        let http_addr = http.local_addr()?;
        let api_addr = api.local_addr()?;
        tasks.push(api::serve_http(http, &ca, stop_rx.clone()));
        let factory = factory::router(factory::FactoryApi::new(data_dir, ca.clone())?);
        tasks.push(api::serve_api(
            api,
            api_tls,
            &est,
            &attest,
            factory,
            stop_rx.clone(),
        ));

        let gateway = match &opts.gateway {
            None => None,
            Some(cfg) => {
                let pass_key = identity::ensure(
                    &keystore,
                    svc,
                    &label,
                    &trust_der,
                    &identity::PASSPORT,
                    &[],
                    now,
                )
                .await?;
                let sm = smtrust_gateway::SmTls::with_certificate(Arc::clone(&tls_cert), roots);
                let passport = smtrust_gateway::passport::PassportSigner::new(
                    identity::cert_signer(&keystore, &pass_key)?,
                    &trust_certs(&pass_key.chain),
                );
                let gw = smtrust_gateway::Gateway::builder(cfg.clone(), engine.clone())
                    .sm_tls(sm)
                    .revoked(revoked_at_start)
                    .attestation(Arc::new(results.lookup()))
                    .passport(passport)
                    .build()?;
                let running = gw.start().await?;
                let names = smtrust_gateway::IssuerNames::from_issuers([ca.issuing.as_ref()]);
                tasks.push(gw.follow_ca(ca.service.subscribe(), names));
                tasks.push(api::follow_attestation(&gw, attest.subscribe()));
                Some((gw, running))
            }
        };
        let renewal = identity::Renewal {
            keystore: Arc::clone(&keystore),
            ca: Arc::clone(&ca),
            label: label.clone(),
            chain_above: trust_der.clone(),
            dns_names: opts.dns_names.clone(),
            cert: Arc::clone(&tls_cert),
            gateway: gateway.as_ref().map(|(gw, _)| gw.clone()),
        };
        tasks.push(identity::follow_renewal(renewal.clone()));
        tracing::info!(%api_addr, %http_addr, "smtrust node up");
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            ca,
            attest,
            est,
            trust_der,
            api_addr,
            http_addr,
            gateway,
            renewal,
            stop,
            tasks,
        })
    }

    /// Every gateway listener (and the admin `/metrics` one) with its bound address.
    pub(crate) fn gateway_listeners(&self) -> Vec<(String, SocketAddr)> {
        let Some((_, running)) = &self.gateway else {
            return Vec::new();
        };
        let mut all = running.listener_addrs();
        all.extend(
            running
                .local_addr(smtrust_gateway::ADMIN)
                .map(|a| (smtrust_gateway::ADMIN.to_owned(), a)),
        );
        all
    }

    /// Apply a new gateway config to the running gateway (`smtrust_gateway::Running::reload`): all or nothing,
    /// admitted sessions untouched. A node started without a gateway gets none this way (restart with `--gateway`).
    pub(crate) async fn reload_gateway(
        &mut self,
        config: smtrust_gateway::Config,
    ) -> anyhow::Result<smtrust_gateway::ReloadReport> {
        let Some((_, running)) = &mut self.gateway else {
            anyhow::bail!("this node runs no gateway (start `smtrust serve` with --gateway)");
        };
        Ok(running.reload(config).await?)
    }

    /// The gateway listener's address by name.
    pub(crate) fn gateway_addr(&self, listener: &str) -> Option<SocketAddr> {
        self.gateway
            .as_ref()
            .and_then(|(_, r)| r.local_addr(listener))
    }

    /// Renew the service TLS certificate (API and gateway) and the gateway's passport certificate now, whether
    /// due or not, and use the new ones at once (admitted sessions keep theirs). Their serials (hex).
    #[allow(clippy::disallowed_methods)] // the node reads the clock
    pub(crate) async fn renew_certificates(&self) -> anyhow::Result<serde_json::Value> {
        let now = std::time::SystemTime::now();
        let tls = self.renewal.tls(now, true).await?;
        // The TLS certificate is already in use: say so rather than let the error read as "nothing changed".
        let passport = self.renewal.passport(now, true).await.with_context(|| {
            format!(
                "the TLS certificate was renewed (serial {}) and is in use; the passport certificate was not",
                tls.as_deref().unwrap_or("?")
            )
        })?;
        tracing::info!(tls, passport, "service certificates renewed on request");
        Ok(serde_json::json!({ "tls_serial": tls, "passport_serial": passport }))
    }

    /// The CA service.
    pub(crate) fn ca(&self) -> &smtrust_ca::CaService<SqlStore> {
        &self.ca.service
    }

    /// Stop serving: no new connections; admitted gateway sessions get up to `drain` to end by
    /// themselves before they are closed; a delta CRL still waiting for its coalescing delay is made
    /// now, so the revocations of the last moments are published before the process goes.
    pub(crate) async fn shutdown(self, drain: std::time::Duration) {
        let _ = self.stop.send(true);
        if let Some((_, running)) = self.gateway {
            let left = running.drain(drain).await;
            if left > 0 {
                tracing::info!(
                    sessions = left,
                    "gateway sessions closed at the end of the drain"
                );
            }
        }
        if let Err(e) = self.ca.service.flush_delta_crls().await {
            tracing::warn!(error = %e, "delta CRL at shutdown");
        }
        for t in self.tasks {
            t.abort();
        }
    }
}

/// The trust chain as rustls wants it.
pub(crate) fn trust_certs(der: &[Vec<u8>]) -> Vec<CertificateDer<'static>> {
    der.iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect()
}

/// A certificate's subject Name, DER (how TLS and attestation name an issuer).
fn name_der(cert_der: &[u8]) -> anyhow::Result<Vec<u8>> {
    use der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(cert_der)?;
    Ok(cert.tbs_certificate().subject().to_der()?)
}
