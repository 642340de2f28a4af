//! Group commit: the two writes on every request, admission and settlement,
//! wait in one queue and are committed many to a transaction.
//!
//! Whoever queues a write while no commit is running starts a task that takes
//! everything queued, commits it in one transaction, answers each waiter, and
//! goes on until the queue is empty. While one transaction runs, the next
//! one's writes gather behind it, so the batch grows with the load by itself:
//! one request alone waits for nothing but its own transaction, and under
//! load each transaction (and its trip to the database, and its commit) is
//! shared by many. No timer holds a write back.
//!
//! Within a batch the writes run one after another in one transaction, so
//! each admission sees every earlier one, exactly as if each had its own; and
//! a waiter hears of its admission only once the transaction has committed,
//! so nothing is forwarded on a reservation that a crash could still undo.
//!
//! A batch that the database itself fails (locked, full, unreachable) fails
//! every write in it. One that fails for a reason of one of its writes (a
//! constraint) is tried again one write at a time, so that write fails alone
//! and the others still commit. An admission
//! whose caller has gone by the time it commits is given back at once.

use super::health::is_fault;
use super::rows::CounterRow;
use super::{Admission, Settlement, StoreError, StoreResult};
use crate::domain::usage::Outcome;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The most admissions, and the most settlements, one transaction takes.
pub const MAX_BATCH: usize = 32;

/// One write waiting for its transaction.
#[derive(Debug, Clone)]
pub enum Job {
    Admit(Admission),
    Settle(Settlement),
}

/// What a committed job did.
#[derive(Debug)]
pub enum Done {
    /// The counters afterwards and the reservation id; `None` when refused.
    Admitted(Option<(CounterRow, i64)>),
    /// Whether there was a reservation to settle.
    Settled(bool),
}

/// The database side: runs jobs, in the order given, in one transaction.
#[async_trait::async_trait]
pub trait Batches: Send + Sync + 'static {
    /// One outcome per job, in the jobs' order, or the error that rolled the
    /// whole transaction back.
    async fn commit(&self, jobs: &[Job]) -> StoreResult<Vec<Done>>;
}

/// The jobs' settlements and admissions, each kind in its order.
pub fn split(jobs: &[Job]) -> (Vec<&Settlement>, Vec<&Admission>) {
    let mut settlements = Vec::new();
    let mut admissions = Vec::new();
    for job in jobs {
        match job {
            Job::Settle(s) => settlements.push(s),
            Job::Admit(a) => admissions.push(a),
        }
    }
    (settlements, admissions)
}

/// The outcomes of `split`'s two lists put back in the jobs' order.
pub fn in_job_order(jobs: &[Job], settled: Vec<bool>, admitted: Vec<Option<(CounterRow, i64)>>) -> Vec<Done> {
    let (mut settled, mut admitted) = (settled.into_iter(), admitted.into_iter());
    jobs.iter()
        .map(|job| match job {
            Job::Settle(_) => Done::Settled(settled.next().unwrap_or(false)),
            Job::Admit(_) => Done::Admitted(admitted.next().flatten()),
        })
        .collect()
}

type Reply = oneshot::Sender<StoreResult<Done>>;

#[derive(Default)]
struct Queue {
    settlements: VecDeque<(Job, Reply)>,
    admissions: VecDeque<(Job, Reply)>,
    /// A task is committing; it will take what is queued now.
    committing: bool,
}

/// Told how long each group-commit transaction took (the metrics).
pub type BatchObserver = Arc<dyn Fn(Duration) + Send + Sync>;

pub struct GroupCommit<B: Batches> {
    backend: Arc<B>,
    queue: Arc<Mutex<Queue>>,
    /// Set once, after the store is open and the metrics exist.
    observer: Arc<OnceLock<BatchObserver>>,
}

impl<B: Batches> GroupCommit<B> {
    pub fn new(backend: Arc<B>) -> Self {
        GroupCommit { backend, queue: Arc::default(), observer: Arc::default() }
    }

    /// From now on every transaction's time is reported to `observer`.
    pub fn observe(&self, observer: BatchObserver) {
        let _ = self.observer.set(observer);
    }

    /// Queues `job` and waits until the transaction it is part of has ended.
    pub async fn run(&self, job: Job) -> StoreResult<Done> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut q = lock(&self.queue);
            match job {
                Job::Settle(_) => q.settlements.push_back((job, reply)),
                Job::Admit(_) => q.admissions.push_back((job, reply)),
            }
            !std::mem::replace(&mut q.committing, true)
        };
        if start {
            // A task of its own: the caller may be dropped while it waits
            // (its client went away), and the queue must not stall with it.
            let (backend, queue) = (self.backend.clone(), self.queue.clone());
            tokio::spawn(drain(backend, queue, self.observer.clone()));
        }
        match answer.await {
            Ok(done) => done,
            // The committing task panicked: the transaction did not commit.
            Err(_) => Err(StoreError::Unsupported("the database writer stopped unexpectedly".into())),
        }
    }
}

impl<B: Batches> GroupCommit<B> {
    pub async fn admit(&self, a: &Admission) -> StoreResult<Option<(CounterRow, i64)>> {
        match self.run(Job::Admit(a.clone())).await? {
            Done::Admitted(admitted) => Ok(admitted),
            Done::Settled(_) => Err(mismatch()),
        }
    }

    pub async fn settle(&self, s: &Settlement) -> StoreResult<bool> {
        match self.run(Job::Settle(s.clone())).await? {
            Done::Settled(settled) => Ok(settled),
            Done::Admitted(_) => Err(mismatch()),
        }
    }
}

fn mismatch() -> StoreError {
    StoreError::Unsupported("the database writer answered a job with another kind's outcome".into())
}

fn lock(queue: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// Commits batches until the queue is empty.
async fn drain<B: Batches>(
    backend: Arc<B>,
    queue: Arc<Mutex<Queue>>,
    observer: Arc<OnceLock<BatchObserver>>,
) {
    // Clears `committing` if this task ends other than by finding the queue
    // empty (a panic), so that the next write starts a new task rather than
    // waiting for one that is gone.
    struct Unwinding<'a>(&'a Mutex<Queue>);
    impl Drop for Unwinding<'_> {
        fn drop(&mut self) {
            lock(self.0).committing = false;
        }
    }
    let unwinding = Unwinding(&queue);
    loop {
        let batch = {
            let mut q = lock(&queue);
            // Settlements first: they free what the admissions after them may take.
            let settlements = q.settlements.len().min(MAX_BATCH);
            let admissions = q.admissions.len().min(MAX_BATCH);
            let mut batch: Vec<(Job, Reply)> = q.settlements.drain(..settlements).collect();
            batch.extend(q.admissions.drain(..admissions));
            if batch.is_empty() {
                // Cleared under the same lock a new write checks it under.
                q.committing = false;
                drop(q);
                std::mem::forget(unwinding);
                return;
            }
            batch
        };
        let (jobs, replies): (Vec<Job>, Vec<Reply>) = batch.into_iter().unzip();
        let started = Instant::now();
        let committed = backend.commit(&jobs).await;
        if let Some(observe) = observer.get() {
            observe(started.elapsed());
        }
        match committed {
            Ok(outcomes) => answer(&*backend, &jobs, replies, outcomes).await,
            Err(e) if jobs.len() == 1 => {
                let _ = replies.into_iter().next().map(|reply| reply.send(Err(e)));
            }
            // The database's fault (locked, full, gone): trying each write
            // again would only make each wait for the same failure.
            Err(e) if is_fault(&e) => {
                let shared = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Batch(shared.clone())));
                }
            }
            Err(e) => {
                log::debug!("a batch of {} writes failed ({e}); trying each on its own", jobs.len());
                for (job, reply) in jobs.into_iter().zip(replies) {
                    let one = std::slice::from_ref(&job);
                    match backend.commit(one).await {
                        Ok(outcomes) => answer(&*backend, one, vec![reply], outcomes).await,
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
            }
        }
    }
}

/// Hands each waiter its outcome; gives back an admission nobody waits for.
async fn answer<B: Batches>(backend: &B, jobs: &[Job], replies: Vec<Reply>, outcomes: Vec<Done>) {
    for ((job, reply), done) in jobs.iter().zip(replies).zip(outcomes) {
        let Err(Ok(Done::Admitted(Some((_, reservation_id))))) = reply.send(Ok(done)) else { continue };
        let Job::Admit(a) = job else { continue };
        let give_back = Settlement {
            reservation_id,
            key_id: a.key_id,
            prompt_tokens: 0,
            completion_tokens: 0,
            estimated: false,
            status: Outcome::NotForwarded.as_str(),
            http_status: 0,
            latency_ms: 0,
            refund_request: true,
            now: a.windows.now,
            weighted_tokens: 0,
            budgets: a.budgets.clone(),
            request_id: None,
        };
        if let Err(e) = backend.commit(&[Job::Settle(give_back)]).await {
            // Its heartbeat outlives this, so only a restart's sweep frees it.
            log::error!(
                "could not give back reservation {reservation_id}, admitted after its caller left: {e}"
            );
        }
    }
}

#[cfg(test)]
mod tests;
