//! The soft-limit fields of the key, user and team forms: one percent per
//! limit that can carry an alert, empty for none.

use super::Form;
use crate::admin::keys::FieldError;
use crate::domain::alerts::{SoftLimits, WATCHED};
use crate::domain::limits::LimitKind;

/// A field as (form name, label, text).
pub type AlertField = (&'static str, &'static str, String);

fn name(kind: LimitKind) -> &'static str {
    match kind {
        LimitKind::DailyRequests => "alert_daily_requests",
        LimitKind::DailyTokens => "alert_daily_tokens",
        LimitKind::MonthlyRequests => "alert_monthly_requests",
        LimitKind::MonthlyTokens => "alert_monthly_tokens",
        _ => "alert_total_tokens",
    }
}

fn label(kind: LimitKind) -> &'static str {
    match kind {
        LimitKind::DailyRequests => "% of requests per day",
        LimitKind::DailyTokens => "% of tokens per day",
        LimitKind::MonthlyRequests => "% of requests per month",
        LimitKind::MonthlyTokens => "% of tokens per month",
        _ => "% of tokens in all",
    }
}

/// The fields as stored.
pub fn stored(soft: &SoftLimits) -> Vec<AlertField> {
    let text = |kind| soft.get(kind).map(|p| p.to_string()).unwrap_or_default();
    WATCHED.iter().map(|&kind| (name(kind), label(kind), text(kind))).collect()
}

/// The fields as typed.
pub fn typed(form: &Form) -> Vec<AlertField> {
    WATCHED.iter().map(|&kind| (name(kind), label(kind), form.get(name(kind)).to_owned())).collect()
}

/// The soft limits the form sets; `None` when it has none of the fields
/// (a form that does not show them leaves them as they are).
pub fn read(form: &Form, errors: &mut Vec<FieldError>) -> Option<SoftLimits> {
    if !WATCHED.iter().any(|&kind| form.has(name(kind))) {
        return None;
    }
    let mut percents = Vec::new();
    for kind in WATCHED {
        let text = form.get(name(kind)).trim();
        let percent = match text {
            "" => None,
            _ => match text.parse::<i64>() {
                Ok(p) => Some(p),
                Err(_) => {
                    errors.push(FieldError::new("alerts", format!("'{text}' is not a whole percent")));
                    return None;
                }
            },
        };
        percents.push((kind, percent));
    }
    SoftLimits::from_percents(&percents).map_err(|e| errors.push(FieldError::new("alerts", e))).ok()
}
