//! Progress lines while the demo runs, and the closing table (or one JSON object with `--json`).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use serde::Serialize;

/// One finished phase.
#[derive(Debug, Serialize)]
pub(crate) struct Phase {
    pub(crate) name: String,
    pub(crate) count: usize,
    pub(crate) seconds: f64,
    pub(crate) ok: bool,
    /// What the phase showed, in one line.
    pub(crate) detail: String,
}

/// The demo's running record.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) phases: Vec<Phase>,
    /// Figures that matter (`name → value`), e.g. issuance per second.
    pub(crate) figures: Vec<(String, f64)>,
    /// Milliseconds from revocation to the device's session being cut.
    pub(crate) revocation_cut_ms: Option<f64>,
    /// With `--keep-running`: where the service, the gateway and the devices' identities are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) endpoints: Option<serde_json::Value>,
    #[serde(skip)]
    json: bool,
}

impl Report {
    pub(crate) fn new(json: bool) -> Self {
        Self {
            phases: Vec::new(),
            figures: Vec::new(),
            revocation_cut_ms: None,
            endpoints: None,
            json,
        }
    }

    /// Announce a phase (a progress line on a terminal); returns its start time for [`Report::done`].
    pub(crate) fn begin(&self, name: &str) -> Instant {
        if !self.json && std::io::stderr().is_terminal() {
            eprint!("  {name:<30} …");
            let _ = std::io::stderr().flush();
        }
        Instant::now()
    }

    /// Record a finished phase.
    pub(crate) fn done(
        &mut self,
        name: &str,
        started: Instant,
        count: usize,
        ok: bool,
        detail: String,
    ) {
        let seconds = started.elapsed().as_secs_f64();
        if !self.json {
            eprintln!(
                "\r  {name:<30} {} {count:>7} in {seconds:>7.3} s  {detail}",
                mark(ok)
            );
        }
        self.phases.push(Phase {
            name: name.to_string(),
            count,
            seconds,
            ok,
            detail,
        });
    }

    pub(crate) fn figure(&mut self, name: &str, value: f64) {
        self.figures.push((name.to_string(), value));
    }

    pub(crate) fn finish(self) -> anyhow::Result<ExitCode> {
        let all_ok = self.phases.iter().all(|p| p.ok);
        if self.json && self.endpoints.is_some() {
            // One line, so a program can read it while the service keeps running.
            println!("{}", serde_json::to_string(&self)?);
        } else if self.json {
            println!("{}", serde_json::to_string_pretty(&self)?);
        } else {
            println!();
            println!("{:<30} {:>8} {:>10}  ok", "phase", "count", "seconds");
            for p in &self.phases {
                println!(
                    "{:<30} {:>8} {:>10.3}  {}",
                    p.name,
                    p.count,
                    p.seconds,
                    mark(p.ok)
                );
            }
            println!();
            for (name, v) in &self.figures {
                println!("{name:<40} {v:>12.1}");
            }
            match self.revocation_cut_ms {
                Some(ms) => println!("{:<40} {ms:>12.1}", "revocation-to-cut latency (ms)"),
                None => println!(
                    "{:<40} {:>12}",
                    "revocation-to-cut latency (ms)", "not measured"
                ),
            }
        }
        Ok(if all_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }
}

fn mark(ok: bool) -> &'static str {
    if ok { "ok" } else { "FAILED" }
}
