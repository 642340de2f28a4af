//! The usage log: filters, pages of 50 rows (the rows and pager swapped by
//! htmx as the filter changes), and the CSV export.

use super::names::Names;
use super::shown;
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
use std::collections::HashSet;

const PAGE_SIZE: i64 = 50;

struct UsageRowView {
    /// UTC for the `<time datetime=>`, then as the console shows times.
    utc: String,
    time: String,
    key_id: i64,
    key_name: String,
    /// The key is gone: its row shows as text, not a link to a missing page.
    key_deleted: bool,
    /// Who the request was for when it ran: (still exists, id, today's name).
    user: Option<(bool, i64, String)>,
    model: String,
    route: String,
    status: String,
    status_class: &'static str,
    prompt: String,
    completion: String,
    estimated: bool,
    latency: String,
    /// Empty on rows from before request ids.
    request_id: String,
}

fn usage_view(r: &UsageRow, tz: Tz, users: &Names) -> UsageRowView {
    UsageRowView {
        utc: shown::utc(r.created_at),
        time: shown::time(r.created_at, tz),
        key_id: r.key_id,
        key_name: r.key_name.clone(),
        key_deleted: false,
        // Only users who still exist get a link; a deleted one reads `#id (deleted)`.
        user: r.user_id.map(|id| (users.get(id).is_some(), id, users.name(id))),
        model: r.model.clone(),
        route: r.route.clone(),
        status: r.status.clone(),
        status_class: match Outcome::parse(&r.status) {
            Some(Outcome::Ok) => "ok",
            Some(Outcome::ClientAborted | Outcome::Interrupted) => "aborted",
            _ => "failed",
        },
        prompt: shown::number(r.prompt_tokens),
        completion: shown::number(r.completion_tokens),
        estimated: r.estimated,
        latency: shown::number(r.latency_ms),
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

    /// Marks the rows of keys not among `live` (the ids of today's keys) as deleted.
    pub fn with_live_keys(mut self, live: &HashSet<i64>) -> UsageRows {
        for r in &mut self.rows {
            r.key_deleted = !live.contains(&r.key_id);
        }
        self
    }
}

/// One group's totals, with a link to its own page when it has one.
struct GroupView {
    /// The hour's start in UTC, for `<time datetime=>`, on hourly groups.
    utc: Option<String>,
    label: String,
    href: Option<String>,
    /// Requests, prompt, completion, total and weighted tokens, as shown.
    totals: [String; 5],
}

fn group_view(group: Group, t: Totals, tz: Tz, live_keys: &HashSet<i64>) -> GroupView {
    let mut utc = None;
    let (label, href) = match group {
        Group::Hour(h) => {
            utc = Some(shown::utc(h));
            (shown::minute(h, tz), None)
        }
        Group::Day(d) | Group::Model(d) => (d, None),
        Group::Key(id, name) if live_keys.contains(&id) => (name, Some(format!("/keys/{id}"))),
        Group::Key(id, name) if name.is_empty() => (format!("deleted key #{id}"), None),
        Group::Key(id, name) => (format!("deleted key #{id} ({name})"), None),
        Group::User(None, _) => ("no user".to_owned(), None),
        Group::Team(None, _) => ("no team".to_owned(), None),
        Group::User(Some(id), name) => person(id, name, "users"),
        Group::Team(Some(id), name) => person(id, name, "teams"),
    };
    let totals = [t.requests, t.prompt_tokens, t.completion_tokens, t.total_tokens, t.weighted_tokens]
        .map(shown::number);
    GroupView { utc, label, href, totals }
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
    let keys = state.store.list_keys().await?;
    let live_keys: HashSet<i64> = keys.iter().map(|k| k.id).collect();
    let (rows, groups, more) = match by {
        None => {
            let mut rows = state.store.usage_rows(&filter).await?;
            let more = rows.len() as i64 > PAGE_SIZE;
            rows.truncate(PAGE_SIZE as usize);
            (rows, vec![], more)
        }
        Some(g) => {
            let groups = grouped(state.store.as_ref(), &filter, tz, g).await?;
            (vec![], groups.into_iter().map(|(g, t)| group_view(g, t, tz, &live_keys)).collect(), false)
        }
    };
    let keys = keys.into_iter().map(|k| (k.id, k.fields.name)).collect();
    let teams = Names::teams(&state).await?;
    let group_options = std::iter::once(("", "each request"))
        .chain(GROUP_BY.map(|g| (g, g)))
        .map(|(v, l)| (v, l, Some(v) == by.or(Some(""))))
        .collect();
    let results = UsagePartial {
        group_by: by,
        groups,
        rows: UsageRows::new(&rows, tz, &users).with_live_keys(&live_keys),
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

/// Rows read from the store per query while the CSV streams.
const CSV_BATCH: i64 = 1000;

pub async fn usage_csv(_: Console, state: Data<AdminState>, query: Query<UsageQuery>) -> Page {
    let filter = query.filter_rows(&state, CSV_BATCH, 0)?;
    let response = |mut r: actix_web::HttpResponseBuilder| {
        r.content_type("text/csv; charset=utf-8")
            .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"ollama-gate-usage.csv\""))
            .take()
    };
    match group_by(&query)? {
        None => {
            let users = Names::users(&state).await?;
            Ok(response(HttpResponse::Ok()).streaming(rows_csv(
                state.into_inner(),
                filter,
                std::sync::Arc::new(users),
            )))
        }
        Some(g) => Ok(response(HttpResponse::Ok()).body(groups_csv(&state, &filter, g).await?)),
    }
}

/// Where the export stands between batches.
enum Cursor {
    /// The header is still to be written.
    Start,
    /// Rows older than this id (all rows, at first) are still to come.
    Before(Option<i64>),
    /// An error line went out: the stream now fails, so the download does too.
    Failed(String),
    Done,
}

/// Every matching row, newest first, read a batch at a time by id so the
/// whole log is never in memory. A store error mid-way writes an error
/// line and then aborts the body: a partial file never looks complete.
fn rows_csv(
    state: std::sync::Arc<AdminState>,
    filter: UsageFilter,
    users: std::sync::Arc<Names>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, actix_web::Error>> {
    futures_util::stream::unfold(Cursor::Start, move |cursor| {
        let (state, filter, users) = (state.clone(), filter.clone(), users.clone());
        async move {
            match cursor {
                Cursor::Start => {
                    Some((Ok(bytes::Bytes::from_static(CSV_HEADER.as_bytes())), Cursor::Before(None)))
                }
                Cursor::Before(before_id) => {
                    let page = UsageFilter { before_id, limit: CSV_BATCH, offset: 0, ..filter };
                    match state.store.usage_rows(&page).await {
                        Err(e) => {
                            log::error!("usage CSV export failed part way: {e}");
                            let line =
                                format!("# export failed part way, the rows above are incomplete: {e}\n");
                            Some((Ok(bytes::Bytes::from(line)), Cursor::Failed(e.to_string())))
                        }
                        Ok(rows) => {
                            let next = match rows.last() {
                                Some(last) if rows.len() as i64 == CSV_BATCH => Cursor::Before(Some(last.id)),
                                _ => Cursor::Done,
                            };
                            let tz = state.settings.app_tz;
                            let mut out = String::with_capacity(rows.len() * 200);
                            for r in &rows {
                                csv_line(&mut out, r, tz, &users);
                            }
                            Some((Ok(bytes::Bytes::from(out)), next))
                        }
                    }
                }
                Cursor::Failed(e) => Some((
                    Err(actix_web::error::ErrorInternalServerError(format!("usage export failed: {e}"))),
                    Cursor::Done,
                )),
                Cursor::Done => None,
            }
        }
    })
}

// New columns go at the end: spreadsheets and scripts read by position.
const CSV_HEADER: &str =
    "time,key_id,key_name,model,route,status,http_status,prompt_tokens,completion_tokens,\
    total_tokens,estimated,latency_ms,user_id,user_name,team_id,weighted_tokens,request_id,local_time\n";

/// One row: `time` in UTC (RFC 3339, `Z`), `local_time` in `APP_TZ` with the zone.
fn csv_line(out: &mut String, r: &UsageRow, tz: Tz, users: &Names) {
    let id = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let user_name = r.user_id.and_then(|u| users.get(u)).unwrap_or_default();
    out.push_str(&format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
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
        csv_field(&shown::time(r.created_at, tz)),
    ));
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
