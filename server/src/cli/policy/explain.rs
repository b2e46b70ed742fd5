//! `policy explain`: decide one request, built from flags, and show the deciding policies.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use smtrust_policy::{
    AdminRole, AttestationStatus, Bundle, DeviceAttributes, Operation, Principal, TopicFilter,
    TopicName,
};

use super::store::{Store, read_dir};
use super::{PolicyExit, decision_json, print_json, reason_text};

/// Arguments of `smtrust policy explain`.
#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// Bundle directory; the active bundle when omitted.
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// The device ID (the principal is a device).
    #[arg(long, conflicts_with = "admin")]
    device: Option<String>,
    /// Device product.
    #[arg(long, default_value = "")]
    product: String,
    /// Device factory.
    #[arg(long, default_value = "")]
    factory: String,
    /// Device firmware version.
    #[arg(long, default_value = "")]
    firmware: String,
    /// Device attestation state: verified, unverified, failed, expired.
    #[arg(long, default_value = "verified")]
    attestation: String,
    /// A group the device is in (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// MQTT ClientId (default: the device ID).
    #[arg(long)]
    client_id: Option<String>,
    /// The admin id (the principal is an admin).
    #[arg(long)]
    admin: Option<String>,
    /// The admin's role: system, security, audit.
    #[arg(long, requires = "admin")]
    role: Option<String>,
    /// Connect on this listener.
    #[arg(long, group = "op")]
    connect: Option<String>,
    /// Call "METHOD /path".
    #[arg(long, group = "op")]
    http: Option<String>,
    /// PUBLISH to this topic.
    #[arg(long, group = "op")]
    publish: Option<String>,
    /// SUBSCRIBE to this filter.
    #[arg(long, group = "op")]
    subscribe: Option<String>,
}

fn from_json_str<T: serde::de::DeserializeOwned>(what: &str, value: &str) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .with_context(|| format!("invalid {what} {value:?}"))
}

fn principal(a: &ExplainArgs) -> anyhow::Result<Principal> {
    if let Some(id) = &a.device {
        let attestation: AttestationStatus = from_json_str("attestation", &a.attestation)?;
        return Ok(Principal::device(
            DeviceAttributes {
                id: id.clone(),
                product: a.product.clone(),
                factory: a.factory.clone(),
                firmware: a.firmware.clone(),
                attestation,
                groups: a.groups.clone(),
            },
            a.client_id.clone().unwrap_or_else(|| id.clone()),
        ));
    }
    if let Some(id) = &a.admin {
        let role: AdminRole = from_json_str("role", a.role.as_deref().unwrap_or("audit"))?;
        return Ok(Principal::admin(id.clone(), role));
    }
    bail!("give --device ID or --admin ID")
}

fn operation(a: &ExplainArgs) -> anyhow::Result<Operation> {
    if let Some(l) = &a.connect {
        return Ok(Operation::Connect {
            listener: l.clone(),
        });
    }
    if let Some(h) = &a.http {
        let (method, path) = h
            .split_once(' ')
            .context("--http must be \"METHOD /path\"")?;
        return Ok(Operation::Http {
            method: method.to_owned(),
            path: path.trim().to_owned(),
        });
    }
    if let Some(t) = &a.publish {
        return Ok(Operation::Publish(TopicName::parse(t)?));
    }
    if let Some(f) = &a.subscribe {
        return Ok(Operation::Subscribe(TopicFilter::parse(f)?));
    }
    bail!("give one of --connect, --http, --publish, --subscribe")
}

pub(super) fn run(store: &Store, a: &ExplainArgs, json: bool) -> anyhow::Result<PolicyExit> {
    let (version, bundle) = match &a.bundle {
        Some(d) => (
            0,
            Bundle::compile(read_dir(d)?).context("bundle does not compile")?,
        ),
        None => store.active_bundle()?,
    };
    let who = principal(a)?;
    let op = operation(a)?;
    let decision = bundle.decide(&who, &op, version);
    if json {
        let mut v = decision_json(&decision);
        v["operation"] = op.to_string().into();
        print_json(&v)?;
    } else {
        let verdict = if decision.allowed { "ALLOW" } else { "DENY" };
        println!("{verdict} {op} (bundle version {version})");
        for r in &decision.reasons {
            println!("  {}", reason_text(r));
        }
    }
    Ok(if decision.allowed {
        PolicyExit::Ok
    } else {
        PolicyExit::Deny
    })
}
