//! Soft limits: `{"daily_tokens": 80}` on a key, user or team says "tell me
//! when 80% of the daily token limit is used". The arithmetic of when usage
//! crosses one, and which window it belongs to, is here; raising and
//! sending the alert is the gate's (`alerts`).

use super::limits::{LimitKind, Limits, Usage};
use super::windows::Windows;
use serde_json::{Map, Value};

/// The limits a soft limit may be put on: the quotas that are spent over a
/// day, a month or for good. Per-minute and concurrency limits refill within
/// a minute, so a share of them is reached and left many times an hour: an
/// alert on them would be noise, and the refusals count shows them better.
pub const WATCHED: [LimitKind; 5] = [
    LimitKind::DailyRequests,
    LimitKind::DailyTokens,
    LimitKind::MonthlyRequests,
    LimitKind::MonthlyTokens,
    LimitKind::TotalTokens,
];

/// The soft limits of one key, user or team: a percent (1 to 100) per
/// watched limit, in `WATCHED` order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftLimits(Vec<(LimitKind, u8)>);

impl SoftLimits {
    /// Reads what an admin sent: an object of limit names and whole percents.
    /// `null` means none.
    pub fn parse(value: &Value) -> Result<SoftLimits, String> {
        let object = match value {
            Value::Null => return Ok(SoftLimits::default()),
            Value::Object(o) => o,
            _ => {
                return Err("alerts must be an object of limit names and percents, such as \
                     {\"daily_tokens\": 80}"
                    .into())
            }
        };
        let mut entries = Vec::new();
        for (name, percent) in object {
            let kind = watched(name)?;
            let percent = match percent.as_i64() {
                Some(p) if (1..=100).contains(&p) => p as u8,
                _ => {
                    return Err(format!(
                        "alerts.{name} must be a whole percent from 1 to 100, not {}",
                        shown(percent)
                    ))
                }
            };
            entries.push((kind, percent));
        }
        entries.sort_by_key(|(kind, _)| WATCHED.iter().position(|w| w == kind));
        Ok(SoftLimits(entries))
    }

    /// What the database holds; an entry it cannot read is left out rather
    /// than failing every read of the row.
    pub fn from_db(text: &str) -> SoftLimits {
        let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
            return SoftLimits::default();
        };
        let kept: Map<String, Value> = object
            .into_iter()
            .filter(|(name, percent)| SoftLimits::parse(&serde_json::json!({ name: percent })).is_ok())
            .collect();
        SoftLimits::parse(&Value::Object(kept)).unwrap_or_default()
    }

    pub fn to_db(&self) -> String {
        self.to_json().to_string()
    }

    /// `{"daily_tokens": 80}`, as the admin API shows it.
    pub fn to_json(&self) -> Value {
        Value::Object(self.0.iter().map(|(kind, p)| (kind.field().to_owned(), Value::from(*p))).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, kind: LimitKind) -> Option<u8> {
        self.0.iter().find(|(k, _)| *k == kind).map(|(_, p)| *p)
    }

    pub fn iter(&self) -> impl Iterator<Item = (LimitKind, u8)> + '_ {
        self.0.iter().copied()
    }

    /// From one percent per watched limit, blanks left out (the console's form).
    pub fn from_percents(percents: &[(LimitKind, Option<i64>)]) -> Result<SoftLimits, String> {
        let object: Map<String, Value> = percents
            .iter()
            .filter_map(|(kind, p)| p.map(|p| (kind.field().to_owned(), Value::from(p))))
            .collect();
        SoftLimits::parse(&Value::Object(object))
    }
}

/// The watched limit a name stands for, or why it cannot carry an alert.
fn watched(name: &str) -> Result<LimitKind, String> {
    match LimitKind::ALL.into_iter().find(|k| k.field() == name) {
        Some(kind) if WATCHED.contains(&kind) => Ok(kind),
        Some(_) => Err(format!(
            "alerts.{name}: per-minute and concurrency limits refill within a minute, so an alert on \
             them would fire all day; put alerts on daily_requests, daily_tokens, monthly_requests, \
             monthly_tokens or total_tokens"
        )),
        None => Err(format!(
            "alerts: '{}' is not a limit name (daily_requests, daily_tokens, monthly_requests, \
             monthly_tokens, total_tokens)",
            name.chars().take(64).collect::<String>()
        )),
    }
}

/// A value in an error message, cut short: a key holder chose it.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// The usage at which `percent` of `limit` is reached: rounded up, so 80% of
/// 11 requests is 9 (8.8 would be passed only at 9 anyway).
pub fn threshold(limit: i64, percent: u8) -> i64 {
    let limit = i128::from(limit.max(0));
    let reached = (limit * i128::from(percent) + 99) / 100;
    reached.min(i128::from(i64::MAX)) as i64
}

/// The start of the window a limit counts in now: the day's and the month's
/// in `APP_TZ`, and 0 for a lifetime limit, whose window never ends.
pub fn window_start(kind: LimitKind, windows: &Windows) -> i64 {
    match kind {
        LimitKind::DailyRequests | LimitKind::DailyTokens => windows.day.start,
        LimitKind::MonthlyRequests | LimitKind::MonthlyTokens => windows.month.start,
        _ => 0,
    }
}

/// One soft limit that usage has reached: the numbers its alert reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    pub kind: LimitKind,
    pub percent: u8,
    pub used: i64,
    pub threshold: i64,
    pub limit: i64,
    pub window_start: i64,
}

/// The soft limits that `used` (the usage with the request just settled)
/// stands at or past. Each is reported however long it has been reached: the
/// gate sends its alert once per window (`alerts_sent`), so the first
/// settlement that finds it reached sends it, even when the one that crossed
/// it was counted by another process, or its own view of the usage was a
/// little old.
pub fn reached(soft: &SoftLimits, limits: &Limits, used: &Usage, windows: &Windows) -> Vec<Reached> {
    soft.iter()
        .filter_map(|(kind, percent)| {
            let limit = limits.get(kind)?;
            let threshold = threshold(limit, percent);
            let used = used.used(kind);
            // A limit of 0 (threshold 0) admits nothing that could reach it.
            (threshold > 0 && used >= threshold).then_some(Reached {
                kind,
                percent,
                used,
                threshold,
                limit,
                window_start: window_start(kind, windows),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn soft_limits_take_whole_percents_on_watched_limits_only() {
        let soft = SoftLimits::parse(&json!({"monthly_tokens": 90, "daily_tokens": 80})).unwrap();
        assert_eq!(soft.to_json(), json!({"daily_tokens": 80, "monthly_tokens": 90}));
        assert_eq!(soft.get(LimitKind::DailyTokens), Some(80));
        assert_eq!(SoftLimits::parse(&json!(null)).unwrap(), SoftLimits::default());
        assert_eq!(SoftLimits::parse(&json!({})).unwrap(), SoftLimits::default());
        for bad in [
            json!({"daily_tokens": 0}),
            json!({"daily_tokens": 101}),
            json!({"daily_tokens": -1}),
            json!({"daily_tokens": 1.5}),
            json!({"daily_tokens": 80.0}),
            json!({"daily_tokens": "80"}),
            json!({"daily_tokens": null}),
            json!({"daily_tokens": 18446744073709551615u64}),
            json!({"weekly_tokens": 80}),
            json!({"requests_per_minute": 80}),
            json!({"tokens_per_minute": 80}),
            json!({"max_concurrent": 80}),
            json!([80]),
            json!("daily_tokens"),
            json!(80),
        ] {
            assert!(SoftLimits::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn what_the_database_holds_reads_back_and_junk_reads_as_none() {
        let soft = SoftLimits::parse(&json!({"total_tokens": 50})).unwrap();
        assert_eq!(SoftLimits::from_db(&soft.to_db()), soft);
        assert_eq!(SoftLimits::from_db("not json"), SoftLimits::default());
        assert_eq!(SoftLimits::from_db(r#"{"total_tokens": 50, "x": 1}"#), soft);
    }

    #[test]
    fn thresholds_round_up_and_never_overflow() {
        assert_eq!(threshold(1000, 80), 800);
        assert_eq!(threshold(11, 80), 9);
        assert_eq!(threshold(1, 1), 1);
        assert_eq!(threshold(0, 80), 0);
        assert_eq!(threshold(i64::MAX, 100), i64::MAX);
        assert_eq!(threshold(-5, 50), 0);
    }

    fn usage(day_tokens: i64, day_requests: i64) -> Usage {
        let mut u = Usage::default();
        u.day.tokens = day_tokens;
        u.day.requests = day_requests;
        u
    }

    #[test]
    fn reached_reports_the_numbers_of_each_soft_limit_at_or_past_its_threshold() {
        let windows =
            Windows::at(chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(), chrono_tz::UTC);
        let soft = SoftLimits::parse(&json!({"daily_tokens": 80, "daily_requests": 50})).unwrap();
        let limits = Limits { daily_tokens: Some(1000), daily_requests: Some(10), ..Default::default() };
        assert!(reached(&soft, &limits, &usage(799, 4), &windows).is_empty(), "below both");
        let hits = reached(&soft, &limits, &usage(850, 4), &windows);
        assert_eq!(
            hits,
            [Reached {
                kind: LimitKind::DailyTokens,
                percent: 80,
                used: 850,
                threshold: 800,
                limit: 1000,
                window_start: windows.day.start,
            }]
        );
        assert_eq!(reached(&soft, &limits, &usage(5000, 5), &windows).len(), 2, "past 100% at once");
        let unlimited = Limits::default();
        assert!(reached(&soft, &unlimited, &usage(900, 9), &windows).is_empty());
        let zero = Limits { daily_tokens: Some(0), ..Default::default() };
        assert!(reached(&soft, &zero, &usage(0, 0), &windows).is_empty(), "a limit of 0");
    }

    #[test]
    fn lifetime_limits_have_one_window_and_the_others_their_own() {
        let windows =
            Windows::at(chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(), chrono_tz::UTC);
        assert_eq!(window_start(LimitKind::TotalTokens, &windows), 0);
        assert_eq!(window_start(LimitKind::MonthlyRequests, &windows), windows.month.start);
        assert_eq!(window_start(LimitKind::DailyTokens, &windows), windows.day.start);
    }
}
