//! The admin socket in process: a real Unix socket served by axum on tokio, called by the blocking client the
//! CLI uses (`cargo test -p smtrust-keystore --features admin --test admin`).

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use smtrust_keystore::admin::{self, AdminReply, AdminRequest};
use smtrust_keystore::{Argon2Params, Error, InitMethod, KeyPurpose, Keystore, Unlock};

const PASS: &[u8] = b"operator passphrase";

fn unsealed_store(dir: &Path) -> Arc<Keystore> {
    Keystore::init_dir(
        dir,
        InitMethod::Passphrase {
            passphrase: PASS,
            params: Argon2Params::new(1024, 1, 1).unwrap(),
        },
    )
    .unwrap();
    let ks = Keystore::open_dir(dir).unwrap();
    ks.unseal(Unlock::Passphrase(PASS)).unwrap();
    Arc::new(ks)
}

/// The blocking client, off the runtime's thread.
async fn call(socket: &Path, req: AdminRequest) -> Result<AdminReply, Error> {
    let socket: PathBuf = socket.to_owned();
    tokio::task::spawn_blocking(move || admin::request(&socket, req))
        .await
        .unwrap()
}

fn json(r: &AdminReply) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

#[tokio::test]
async fn seal_through_the_socket_wipes_the_running_keystore() {
    let data = tempfile::tempdir().unwrap();
    let ks = unsealed_store(&data.path().join("keystore"));
    let id = ks.generate(KeyPurpose::CaSigning, "issuing").unwrap();
    let handle = ks.signer_cert(&id).unwrap();
    let path = admin::socket_path(data.path());
    let server = admin::serve_unix(&path, Arc::clone(&ks)).await.unwrap();

    // Owner-only socket.
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // No private bind directory left behind.
    let left: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        left.iter().filter(|n| n.starts_with(".admin-sock")).count(),
        0,
        "{left:?}"
    );

    let st = json(&call(&path, AdminRequest::Status).await.unwrap());
    assert_eq!(st["sealed"], false);
    assert_eq!(st["keys"], 1);
    assert_eq!(st["method"]["kind"], "passphrase");
    use smtrust_crypto::sm2::Sm2Signer;
    assert!(handle.sign(b"tbs").is_ok());

    let sealed = json(&call(&path, AdminRequest::Seal).await.unwrap());
    assert_eq!(sealed["sealed"], true);
    assert_eq!(sealed["keys"], serde_json::Value::Null);
    // The server's own keystore object is sealed: handles it gave out stop signing.
    assert!(ks.status().unwrap().sealed);
    assert!(handle.sign(b"tbs").is_err());
    assert!(matches!(ks.signer_cert(&id), Err(Error::Sealed)));
    // Sealing again is harmless.
    assert_eq!(
        json(&call(&path, AdminRequest::Seal).await.unwrap())["sealed"],
        true
    );

    server.shutdown().await.unwrap();
    assert!(!path.exists(), "socket file removed at shutdown");
    // Nobody listening now: the client says so as an I/O error naming the socket.
    match call(&path, AdminRequest::Status).await {
        Err(Error::Io { path: p, .. }) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_live_socket_is_not_taken_over_and_a_stale_one_is_replaced() {
    let data = tempfile::tempdir().unwrap();
    let ks = unsealed_store(&data.path().join("keystore"));
    let path = admin::socket_path(data.path());

    // A stale socket file (its listener is gone) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let first = admin::serve_unix(&path, Arc::clone(&ks)).await.unwrap();
    assert_eq!(
        json(&call(&path, AdminRequest::Status).await.unwrap())["sealed"],
        false
    );

    // A second server on the same data dir is refused while the first answers.
    match admin::serve_unix(&path, Arc::clone(&ks)).await {
        Err(Error::Io { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        json(&call(&path, AdminRequest::Status).await.unwrap())["generation"],
        1
    );
    first.shutdown().await.unwrap();

    // A regular file in the way is never removed.
    std::fs::write(&path, b"not a socket").unwrap();
    match admin::serve_unix(&path, ks).await {
        Err(Error::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let ks = unsealed_store(&data.path().join("keystore"));
    let path = admin::socket_path(data.path());
    let server = admin::serve_unix(&path, Arc::clone(&ks)).await.unwrap();
    let raw = |req: &'static str| {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
            s.write_all(req.as_bytes()).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
    };
    // GET on the seal route does not seal.
    let r = raw("GET /keystore/seal HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(r.starts_with("HTTP/1.1 405"), "{r}");
    let r = raw("POST /keystore/unseal HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    assert!(!ks.status().unwrap().sealed);
    server.shutdown().await.unwrap();
}
