//! Finding the independent peers: an environment variable first, then `${SMTRUST_CACHE}`, then `PATH`.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

mod gmssl;
mod mosquitto;
mod openssl;
mod postgres;
mod pygmssl;
mod tongsuo;

pub use gmssl::Gmssl;
pub use mosquitto::{Mosquitto, MqttBroker};
pub use openssl::Openssl;
pub use postgres::{Postgres, PostgresUrl};
pub use pygmssl::{PyGmssl, Python};
pub use tongsuo::Tongsuo;

/// One independent implementation the tests check against.
pub trait Peer {
    /// What [`require`] hands back: a runnable tool or an address.
    type Found;
    /// Human name, used in skip and failure messages.
    const NAME: &'static str;
    /// The setup step that provides it.
    const SETUP: &'static str;
    /// Looks for the peer; `Err` lists every place that was tried and why it did not do.
    fn locate(&self) -> Result<Self::Found, NotFound>;
}

/// Where a peer was looked for, and why each place did not do.
#[derive(Debug, Clone, Default)]
pub struct NotFound {
    tried: Vec<String>,
}

impl NotFound {
    pub(crate) fn tried(&mut self, what: impl Into<String>) {
        self.tried.push(what.into());
    }
}

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.tried.join("; "))
    }
}

/// Locates `peer`. When it is missing: under `CI=true`, panics naming the setup step (CI must not skip
/// silently); otherwise prints `skipping: <peer> not found (run scripts/test)` to stderr and returns `None`,
/// so the test returns early:
///
/// ```no_run
/// # use smtrust_test_support::{require, Tongsuo};
/// let Some(tongsuo) = require(Tongsuo) else { return };
/// ```
#[allow(clippy::panic, reason = "failing the test under CI=true is the point")]
pub fn require<P: Peer>(peer: P) -> Option<P::Found> {
    match peer.locate() {
        Ok(found) => Some(found),
        Err(why) if is_ci() => panic!(
            "{} not found and CI=true forbids skipping; run scripts/test (step: {}). Tried: {why}",
            P::NAME,
            P::SETUP
        ),
        Err(why) => {
            eprintln!(
                "skipping: {} not found (run scripts/test). Tried: {why}",
                P::NAME
            );
            None
        }
    }
}

/// Whether we run under CI (`CI=true` or `CI=1`), where missing peers fail instead of skipping.
pub fn is_ci() -> bool {
    env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The peer cache: `SMTRUST_CACHE`, else `${XDG_CACHE_HOME:-$HOME/.cache}/smtrust` (as scripts/peers/common.sh).
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = env::var_os("SMTRUST_CACHE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let base = match env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(xdg) => PathBuf::from(xdg),
        None => PathBuf::from(env::var_os("HOME")?).join(".cache"),
    };
    Some(base.join("smtrust"))
}

/// The first executable among: `$var`, `${SMTRUST_CACHE}/<cached>`, then `<on_path>` in `PATH`.
pub(crate) fn find_program(
    var: &str,
    cached: Option<&str>,
    on_path: Option<&str>,
    why: &mut NotFound,
) -> Option<PathBuf> {
    match env::var_os(var).filter(|v| !v.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            if is_executable(&p) {
                return Some(p);
            }
            why.tried(format!("${var}={} is not an executable file", p.display()));
        }
        None => why.tried(format!("${var} unset")),
    }
    if let Some(rel) = cached {
        match cache_dir() {
            Some(dir) => {
                let p = dir.join(rel);
                if is_executable(&p) {
                    return Some(p);
                }
                why.tried(format!("{} missing", p.display()));
            }
            None => why.tried("no cache dir (HOME unset)"),
        }
    }
    if let Some(name) = on_path {
        match which(name) {
            Some(p) => return Some(p),
            None => why.tried(format!("{name} not in PATH")),
        }
    }
    None
}

/// The first executable called `name` in `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let paths = env::var_os("PATH")?;
    env::split_paths(&paths)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// Checks a located tool's `version` output contains `expect`, recording a mismatch.
pub(crate) fn check_version(
    tool: &crate::Tool,
    args: &[&str],
    expect: &str,
    why: &mut NotFound,
) -> bool {
    match tool.run(args) {
        Ok(out) if out.combined().contains(expect) => true,
        Ok(out) => {
            let mut msg = format!("{} {} printed ", tool.program().display(), args.join(" "));
            let _ = write!(msg, "{:?}, expected {expect:?}", out.combined().trim());
            why.tried(msg);
            false
        }
        Err(e) => {
            why.tried(e.to_string());
            false
        }
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
