//! Running a peer's command-line program and capturing what it did.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::Error;

/// How long one peer invocation may take before it is killed: a hung peer must fail the test, not stall CI.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A located peer program plus the environment it needs (Tongsuo's `OPENSSL_CONF`, for instance).
#[derive(Debug, Clone)]
pub struct Tool {
    program: PathBuf,
    env: Vec<(OsString, OsString)>,
    timeout: Duration,
}

/// What one run of a peer did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Output {
    /// The exit status.
    pub status: ExitStatus,
    /// Standard output, raw.
    pub stdout: Vec<u8>,
    /// Standard error, raw.
    pub stderr: Vec<u8>,
}

impl Output {
    /// Whether the program exited with code 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Standard output, lossily decoded.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error, lossily decoded.
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Standard output and standard error together (peers split their reports between the two).
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout_str(), self.stderr_str())
    }
}

impl Tool {
    /// A tool at `program`, run with no extra environment.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Adds an environment variable to every run.
    #[must_use]
    pub fn with_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the per-run time limit (default [`DEFAULT_TIMEOUT`]).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The program's path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// A `Command` for the program with the tool's environment, for callers that need full control.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs the program with `args` and empty stdin; any exit status is returned as an [`Output`].
    pub fn run<I, S>(&self, args: I) -> Result<Output, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_with_stdin(args, &[])
    }

    /// Runs the program with `args`, writing `stdin` to it and then closing it.
    pub fn run_with_stdin<I, S>(&self, args: I, stdin: &[u8]) -> Result<Output, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args);
        let child = self.spawn_piped(&mut cmd)?;
        collect(
            child,
            stdin.to_vec(),
            Duration::ZERO,
            self.timeout,
            &self.program,
        )
    }

    /// Has the peer generate an SM2 key into `key` (PKCS#8 PEM) and returns its public key (SPKI PEM).
    pub fn genpkey_sm2(&self, key: &Path) -> Result<Vec<u8>, Error> {
        let key = key.as_os_str();
        self.run_ok([
            OsStr::new("genpkey"),
            OsStr::new("-algorithm"),
            OsStr::new("EC"),
            OsStr::new("-pkeyopt"),
            OsStr::new("ec_paramgen_curve:SM2"),
            OsStr::new("-out"),
            key,
        ])?;
        Ok(self
            .run_ok([
                OsStr::new("pkey"),
                OsStr::new("-in"),
                key,
                OsStr::new("-pubout"),
            ])?
            .stdout)
    }

    /// Has the peer make a PKCS#10 CSR for `subject` (`/CN=…`), SM3 and SM2 with `key`, under `distid`
    /// (`-sigopt distid:…`, normally [`crate::GMT_DEFAULT_ID`]; empty: none, as OpenSSL does by default). Returns
    /// its DER.
    pub fn req_sm2(&self, key: &Path, subject: &str, distid: &str) -> Result<Vec<u8>, Error> {
        let sigopt = format!("distid:{distid}");
        let mut args = vec![
            OsStr::new("req"),
            OsStr::new("-new"),
            OsStr::new("-key"),
            key.as_os_str(),
            OsStr::new("-sm3"),
        ];
        if !distid.is_empty() {
            args.extend([OsStr::new("-sigopt"), OsStr::new(&sigopt)]);
        }
        args.extend([
            OsStr::new("-subj"),
            OsStr::new(subject),
            OsStr::new("-outform"),
            OsStr::new("DER"),
        ]);
        Ok(self.run_ok(args)?.stdout)
    }

    /// Like [`Tool::run`], but an unsuccessful exit is an [`Error::Failed`].
    pub fn run_ok<I, S>(&self, args: I) -> Result<Output, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.run(&args)?;
        if out.success() {
            return Ok(out);
        }
        Err(Error::Failed {
            program: self.program.clone(),
            args: args
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            code: out.status.code(),
            stderr: out.stderr_str(),
        })
    }

    pub(crate) fn spawn_piped(&self, cmd: &mut Command) -> Result<Child, Error> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().map_err(|source| Error::Spawn {
            program: self.program.clone(),
            source,
        })
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// Feeds `stdin`, keeps it open for `linger` (as `(echo ping; sleep 2) | s_client` does), closes it, and waits
/// for the exit, killing the child after `limit`. Output is read on threads so a chatty child cannot block.
pub(crate) fn collect(
    mut child: Child,
    stdin: Vec<u8>,
    linger: Duration,
    limit: Duration,
    program: &Path,
) -> Result<Output, Error> {
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let feeder = child.stdin.take().map(|mut pipe| {
        thread::spawn(move || {
            // A peer may exit without reading its input; a broken pipe is its business, not ours.
            let _ = pipe.write_all(&stdin);
            let _ = pipe.flush();
            thread::sleep(linger);
        })
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout {
                program: program.to_owned(),
                limit,
            });
        }
        thread::sleep(Duration::from_millis(10));
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let stdout = out.map(join_bytes).unwrap_or_default();
    let stderr = err.map(join_bytes).unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

fn drain<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

fn join_bytes(h: thread::JoinHandle<Vec<u8>>) -> Vec<u8> {
    h.join().unwrap_or_default()
}
