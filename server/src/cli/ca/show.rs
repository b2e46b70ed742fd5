//! `smtrust ca show | list | export-chain`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use smtrust_ca::{CertRecord, CertStatus, Serial};

use super::CaContext;

/// One certificate's record: status, device, profile, notAfter, the certificate.
///
/// EXAMPLES:
///   smtrust ca show 5d2c0a9f4b3e11e8a1c2d3e4f5061728 --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct ShowArgs {
    /// The serial (32 hex digits).
    serial: Serial,
}

/// List certificates of the issuing CA, newest first.
///
/// EXAMPLES:
///   smtrust ca list --limit 20
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct ListArgs {
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Skip this many.
    #[arg(long, default_value_t = 0)]
    offset: u32,
}

/// The chain: issuing CA first, root last (PEM).
///
/// EXAMPLES:
///   smtrust ca export-chain --out chain.pem
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct ExportArgs {
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn status(s: &CertStatus) -> (&'static str, Option<u64>, Option<u8>) {
    match s {
        CertStatus::Reserved => ("reserved", None, None),
        CertStatus::Active => ("active", None, None),
        CertStatus::Hold { at } => ("suspended", Some(*at), None),
        CertStatus::Revoked { at, reason } => ("revoked", Some(*at), Some(reason.code())),
        _ => ("unknown", None, None),
    }
}

fn record_json(r: &CertRecord, with_cert: bool) -> serde_json::Value {
    let (st, at, reason) = status(&r.status);
    let mut v = serde_json::json!({
        "serial": r.serial.to_hex(), "issuer": r.issuer, "status": st, "changed_at": at,
        "reason_code": reason, "device_id": r.device_id, "profile": r.profile, "not_after": r.not_after,
    });
    if with_cert {
        v["certificate"] = serde_json::json!(r.der.as_deref().map(smtrust_ca::authority::pem_cert));
    }
    v
}

pub(super) fn show(a: &ShowArgs, ctx: &CaContext, json: bool) -> anyhow::Result<ExitCode> {
    let Some(r) = ctx.rt.block_on(ctx.ca.service.show(&a.serial))? else {
        anyhow::bail!("no certificate with serial {}", a.serial);
    };
    if json {
        println!("{}", record_json(&r, true));
    } else {
        let (st, _, _) = status(&r.status);
        println!("serial     {}", r.serial);
        println!("issuer     {}", r.issuer);
        println!("status     {st}");
        println!("device     {}", r.device_id.as_deref().unwrap_or("-"));
        println!("profile    {}", r.profile.as_deref().unwrap_or("-"));
        println!("not after  {}", r.not_after.unwrap_or(0));
        if let Some(d) = &r.der {
            print!("{}", smtrust_ca::authority::pem_cert(d));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn list(a: &ListArgs, ctx: &CaContext, json: bool) -> anyhow::Result<ExitCode> {
    let l = &ctx.ca.manifest.label;
    let rows = ctx.rt.block_on(ctx.ca.service.list(l, a.limit, a.offset))?;
    if json {
        let v: Vec<_> = rows.iter().map(|r| record_json(r, false)).collect();
        println!("{}", serde_json::Value::Array(v));
    } else {
        println!("{:<32} {:<10} {:<14} device", "serial", "status", "profile");
        for r in &rows {
            println!(
                "{:<32} {:<10} {:<14} {}",
                r.serial,
                status(&r.status).0,
                r.profile.as_deref().unwrap_or("-"),
                r.device_id.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn export_chain(
    a: &ExportArgs,
    ctx: &CaContext,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let pem = &ctx.ca.chain_pem;
    if json {
        super::emit(a.out.as_deref().filter(|_| true), "").ok();
        if let Some(p) = &a.out {
            std::fs::write(p, pem)?;
        }
        println!("{}", serde_json::json!({ "chain": pem }));
    } else {
        super::emit(a.out.as_deref(), pem)?;
    }
    Ok(ExitCode::SUCCESS)
}
