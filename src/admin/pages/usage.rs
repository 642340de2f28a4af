//! The usage log: filters, pages of 50 rows (the rows and pager swapped by
//! htmx as the filter changes), and the CSV export.

use super::names::Names;
use super::{html_safe, render_swappable, Chrome, Nav, Page, Swappable};
use crate::admin::auth::Console;
use crate::admin::error::{AdminError, PageError};
use crate::admin::usage_filter::UsageQuery;
use crate::admin::usage_groups::{grouped, Group, Totals, GROUP_BY};
use crate::admin::AdminState;
use crate::domain::time::rfc3339;
use crate::domain::usage::Outcome;
use crate::store::{UsageFilter, UsageRow};
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
    /// Who the request was for when it ran: (id, today's name).
    user: Option<(i64, String)>,
    model: String,
    route: String,
    status: String,
    status_class: &'static str,
    prompt: i64,
    completion: i64,
    estimated: bool,
    latency: i64,
    /// Empty on rows from before request ids.
    request_id: String,
}

fn usage_view(r: &UsageRow, tz: Tz, users: &Names) -> UsageRowView {
    UsageRowView {
        time: chrono::DateTime::from_timestamp(r.created_at, 0)
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default(),
        key_id: r.key_id,
        key_name: r.key_name.clone(),
        user: users.link(r.user_id),
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
        request_id: r.request_id.clone().unwrap_or_default(),
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
    /// `users` names the users the rows were for.
    pub fn new(rows: &[UsageRow], tz: Tz, users: &Names) -> UsageRows {
        UsageRows { rows: rows.iter().map(|r| usage_view(r, tz, users)).collect() }
    }
}

/// One group's totals, with a link to its own page when it has one.
struct GroupView {
    label: String,
    href: Option<String>,
    totals: Totals,
}

fn group_view(group: Group, totals: Totals) -> GroupView {
    let (label, href) = match group {
        Group::Hour(t) => (rfc3339(t), None),
        Group::Day(d) | Group::Model(d) => (d, None),
        Group::Key(id, name) => (name, Some(format!("/keys/{id}"))),
        Group::User(None, _) => ("no user".to_owned(), None),
        Group::Team(None, _) => ("no team".to_owned(), None),
        Group::User(Some(id), name) => person(id, name, "users"),
        Group::Team(Some(id), name) => person(id, name, "teams"),
    };
    GroupView { label, href, totals }
}

fn person(id: i64, name: Option<String>, section: &str) -> (String, Option<String>) {
    match name {
        Some(name) => (name, Some(format!("/{section}/{id}"))),
        None => (format!("#{id} (deleted)"), None),
    }
}

/// The rows and the pager, or the totals per group: what the filter form swaps.
#[derive(Template)]
#[template(path = "admin/usage_partial.html")]
struct UsagePartial {
    /// What the rows are grouped by, when they are.
    group_by: Option<&'static str>,
    groups: Vec<GroupView>,
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
    user_options: Vec<(i64, String, bool)>,
    team_options: Vec<(i64, String, bool)>,
    group_options: Vec<(&'static str, &'static str, bool)>,
    model: String,
    status: String,
    from: String,
    to: String,
    query: String,
    results: UsagePartial,
    /// Refused requests in the filtered period (and key).
    refused: super::refusals::RefusalCounts,
}

impl Swappable for UsagePage {
    type Partial = UsagePartial;
    fn partial(&self) -> &UsagePartial {
        &self.results
    }
}

/// Which `group_by` the query asks for: `None` for rows, an error for a
/// way usage does not group.
fn group_by(query: &UsageQuery) -> Result<Option<&'static str>, AdminError> {
    match query.group_by.as_deref().filter(|g| !g.is_empty()) {
        None => Ok(None),
        Some(g) => GROUP_BY.into_iter().find(|x| *x == g).map(Some).ok_or_else(|| {
            AdminError::BadRequest(format!("group_by '{g}' is not one of {}", GROUP_BY.join(", ")))
        }),
    }
}

/// (id, name, selected) for a filter's choices.
fn options(named: Vec<(i64, String)>, selected: Option<i64>) -> Vec<(i64, String, bool)> {
    named.into_iter().map(|(id, name)| (id, name, Some(id) == selected)).collect()
}

pub async fn usage_page(
    req: HttpRequest,
    console: Console,
    state: Data<AdminState>,
    query: Query<UsageQuery>,
) -> Page {
    let page = query.page.unwrap_or(1).max(1);
    let by = group_by(&query)?;
    // One more row than shown tells whether there is a next page.
    let filter = query.filter_rows(&state, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)?;
    let users = Names::users(&state).await?;
    let tz = state.settings.app_tz;
    let (rows, groups, more) = match by {
        None => {
            let mut rows = state.store.usage_rows(&filter).await?;
            let more = rows.len() as i64 > PAGE_SIZE;
            rows.truncate(PAGE_SIZE as usize);
            (rows, vec![], more)
        }
        Some(g) => {
            let groups = grouped(state.store.as_ref(), &filter, tz, g).await?;
            (vec![], groups.into_iter().map(|(g, t)| group_view(g, t)).collect(), false)
        }
    };
    let keys = state.store.list_keys().await?.into_iter().map(|k| (k.id, k.fields.name)).collect();
    let teams = Names::teams(&state).await?;
    let group_options = std::iter::once(("", "each request"))
        .chain(GROUP_BY.map(|g| (g, g)))
        .map(|(v, l)| (v, l, Some(v) == by.or(Some(""))))
        .collect();
    let results = UsagePartial {
        group_by: by,
        groups,
        rows: UsageRows::new(&rows, tz, &users),
        query: query.query_string(),
        page,
        prev_page: (page > 1 && by.is_none()).then_some(page - 1),
        next_page: more.then_some(page + 1),
    };
    render_swappable(
        &req,
        &UsagePage {
            chrome: Chrome::new(&console.session, Nav::Usage),
            key_options: options(keys, filter.key_id),
            user_options: users.options(filter.user_id),
            team_options: teams.options(filter.team_id),
            group_options,
            model: query.model.clone().unwrap_or_default(),
            status: query.status.clone().unwrap_or_default(),
            from: query.from.clone().unwrap_or_default(),
            to: query.to.clone().unwrap_or_default(),
            query: query.query_string(),
            results,
            refused: super::refusals::RefusalCounts::load(
                &state,
                "Refused requests in this period",
                filter.key_id,
                filter.from,
                filter.to,
            )
            .await?,
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
    let out = match group_by(&query)? {
        None => rows_csv(&state, &filter).await?,
        Some(g) => groups_csv(&state, &filter, g).await?,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"ollama-gate-usage.csv\""))
        .body(out))
}

async fn rows_csv(state: &AdminState, filter: &UsageFilter) -> Result<String, PageError> {
    let users = Names::users(state).await?;
    let mut out = String::from(
        // New columns go at the end: spreadsheets and scripts read by position.
        "time,key_id,key_name,model,route,status,http_status,prompt_tokens,completion_tokens,total_tokens,\
         estimated,latency_ms,user_id,user_name,team_id,weighted_tokens,request_id\n",
    );
    let id = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in state.store.usage_rows(filter).await? {
        let user_name = r.user_id.and_then(|u| users.get(u)).unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
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
            r.latency_ms,
            id(r.user_id),
            csv_field(user_name),
            id(r.team_id),
            r.weighted_tokens,
            csv_field(r.request_id.as_deref().unwrap_or_default()),
        ));
    }
    Ok(out)
}

async fn groups_csv(state: &AdminState, filter: &UsageFilter, by: &str) -> Result<String, PageError> {
    let mut out =
        format!("{by},{by}_name,requests,prompt_tokens,completion_tokens,total_tokens,weighted_tokens\n");
    for (group, t) in grouped(state.store.as_ref(), filter, state.settings.app_tz, by).await? {
        let (id, name) = match group {
            Group::Hour(h) => (rfc3339(h), String::new()),
            Group::Day(d) | Group::Model(d) => (d, String::new()),
            Group::Key(id, name) => (id.to_string(), name),
            Group::User(id, name) | Group::Team(id, name) => {
                (id.map(|i| i.to_string()).unwrap_or_default(), name.unwrap_or_default())
            }
        };
        out.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            csv_field(&id),
            csv_field(&name),
            t.requests,
            t.prompt_tokens,
            t.completion_tokens,
            t.total_tokens,
            t.weighted_tokens
        ));
    }
    Ok(out)
}
