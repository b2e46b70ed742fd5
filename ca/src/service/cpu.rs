//! CPU-bound work (CSR verification, certificate signing) on blocking threads, at most one job per core.
//!
//! Without the bound, N concurrent `issue` calls start N blocking threads that all compete for the cores with
//! the store's connection thread and the runtime's workers; the store then gets a 1/N share and becomes the
//! bottleneck. Work is cut into several chunks per core so a core that is busy elsewhere (a shared machine)
//! does not leave the others idle at the end of a batch.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::{Error, StoreError};

/// Chunks per core a batch is cut into.
const CHUNKS_PER_CORE: usize = 4;
/// Fewest items per chunk (a chunk hop costs a few microseconds; one signature ~100 µs).
const MIN_CHUNK: usize = 8;

/// The CPU-bound job runner of one service.
#[derive(Debug)]
pub(super) struct Cpu {
    permits: Arc<Semaphore>,
    cores: usize,
}

impl Cpu {
    pub(super) fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            permits: Arc::new(Semaphore::new(cores)),
            cores,
        }
    }

    /// Map `f` over `items` on blocking threads, preserving order.
    pub(super) async fn map<T, U, F>(&self, items: Vec<T>, f: F) -> Result<Vec<U>, Error>
    where
        T: Send + 'static,
        U: Send + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        let per = (items.len() / (self.cores * CHUNKS_PER_CORE)).max(MIN_CHUNK);
        let f = Arc::new(f);
        let mut jobs = Vec::with_capacity(items.len().div_ceil(per));
        let mut it = items.into_iter();
        loop {
            let chunk: Vec<T> = it.by_ref().take(per).collect();
            if chunk.is_empty() {
                break;
            }
            let f = f.clone();
            let permits = self.permits.clone();
            jobs.push(tokio::spawn(async move {
                let _permit = permits
                    .acquire_owned()
                    .await
                    .map_err(|_| StoreError::Corrupt("CPU pool closed"))?;
                tokio::task::spawn_blocking(move || {
                    chunk.into_iter().map(|x| f(x)).collect::<Vec<U>>()
                })
                .await
                .map_err(|_| Error::from(StoreError::Corrupt("worker panicked")))
            }));
        }
        let mut out = Vec::new();
        for j in jobs {
            out.extend(
                j.await
                    .map_err(|_| StoreError::Corrupt("worker panicked"))??,
            );
        }
        Ok(out)
    }
}
