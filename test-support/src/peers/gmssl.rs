//! GmSSL 3.1.1's `gmssl` (TLS 1.3-SM, TLCP, certificates, CRLs; quirks in shared/notes/peers.md).

use super::{NotFound, Peer, check_version, find_program};
use crate::Tool;

/// GmSSL 3.1.1 from `SMTRUST_GMSSL` or `${SMTRUST_CACHE}/gmssl-3.1.1/gmssl`.
#[derive(Debug, Clone, Copy)]
pub struct Gmssl;

impl Peer for Gmssl {
    type Found = Tool;
    const NAME: &'static str = "GmSSL 3.1.1";
    const SETUP: &'static str = "scripts/peers/build-gmssl.sh";

    fn locate(&self) -> Result<Tool, NotFound> {
        let mut why = NotFound::default();
        let tool = find_program("SMTRUST_GMSSL", Some("gmssl-3.1.1/gmssl"), None, &mut why)
            .map(Tool::new)
            .ok_or_else(|| why.clone())?;
        if check_version(&tool, &["version"], "GmSSL 3.1.1", &mut why) {
            Ok(tool)
        } else {
            Err(why)
        }
    }
}
