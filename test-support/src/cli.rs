//! Driving a command-line binary under test (the `smtrust` binary): one data directory, one environment, and
//! the assertions every CLI test makes on what came back.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// A binary bound to a data directory (`--data-dir`) and an environment, run once per call.
///
/// `SMTRUST_DATA_DIR` is removed so a developer's own setting never leaks into a test.
#[derive(Debug, Clone)]
pub struct Cli {
    program: PathBuf,
    data_dir: PathBuf,
    env: Vec<(OsString, Option<OsString>)>,
}

impl Cli {
    /// `program` (usually `env!("CARGO_BIN_EXE_smtrust")`) with `--data-dir data_dir`.
    pub fn new(program: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            data_dir: data_dir.into(),
            env: vec![("SMTRUST_DATA_DIR".into(), None)],
        }
    }

    /// Sets an environment variable for every run.
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    /// Removes an environment variable for every run.
    #[must_use]
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env.push((key.into(), None));
        self
    }

    /// The data directory the runs use.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The command for `args`, to spawn or to adjust before running.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.program);
        c.arg("--data-dir").arg(&self.data_dir).args(args);
        for (k, v) in &self.env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }

    /// Runs `args` to completion.
    ///
    /// # Panics
    /// If the program cannot be started (a broken build, not a test outcome).
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Run {
        let out = self
            .command(args)
            .output()
            .unwrap_or_else(|e| fail(&format!("cannot run {}: {e}", self.program.display())));
        Run(out)
    }
}

impl Cli {
    /// Starts a long-running command (`serve --json`) and waits for the one JSON line it prints when it is
    /// ready (its addresses); returns the child, for the test to stop, and that line. Standard error is
    /// discarded.
    ///
    /// # Panics
    /// If the program cannot be started or exits before printing one JSON line.
    #[track_caller]
    pub fn spawn_ready(&self, args: &[&str]) -> (Child, serde_json::Value) {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| fail(&format!("cannot start {}: {e}", self.program.display())));
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        if !matches!(read, Some(Ok(n)) if n > 0) {
            let _ = child.kill();
            fail(&format!("{} printed no ready line", self.program.display()));
        }
        let ready = serde_json::from_str(&line)
            .unwrap_or_else(|e| fail(&format!("ready line is not JSON ({e}): {line}")));
        (child, ready)
    }
}

/// Stops a long-running command as Ctrl-C would (SIGINT) and waits up to `within` for it to exit. Its exit
/// status, or `None` when it did not exit in time (it is then killed, so no server outlives the test).
pub fn interrupt(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while start.elapsed() < within {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// What one run printed and how it exited (derefs to the [`Output`]).
#[derive(Debug)]
pub struct Run(pub Output);

impl std::ops::Deref for Run {
    type Target = Output;

    fn deref(&self) -> &Output {
        &self.0
    }
}

impl Run {
    /// Standard output, asserting exit code 0 (standard error in the failure message).
    #[track_caller]
    pub fn ok(&self) -> String {
        if !self.0.status.success() {
            fail(&format!(
                "expected success, got {}\nstdout: {}\nstderr: {}",
                self.0.status,
                self.stdout(),
                self.stderr()
            ));
        }
        self.stdout()
    }

    /// Standard output as one JSON value, asserting exit code 0.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        let text = self.ok();
        self.parse_json(&text)
    }

    /// Standard output as one JSON value whatever the exit code (refusals print JSON too).
    #[track_caller]
    pub fn json_any(&self) -> serde_json::Value {
        self.parse_json(&self.stdout())
    }

    /// The exit code (`-1` when a signal ended the program).
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }

    /// Whether the exit code was 0.
    pub fn success(&self) -> bool {
        self.0.status.success()
    }

    /// Standard output, lossily decoded.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    /// Standard error, lossily decoded.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    #[track_caller]
    fn parse_json(&self, text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap_or_else(|e| {
            fail(&format!(
                "stdout is not one JSON value ({e}): {text}\nstderr: {}",
                self.stderr()
            ))
        })
    }
}

/// A path as `&str` for an argument list.
///
/// # Panics
/// On a non-UTF-8 path (test directories are always UTF-8).
#[track_caller]
pub fn s(p: &Path) -> &str {
    p.to_str()
        .unwrap_or_else(|| fail(&format!("non-UTF-8 path {}", p.display())))
}

#[track_caller]
#[allow(clippy::panic, reason = "a test helper: the failure is the test's")]
fn fail(msg: &str) -> ! {
    panic!("{msg}")
}
