//! Tongsuo 8.5.0's `openssl` (RFC 8998 TLS 1.3-SM, TLCP/NTLS; default SM2 ID 1234567812345678).

use super::{NotFound, Peer, check_version, find_program};
use crate::Tool;

/// Tongsuo 8.5.0 from `SMTRUST_TONGSUO` or `${SMTRUST_CACHE}/tongsuo-8.5.0/openssl`.
#[derive(Debug, Clone, Copy)]
pub struct Tongsuo;

impl Peer for Tongsuo {
    type Found = Tool;
    const NAME: &'static str = "Tongsuo 8.5.0";
    const SETUP: &'static str = "scripts/peers/build-tongsuo.sh";

    fn locate(&self) -> Result<Tool, NotFound> {
        let mut why = NotFound::default();
        let program = find_program(
            "SMTRUST_TONGSUO",
            Some("tongsuo-8.5.0/openssl"),
            None,
            &mut why,
        )
        .ok_or_else(|| why.clone())?;
        // Built with a compiled-in OPENSSLDIR that does not exist here; its config sits beside it.
        let cnf = program.with_file_name("openssl.cnf");
        let mut tool = Tool::new(&program);
        if cnf.is_file() {
            tool = tool.with_env("OPENSSL_CONF", cnf);
        }
        if check_version(&tool, &["version"], "Tongsuo 8.5.0", &mut why) {
            Ok(tool)
        } else {
            Err(why)
        }
    }
}
