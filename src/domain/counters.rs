//! Counters measured against limits, on a key row or a budget row.

use super::limits::{Count, Usage};
use super::windows::{self, Window, Windows};

/// Raw counters; a window's numbers count only while it is current
/// (`windows::is_current`: an admission now would add to them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub minute_start: i64,
    pub minute_end: i64,
    pub minute_requests: i64,
    pub minute_tokens: i64,
    pub day_start: i64,
    pub day_end: i64,
    pub day_requests: i64,
    pub day_tokens: i64,
    pub month_start: i64,
    pub month_end: i64,
    pub month_requests: i64,
    pub month_tokens: i64,
    pub total_requests: i64,
    pub total_tokens: i64,
    pub in_flight: i64,
}

impl Counters {
    pub fn usage_at(&self, w: &Windows) -> Usage {
        let current = |start: i64, end: i64, requests: i64, tokens: i64, computed: Window| {
            if windows::is_current(Window { start, end }, computed, w.now) {
                Count { requests, tokens }
            } else {
                Count::default()
            }
        };
        Usage {
            minute: current(
                self.minute_start,
                self.minute_end,
                self.minute_requests,
                self.minute_tokens,
                w.minute,
            ),
            day: current(self.day_start, self.day_end, self.day_requests, self.day_tokens, w.day),
            month: current(self.month_start, self.month_end, self.month_requests, self.month_tokens, w.month),
            total: Count { requests: self.total_requests, tokens: self.total_tokens },
            in_flight: self.in_flight,
        }
    }
}
