//! `smtrust ca issue`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use smtrust_ca::{DeviceId, IssueRequest, IssuedCert};

use super::CaContext;

/// Issue a certificate from a PKCS#10 CSR (PEM or DER) signed with SM2 under the ID 1234567812345678.
/// For device profiles the device ID is the CSR subject's serialNumber (else CN) or --device-id.
///
/// EXAMPLES:
///   openssl req -new -key dev.key -sm3 -sigopt distid:1234567812345678 -subj /CN=ctw-0000001234 -out dev.csr
///   smtrust ca issue --csr dev.csr --profile device --out dev.pem
///   smtrust ca issue --csr web.csr --profile server --dns ca.example --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct IssueArgs {
    /// The CSR file.
    #[arg(long)]
    csr: PathBuf,
    /// Profile: device, server, ocsp, admin, est-bootstrap, or one from <data-dir>/ca/profiles.toml.
    #[arg(long, default_value = "device")]
    profile: String,
    /// The device ID (must match the CSR subject if it names one).
    #[arg(long)]
    device_id: Option<String>,
    /// Extra DNS names (server profiles).
    #[arg(long)]
    dns: Vec<String>,
    /// Write the certificate (PEM) here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(crate) fn cert_json(c: &IssuedCert) -> serde_json::Value {
    serde_json::json!({
        "serial": c.serial.to_hex(), "issuer": c.issuer, "profile": c.profile,
        "device_id": c.device_id.as_ref().map(DeviceId::as_str), "not_after": c.not_after,
        "certificate": c.to_pem(),
    })
}

pub(super) fn run(a: &IssueArgs, ctx: &CaContext, json: bool) -> anyhow::Result<ExitCode> {
    let csr = std::fs::read(&a.csr).with_context(|| format!("reading {}", a.csr.display()))?;
    let device_id = a.device_id.as_deref().map(DeviceId::new).transpose()?;
    let mut req = IssueRequest::new(csr, device_id);
    req.dns_names.clone_from(&a.dns);
    let label = &ctx.ca.manifest.label;
    let cert = ctx
        .rt
        .block_on(ctx.ca.service.issue(label, &a.profile, req))?;
    if json {
        let mut v = cert_json(&cert);
        if let Some(p) = &a.out {
            super::emit(Some(p), &cert.to_pem())?;
            v["out"] = serde_json::json!(p);
        }
        println!("{v}");
    } else {
        super::emit(a.out.as_deref(), &cert.to_pem())?;
        eprintln!("issued serial {} ({})", cert.serial, cert.profile);
    }
    Ok(ExitCode::SUCCESS)
}
