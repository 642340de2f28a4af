//! `/api/alerts`: the alerts raised, as the console shows them, for scripts.

use super::Reply;
use crate::admin::auth::ApiAdmin;
use crate::admin::error::AdminError;
use crate::admin::AdminState;
use crate::domain::time::{parse_time, rfc3339};
use actix_web::web::{Data, Path, Query};
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// RFC 3339 or a date; default: the last 24 hours.
    from: Option<String>,
    /// At most this many, newest first (default and most: 1000).
    limit: Option<i64>,
}

/// `GET /api/alerts`: `{"alerts": [{"id", "kind", "at", "delivered", "dismissed", "payload"}]}`.
pub async fn list_alerts(_: ApiAdmin, state: Data<AdminState>, query: Query<AlertsQuery>) -> Reply {
    let now = state.clock.now().timestamp();
    let since = match query.from.as_deref() {
        Some(text) => parse_time(text, state.settings.app_tz, false)
            .map_err(|e| AdminError::BadRequest(format!("from: {e}")))?,
        None => now - 24 * 3600,
    };
    let limit = query.limit.unwrap_or(1000).clamp(1, 1000);
    let rows = state.store.recent_alerts(since, limit, false).await?;
    let alerts: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "kind": r.kind,
                "at": rfc3339(r.created_at),
                "delivered": r.delivered_at.is_some(),
                "dismissed": r.dismissed_at.is_some(),
                "payload": serde_json::from_str::<Value>(&r.payload).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "alerts": alerts })))
}

/// `POST /api/alerts/{id}/dismiss`: 204, or 404 when no open alert has that id.
pub async fn dismiss_alert(_: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    if !state.store.dismiss_alert(*id, state.clock.now().timestamp()).await? {
        return Err(AdminError::NotFound(format!("no open alert with id {}", *id)));
    }
    Ok(HttpResponse::NoContent().finish())
}
