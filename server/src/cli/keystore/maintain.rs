//! `smtrust keystore unseal | status | list | rotate-master | seal`.

use std::path::Path;

use smtrust_keystore::Keystore;
use smtrust_keystore::admin::{self, AdminRequest};

use super::UnlockArgs;

/// Ask the running server, if its admin socket answers; `None` when no server listens there.
fn ask_server(data_dir: &Path, req: AdminRequest) -> anyhow::Result<Option<serde_json::Value>> {
    let socket = admin::socket_path(data_dir);
    let reply = match admin::request(&socket, req) {
        Ok(r) => r,
        Err(smtrust_keystore::Error::Io { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    anyhow::ensure!(
        reply.status == 200,
        "server at {} answered {}: {}",
        socket.display(),
        reply.status,
        reply.body
    );
    Ok(Some(serde_json::from_str(&reply.body)?))
}

fn print_server_status(data_dir: &Path, st: &serde_json::Value, json: bool) {
    if json {
        println!("{st}");
    } else {
        println!("server      {}", admin::socket_path(data_dir).display());
        println!("sealed      {}", st["sealed"]);
        println!("generation  {}", st["generation"]);
        println!(
            "unseal by   {}",
            st["method"]["kind"].as_str().unwrap_or("?")
        );
    }
}

/// `smtrust keystore seal`: only meaningful for a running server.
pub(super) fn seal(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let Some(st) = ask_server(data_dir, AdminRequest::Seal)? else {
        anyhow::bail!(
            "no running server answers on {} (`seal` wipes a running server's master; this CLI never keeps one)",
            admin::socket_path(data_dir).display()
        );
    };
    anyhow::ensure!(st["sealed"] == true, "server did not report sealed: {st}");
    print_server_status(data_dir, &st, json);
    Ok(())
}

pub(super) fn status(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    if let Some(st) = ask_server(data_dir, AdminRequest::Status)? {
        print_server_status(data_dir, &st, json);
        return Ok(());
    }
    let dir = super::keystore_dir(data_dir);
    let ks = Keystore::open_dir(&dir).map_err(|e| {
        anyhow::anyhow!(
            "opening keystore {}: {e} (create one with `smtrust keystore init`)",
            dir.display()
        )
    })?;
    let st = ks.status()?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "keystore": dir, "sealed": st.sealed, "generation": st.generation,
                "method": format!("{:?}", st.method), "keys": st.keys,
            })
        );
    } else {
        println!("keystore    {}", dir.display());
        println!("sealed      {}", st.sealed);
        println!("generation  {}", st.generation);
        println!("unseal by   {:?}", st.method);
    }
    Ok(())
}

pub(super) fn unseal(data_dir: &Path, args: &UnlockArgs, json: bool) -> anyhow::Result<()> {
    let ks = super::open_unsealed(data_dir, args)?;
    let keys = ks.list()?.len();
    ks.seal();
    if json {
        println!("{}", serde_json::json!({ "unsealed": true, "keys": keys }));
    } else {
        println!("unseal ok: {keys} keys readable");
    }
    Ok(())
}

pub(super) fn list(data_dir: &Path, args: &UnlockArgs, json: bool) -> anyhow::Result<()> {
    let ks = super::open_unsealed(data_dir, args)?;
    let keys = ks.list()?;
    ks.seal();
    if json {
        let rows: Vec<_> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "id": k.id.to_string(), "purpose": k.purpose.as_str(), "label": k.label,
                    "created": k.created, "sm3_fingerprint": hex::encode(k.public_key.sm3_fingerprint()),
                    "has_certificate": k.certificate.is_some(),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
    } else {
        println!("{:<34} {:<20} {:<12} label", "id", "purpose", "created");
        for k in &keys {
            println!(
                "{:<34} {:<20} {:<12} {}",
                k.id.to_string(),
                k.purpose.as_str(),
                k.created,
                k.label
            );
        }
    }
    Ok(())
}

pub(super) fn rotate(data_dir: &Path, args: &UnlockArgs, json: bool) -> anyhow::Result<()> {
    let ks = super::open_unsealed(data_dir, args)?;
    let generation = ks.rotate_master()?;
    ks.seal();
    if json {
        println!("{}", serde_json::json!({ "generation": generation }));
    } else {
        println!("master rotated: now generation {generation}");
    }
    Ok(())
}
