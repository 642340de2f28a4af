//! Usage against limits as small meters: one per limit that is set, for a
//! key, a user, a team or one of their limits per model.

use super::html_safe;
use crate::domain::limits::{LimitKind, Limits, Usage};
use crate::domain::people::Budget;
use crate::domain::windows::Windows;
use askama::Template;

pub struct Bar {
    pub label: &'static str,
    pub used: i64,
    pub limit: i64,
    /// Where the meter turns to a warning: at 90 %.
    pub high: i64,
}

fn label(kind: LimitKind) -> &'static str {
    match kind {
        LimitKind::RequestsPerMinute => "requests/min",
        LimitKind::TokensPerMinute => "tokens/min",
        LimitKind::DailyRequests => "requests today",
        LimitKind::DailyTokens => "tokens today",
        LimitKind::MonthlyRequests => "requests/month",
        LimitKind::MonthlyTokens => "tokens/month",
        LimitKind::TotalTokens => "tokens in all",
        LimitKind::Concurrency => "in flight",
    }
}

/// The meters of the limits that are set; "unlimited" when none is.
#[derive(Template)]
#[template(path = "admin/bars.html")]
pub struct Bars {
    pub bars: Vec<Bar>,
}

html_safe!(Bars);

impl Bars {
    pub fn new(limits: &Limits, usage: &Usage) -> Bars {
        let bars = LimitKind::ALL
            .into_iter()
            .filter_map(|kind| {
                let limit = limits.get(kind)?;
                Some(Bar { label: label(kind), used: usage.used(kind), limit, high: limit * 9 / 10 })
            })
            .collect();
        Bars { bars }
    }

    pub fn of(budget: &Budget, w: &Windows) -> Bars {
        Bars::new(&budget.limits, &budget.usage_at(w))
    }
}

/// A key's, user's or team's limits and those per model, one row each.
#[derive(Template)]
#[template(path = "admin/limit_table.html")]
pub struct LimitTable {
    pub rows: Vec<(String, Bars)>,
}

html_safe!(LimitTable);

impl LimitTable {
    /// `own` first ("own limits"), then each per-model entry by its pattern.
    pub fn new(own: Bars, models: &[Budget], w: &Windows) -> LimitTable {
        let mut rows = vec![("own limits".to_owned(), own)];
        for b in models {
            rows.push((format!("on {}", b.model.as_deref().unwrap_or("?")), Bars::of(b, w)));
        }
        LimitTable { rows }
    }
}
