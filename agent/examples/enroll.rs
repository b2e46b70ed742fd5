//! A device's first boot, as a device maker would write it: make a key, enroll with the token the factory
//! provisioned, then keep the certificate fresh.
//!
//! ```text
//! cargo run -p smtrust-agent --example enroll -- \
//!     /var/lib/smtrust ctw-0000001234 est.example.com:8443 est.example.com /etc/smtrust/root.pem
//! # the token comes from the environment (never a command-line argument):
//! SMTRUST_EST_TOKEN=… cargo run …
//! ```
#![allow(clippy::print_stdout)]

use std::time::SystemTime;

use smtrust_agent::{Agent, EstServer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, device_id, addr, name, root_pem] = args.as_slice() else {
        eprintln!(
            "usage: enroll DIR DEVICE_ID HOST:PORT SERVER_NAME ROOT.pem  (token in SMTRUST_EST_TOKEN)"
        );
        std::process::exit(2);
    };
    // The root that signs the EST server's certificate, installed at manufacture.
    let roots: Vec<Vec<u8>> = smtrust_crypto::pem::blocks(&std::fs::read(root_pem)?)?
        .into_iter()
        .map(|(_, der)| der.to_vec())
        .collect();
    let server = EstServer::new(addr, name, roots)?;
    let agent = Agent::open(dir)?;

    let status = agent.status()?;
    if status.certificate.is_none() {
        // First boot: enroll with the one-time token (a bootstrap certificate works the same way with
        // `enroll_with_bootstrap`).
        let token = std::env::var("SMTRUST_EST_TOKEN")?;
        let st = agent
            .enroll_with_token(&server, device_id, token.trim())
            .await?;
        println!("enrolled: {:?}", st.certificate);
    } else if let Some(st) = agent.renew_if_due(&server, now()).await? {
        println!("renewed: {:?}", st.certificate);
    }
    // A long-running device would now call `agent.run_renewal(&server, shutdown)` in a task, and use
    // `agent.credentials()` to connect to its gateway over TLS 1.3-SM.
    Ok(())
}

#[allow(clippy::disallowed_methods)] // the device's main loop reads the clock
fn now() -> SystemTime {
    SystemTime::now()
}
