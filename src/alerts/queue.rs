//! A bounded queue that never blocks the one who pushes: when it is full the
//! oldest entry makes room, and is counted. A dead webhook must neither grow
//! the gate's memory nor hold a request back.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

pub struct Bounded<T> {
    items: Mutex<VecDeque<T>>,
    ready: Notify,
    capacity: usize,
    dropped: AtomicU64,
}

impl<T> Bounded<T> {
    pub fn new(capacity: usize) -> Bounded<T> {
        Bounded {
            items: Mutex::new(VecDeque::with_capacity(capacity.min(64))),
            ready: Notify::new(),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
        }
    }

    /// Adds `item`; returns the oldest entry if it had to go to make room.
    pub fn push(&self, item: T) -> Option<T> {
        let dropped = {
            let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
            let dropped = if items.len() >= self.capacity { items.pop_front() } else { None };
            items.push_back(item);
            dropped
        };
        if dropped.is_some() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.ready.notify_one();
        dropped
    }

    /// The oldest entry, once there is one.
    pub async fn pop(&self) -> T {
        loop {
            // `notify_one` leaves a permit when nobody waits: a push between
            // the look and the wait is not missed.
            let notified = self.ready.notified();
            if let Some(item) = self.items.lock().unwrap_or_else(|e| e.into_inner()).pop_front() {
                return item;
            }
            notified.await;
        }
    }

    /// Entries dropped to make room since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_drops_its_oldest_and_counts_it() {
        let q = Bounded::new(2);
        assert_eq!(q.push(1), None);
        assert_eq!(q.push(2), None);
        assert_eq!(q.push(3), Some(1));
        assert_eq!((q.len(), q.dropped()), (2, 1));
        assert_eq!(q.pop().await, 2);
        assert_eq!(q.pop().await, 3);
    }

    #[tokio::test]
    async fn pop_waits_for_a_push() {
        let q = std::sync::Arc::new(Bounded::new(4));
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await }
        });
        tokio::task::yield_now().await;
        q.push("late");
        assert_eq!(waiting.await.unwrap(), "late");
    }
}
