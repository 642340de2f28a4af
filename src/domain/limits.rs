//! Per-key limits and the usage they are measured against.

use serde::{Deserialize, Deserializer, Serialize};

/// Every limit a key can carry. `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default)]
    pub requests_per_minute: Option<i64>,
    #[serde(default)]
    pub tokens_per_minute: Option<i64>,
    #[serde(default)]
    pub daily_requests: Option<i64>,
    #[serde(default)]
    pub daily_tokens: Option<i64>,
    #[serde(default)]
    pub monthly_requests: Option<i64>,
    #[serde(default)]
    pub monthly_tokens: Option<i64>,
    #[serde(default)]
    pub total_tokens: Option<i64>,
    #[serde(default)]
    pub max_concurrent: Option<i64>,
}

impl Limits {
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in self.named() {
            if let Some(v) = value {
                if v < 0 {
                    return Err(format!("limit {name} must be 0 or more, or null for unlimited"));
                }
            }
        }
        Ok(())
    }

    pub fn named(&self) -> [(&'static str, Option<i64>); 8] {
        [
            ("requests_per_minute", self.requests_per_minute),
            ("tokens_per_minute", self.tokens_per_minute),
            ("daily_requests", self.daily_requests),
            ("daily_tokens", self.daily_tokens),
            ("monthly_requests", self.monthly_requests),
            ("monthly_tokens", self.monthly_tokens),
            ("total_tokens", self.total_tokens),
            ("max_concurrent", self.max_concurrent),
        ]
    }

    /// Token estimation costs a tokenizer pass: skip it when nothing counts tokens.
    pub fn has_token_limit(&self) -> bool {
        self.tokens_per_minute.is_some()
            || self.daily_tokens.is_some()
            || self.monthly_tokens.is_some()
            || self.total_tokens.is_some()
    }

    pub fn apply(&mut self, patch: &LimitsPatch) {
        let fields: [(&mut Option<i64>, Option<Option<i64>>); 8] = [
            (&mut self.requests_per_minute, patch.requests_per_minute),
            (&mut self.tokens_per_minute, patch.tokens_per_minute),
            (&mut self.daily_requests, patch.daily_requests),
            (&mut self.daily_tokens, patch.daily_tokens),
            (&mut self.monthly_requests, patch.monthly_requests),
            (&mut self.monthly_tokens, patch.monthly_tokens),
            (&mut self.total_tokens, patch.total_tokens),
            (&mut self.max_concurrent, patch.max_concurrent),
        ];
        for (slot, change) in fields {
            if let Some(value) = change {
                *slot = value;
            }
        }
    }
}

/// A change to limits: an absent field is left alone, `null` means unlimited.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    #[serde(default, deserialize_with = "present")]
    pub requests_per_minute: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub tokens_per_minute: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub daily_requests: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub daily_tokens: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub monthly_requests: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub monthly_tokens: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub total_tokens: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub max_concurrent: Option<Option<i64>>,
}

/// Distinguishes `"field": null` (Some(None)) from an absent field (None).
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Requests and tokens counted in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    pub requests: i64,
    pub tokens: i64,
}

/// A key's usage in the windows that are current now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub minute: Count,
    pub day: Count,
    pub month: Count,
    pub total: Count,
    #[serde(skip)]
    pub in_flight: i64,
}

/// Which limit refused an admission. Decides the 429's code and Retry-After.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    RequestsPerMinute,
    TokensPerMinute,
    DailyRequests,
    DailyTokens,
    MonthlyRequests,
    MonthlyTokens,
    TotalTokens,
    Concurrency,
}

impl LimitKind {
    pub fn field(self) -> &'static str {
        match self {
            LimitKind::RequestsPerMinute => "requests_per_minute",
            LimitKind::TokensPerMinute => "tokens_per_minute",
            LimitKind::DailyRequests => "daily_requests",
            LimitKind::DailyTokens => "daily_tokens",
            LimitKind::MonthlyRequests => "monthly_requests",
            LimitKind::MonthlyTokens => "monthly_tokens",
            LimitKind::TotalTokens => "total_tokens",
            LimitKind::Concurrency => "max_concurrent",
        }
    }

    /// Per-minute and concurrency limits pass by themselves soon; the others
    /// are a quota that is spent (OpenAI's `insufficient_quota`).
    pub fn is_rate(self) -> bool {
        matches!(self, LimitKind::RequestsPerMinute | LimitKind::TokensPerMinute | LimitKind::Concurrency)
    }
}

/// The first limit that admitting one more request reserving `tokens` would break.
pub fn first_violation(limits: &Limits, usage: &Usage, tokens: i64) -> Option<LimitKind> {
    let over = |limit: Option<i64>, value: i64| limit.is_some_and(|l| value > l);
    let checks = [
        (LimitKind::Concurrency, over(limits.max_concurrent, usage.in_flight + 1)),
        (LimitKind::RequestsPerMinute, over(limits.requests_per_minute, usage.minute.requests + 1)),
        (LimitKind::TokensPerMinute, over(limits.tokens_per_minute, usage.minute.tokens + tokens)),
        (LimitKind::DailyRequests, over(limits.daily_requests, usage.day.requests + 1)),
        (LimitKind::DailyTokens, over(limits.daily_tokens, usage.day.tokens + tokens)),
        (LimitKind::MonthlyRequests, over(limits.monthly_requests, usage.month.requests + 1)),
        (LimitKind::MonthlyTokens, over(limits.monthly_tokens, usage.month.tokens + tokens)),
        (LimitKind::TotalTokens, over(limits.total_tokens, usage.total.tokens + tokens)),
    ];
    checks.into_iter().find(|(_, broken)| *broken).map(|(kind, _)| kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_of_zero_refuses_the_first_request() {
        let limits = Limits { daily_requests: Some(0), ..Limits::default() };
        assert_eq!(first_violation(&limits, &Usage::default(), 0), Some(LimitKind::DailyRequests));
    }

    #[test]
    fn the_reservation_counts_against_token_limits() {
        let limits = Limits { daily_tokens: Some(100), ..Limits::default() };
        let mut usage = Usage::default();
        usage.day.tokens = 90;
        assert_eq!(first_violation(&limits, &usage, 10), None);
        assert_eq!(first_violation(&limits, &usage, 11), Some(LimitKind::DailyTokens));
    }

    #[test]
    fn a_patch_distinguishes_null_from_absent() {
        let mut limits = Limits { daily_tokens: Some(5), daily_requests: Some(7), ..Limits::default() };
        let patch: LimitsPatch =
            serde_json::from_str(r#"{"daily_tokens": null, "monthly_tokens": 9}"#).unwrap();
        limits.apply(&patch);
        assert_eq!(limits.daily_tokens, None);
        assert_eq!(limits.daily_requests, Some(7));
        assert_eq!(limits.monthly_tokens, Some(9));
    }
}
