//! `smtrust ca keygen`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use smtrust_ca::DeviceId;
use smtrust_crypto::pkcs8::KdfPrf;

use super::CaContext;
use crate::cli::secret;

/// Generate a device key pair on the server and issue its certificate, for devices that cannot make their
/// own key. The key is returned once as encrypted PKCS#8 (PBES2, PBKDF2-HMAC-SHA256, SM4-CBC) under the
/// passphrase from --key-passphrase-file or SMTRUST_KEY_PASSPHRASE; smtrust keeps no copy.
///
/// EXAMPLES:
///   SMTRUST_KEY_PASSPHRASE=... smtrust ca keygen --device-id ctw-0000001234 --key-out dev.key --out dev.pem
///   smtrust ca keygen --device-id ctw-0000001234 --key-passphrase-file kp.txt --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct KeygenArgs {
    /// The device ID.
    #[arg(long)]
    device_id: String,
    /// Profile.
    #[arg(long, default_value = "device")]
    profile: String,
    /// File holding the passphrase that encrypts the key (else SMTRUST_KEY_PASSPHRASE).
    #[arg(long)]
    key_passphrase_file: Option<PathBuf>,
    /// Write the encrypted key here (else stdout, before the certificate).
    #[arg(long)]
    key_out: Option<PathBuf>,
    /// Write the certificate here (else stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(super) fn run(a: &KeygenArgs, ctx: &CaContext, json: bool) -> anyhow::Result<ExitCode> {
    let id = DeviceId::new(&a.device_id)?;
    let pass = match &a.key_passphrase_file {
        Some(f) => secret::passphrase(Some(f), "")?,
        None => match std::env::var("SMTRUST_KEY_PASSPHRASE") {
            Ok(p) if !p.is_empty() => zeroize::Zeroizing::new(p.into_bytes()),
            _ => anyhow::bail!(
                "the generated key is encrypted: pass --key-passphrase-file FILE or set SMTRUST_KEY_PASSPHRASE"
            ),
        },
    };
    let label = &ctx.ca.manifest.label;
    let out =
        ctx.rt.block_on(
            ctx.ca
                .service
                .keygen(label, &a.profile, id, pass, KdfPrf::HmacSha256),
        )?;
    if let Some(p) = &a.key_out {
        super::emit(Some(p), &out.encrypted_key_pem)?;
    }
    if let Some(p) = &a.out {
        super::emit(Some(p), &out.cert.to_pem())?;
    }
    if json {
        let mut v = super::issue::cert_json(&out.cert);
        if a.key_out.is_none() {
            v["encrypted_key"] = serde_json::json!(out.encrypted_key_pem.as_str());
        }
        println!("{v}");
    } else {
        if a.key_out.is_none() {
            print!("{}", out.encrypted_key_pem.as_str());
        }
        if a.out.is_none() {
            print!("{}", out.cert.to_pem());
        }
        eprintln!(
            "issued serial {} with a server-generated key",
            out.cert.serial
        );
    }
    Ok(ExitCode::SUCCESS)
}
