//! The queue on its own, against a backend that records each transaction.

use super::*;
use crate::domain::windows::Windows;
use crate::store::StoreError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Admits by key id: key 0 is refused, key 13 breaks any transaction it is
/// in (as a constraint would), key 99 finds the database failing (as a full
/// disk would); reservation ids count up. Each transaction is recorded with its jobs.
#[derive(Default)]
struct Recorder {
    transactions: Mutex<Vec<Vec<Job>>>,
    next_id: AtomicUsize,
    /// Held while a transaction runs, so the test can let writes pile up behind it.
    gate: tokio::sync::Mutex<()>,
}

#[async_trait::async_trait]
impl Batches for Recorder {
    async fn commit(&self, jobs: &[Job]) -> StoreResult<Vec<Done>> {
        let _running = self.gate.lock().await;
        tokio::task::yield_now().await;
        self.transactions.lock().unwrap().push(jobs.to_vec());
        if jobs.iter().any(|j| matches!(j, Job::Admit(a) if a.key_id == 13)) {
            return Err(StoreError::Database(sqlx::Error::RowNotFound));
        }
        if jobs.iter().any(|j| matches!(j, Job::Admit(a) if a.key_id == 99)) {
            return Err(StoreError::Unsupported("the disk is full".into()));
        }
        Ok(jobs
            .iter()
            .map(|job| match job {
                Job::Admit(a) if a.key_id == 0 => Done::Admitted(None),
                Job::Admit(_) => {
                    let id = self.next_id.fetch_add(1, Ordering::SeqCst) as i64 + 1;
                    Done::Admitted(Some((CounterRow::default(), id)))
                }
                Job::Settle(s) => Done::Settled(s.reservation_id > 0),
            })
            .collect())
    }
}

fn admission(key_id: i64) -> Admission {
    Admission {
        key_id,
        key_hash: "h".into(),
        windows: Windows::at(chrono::Utc::now(), chrono_tz::UTC),
        counts_in_request_quotas: true,
        reserve_tokens: 1,
        prompt_estimate: 0,
        model: "m".into(),
        route: "/api/generate",
        instance_id: "i".into(),
        budgets: vec![],
        user_id: None,
        team_id: None,
        weighted_prompt: 0,
    }
}

fn settlement(reservation_id: i64) -> Settlement {
    Settlement {
        reservation_id,
        key_id: 1,
        prompt_tokens: 1,
        completion_tokens: 1,
        estimated: false,
        status: "ok",
        http_status: 200,
        latency_ms: 1,
        refund_request: false,
        now: 0,
        weighted_tokens: 2,
        budgets: vec![],
        request_id: Some(format!("r{reservation_id}")),
    }
}

fn setup() -> (Arc<Recorder>, Arc<GroupCommit<Recorder>>) {
    let backend = Arc::new(Recorder::default());
    (backend.clone(), Arc::new(GroupCommit::new(backend)))
}

type Admitted = StoreResult<Option<(CounterRow, i64)>>;

/// An admission on a task of its own, so that the test can let others queue behind it.
fn admit_later(group: &Arc<GroupCommit<Recorder>>, key_id: i64) -> tokio::task::JoinHandle<Admitted> {
    let group = group.clone();
    tokio::spawn(async move { group.admit(&admission(key_id)).await })
}

#[tokio::test]
async fn one_write_alone_is_committed_at_once_in_its_own_transaction() {
    let (backend, group) = setup();
    assert!(group.admit(&admission(1)).await.unwrap().is_some());
    assert!(group.settle(&settlement(1)).await.unwrap());
    assert_eq!(backend.transactions.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn writes_that_arrive_during_a_transaction_share_the_next_settlements_first() {
    let (backend, group) = setup();
    let held = backend.gate.lock().await;
    let first = admit_later(&group, 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut waiting = Vec::new();
    for i in 0..5 {
        let group = group.clone();
        waiting.push(tokio::spawn(async move { group.admit(&admission(2 + i)).await.map(|a| a.is_some()) }));
    }
    let settling = tokio::spawn({
        let group = group.clone();
        async move { group.settle(&settlement(7)).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(held);
    assert!(first.await.unwrap().unwrap().is_some());
    for w in waiting {
        assert!(w.await.unwrap().unwrap());
    }
    assert!(settling.await.unwrap().unwrap());
    let transactions = backend.transactions.lock().unwrap();
    assert_eq!(transactions.len(), 2, "the five admissions and the settlement waited for one transaction");
    assert!(matches!(transactions[1][0], Job::Settle(_)), "the settlement goes first");
    let keys: Vec<i64> = transactions[1]
        .iter()
        .filter_map(|j| if let Job::Admit(a) = j { Some(a.key_id) } else { None })
        .collect();
    assert_eq!(keys, [2, 3, 4, 5, 6], "admissions keep their order");
}

#[tokio::test]
async fn a_batch_is_never_larger_than_max_batch_of_each_kind() {
    let (backend, group) = setup();
    let held = backend.gate.lock().await;
    let mut all = Vec::new();
    for i in 0..(2 * MAX_BATCH + 3) as i64 {
        all.push(admit_later(&group, 100 + i));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(held);
    for a in all {
        assert!(a.await.unwrap().unwrap().is_some());
    }
    let sizes: Vec<usize> = backend.transactions.lock().unwrap().iter().map(Vec::len).collect();
    assert!(sizes.iter().all(|&n| n <= MAX_BATCH), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 2 * MAX_BATCH + 3);
}

#[tokio::test]
async fn a_write_that_breaks_its_batch_fails_alone_and_the_others_commit() {
    let (backend, group) = setup();
    let held = backend.gate.lock().await;
    let spawn = |key_id| admit_later(&group, key_id);
    let first = spawn(1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (good, bad, refused) = (spawn(2), spawn(13), spawn(0));
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(held);
    assert!(first.await.unwrap().unwrap().is_some());
    assert!(good.await.unwrap().unwrap().is_some());
    assert!(matches!(bad.await.unwrap(), Err(StoreError::Database(sqlx::Error::RowNotFound))));
    assert!(refused.await.unwrap().unwrap().is_none());
    // The failed batch of three, then each of the three alone.
    let sizes: Vec<usize> = backend.transactions.lock().unwrap().iter().map(Vec::len).collect();
    assert_eq!(sizes, [1, 3, 1, 1, 1]);
}

#[tokio::test]
async fn an_admission_whose_caller_left_is_given_back_once_committed() {
    let (backend, group) = setup();
    let held = backend.gate.lock().await;
    let gone = admit_later(&group, 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    gone.abort();
    drop(held);
    let started = std::time::Instant::now();
    loop {
        let transactions = backend.transactions.lock().unwrap().clone();
        if let [admitted, given_back] = transactions.as_slice() {
            assert!(matches!(admitted[..], [Job::Admit(_)]));
            match &given_back[..] {
                [Job::Settle(s)] => {
                    assert_eq!((s.reservation_id, s.refund_request), (1, true));
                    assert_eq!(s.status, Outcome::NotForwarded.as_str());
                }
                other => panic!("expected the give-back, got {other:?}"),
            }
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never given back: {transactions:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // And the queue still works afterwards.
    assert!(group.admit(&admission(2)).await.unwrap().is_some());
}

#[tokio::test]
async fn a_batch_the_database_fails_fails_every_write_in_it_without_trying_each_again() {
    let (backend, group) = setup();
    let held = backend.gate.lock().await;
    let spawn = |key_id| admit_later(&group, key_id);
    let first = spawn(1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let failing = [spawn(2), spawn(99), spawn(3)];
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(held);
    assert!(first.await.unwrap().unwrap().is_some());
    for f in failing {
        match f.await.unwrap() {
            Err(e @ StoreError::Batch(_)) => assert_eq!(e.to_string(), "the disk is full"),
            other => panic!("expected the batch's failure, got {other:?}"),
        }
    }
    let sizes: Vec<usize> = backend.transactions.lock().unwrap().iter().map(Vec::len).collect();
    assert_eq!(sizes, [1, 3], "one failed transaction, not three more");
}
