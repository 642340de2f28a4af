//! OpenAI-style `x-ratelimit-*` headers and `Retry-After`.

use crate::domain::limits::{LimitKind, Limits, Usage};
use crate::domain::windows::Windows;
use actix_web::http::header::{HeaderName, HeaderValue};

/// Seconds until the refused limit has room again.
pub fn retry_after(kind: LimitKind, w: &Windows) -> i64 {
    match kind {
        LimitKind::RequestsPerMinute | LimitKind::TokensPerMinute => w.minute.seconds_left(w.now),
        LimitKind::DailyRequests | LimitKind::DailyTokens => w.day.seconds_left(w.now),
        LimitKind::MonthlyRequests | LimitKind::MonthlyTokens => w.month.seconds_left(w.now),
        // Lifetime quotas never reset on their own: a day is as good an answer as any.
        LimitKind::TotalTokens => 86_400,
        LimitKind::Concurrency => 1,
    }
}

/// The tightest request limit and the tightest token limit that apply, as
/// (limit, remaining, seconds to reset). Absent when the key has none.
#[cfg(test)]
pub fn headers(limits: &Limits, usage: &Usage, w: &Windows) -> Vec<(HeaderName, HeaderValue)> {
    headers_across(&[(*limits, *usage)], w)
}

/// `headers` for the tightest limits across every level (key, user, team,
/// and their entries for the model).
pub fn headers_across(levels: &[(Limits, Usage)], w: &Windows) -> Vec<(HeaderName, HeaderValue)> {
    let mut requests = Vec::with_capacity(3 * levels.len());
    let mut tokens = Vec::with_capacity(4 * levels.len());
    for (limits, usage) in levels {
        requests.extend([
            (limits.requests_per_minute, usage.minute.requests, Some(w.minute.seconds_left(w.now))),
            (limits.daily_requests, usage.day.requests, Some(w.day.seconds_left(w.now))),
            (limits.monthly_requests, usage.month.requests, Some(w.month.seconds_left(w.now))),
        ]);
        tokens.extend([
            (limits.tokens_per_minute, usage.minute.tokens, Some(w.minute.seconds_left(w.now))),
            (limits.daily_tokens, usage.day.tokens, Some(w.day.seconds_left(w.now))),
            (limits.monthly_tokens, usage.month.tokens, Some(w.month.seconds_left(w.now))),
            (limits.total_tokens, usage.total.tokens, None),
        ]);
    }
    let mut out = Vec::with_capacity(6);
    for (kind, candidates) in [("requests", &requests[..]), ("tokens", &tokens[..])] {
        let tightest = candidates
            .iter()
            .filter_map(|(limit, used, reset)| limit.map(|l| (l, l.saturating_sub(*used).max(0), *reset)))
            .min_by_key(|(_, remaining, _)| *remaining);
        if let Some((limit, remaining, reset)) = tightest {
            let mut push = |name: String, value: String| {
                if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                    out.push((n, v));
                }
            };
            push(format!("x-ratelimit-limit-{kind}"), limit.to_string());
            push(format!("x-ratelimit-remaining-{kind}"), remaining.to_string());
            push(format!("x-ratelimit-reset-{kind}"), reset.map_or_else(|| "never".into(), duration_text));
        }
    }
    out
}

/// OpenAI's spelling of a duration: `45s`, `6m0s`, `2h3m4s`.
fn duration_text(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn the_tightest_limit_is_reported() {
        let w = Windows::at(Utc.with_ymd_and_hms(2026, 5, 5, 12, 0, 30).unwrap(), chrono_tz::UTC);
        let limits = Limits { requests_per_minute: Some(10), daily_requests: Some(100), ..Limits::default() };
        let mut usage = Usage::default();
        usage.minute.requests = 2;
        usage.day.requests = 95;
        let h = headers(&limits, &usage, &w);
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.to_str().unwrap().to_owned());
        assert_eq!(get("x-ratelimit-limit-requests").as_deref(), Some("100"));
        assert_eq!(get("x-ratelimit-remaining-requests").as_deref(), Some("5"));
        assert_eq!(get("x-ratelimit-reset-requests").as_deref(), Some("11h59m30s"));
        assert_eq!(get("x-ratelimit-limit-tokens"), None);
        assert!(headers(&Limits::default(), &usage, &w).is_empty());
    }
}
