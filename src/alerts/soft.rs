//! Soft limits at settlement: what admission knew of each level's usage,
//! this request's share, and which soft limits that reaches, all without a
//! database round trip. Only a soft limit reached and not yet alerted in its
//! window costs one, in the background (the claim in `alerts_sent`).

use crate::domain::alerts::{self, Reached, SoftLimits};
use crate::domain::limits::{Count, Limits, Usage};
use crate::domain::people::{Owner, Principal};
use crate::domain::windows::Windows;
use crate::store::KeyRecord;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// One level (the key, its user, the user's team) that has soft limits.
#[derive(Debug, Clone)]
pub struct Level {
    pub owner: Owner,
    pub id: i64,
    pub name: String,
    pub soft: SoftLimits,
    pub limits: Limits,
    /// Its usage without this request, as admission knew it.
    pub before: Usage,
    /// `before` was read in the admission's own transaction. Otherwise it
    /// was read with the key, up to `KEY_CACHE_TTL_MS` earlier, and what this
    /// process settled since is added from the ledger.
    pub fresh: bool,
}

/// What a settlement needs to find the soft limits its request reaches.
#[derive(Debug, Clone)]
pub struct Watch {
    pub levels: Vec<Level>,
    pub windows: Windows,
    /// The request counts in the daily, monthly and lifetime request counters.
    pub counts_requests: bool,
}

/// The levels of `key` that have soft limits, or `None` (most keys: no cost
/// beyond this look). `admitted` is the key's usage as admission left it,
/// with `reserved` tokens and (when `counts_requests`) one request of this one.
pub fn watch(
    key: &KeyRecord,
    admitted: &Usage,
    reserved: i64,
    counts_requests: bool,
    windows: &Windows,
) -> Option<Box<Watch>> {
    let principals = [(Owner::User, &key.user), (Owner::Team, &key.team)];
    let any = !key.alerts.is_empty() || principals.iter().any(|(_, p)| p.as_ref().is_some_and(has_alerts));
    if !any {
        return None;
    }
    let mut levels = Vec::new();
    if !key.alerts.is_empty() {
        levels.push(Level {
            owner: Owner::Key,
            id: key.id,
            name: key.fields.name.clone(),
            soft: key.alerts.clone(),
            limits: key.fields.limits,
            before: without(admitted, reserved, i64::from(counts_requests)),
            fresh: true,
        });
    }
    for (owner, principal) in principals {
        if let Some(p) = principal.as_ref().filter(|p| has_alerts(p)) {
            levels.push(Level {
                owner,
                id: p.id,
                name: p.name.clone(),
                soft: p.alerts.clone(),
                limits: p.own.limits,
                before: p.own.usage_at(windows),
                fresh: false,
            });
        }
    }
    Some(Box::new(Watch { levels, windows: *windows, counts_requests }))
}

fn has_alerts(p: &Principal) -> bool {
    !p.alerts.is_empty()
}

/// `usage` less `tokens` and `requests` in every window.
fn without(usage: &Usage, tokens: i64, requests: i64) -> Usage {
    let less = |c: Count| Count { requests: c.requests - requests, tokens: c.tokens - tokens };
    Usage {
        minute: less(usage.minute),
        day: less(usage.day),
        month: less(usage.month),
        total: less(usage.total),
        in_flight: usage.in_flight,
    }
}

/// `usage` plus one request's `tokens` and `requests` in every window.
fn with(usage: &Usage, tokens: i64, requests: i64) -> Usage {
    without(usage, tokens.saturating_neg(), -requests)
}

/// The larger of each count, where both were measured in the same windows.
fn larger(a: &Usage, b: &Usage, same_day: bool, same_month: bool) -> Usage {
    let max =
        |x: Count, y: Count| Count { requests: x.requests.max(y.requests), tokens: x.tokens.max(y.tokens) };
    Usage {
        minute: a.minute,
        day: if same_day { max(a.day, b.day) } else { a.day },
        month: if same_month { max(a.month, b.month) } else { a.month },
        total: max(a.total, b.total),
        in_flight: a.in_flight,
    }
}

/// Bounds the per-process memory of levels and claims: past it, it starts
/// over (the cost: one claim that finds the alert already sent).
const MAX_REMEMBERED: usize = 100_000;

/// A soft limit in one window: the claim's key.
pub type ClaimKey = (Owner, i64, &'static str, i64);

/// What this process knows beyond what admissions read.
#[derive(Default)]
pub struct Memory {
    /// The usage of users and teams after this process's last settlement for
    /// them, and the windows it was measured in: what a cached read misses.
    ledger: Mutex<HashMap<(Owner, i64), (Usage, Windows)>>,
    /// Soft limits in their window whose alert this process raised or found
    /// sent: later settlements skip them without a round trip.
    raised: Mutex<HashSet<ClaimKey>>,
}

impl Memory {
    /// The soft limits the settled request reaches that this process has not
    /// raised yet in their window, with the level each belongs to.
    pub fn settled(&self, watch: &Watch, tokens: i64, refunded: bool) -> Vec<(Level, Reached)> {
        let requests = i64::from(watch.counts_requests && !refunded);
        let mut out = Vec::new();
        for level in &watch.levels {
            let used = if level.fresh {
                with(&level.before, tokens, requests)
            } else {
                self.add_to_ledger(level, tokens, requests, &watch.windows)
            };
            for hit in alerts::reached(&level.soft, &level.limits, &used, &watch.windows) {
                if self.first_time((level.owner, level.id, hit.kind.field(), hit.window_start)) {
                    out.push((level.clone(), hit));
                }
            }
        }
        out
    }

    fn add_to_ledger(&self, level: &Level, tokens: i64, requests: i64, windows: &Windows) -> Usage {
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        if ledger.len() >= MAX_REMEMBERED {
            ledger.clear();
        }
        let entry = ledger.entry((level.owner, level.id)).or_insert((level.before, *windows));
        let (known, seen_in) = *entry;
        let base = larger(
            &level.before,
            &known,
            seen_in.day.start == windows.day.start,
            seen_in.month.start == windows.month.start,
        );
        let used = with(&base, tokens, requests);
        *entry = (used, *windows);
        used
    }

    fn first_time(&self, claim: ClaimKey) -> bool {
        let mut raised = self.raised.lock().unwrap_or_else(|e| e.into_inner());
        if raised.len() >= MAX_REMEMBERED {
            raised.clear();
        }
        raised.insert(claim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn level(fresh: bool, day_tokens_before: i64) -> Level {
        let mut before = Usage::default();
        before.day.tokens = day_tokens_before;
        Level {
            owner: if fresh { Owner::Key } else { Owner::User },
            id: 1,
            name: "x".into(),
            soft: SoftLimits::parse(&json!({"daily_tokens": 80})).unwrap(),
            limits: Limits { daily_tokens: Some(1000), ..Default::default() },
            before,
            fresh,
        }
    }

    fn watch(levels: Vec<Level>) -> Watch {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        Watch { levels, windows: Windows::at(now, chrono_tz::UTC), counts_requests: true }
    }

    #[test]
    fn a_soft_limit_is_raised_once_per_process_and_window() {
        let memory = Memory::default();
        assert!(memory.settled(&watch(vec![level(true, 700)]), 50, false).is_empty(), "750 < 800");
        let hits = memory.settled(&watch(vec![level(true, 750)]), 60, false);
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].1.used, hits[0].1.threshold), (810, 800));
        assert!(memory.settled(&watch(vec![level(true, 810)]), 60, false).is_empty(), "already raised");
    }

    #[test]
    fn a_stale_read_of_a_user_is_made_up_by_what_this_process_settled() {
        let memory = Memory::default();
        // Every request read the user at 700 (a cached read): 700 + 50 + 60 passes 800.
        assert!(memory.settled(&watch(vec![level(false, 700)]), 50, false).is_empty());
        let hits = memory.settled(&watch(vec![level(false, 700)]), 60, false);
        assert_eq!(hits.len(), 1, "the ledger knew of the first 50");
        assert_eq!(hits[0].1.used, 810);
    }

    #[test]
    fn admission_counted_this_request_in_the_keys_usage_and_settlement_takes_it_out() {
        let admitted = Usage { day: Count { requests: 5, tokens: 900 }, ..Default::default() };
        let before = without(&admitted, 300, 1);
        assert_eq!(before.day, Count { requests: 4, tokens: 600 });
        assert_eq!(with(&before, 10, 0).day, Count { requests: 4, tokens: 610 });
    }
}
