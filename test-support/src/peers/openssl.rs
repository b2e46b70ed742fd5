//! The system OpenSSL 3 CLI (empty default SM2 ID: pass `-sigopt`/`-vfyopt distid:1234567812345678`).

use super::{NotFound, Peer, check_version, find_program};
use crate::Tool;

/// OpenSSL 3 from `SMTRUST_OPENSSL` or `PATH`.
#[derive(Debug, Clone, Copy)]
pub struct Openssl;

impl Peer for Openssl {
    type Found = Tool;
    const NAME: &'static str = "OpenSSL 3 CLI";
    const SETUP: &'static str = "install Debian openssl";

    fn locate(&self) -> Result<Tool, NotFound> {
        let mut why = NotFound::default();
        let tool = find_program("SMTRUST_OPENSSL", None, Some("openssl"), &mut why)
            .map(Tool::new)
            .ok_or_else(|| why.clone())?;
        if check_version(&tool, &["version"], "OpenSSL 3.", &mut why) {
            Ok(tool)
        } else {
            Err(why)
        }
    }
}
