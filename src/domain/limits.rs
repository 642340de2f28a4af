//! Per-key limits and the usage they are measured against.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

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
        LimitKind::ALL.map(|kind| (kind.field(), self.get(kind)))
    }

    pub fn get(&self, kind: LimitKind) -> Option<i64> {
        // `Limits` is small and `Copy`: one match serves reading and writing.
        let mut copy = *self;
        *copy.slot(kind)
    }

    pub fn set(&mut self, kind: LimitKind, value: Option<i64>) {
        *self.slot(kind) = value;
    }

    fn slot(&mut self, kind: LimitKind) -> &mut Option<i64> {
        match kind {
            LimitKind::RequestsPerMinute => &mut self.requests_per_minute,
            LimitKind::TokensPerMinute => &mut self.tokens_per_minute,
            LimitKind::DailyRequests => &mut self.daily_requests,
            LimitKind::DailyTokens => &mut self.daily_tokens,
            LimitKind::MonthlyRequests => &mut self.monthly_requests,
            LimitKind::MonthlyTokens => &mut self.monthly_tokens,
            LimitKind::TotalTokens => &mut self.total_tokens,
            LimitKind::Concurrency => &mut self.max_concurrent,
        }
    }

    /// What is left of each limit (`None`: unlimited), by field name.
    pub fn remaining(&self, usage: &Usage) -> BTreeMap<&'static str, Option<i64>> {
        LimitKind::ALL
            .into_iter()
            .map(|kind| (kind.field(), self.get(kind).map(|limit| (limit - usage.used(kind)).max(0))))
            .collect()
    }

    /// Token estimation costs a tokenizer pass: skip it when nothing counts tokens.
    pub fn has_token_limit(&self) -> bool {
        self.tokens_per_minute.is_some()
            || self.daily_tokens.is_some()
            || self.monthly_tokens.is_some()
            || self.total_tokens.is_some()
    }

    pub fn apply(&mut self, patch: &LimitsPatch) {
        for kind in LimitKind::ALL {
            if let Some(value) = patch.get(kind) {
                *self.slot(kind) = value;
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

impl LimitsPatch {
    /// Every limit set to what `limits` says: replaces them all.
    pub fn all(limits: &Limits) -> LimitsPatch {
        LimitsPatch {
            requests_per_minute: Some(limits.requests_per_minute),
            tokens_per_minute: Some(limits.tokens_per_minute),
            daily_requests: Some(limits.daily_requests),
            daily_tokens: Some(limits.daily_tokens),
            monthly_requests: Some(limits.monthly_requests),
            monthly_tokens: Some(limits.monthly_tokens),
            total_tokens: Some(limits.total_tokens),
            max_concurrent: Some(limits.max_concurrent),
        }
    }

    /// `None`: leave alone; `Some(None)`: unlimited.
    fn get(&self, kind: LimitKind) -> Option<Option<i64>> {
        match kind {
            LimitKind::RequestsPerMinute => self.requests_per_minute,
            LimitKind::TokensPerMinute => self.tokens_per_minute,
            LimitKind::DailyRequests => self.daily_requests,
            LimitKind::DailyTokens => self.daily_tokens,
            LimitKind::MonthlyRequests => self.monthly_requests,
            LimitKind::MonthlyTokens => self.monthly_tokens,
            LimitKind::TotalTokens => self.total_tokens,
            LimitKind::Concurrency => self.max_concurrent,
        }
    }
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

impl Usage {
    /// What counts against one limit.
    pub fn used(&self, kind: LimitKind) -> i64 {
        match kind {
            LimitKind::RequestsPerMinute => self.minute.requests,
            LimitKind::TokensPerMinute => self.minute.tokens,
            LimitKind::DailyRequests => self.day.requests,
            LimitKind::DailyTokens => self.day.tokens,
            LimitKind::MonthlyRequests => self.month.requests,
            LimitKind::MonthlyTokens => self.month.tokens,
            LimitKind::TotalTokens => self.total.tokens,
            LimitKind::Concurrency => self.in_flight,
        }
    }
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
    /// Every limit, in the order admission checks them after concurrency.
    pub const ALL: [LimitKind; 8] = [
        LimitKind::RequestsPerMinute,
        LimitKind::TokensPerMinute,
        LimitKind::DailyRequests,
        LimitKind::DailyTokens,
        LimitKind::MonthlyRequests,
        LimitKind::MonthlyTokens,
        LimitKind::TotalTokens,
        LimitKind::Concurrency,
    ];

    /// The limit's name in the API, the forms, the CLI and the headers.
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

    /// The limit in words, for refusals: `daily tokens`.
    pub fn label(self) -> &'static str {
        match self {
            LimitKind::RequestsPerMinute => "requests per minute",
            LimitKind::TokensPerMinute => "tokens per minute",
            LimitKind::DailyRequests => "daily requests",
            LimitKind::DailyTokens => "daily tokens",
            LimitKind::MonthlyRequests => "monthly requests",
            LimitKind::MonthlyTokens => "monthly tokens",
            LimitKind::TotalTokens => "total tokens",
            LimitKind::Concurrency => "requests in flight",
        }
    }

    /// Token limits are measured in tokens; the others in requests.
    pub fn counts_tokens(self) -> bool {
        matches!(
            self,
            LimitKind::TokensPerMinute
                | LimitKind::DailyTokens
                | LimitKind::MonthlyTokens
                | LimitKind::TotalTokens
        )
    }

    /// Per-minute and concurrency limits pass by themselves soon; the others
    /// are a quota that is spent (OpenAI's `insufficient_quota`).
    pub fn is_rate(self) -> bool {
        matches!(self, LimitKind::RequestsPerMinute | LimitKind::TokensPerMinute | LimitKind::Concurrency)
    }
}

/// The first limit that admitting one more request reserving `tokens` would break.
pub fn first_violation(limits: &Limits, usage: &Usage, tokens: i64) -> Option<LimitKind> {
    // Concurrency first: it passes by itself soonest, so it is the most useful to report.
    let order = std::iter::once(LimitKind::Concurrency).chain(LimitKind::ALL.into_iter().take(7));
    order.into_iter().find(|&kind| {
        let adding = if kind.counts_tokens() { tokens } else { 1 };
        limits.get(kind).is_some_and(|limit| usage.used(kind) + adding > limit)
    })
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
