//! A device proving what it runs, as a device maker would write it: measure the boot stage and the firmware
//! image, attest over TLS 1.3-SM with the enrolled identity, and act on the signed result.
//!
//! ```text
//! cargo run -p smtrust-agent --example attest -- \
//!     /var/lib/smtrust est.example.com:8443 est.example.com /etc/smtrust/root.pem
//! ```
//! The agent directory must hold an enrolled identity (see the `enroll` example). The measurement list is
//! `attest.json` in that directory; this example writes one on first run.
#![allow(clippy::print_stdout)]

use std::time::SystemTime;

use smtrust_agent::attest::AttestResultView;
use smtrust_agent::{Agent, AttestConfig, EstServer, MeasurementSpec};
use smtrust_attest::{MeasurementKind, Status};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, addr, name, root_pem] = args.as_slice() else {
        eprintln!("usage: attest DIR HOST:PORT SERVER_NAME ROOT.pem");
        std::process::exit(2);
    };
    let roots: Vec<Vec<u8>> = smtrust_crypto::pem::blocks(&std::fs::read(root_pem)?)?
        .into_iter()
        .map(|(_, der)| der.to_vec())
        .collect();
    let server = EstServer::new(addr, name, roots)?;
    let agent = Agent::open(dir)?;

    let cfg = match agent.attest_config() {
        Ok(c) => c,
        Err(_) => {
            // What this product measures; the names match the reference values the operator registered.
            let mut c = AttestConfig::new("ctw-sensor-3", "1.4.2");
            c.measurements = vec![
                MeasurementSpec::new("bl2", MeasurementKind::BootStage, "/boot/bl2.bin"),
                MeasurementSpec::new("firmware", MeasurementKind::Firmware, "/firmware/app.bin"),
            ];
            agent.set_attest_config(&c)?;
            c
        }
    };
    let out = agent.attest(&server, &cfg, now()).await?;
    println!("{}", serde_json::to_string(&AttestResultView(&out.result))?);
    if out.result.status != Status::Affirming {
        // A real device would stop offering its service, report, or wait for an update here.
        eprintln!("not affirming: {:?}", out.result.reasons);
        std::process::exit(2);
    }
    Ok(())
}

#[allow(clippy::disallowed_methods)] // the device's main is the edge that reads the clock
fn now() -> SystemTime {
    SystemTime::now()
}
