//! Where a batch's time goes: per-stage totals, reported with `--json` and in `report.json`.
//!
//! Worker stages (CSR verify, key generation, sign, key protection, file write) are CPU time summed over
//! the worker threads; the others are wall time on the thread that publishes and commits. Publishing and
//! committing chunk N overlap the workers' crypto of chunk N+1, so the stages add up to more than the wall
//! time on a multi-core machine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A stage of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Reading and parsing the manifest, planning, writing the plan (wall).
    Plan,
    /// CSR parse and signature check (workers).
    CsrVerify,
    /// SM2 key generation (workers).
    KeyGen,
    /// Certificate build and SM2 signature (workers).
    Sign,
    /// Encrypted PKCS#8 or SM2 envelope of a generated key (workers).
    Protect,
    /// Writing staged files (workers).
    FileWrite,
    /// `syncfs`, renames and directory fsyncs of a chunk (wall).
    Publish,
    /// The chunk's journal and CA-store transaction (wall).
    DbCommit,
    /// Report, JSON Lines and CSR-mode outputs at the end (wall).
    Finish,
}

const STAGES: [(Stage, &str, bool); 9] = [
    (Stage::Plan, "plan", false),
    (Stage::CsrVerify, "csr_verify", true),
    (Stage::KeyGen, "keygen", true),
    (Stage::Sign, "sign", true),
    (Stage::Protect, "protect_key", true),
    (Stage::FileWrite, "file_write", true),
    (Stage::Publish, "fsync_rename", false),
    (Stage::DbCommit, "db_commit", false),
    (Stage::Finish, "finish", false),
];

/// Nanoseconds per stage, shared by the workers.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    nanos: [AtomicU64; STAGES.len()],
}

impl Clock {
    /// Run `f`, adding its duration to `stage`.
    pub(crate) fn time<T>(&self, stage: Stage, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        self.add(stage, t);
        r
    }

    /// Add the time since `since` to `stage`.
    pub(crate) fn add(&self, stage: Stage, since: Instant) {
        let n = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if let Some(a) = STAGES
            .iter()
            .position(|(s, _, _)| *s == stage)
            .and_then(|i| self.nanos.get(i))
        {
            a.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The totals, per device over `devices`.
    pub(crate) fn report(&self, wall: std::time::Duration, devices: u64) -> Timings {
        let per = devices.max(1) as f64;
        let stages = STAGES
            .iter()
            .zip(&self.nanos)
            .map(|((_, name, workers), n)| {
                let ns = n.load(Ordering::Relaxed) as f64;
                StageTime {
                    stage: name,
                    workers: *workers,
                    total_ms: round(ns / 1e6),
                    per_device_us: round(ns / 1e3 / per),
                }
            })
            .collect();
        Timings {
            wall_ms: round(wall.as_secs_f64() * 1e3),
            devices,
            per_device_wall_us: round(wall.as_secs_f64() * 1e6 / per),
            stages,
        }
    }
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Where the time of this run went (not of earlier runs of a resumed batch).
#[derive(Clone, Debug, serde::Serialize)]
#[non_exhaustive]
pub struct Timings {
    /// Wall time of this run, from reading the manifest to the report.
    pub wall_ms: f64,
    /// Devices issued by this run.
    pub devices: u64,
    /// `wall_ms` per device, in µs.
    pub per_device_wall_us: f64,
    /// Every stage.
    pub stages: Vec<StageTime>,
}

/// One stage's total.
#[derive(Clone, Debug, serde::Serialize)]
#[non_exhaustive]
pub struct StageTime {
    /// Stage name.
    pub stage: &'static str,
    /// CPU time summed over worker threads (true) or wall time of the main thread (false).
    pub workers: bool,
    /// Total, ms.
    pub total_ms: f64,
    /// Total per device issued, µs.
    pub per_device_us: f64,
}
