//! Group commit for SQLite: the writes of concurrent appraisals (challenge inserts, nonce consumption,
//! result upserts) go to one task that runs every queued write in one `BEGIN IMMEDIATE … COMMIT`, so one
//! WAL fsync covers the whole batch instead of one per write. Each caller gets its answer only after the
//! commit that made its write durable; if the commit fails, every write of the batch fails. Inside the
//! batch the writes run one after another on one connection, exactly as they would unbatched, so a nonce
//! is still consumed at most once (`UPDATE … WHERE used_at IS NULL`).

use std::sync::Arc;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use crate::Error;
use crate::challenge::{Challenge, Nonce, NonceOutcome};
use crate::ear::Status;
use crate::service::StoredResult;

/// Most writes in one transaction (bounds how long readers wait for the connection).
const MAX_BATCH: usize = 256;

pub(super) enum Job {
    Insert(Challenge, oneshot::Sender<Result<(), Error>>),
    Consume(Nonce, i64, oneshot::Sender<Result<NonceOutcome, Error>>),
    Put(
        Box<StoredResult>,
        oneshot::Sender<Result<Option<Status>, Error>>,
    ),
}

/// An answer computed inside the transaction, sent once it committed.
enum Answer {
    Insert(oneshot::Sender<Result<(), Error>>, Result<(), Error>),
    Consume(
        oneshot::Sender<Result<NonceOutcome, Error>>,
        Result<NonceOutcome, Error>,
    ),
    Put(
        oneshot::Sender<Result<Option<Status>, Error>>,
        Result<Option<Status>, Error>,
    ),
}

impl Answer {
    fn send(self, committed: Result<(), &Arc<sqlx::Error>>) {
        // A caller that went away does not need its answer.
        let fail = |e: &Arc<sqlx::Error>| Error::BatchCommit(Arc::clone(e));
        match self {
            Answer::Insert(tx, r) => drop(tx.send(committed.map_err(fail).and(r))),
            Answer::Consume(tx, r) => drop(tx.send(committed.map_err(fail).and(r))),
            Answer::Put(tx, r) => drop(tx.send(committed.map_err(fail).and(r))),
        }
    }
}

/// The sending side; the task ends when every clone is dropped.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    pub(super) fn spawn(pool: AnyPool) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, rx));
        Self { jobs }
    }

    pub(super) async fn submit<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Job,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.jobs.send(job(tx)).map_err(|_| Error::WriterStopped)?;
        rx.await.map_err(|_| Error::WriterStopped)?
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let answers = commit(&pool, std::mem::take(&mut batch)).await;
        match answers {
            Ok((answers, committed)) => {
                let committed = committed.map_err(Arc::new);
                for a in answers {
                    a.send(committed.as_ref().map(|_| ()));
                }
            }
            Err((senders, e)) => {
                let e = Arc::new(e);
                for a in senders {
                    a.send(Err(&e));
                }
            }
        }
    }
}

type Committed = (Vec<Answer>, Result<(), sqlx::Error>);

/// Runs the batch in one transaction. `Err` when it could not even begin (every job fails).
async fn commit(pool: &AnyPool, batch: Vec<Job>) -> Result<Committed, (Vec<Answer>, sqlx::Error)> {
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => return Err((batch.into_iter().map(unanswered).collect(), e)),
    };
    // IMMEDIATE: take the write lock now (waiting out other processes with busy_timeout) instead of
    // failing a read-then-write upgrade with SQLITE_BUSY.
    if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        return Err((batch.into_iter().map(unanswered).collect(), e));
    }
    let mut answers = Vec::with_capacity(batch.len());
    for job in batch {
        answers.push(match job {
            Job::Insert(c, tx) => Answer::Insert(tx, super::insert_nonce(&mut conn, &c).await),
            Job::Consume(n, now, tx) => {
                Answer::Consume(tx, super::consume_nonce(&mut conn, &n, now).await)
            }
            Job::Put(r, tx) => Answer::Put(tx, super::put_result(&mut conn, &r).await),
        });
    }
    let committed = sqlx::query("COMMIT").execute(&mut *conn).await.map(drop);
    if committed.is_err() {
        // Leave the connection clean for the next batch; the commit error is what callers see.
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    }
    Ok((answers, committed))
}

/// A job failed before it ran: its answer is only the batch error.
fn unanswered(job: Job) -> Answer {
    match job {
        Job::Insert(_, tx) => Answer::Insert(tx, Ok(())),
        Job::Consume(_, _, tx) => Answer::Consume(tx, Ok(NonceOutcome::Unknown)),
        Job::Put(_, tx) => Answer::Put(tx, Ok(None)),
    }
}
