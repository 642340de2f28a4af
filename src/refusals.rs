//! Refused proxy requests, counted in memory and added to the database in the
//! background (`REFUSALS_FLUSH_MS`) and on shutdown. Counting is a map update
//! under a short lock, so a flood of refusals (a script with a wrong key)
//! costs the database nothing per request: one upsert per hour, key and
//! reason per flush.
//!
//! The map holds one entry per (hour, key, reason). Keys are only known once
//! authentication has found one, so the entries are bounded by the real keys
//! times the reasons times the hours since the last flush that worked. A
//! database that is down keeps the counts for the next flush; past
//! `MAX_ENTRIES` new combinations are dropped (and counted in the log) rather
//! than let an outage grow the map without end.

use crate::store::{RefusalCount, Store, StoreResult};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The most (hour, key, reason) combinations kept between flushes.
pub const MAX_ENTRIES: usize = 20_000;

type Slot = (i64, Option<i64>, &'static str);

#[derive(Default)]
pub struct RefusalCounter {
    counts: Mutex<HashMap<Slot, i64>>,
    /// Refusals not counted because the map was full.
    dropped: AtomicU64,
}

/// The start of the UTC hour `ts` (unix seconds) falls in.
pub fn hour_of(ts: i64) -> i64 {
    ts.div_euclid(3600) * 3600
}

impl RefusalCounter {
    /// Counts one refusal; `reason` is `None` for errors that are not refusals
    /// (upstream failures, an unreachable database), which are not counted.
    pub fn note(&self, now: i64, key_id: Option<i64>, reason: Option<&'static str>) {
        let Some(reason) = reason else { return };
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        add(&mut counts, (hour_of(now), key_id, reason), 1, &self.dropped);
    }

    /// The counts not yet in the database.
    pub fn pending(&self) -> Vec<RefusalCount> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .map(|(&(hour, key_id, reason), &count)| RefusalCount { hour, key_id, reason, count })
            .collect()
    }

    /// Adds what was counted to the database. On failure the counts are put
    /// back for the next flush (beside any counted meanwhile), and the error
    /// is returned for the caller to log.
    pub async fn flush(&self, store: &dyn Store) -> StoreResult<usize> {
        let taken = std::mem::take(&mut *self.counts.lock().unwrap_or_else(|e| e.into_inner()));
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            log::warn!(
                "{dropped} refused requests were not counted: too many kinds of refusal awaited a flush"
            );
        }
        if taken.is_empty() {
            return Ok(0);
        }
        let batch: Vec<RefusalCount> = taken
            .iter()
            .map(|(&(hour, key_id, reason), &count)| RefusalCount { hour, key_id, reason, count })
            .collect();
        match store.add_refusals(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
                for (slot, count) in taken {
                    add(&mut counts, slot, count, &self.dropped);
                }
                Err(e)
            }
        }
    }
}

fn add(counts: &mut HashMap<Slot, i64>, slot: Slot, count: i64, dropped: &AtomicU64) {
    let full = counts.len() >= MAX_ENTRIES;
    match counts.get_mut(&slot) {
        Some(n) => *n = n.saturating_add(count),
        None if full => {
            dropped.fetch_add(count.max(0) as u64, Ordering::Relaxed);
        }
        None => {
            counts.insert(slot, count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_add_up_per_hour_key_and_reason_and_errors_that_are_not_refusals_are_not_counted() {
        let counter = RefusalCounter::default();
        for _ in 0..2000 {
            counter.note(7200 + 59, None, Some("unauthenticated"));
        }
        counter.note(7200 + 3599, Some(3), Some("quota"));
        counter.note(7200 + 3600, Some(3), Some("quota"));
        counter.note(7200, Some(3), None);
        let mut pending = counter.pending();
        pending.sort_by_key(|c| (c.hour, c.key_id));
        assert_eq!(
            pending,
            [
                RefusalCount { hour: 7200, key_id: None, reason: "unauthenticated", count: 2000 },
                RefusalCount { hour: 7200, key_id: Some(3), reason: "quota", count: 1 },
                RefusalCount { hour: 10800, key_id: Some(3), reason: "quota", count: 1 },
            ]
        );
    }

    #[test]
    fn the_map_stops_growing_at_its_bound_but_known_entries_still_count() {
        let counter = RefusalCounter::default();
        for key in 0..(MAX_ENTRIES as i64 + 10) {
            counter.note(0, Some(key), Some("forbidden"));
        }
        counter.note(0, Some(0), Some("forbidden"));
        let pending = counter.pending();
        assert_eq!(pending.len(), MAX_ENTRIES);
        assert_eq!(pending.iter().find(|c| c.key_id == Some(0)).map(|c| c.count), Some(2));
        assert_eq!(counter.dropped.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn hours_start_on_the_hour_also_before_1970() {
        assert_eq!(hour_of(3600 * 5 + 1), 3600 * 5);
        assert_eq!(hour_of(-1), -3600);
    }
}
