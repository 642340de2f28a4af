//! The usage log: filters, pages of 50 rows (the rows and pager swapped by
//! htmx as the filter changes), and the CSV export.

use super::{html_safe, render_swappable, Chrome, Nav, Page, Swappable};
use crate::admin::auth::Console;
use crate::admin::usage_filter::UsageQuery;
use crate::admin::AdminState;
use crate::domain::time::rfc3339;
use crate::domain::usage::Outcome;
use crate::store::UsageRow;
use actix_web::http::header;
use actix_web::web::{Data, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use chrono_tz::Tz;

const PAGE_SIZE: i64 = 50;

struct UsageRowView {
    time: String,
    key_id: i64,
    key_name: String,
    model: String,
    route: String,
    status: String,
    status_class: &'static str,
    prompt: i64,
    completion: i64,
    estimated: bool,
    latency: i64,
}

fn usage_view(r: &UsageRow, tz: Tz) -> UsageRowView {
    UsageRowView {
        time: chrono::DateTime::from_timestamp(r.created_at, 0)
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default(),
        key_id: r.key_id,
        key_name: r.key_name.clone(),
        model: r.model.clone(),
        route: r.route.clone(),
        status: r.status.clone(),
        status_class: match Outcome::parse(&r.status) {
            Some(Outcome::Ok) => "ok",
            Some(Outcome::ClientAborted | Outcome::Interrupted) => "aborted",
            _ => "failed",
        },
        prompt: r.prompt_tokens,
        completion: r.completion_tokens,
        estimated: r.estimated,
        latency: r.latency_ms,
    }
}

/// A table of usage rows, on the usage page and a key's page.
#[derive(Template)]
#[template(path = "admin/usage_rows.html")]
pub struct UsageRows {
    rows: Vec<UsageRowView>,
}

html_safe!(UsageRows);

impl UsageRows {
    pub fn new(rows: &[UsageRow], tz: Tz) -> UsageRows {
        UsageRows { rows: rows.iter().map(|r| usage_view(r, tz)).collect() }
    }
}

/// The rows and the pager: what the filter form swaps.
#[derive(Template)]
#[template(path = "admin/usage_partial.html")]
struct UsagePartial {
    rows: UsageRows,
    query: String,
    page: i64,
    prev_page: Option<i64>,
    next_page: Option<i64>,
}

html_safe!(UsagePartial);

#[derive(Template)]
#[template(path = "admin/usage.html")]
struct UsagePage {
    chrome: Chrome,
    key_options: Vec<(i64, String, bool)>,
    model: String,
    status: String,
    from: String,
    to: String,
    query: String,
    results: UsagePartial,
}

impl Swappable for UsagePage {
    type Partial = UsagePartial;
    fn partial(&self) -> &UsagePartial {
        &self.results
    }
}

pub async fn usage_page(
    req: HttpRequest,
    console: Console,
    state: Data<AdminState>,
    query: Query<UsageQuery>,
) -> Page {
    let page = query.page.unwrap_or(1).max(1);
    // One more row than shown tells whether there is a next page.
    let filter = query.filter_rows(&state, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)?;
    let mut rows = state.store.usage_rows(&filter).await?;
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let selected = filter.key_id;
    let key_options = state
        .store
        .list_keys()
        .await?
        .into_iter()
        .map(|k| (k.id, k.fields.name, Some(k.id) == selected))
        .collect();
    let results = UsagePartial {
        rows: UsageRows::new(&rows, state.settings.app_tz),
        query: query.query_string(),
        page,
        prev_page: (page > 1).then_some(page - 1),
        next_page: more.then_some(page + 1),
    };
    render_swappable(
        &req,
        &UsagePage {
            chrome: Chrome::new(&console.session, Nav::Usage),
            key_options,
            model: query.model.clone().unwrap_or_default(),
            status: query.status.clone().unwrap_or_default(),
            from: query.from.clone().unwrap_or_default(),
            to: query.to.clone().unwrap_or_default(),
            query: query.query_string(),
            results,
        },
    )
}

fn csv_field(text: &str) -> String {
    // Quote everything, and keep spreadsheet formulas from running.
    let text = if text.starts_with(['=', '+', '-', '@']) { format!("'{text}") } else { text.to_owned() };
    format!("\"{}\"", text.replace('"', "\"\""))
}

pub async fn usage_csv(_: Console, state: Data<AdminState>, query: Query<UsageQuery>) -> Page {
    let filter = query.filter_rows(&state, 100_000, 0)?;
    let mut out = String::from(
        "time,key_id,key_name,model,route,status,http_status,prompt_tokens,completion_tokens,total_tokens,estimated,latency_ms\n",
    );
    for r in state.store.usage_rows(&filter).await? {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            rfc3339(r.created_at),
            r.key_id,
            csv_field(&r.key_name),
            csv_field(&r.model),
            csv_field(&r.route),
            r.status,
            r.http_status,
            r.prompt_tokens,
            r.completion_tokens,
            r.total_tokens,
            r.estimated,
            r.latency_ms
        ));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"ollama-gate-usage.csv\""))
        .body(out))
}
