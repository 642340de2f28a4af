//! Alerts in the console: the dashboard's notices of the last day, each
//! dismissible, and the count beside the Dashboard link.

use super::{see_other, Page};
use crate::admin::auth::{Console, CsrfForm};
use crate::admin::error::PageError;
use crate::admin::AdminState;
use crate::domain::time::rfc3339;
use crate::store::alerts::AlertRow;
use actix_web::web::{Data, Path};
use actix_web::HttpRequest;
use askama::Template;
use serde_json::Value;

/// How far back the console shows alerts.
pub const SHOWN_FOR_SECS: i64 = 24 * 3600;
/// The most the dashboard lists at once.
const SHOWN_AT_MOST: i64 = 50;

/// One alert as a notice.
pub struct AlertView {
    pub id: i64,
    pub at: String,
    pub text: String,
    /// `down`, `up` or `soft`: the notice's look.
    pub class: &'static str,
    pub delivered: bool,
}

/// An alert in words, from its payload.
pub fn describe(kind: &str, payload: &Value) -> String {
    let text = |name: &str| payload[name].as_str().unwrap_or("?").to_owned();
    let number = |name: &str| payload[name].as_i64().unwrap_or_default();
    match kind {
        "soft_limit" => format!(
            "{} '{}' reached {}% of its {} limit: {} of {}",
            text("level"),
            text("name"),
            number("percent"),
            text("limit"),
            number("used"),
            number("limit_value"),
        ),
        "upstream_down" => format!("Backend '{}' is down: {}", text("backend"), text("reason")),
        "upstream_up" => format!("Backend '{}' is back up", text("backend")),
        other => format!("{other} alert"),
    }
}

fn view(row: &AlertRow) -> AlertView {
    let payload: Value = serde_json::from_str(&row.payload).unwrap_or_default();
    AlertView {
        id: row.id,
        at: rfc3339(row.created_at),
        text: describe(&row.kind, &payload),
        class: match row.kind.as_str() {
            "upstream_down" => "down",
            "upstream_up" => "up",
            _ => "soft",
        },
        delivered: row.delivered_at.is_some(),
    }
}

/// The undismissed alerts of the last day, newest first.
pub async fn open_alerts(state: &AdminState) -> Result<Vec<AlertView>, PageError> {
    let since = state.clock.now().timestamp() - SHOWN_FOR_SECS;
    let rows = state.store.recent_alerts(since, SHOWN_AT_MOST, true).await?;
    Ok(rows.iter().map(view).collect())
}

#[derive(Template)]
#[template(path = "admin/alert_badge.html")]
struct Badge {
    open: i64,
}

/// `GET /alerts/badge`: the count the top bar loads beside Dashboard (empty when none).
pub async fn badge(_: Console, state: Data<AdminState>) -> Page {
    let since = state.clock.now().timestamp() - SHOWN_FOR_SECS;
    let open = state.store.open_alert_count(since).await?;
    super::render(&Badge { open })
}

/// `POST /alerts/{id}/dismiss`, then back to the dashboard.
pub async fn dismiss(req: HttpRequest, state: Data<AdminState>, id: Path<i64>, _: CsrfForm) -> Page {
    state.store.dismiss_alert(*id, state.clock.now().timestamp()).await?;
    Ok(see_other(&req, "/#alerts"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn alerts_read_as_sentences() {
        let soft = json!({"level": "team", "name": "physics", "percent": 80, "limit": "daily_tokens",
                          "used": 850, "limit_value": 1000});
        assert_eq!(
            describe("soft_limit", &soft),
            "team 'physics' reached 80% of its daily_tokens limit: 850 of 1000"
        );
        let down = json!({"backend": "gpu1", "reason": "connection refused"});
        assert_eq!(describe("upstream_down", &down), "Backend 'gpu1' is down: connection refused");
        assert_eq!(describe("upstream_up", &down), "Backend 'gpu1' is back up");
        assert_eq!(describe("upstream_down", &json!(null)), "Backend '?' is down: ?");
    }
}
