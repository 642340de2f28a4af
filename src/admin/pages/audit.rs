//! The audit log page: filters (from, to, actor, action) and pages of 50
//! entries, newest first; the entries and pager are swapped by htmx, and
//! the page works as a plain form without it.

use super::{html_safe, render_swappable, Chrome, Nav, Page, Swappable};
use crate::admin::audit_query::AuditQuery;
use crate::admin::auth::Console;
use crate::admin::AdminState;
use crate::domain::audit::{Via, ACTIONS};
use crate::store::AuditRow;
use actix_web::web::{Data, Query};
use actix_web::HttpRequest;
use askama::Template;
use chrono_tz::Tz;
use serde::Deserialize;

const PAGE_SIZE: i64 = 50;

struct EntryView {
    time: String,
    actor: String,
    address: String,
    action: String,
    target: String,
    before: String,
    after: String,
}

fn entry_view(r: &AuditRow, tz: Tz) -> EntryView {
    EntryView {
        time: chrono::DateTime::from_timestamp(r.at, 0)
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default(),
        actor: r.actor.clone(),
        address: r.address.clone().unwrap_or_default(),
        action: r.action.clone(),
        target: r.target.clone().unwrap_or_default(),
        before: r.before.clone().unwrap_or_default(),
        after: r.after.clone().unwrap_or_default(),
    }
}

/// The entries and the pager: what the pager's links swap.
#[derive(Template)]
#[template(path = "admin/audit_partial.html")]
struct AuditPartial {
    entries: Vec<EntryView>,
    query: String,
    page: i64,
    prev_page: Option<i64>,
    next_page: Option<i64>,
}

html_safe!(AuditPartial);

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    chrome: Chrome,
    actor_options: Vec<(&'static str, bool)>,
    action_options: Vec<(&'static str, bool)>,
    from: String,
    to: String,
    results: AuditPartial,
}

impl Swappable for AuditPage {
    type Partial = AuditPartial;
    fn partial(&self) -> &AuditPartial {
        &self.results
    }
}

/// The page's query: the API's filters and a page number.
#[derive(Debug, Default, Deserialize)]
pub struct AuditPageQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub page: Option<i64>,
}

impl AuditPageQuery {
    fn query_string(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in
            [("from", &self.from), ("to", &self.to), ("actor", &self.actor), ("action", &self.action)]
        {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }
}

pub async fn audit_page(
    req: HttpRequest,
    console: Console,
    state: Data<AdminState>,
    query: Query<AuditPageQuery>,
) -> Page {
    let page = query.page.unwrap_or(1).clamp(1, 1_000_000);
    let api = AuditQuery {
        from: query.from.clone(),
        to: query.to.clone(),
        actor: query.actor.clone(),
        action: query.action.clone(),
        // One more entry than shown tells whether there is a next page.
        limit: Some((PAGE_SIZE + 1).to_string()),
        offset: Some(((page - 1) * PAGE_SIZE).to_string()),
    };
    let tz = state.settings.app_tz;
    let filter = api.filter(tz)?;
    let mut rows = state.store.audit_rows(&filter).await?;
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let chosen = |v: &Option<String>, option: &str| v.as_deref() == Some(option);
    let results = AuditPartial {
        entries: rows.iter().map(|r| entry_view(r, tz)).collect(),
        query: query.query_string(),
        page,
        prev_page: (page > 1).then_some(page - 1),
        next_page: more.then_some(page + 1),
    };
    render_swappable(
        &req,
        &AuditPage {
            chrome: Chrome::new(&console.session, Nav::Audit),
            actor_options: Via::ALL.iter().map(|v| (v.as_str(), chosen(&query.actor, v.as_str()))).collect(),
            action_options: ACTIONS.iter().map(|a| (*a, chosen(&query.action, a))).collect(),
            from: query.from.clone().unwrap_or_default(),
            to: query.to.clone().unwrap_or_default(),
            results,
        },
    )
}
