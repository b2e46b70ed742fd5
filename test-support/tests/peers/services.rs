use std::time::Duration;

use smtrust_test_support::{Mosquitto, NotFound, Peer, Postgres, free_port, is_ci, require};

#[test]
fn free_port_can_be_bound() {
    let port = free_port().expect("free port");
    assert_ne!(port, 0);
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
}

struct Absent;
impl Peer for Absent {
    type Found = ();
    const NAME: &'static str = "absent peer";
    const SETUP: &'static str = "nothing";
    fn locate(&self) -> Result<(), NotFound> {
        Err(NotFound::default())
    }
}

/// A missing peer is `None` locally and a panic naming the setup step under CI=true.
#[test]
fn require_of_missing_peer_follows_ci() {
    let got = std::panic::catch_unwind(|| require(Absent));
    match got {
        Ok(found) => {
            assert!(!is_ci(), "CI=true must not skip");
            assert!(found.is_none());
        }
        Err(payload) => {
            assert!(is_ci(), "panicked outside CI");
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default();
            assert!(
                msg.contains("absent peer") && msg.contains("nothing"),
                "{msg}"
            );
        }
    }
}

/// A message published through the broker reaches a subscriber.
#[test]
fn mosquitto_delivers_a_message() {
    let Some(broker) = require(Mosquitto) else {
        return;
    };
    let (Some(publ), Some(sub)) = (broker.publisher.clone(), broker.subscriber.clone()) else {
        assert!(!is_ci(), "mosquitto-clients missing under CI");
        eprintln!("skipping: mosquitto_pub/mosquitto_sub not in PATH (run scripts/test)");
        return;
    };
    let (host, port) = (broker.addr.ip().to_string(), broker.addr.port().to_string());
    let topic = format!("smtrust/test/{}", std::process::id());
    let mut cmd = sub.command();
    cmd.args([
        "-h", &host, "-p", &port, "-t", &topic, "-C", "1", "-W", "10",
    ]);
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub starts");
    // Publish until the subscriber (which may still be connecting) has received one message.
    let mut delivered = None;
    let mut child = Some(child);
    for _ in 0..50 {
        publ.run_ok(["-h", &host, "-p", &port, "-t", &topic, "-m", "hello"])
            .expect("publish");
        std::thread::sleep(Duration::from_millis(100));
        if let Some(c) = child.as_mut()
            && c.try_wait().expect("wait").is_some()
        {
            delivered = child.take().map(|c| c.wait_with_output().expect("output"));
            break;
        }
    }
    let out = delivered.expect("subscriber received within 5 s");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");
}

/// The exported URL reaches a live server (through Debian's `psql`).
#[test]
fn postgres_answers_a_query() {
    let Some(url) = require(Postgres) else { return };
    let out = std::process::Command::new("psql")
        .args([url.0.as_str(), "-tAc", "SELECT 6 * 7"])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
}
