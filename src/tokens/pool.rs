//! The tokenizer's own threads, shared fairly between requests.
//!
//! Counting tokens costs CPU in proportion to the text (about 80 ms a MiB of
//! prose here, more for odd text), so it never runs on the threads that serve
//! connections: a few maximal bodies there would stop the gate answering
//! anyone. Counts wait in lanes, one for each key's admissions and one for
//! settlements; the lanes take turns, a slice of one count a turn, so a key
//! with many long counts gets one turn like any other and another key's short
//! count waits for a few slices, not for the hog's counts. Within a lane,
//! counts go first come, first served.
//!
//! Texts of up to `INLINE_BYTES` are counted where they are asked for, once
//! the tables are built: a few microseconds, less than waking a pool thread
//! and being woken by it.
//!
//! Requests that are still to be admitted get a place only while there is one
//! (`TOKENIZER_QUEUE` in all, `TOKENIZER_QUEUE_PER_KEY` for one key); counts a
//! settlement needs always get one, since they are bounded by the requests
//! already admitted.

use super::pieces;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// What a thread counts of one job before it takes the next: a few
/// milliseconds of work.
const SLICE_BYTES: usize = 64 * 1024;

/// Texts this short are counted on the calling thread (see the module's doc).
const INLINE_BYTES: usize = 256;

/// Why a count was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// The whole queue is full.
    Full,
    /// This key has its share of the queue already.
    KeyFull(usize),
}

pub struct Tokenizer {
    shared: Arc<Shared>,
    capacity: usize,
    per_key: usize,
}

struct Shared {
    state: Mutex<Queue>,
    ready: Condvar,
    /// The tables are built: counting a short text can no longer stall its caller.
    built: AtomicBool,
}

/// A key's admissions (`Some`), or settlements (`None`).
type Lane = Option<i64>;

#[derive(Default)]
struct LaneJobs {
    jobs: VecDeque<Job>,
    /// Whether the lane is in `turns`.
    waiting_turn: bool,
}

#[derive(Default)]
struct Queue {
    lanes: HashMap<Lane, LaneJobs>,
    /// Lanes with counts to do, in the order they are served.
    turns: VecDeque<Lane>,
    /// Jobs of requests not yet admitted, queued or being counted, in all and by key.
    admitting: usize,
    by_key: HashMap<i64, usize>,
    /// Counts ever queued.
    started: u64,
    closed: bool,
}

struct Job {
    text: String,
    at: usize,
    tokens: i64,
    /// The key whose admission waits for it, if any.
    key: Lane,
    done: oneshot::Sender<i64>,
}

/// A count, made or queued; resolves to the number of tokens.
pub struct Pending(Count);

enum Count {
    Made(i64),
    Queued(oneshot::Receiver<i64>),
}

impl Pending {
    pub async fn tokens(self) -> i64 {
        match self.0 {
            Count::Made(n) => n,
            // A count only goes missing if its thread died; nothing is charged for it.
            Count::Queued(receiver) => receiver.await.unwrap_or(0),
        }
    }
}

impl Tokenizer {
    /// Starts `threads` counting threads; the first builds the tokenizer's tables.
    pub fn start(threads: usize, capacity: usize, per_key: usize) -> Tokenizer {
        let shared = Arc::new(Shared {
            state: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            built: AtomicBool::new(false),
        });
        for n in 0..threads.max(1) {
            let shared = shared.clone();
            let spawned =
                std::thread::Builder::new().name(format!("tokenizer-{n}")).spawn(move || work(&shared));
            if let Err(e) = spawned {
                log::error!("cannot start a tokenizer thread: {e}");
            }
        }
        Tokenizer { shared, capacity: capacity.max(1), per_key: per_key.max(1) }
    }

    /// Queues a count that an admission waits for, if there is room for it.
    /// A short text is counted at once, but refused just the same while the
    /// queue or the key's share of it is full: what a key may have counted at
    /// once does not depend on the length of what it sends.
    pub fn try_count(&self, key_id: i64, text: String) -> Result<Pending, Busy> {
        let mut queue = self.shared.lock();
        if queue.admitting >= self.capacity {
            return Err(Busy::Full);
        }
        if queue.by_key.get(&key_id).is_some_and(|&n| n >= self.per_key) {
            return Err(Busy::KeyFull(self.per_key));
        }
        if self.short(&text) {
            queue.started += 1;
            drop(queue);
            return Ok(count_here(&text));
        }
        *queue.by_key.entry(key_id).or_default() += 1;
        queue.admitting += 1;
        Ok(self.push(queue, Some(key_id), text))
    }

    /// Queues a count a settlement needs: always taken.
    pub fn count(&self, text: String) -> Pending {
        let mut queue = self.shared.lock();
        if self.short(&text) {
            queue.started += 1;
            drop(queue);
            return count_here(&text);
        }
        self.push(queue, None, text)
    }

    /// Whether `text` is counted on the calling thread: short, once the tables are built.
    fn short(&self, text: &str) -> bool {
        text.len() <= INLINE_BYTES && self.shared.built.load(Ordering::Acquire)
    }

    fn push(&self, mut queue: MutexGuard<'_, Queue>, key: Option<i64>, text: String) -> Pending {
        let (done, pending) = oneshot::channel();
        queue.started += 1;
        queue.put(Job { text, at: 0, tokens: 0, key, done }, false);
        drop(queue);
        self.shared.ready.notify_one();
        Pending(Count::Queued(pending))
    }
}

impl Tokenizer {
    /// Counts admissions wait for now, queued or being counted.
    pub fn waiting(&self) -> usize {
        self.shared.lock().admitting
    }

    /// How many counts were ever queued: what proves a refused request cost none.
    pub fn counts_started(&self) -> u64 {
        self.shared.lock().started
    }
}

impl Drop for Tokenizer {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

impl Queue {
    /// Adds a job to its lane (at the front: a count put back after a slice),
    /// and the lane to the turns if it is not there.
    fn put(&mut self, job: Job, front: bool) {
        let lane = job.key;
        let entry = self.lanes.entry(lane).or_default();
        if front {
            entry.jobs.push_front(job);
        } else {
            entry.jobs.push_back(job);
        }
        if !entry.waiting_turn {
            entry.waiting_turn = true;
            self.turns.push_back(lane);
        }
    }

    /// The next lane's first job; the lane goes to the end of the turns if it has more.
    fn take(&mut self) -> Option<Job> {
        let lane = self.turns.pop_front()?;
        let entry = self.lanes.get_mut(&lane)?;
        let job = entry.jobs.pop_front();
        if entry.jobs.is_empty() {
            self.lanes.remove(&lane);
        } else {
            self.turns.push_back(lane);
        }
        job
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn count_here(text: &str) -> Pending {
    Pending(Count::Made(tiktoken_rs::cl100k_base_singleton().count_ordinary(text) as i64))
}

fn work(shared: &Shared) {
    tiktoken_rs::cl100k_base_singleton();
    shared.built.store(true, Ordering::Release);
    loop {
        let mut job = {
            let mut queue = shared.lock();
            loop {
                if queue.closed {
                    return;
                }
                if let Some(job) = queue.take() {
                    break job;
                }
                queue = shared.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
        };
        // A request that went away no longer needs its count.
        let finished = job.done.is_closed() || count_slice(&mut job);
        let mut queue = shared.lock();
        if !finished {
            queue.put(job, true);
            continue;
        }
        if let Some(key) = job.key {
            queue.admitting -= 1;
            if let Some(n) = queue.by_key.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    queue.by_key.remove(&key);
                }
            }
        }
        drop(queue);
        let _ = job.done.send(job.tokens);
    }
}

/// Counts up to `SLICE_BYTES` more of the job; true when it is all counted.
fn count_slice(job: &mut Job) -> bool {
    let bpe = tiktoken_rs::cl100k_base_singleton();
    let stop = job.at.saturating_add(SLICE_BYTES);
    while job.at < job.text.len() && job.at < stop {
        let end = pieces::piece_end(&job.text, job.at);
        job.tokens += bpe.count_ordinary(&job.text[job.at..end]) as i64;
        job.at = end;
    }
    job.at >= job.text.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn counts_what_the_tokenizer_counts() {
        let pool = Tokenizer::start(1, 4, 2);
        let text = "Hello, world! Counting tokens off the connection threads. ".repeat(5000);
        let expected = tiktoken_rs::cl100k_base_singleton().count_ordinary(&text) as i64;
        assert_eq!(pool.try_count(1, text).unwrap().tokens().await, expected);
        assert_eq!(pool.count(String::new()).tokens().await, 0);
    }

    #[tokio::test]
    async fn the_queue_and_each_key_share_of_it_are_bounded() {
        // No threads would be a queue that never drains: hold the one thread busy instead.
        let pool = Tokenizer::start(1, 3, 2);
        let big = || "a".repeat(1 << 20);
        let first = pool.try_count(1, big()).unwrap();
        let second = pool.try_count(1, big()).unwrap();
        assert_eq!(pool.try_count(1, "x".into()).err(), Some(Busy::KeyFull(2)));
        let third = pool.try_count(2, big()).unwrap();
        assert_eq!(pool.try_count(3, "x".into()).err(), Some(Busy::Full));
        // Settlements are never refused.
        let settling = pool.count("hello".into());
        assert_eq!(settling.tokens().await, 1);
        for p in [first, second, third] {
            assert!(p.tokens().await > 0);
        }
        // Finished counts give their places back.
        assert!(pool.try_count(3, "x".into()).is_ok());
    }

    #[tokio::test]
    async fn a_short_count_does_not_wait_for_long_ones_ahead_of_it() {
        let pool = Tokenizer::start(1, 8, 8);
        let long: Vec<Pending> = (0..4).map(|_| pool.try_count(1, "b".repeat(4 << 20)).unwrap()).collect();
        let started = Instant::now();
        assert_eq!(pool.try_count(2, "hello world".into()).unwrap().tokens().await, 2);
        let short = started.elapsed();
        let started = Instant::now();
        for p in long {
            p.tokens().await;
        }
        // Not a timing test: the short count finished well before the long ones did.
        assert!(short < started.elapsed(), "short {short:?}");
        assert!(short < Duration::from_secs(5), "short {short:?}");
    }

    #[tokio::test]
    async fn a_short_text_is_counted_at_once_even_while_every_thread_is_busy() {
        let pool = Tokenizer::start(1, 8, 8);
        let started = Instant::now();
        while !pool.shared.built.load(Ordering::Acquire) {
            assert!(started.elapsed() < Duration::from_secs(10), "tables never built");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The one thread is busy for seconds with this; the short text does not wait for it.
        let long = pool.try_count(1, "f".repeat(16 << 20)).unwrap();
        let text = "Short texts are counted where they are asked for.";
        let expected = tiktoken_rs::cl100k_base_singleton().count_ordinary(text) as i64;
        let short = pool.try_count(2, text.into()).unwrap();
        assert!(matches!(short.0, Count::Made(n) if n == expected));
        assert!(matches!(pool.count(text.into()).0, Count::Made(n) if n == expected));
        drop(long);
    }

    #[tokio::test]
    async fn a_key_with_many_long_counts_takes_one_turn_like_any_other() {
        let pool = Tokenizer::start(1, 64, 64);
        let mut hog: Vec<Pending> =
            (0..32).map(|_| pool.try_count(1, "d".repeat(1 << 20)).unwrap()).collect();
        // Thirty-two MiB ahead of it, in one lane: the other key's MiB gets
        // every other turn, so it is done before the hog's second MiB. (Taking
        // turns by count instead, it would finish with the hog's last.)
        let other = pool.try_count(2, "e".repeat(1 << 20)).unwrap();
        let second = hog.swap_remove(1);
        let finished = tokio::select! {
            _ = other.tokens() => "other",
            _ = second.tokens() => "hog",
        };
        assert_eq!(finished, "other");
    }

    #[tokio::test]
    async fn a_count_nobody_waits_for_is_dropped() {
        let pool = Tokenizer::start(1, 2, 2);
        drop(pool.try_count(1, "c".repeat(64 << 20)).unwrap());
        // Its place comes back once a thread notices, long before 64 MiB were
        // counted (about 10 s of work).
        let started = Instant::now();
        let pending = loop {
            if let Ok(p) = pool.try_count(1, "x".into()) {
                break p;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "the abandoned count kept its place");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert_eq!(pending.tokens().await, 1);
    }
}
