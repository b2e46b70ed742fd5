//! `smtrust ca crl`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CaContext;

/// Make, store and print a new CRL of the issuing CA: full (default) or delta (--delta, on top of the latest
/// full CRL). PEM unless --der.
///
/// EXAMPLES:
///   smtrust ca crl --out line7.crl && openssl crl -in line7.crl -noout -text
///   smtrust ca crl --delta --der --out line7-delta.crl
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct CrlArgs {
    /// A delta CRL.
    #[arg(long)]
    delta: bool,
    /// DER instead of PEM.
    #[arg(long)]
    der: bool,
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(super) fn run(a: &CrlArgs, ctx: &CaContext, json: bool) -> anyhow::Result<ExitCode> {
    let l = &ctx.ca.manifest.label;
    let crl = ctx.rt.block_on(ctx.ca.service.crl(l, a.delta))?;
    let pem = smtrust_ca::crl::to_pem(&crl.der);
    match (&a.out, a.der) {
        (Some(p), true) => std::fs::write(p, &crl.der)?,
        (Some(p), false) => std::fs::write(p, &pem)?,
        (None, true) if !json => {
            use std::io::Write as _;
            std::io::stdout().write_all(&crl.der)?;
        }
        _ => {}
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "issuer": l, "number": crl.number, "delta": crl.delta,
                "this_update": crl.this_update, "crl": pem,
            })
        );
    } else if a.out.is_none() && !a.der {
        print!("{pem}");
    }
    Ok(ExitCode::SUCCESS)
}
