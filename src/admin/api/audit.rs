//! `/api/audit`: the audit log, newest first, filtered and paged.

use super::Reply;
use crate::admin::audit_query::{audit_row_json, AuditQuery};
use crate::admin::auth::ApiAdmin;
use crate::admin::AdminState;
use actix_web::web::{Data, Query};
use actix_web::HttpResponse;
use serde_json::{json, Value};

pub async fn audit_log(_: ApiAdmin, state: Data<AdminState>, query: Query<AuditQuery>) -> Reply {
    let filter = query.filter(state.settings.app_tz)?;
    let rows: Vec<Value> = state.store.audit_rows(&filter).await?.iter().map(audit_row_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "rows": rows })))
}
