//! `/api/refusals`: refused proxy requests counted per hour, key and reason,
//! or summed per one of them. Counts reach the database every
//! `REFUSALS_FLUSH_MS`, so the last few seconds are not in them yet.

use super::Reply;
use crate::admin::audit_query::{refusal_row_json, RefusalQuery};
use crate::admin::auth::ApiAdmin;
use crate::admin::AdminState;
use actix_web::web::{Data, Query};
use actix_web::HttpResponse;
use serde_json::{json, Value};

pub async fn refusals(_: ApiAdmin, state: Data<AdminState>, query: Query<RefusalQuery>) -> Reply {
    let (filter, group) = query.filter(state.settings.app_tz)?;
    let rows: Vec<Value> =
        state.store.refusal_rows(&filter, group).await?.iter().map(|r| refusal_row_json(r, group)).collect();
    Ok(HttpResponse::Ok().json(json!({ "rows": rows })))
}
