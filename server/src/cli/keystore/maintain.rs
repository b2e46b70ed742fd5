//! `smtrust keystore unseal | status | list | rotate-master`.

use std::path::Path;

use smtrust_keystore::Keystore;

use super::UnlockArgs;

pub(super) fn status(data_dir: &Path, json: bool) -> anyhow::Result<()> {
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
