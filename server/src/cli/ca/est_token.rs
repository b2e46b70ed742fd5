//! `smtrust ca est-token`: mint a one-time EST enrollment token for a device. Through the running server's
//! admin socket when one answers, else directly in the data directory's database (no server, no keystore
//! passphrase: the token is a row with its SM3 hash, nothing is signed).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use crate::admin_socket::{EST_TOKEN_PATH, MAX_TTL, TokenRequest};

/// Mint a one-time EST enrollment token bound to a device ID (and issuing CA). The token is printed once;
/// only its SM3 hash is stored. Give it to the device out of band (`smtrust agent enroll`, from
/// `--token-file` or `SMTRUST_EST_TOKEN`).
///
/// With `smtrust serve` running on the data directory the token is minted through its admin socket
/// (`<data-dir>/admin.sock`, owner only); otherwise directly in `<data-dir>/smtrust.db`.
///
/// EXAMPLES:
///   smtrust ca est-token --device-id ctw-0000001234
///   smtrust --json ca est-token --device-id ctw-0000001234 --ttl 2h
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct EstTokenArgs {
    /// The device ID the token is bound to.
    #[arg(long)]
    device_id: String,
    /// Issuing-CA label (`/.well-known/est/<label>/`); default: the data directory's issuing CA.
    #[arg(long)]
    issuer: Option<String>,
    /// Lifetime: seconds, or a number with s, m, h or d (at most 90d).
    #[arg(long, default_value = "24h", value_parser = parse_ttl)]
    ttl: Duration,
}

/// `24h`, `30m`, `7d`, `90s`, `3600`.
fn parse_ttl(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() || d > MAX_TTL {
        return Err(format!(
            "{:?}: between 1s and {}d",
            s.trim(),
            MAX_TTL.as_secs() / 86_400
        ));
    }
    Ok(d)
}

/// A duration flag: `3600`, `90s`, `30m`, `24h`, `7d` (also `smtrust serve --est-reenroll-grace`).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (s.get(..i).unwrap_or_default(), c),
        _ => (s, 's'),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 3600, 90s, 30m, 24h, 7d"))?;
    let secs = match unit {
        's' => Some(n),
        'm' => n.checked_mul(60),
        'h' => n.checked_mul(3600),
        'd' => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| format!("{s:?}: unit must be s, m, h or d"))?;
    Ok(Duration::from_secs(secs))
}

/// What was minted.
struct Minted {
    device_id: String,
    issuer: String,
    token: zeroize::Zeroizing<String>,
    expires_at: u64,
    via: &'static str,
}

pub(crate) fn run(a: &EstTokenArgs, data_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let socket = smtrust_keystore::admin::socket_path(data_dir);
    let m = match via_socket(&socket, a)? {
        Some(m) => m,
        None => offline(a, data_dir)?,
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "device_id": m.device_id, "issuer": m.issuer, "token": m.token.as_str(),
                "expires_at": m.expires_at, "via": m.via,
            })
        );
    } else {
        eprintln!(
            "EST enrollment token for {} at {} (expires {} Unix seconds; minted {}). It is shown once:",
            m.device_id, m.issuer, m.expires_at, m.via
        );
        println!("{}", m.token.as_str());
    }
    Ok(ExitCode::SUCCESS)
}

/// Mint through the running server; `None` when no server answers on the socket.
fn via_socket(socket: &Path, a: &EstTokenArgs) -> anyhow::Result<Option<Minted>> {
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("admin socket {}", socket.display())),
    };
    let ctx = || format!("admin socket {}", socket.display());
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .with_context(ctx)?;
    let body = serde_json::to_vec(&TokenRequest {
        device_id: a.device_id.clone(),
        issuer: a.issuer.clone(),
        ttl_secs: a.ttl.as_secs(),
    })?;
    let head = format!(
        "POST {EST_TOKEN_PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).with_context(ctx)?;
    stream.write_all(&body).with_context(ctx)?;
    let mut raw = zeroize::Zeroizing::new(Vec::new());
    stream
        .take(64 * 1024)
        .read_to_end(&mut raw)
        .with_context(ctx)?;
    let (status, body) = split_reply(&raw).with_context(ctx)?;
    let v: serde_json::Value =
        serde_json::from_slice(body).with_context(|| format!("{}: reply body", ctx()))?;
    if status != 200 {
        bail!(
            "the server refused ({status}): {}",
            v["error"].as_str().unwrap_or("no reason given")
        );
    }
    let text = |k: &str| -> anyhow::Result<String> {
        Ok(v[k]
            .as_str()
            .with_context(|| format!("reply lacks {k}"))?
            .to_owned())
    };
    Ok(Some(Minted {
        device_id: text("device_id")?,
        issuer: text("issuer")?,
        token: zeroize::Zeroizing::new(text("token")?),
        expires_at: v["expires_at"].as_u64().unwrap_or(0),
        via: "through the running server",
    }))
}

/// Status code and body of a `Connection: close` HTTP/1.1 reply with a Content-Length body.
fn split_reply(raw: &[u8]) -> anyhow::Result<(u16, &[u8])> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("truncated reply")?;
    let head = std::str::from_utf8(raw.get(..end).unwrap_or_default()).context("reply head")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("reply status line")?;
    if head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:"))
    {
        bail!("unexpected chunked reply");
    }
    Ok((status, raw.get(end + 4..).unwrap_or_default()))
}

fn offline(a: &EstTokenArgs, data_dir: &Path) -> anyhow::Result<Minted> {
    let device = smtrust_ca::DeviceId::new(&a.device_id)?;
    let rt = super::runtime()?;
    let (issuer, tok) = rt
        .block_on(smtrust_ca::est::mint_in_data_dir(
            data_dir,
            a.issuer.as_deref(),
            &device,
            a.ttl,
            super::now(),
        ))
        .with_context(|| format!("minting in {}", data_dir.display()))?;
    let expires_at = tok
        .expires_at()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(Minted {
        device_id: device.as_str().to_owned(),
        issuer,
        token: zeroize::Zeroizing::new(tok.as_str().to_owned()),
        expires_at,
        via: "offline in the data directory's database",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_forms() {
        assert_eq!(parse_ttl("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("91d").is_err());
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
