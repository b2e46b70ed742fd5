//! Ports and scratch directories.

use std::net::{Ipv4Addr, TcpListener};

use crate::Error;

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it; another process could still take it
/// before the caller binds, so bind promptly).
pub fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// A fresh directory removed on drop, for peer input and output files.
pub fn temp_dir() -> Result<tempfile::TempDir, Error> {
    Ok(tempfile::Builder::new().prefix("smtrust-test-").tempdir()?)
}
