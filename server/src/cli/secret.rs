//! Secrets for non-interactive and interactive runs: never a flag value. A file (`--passphrase-file`), then
//! the environment (`SMTRUST_PASSPHRASE`), then a prompt on a terminal.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use zeroize::Zeroizing;

/// Read a passphrase; the trailing newline of a file is dropped.
pub(crate) fn passphrase(file: Option<&Path>, prompt: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if let Some(path) = file {
        let mut bytes = Zeroizing::new(
            std::fs::read(path)
                .with_context(|| format!("reading passphrase file {}", path.display()))?,
        );
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        anyhow::ensure!(
            !bytes.is_empty(),
            "passphrase file {} is empty",
            path.display()
        );
        return Ok(bytes);
    }
    if let Ok(p) = std::env::var("SMTRUST_PASSPHRASE") {
        anyhow::ensure!(!p.is_empty(), "SMTRUST_PASSPHRASE is set but empty");
        return Ok(Zeroizing::new(p.into_bytes()));
    }
    if std::io::stdin().is_terminal() {
        let p = Zeroizing::new(
            rpassword::prompt_password(prompt).context("reading passphrase from the terminal")?,
        );
        anyhow::ensure!(!p.is_empty(), "empty passphrase");
        return Ok(Zeroizing::new(p.as_bytes().to_vec()));
    }
    anyhow::bail!("no passphrase: pass --passphrase-file FILE or set SMTRUST_PASSPHRASE")
}

/// Read unseal shares: one per line from `file`, or typed at a terminal (an empty line ends).
pub(crate) fn shares(file: Option<&Path>) -> anyhow::Result<Vec<String>> {
    let text = match file {
        Some(path) => Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading share file {}", path.display()))?,
        ),
        None if std::io::stdin().is_terminal() => {
            eprintln!("enter shares, one per line; an empty line ends:");
            let mut all = Zeroizing::new(String::new());
            loop {
                let line = Zeroizing::new(
                    rpassword::prompt_password("share: ").context("reading a share")?,
                );
                if line.trim().is_empty() {
                    break;
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        }
        None => anyhow::bail!("no shares: pass --share-file FILE (one share per line)"),
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}
