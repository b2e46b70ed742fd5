//! `smtrust ca revoke | suspend | resume`.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use smtrust_ca::{RevocationEvent, RevocationReason, Serial};

use super::CaContext;

/// CRLReason values one revokes with (RFC 5280 §5.3.1); certificateHold is `smtrust ca suspend`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Reason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    PrivilegeWithdrawn,
}

impl From<Reason> for RevocationReason {
    fn from(r: Reason) -> Self {
        match r {
            Reason::Unspecified => Self::Unspecified,
            Reason::KeyCompromise => Self::KeyCompromise,
            Reason::CaCompromise => Self::CaCompromise,
            Reason::AffiliationChanged => Self::AffiliationChanged,
            Reason::Superseded => Self::Superseded,
            Reason::CessationOfOperation => Self::CessationOfOperation,
            Reason::PrivilegeWithdrawn => Self::PrivilegeWithdrawn,
        }
    }
}

/// Revoke a certificate for good: the delta CRL is regenerated at once and gateways get the event.
///
/// EXAMPLES:
///   smtrust ca revoke 5d2c0a9f4b3e11e8a1c2d3e4f5061728 --reason key-compromise
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct RevokeArgs {
    /// The serial (32 hex digits).
    serial: Serial,
    /// Why.
    #[arg(long, value_enum, default_value = "unspecified")]
    reason: Reason,
}

/// A serial.
///
/// EXAMPLES:
///   smtrust ca suspend 5d2c0a9f4b3e11e8a1c2d3e4f5061728
///   smtrust ca resume 5d2c0a9f4b3e11e8a1c2d3e4f5061728
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct SerialArg {
    /// The serial (32 hex digits).
    serial: Serial,
}

fn print(ev: &RevocationEvent, json: bool) -> ExitCode {
    if json {
        println!("{}", ev.to_json());
    } else {
        println!("{} {:?} at {}", ev.serial, ev.kind, ev.at);
    }
    ExitCode::SUCCESS
}

pub(super) fn revoke(a: &RevokeArgs, ctx: &CaContext, json: bool) -> anyhow::Result<ExitCode> {
    let l = &ctx.ca.manifest.label;
    let ev = ctx
        .rt
        .block_on(ctx.ca.service.revoke(l, &a.serial, a.reason.into()))?;
    Ok(print(&ev, json))
}

pub(super) fn suspend(a: &SerialArg, ctx: &CaContext, json: bool) -> anyhow::Result<ExitCode> {
    let l = &ctx.ca.manifest.label;
    let ev = ctx.rt.block_on(ctx.ca.service.suspend(l, &a.serial))?;
    Ok(print(&ev, json))
}

pub(super) fn resume(a: &SerialArg, ctx: &CaContext, json: bool) -> anyhow::Result<ExitCode> {
    let l = &ctx.ca.manifest.label;
    let ev = ctx.rt.block_on(ctx.ca.service.resume(l, &a.serial))?;
    Ok(print(&ev, json))
}
