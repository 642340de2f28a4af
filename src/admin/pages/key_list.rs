//! The keys list: filtered, sorted and paged on the listing the store reads
//! in one query, so a thousand keys cost one sort in memory, not a query each.
//! Its table (with the sort links and the pager) is what htmx swaps.

use super::bars::Bars;
use super::names::Names;
use super::{html_safe, render_swappable, shown, Chrome, Nav, Notice, Page, Swappable};
use crate::admin::auth::Console;
use crate::admin::AdminState;
use crate::domain::key::KeyStatus;
use crate::domain::limits::LimitKind;
use crate::domain::windows::Windows;
use crate::store::KeyRecord;
use actix_web::web::{Data, Query};
use actix_web::HttpRequest;
use askama::Template;
use chrono_tz::Tz;
use serde::Deserialize;
use std::cmp::Ordering;

/// Keys on one page of the list.
pub const PAGE_SIZE: usize = 50;

pub(super) struct KeyRowView {
    id: i64,
    name: String,
    owner: String,
    /// The key's user: (id, name).
    user: Option<(i64, String)>,
    hint: String,
    status: &'static str,
    expires: String,
    created: String,
    day_tokens: String,
    bars: Bars,
    /// Today's and this month's requests and tokens, with separators.
    usage: String,
    /// The limits the key has reached, named ("daily tokens").
    reached: Vec<&'static str>,
}

/// A limit a key has used up, and when its window starts again.
pub struct Reached {
    pub kind: LimitKind,
    pub used: i64,
    pub limit: i64,
    /// `None` for the limit on tokens in all, which never resets.
    pub resets: Option<i64>,
}

impl Reached {
    fn short(&self) -> &'static str {
        match self.kind {
            LimitKind::RequestsPerMinute => "requests/min",
            LimitKind::TokensPerMinute => "tokens/min",
            LimitKind::DailyRequests => "daily requests",
            LimitKind::DailyTokens => "daily tokens",
            LimitKind::MonthlyRequests => "monthly requests",
            LimitKind::MonthlyTokens => "monthly tokens",
            LimitKind::TotalTokens => "tokens in all",
            LimitKind::Concurrency => "requests at once",
        }
    }

    /// `Daily token limit reached: 5,000 of 5,000; resets 2026-12-05 00:00 CET`.
    pub fn line(&self, tz: Tz) -> String {
        let what = match self.kind {
            LimitKind::RequestsPerMinute => "Per-minute request limit",
            LimitKind::TokensPerMinute => "Per-minute token limit",
            LimitKind::DailyRequests => "Daily request limit",
            LimitKind::DailyTokens => "Daily token limit",
            LimitKind::MonthlyRequests => "Monthly request limit",
            LimitKind::MonthlyTokens => "Monthly token limit",
            LimitKind::TotalTokens => "Limit on tokens in all",
            LimitKind::Concurrency => "Limit on requests at once",
        };
        let resets = match self.resets {
            Some(ts) => format!("resets {}", shown::minute(ts, tz)),
            None => "it does not reset; raise it to let the key work again".into(),
        };
        format!("{what} reached: {} of {}; {resets}", shown::number(self.used), shown::number(self.limit))
    }
}

/// The key's own limits that its usage in the current windows has reached.
/// Requests at once are left out: that count drops as requests finish.
pub fn reached(k: &KeyRecord, w: &Windows) -> Vec<Reached> {
    let usage = k.usage_at(w);
    LimitKind::ALL
        .into_iter()
        .filter(|kind| *kind != LimitKind::Concurrency)
        .filter_map(|kind| {
            let limit = k.fields.limits.get(kind)?;
            let used = usage.used(kind);
            // The stored window is the one counted into; it may end later
            // than the computed one (see `domain::windows`).
            let resets = match kind {
                LimitKind::RequestsPerMinute | LimitKind::TokensPerMinute => {
                    Some(k.counters.minute_end.max(w.minute.end))
                }
                LimitKind::DailyRequests | LimitKind::DailyTokens => Some(k.counters.day_end.max(w.day.end)),
                LimitKind::MonthlyRequests | LimitKind::MonthlyTokens => {
                    Some(k.counters.month_end.max(w.month.end))
                }
                _ => None,
            };
            (used >= limit).then_some(Reached { kind, used, limit, resets })
        })
        .collect()
}

/// Today's and this month's requests and tokens, limits or not.
pub fn usage_line(k: &KeyRecord, w: &Windows) -> String {
    let u = k.usage_at(w);
    format!(
        "today {} requests, {} tokens · this month {} requests, {} tokens",
        shown::number(u.day.requests),
        shown::number(u.day.tokens),
        shown::number(u.month.requests),
        shown::number(u.month.tokens)
    )
}

/// A key as a row of a table; `users` names the key's user.
pub(super) fn key_row(k: &KeyRecord, w: &Windows, users: &Names, tz: Tz) -> KeyRowView {
    KeyRowView {
        id: k.id,
        user: users.link(k.fields.user_id),
        name: k.fields.name.clone(),
        owner: k.fields.owner.clone().unwrap_or_default(),
        hint: k.key_hint.clone(),
        status: k.status(w.now).as_str(),
        expires: k.fields.expires_at.map(|t| shown::expiry(t, tz)).unwrap_or_else(|| "never".into()),
        created: shown::minute(k.created_at, tz),
        day_tokens: shown::number(k.usage_at(w).day.tokens),
        bars: Bars::new(&k.fields.limits, &k.usage_at(w)),
        usage: usage_line(k, w),
        reached: reached(k, w).iter().map(Reached::short).collect(),
    }
}

/// What the list can be sorted by; anything else sorts by name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Name,
    Created,
    DayTokens,
}

impl SortBy {
    const ALL: [(SortBy, &'static str, &'static str); 3] = [
        (SortBy::Name, "name", "Name"),
        (SortBy::Created, "created", "Created"),
        (SortBy::DayTokens, "tokens", "Tokens today"),
    ];

    fn parse(text: &str) -> SortBy {
        SortBy::ALL.iter().find(|(_, code, _)| *code == text).map_or(SortBy::Name, |(s, _, _)| *s)
    }

    fn code(self) -> &'static str {
        SortBy::ALL.iter().find(|(s, _, _)| *s == self).map_or("name", |(_, code, _)| code)
    }

    fn compare(self, a: &KeyRecord, b: &KeyRecord, w: &Windows) -> Ordering {
        let by = match self {
            SortBy::Name => a.fields.name.to_lowercase().cmp(&b.fields.name.to_lowercase()),
            SortBy::Created => a.created_at.cmp(&b.created_at),
            SortBy::DayTokens => a.usage_at(w).day.tokens.cmp(&b.usage_at(w).day.tokens),
        };
        // The id breaks ties, so pages never share or skip a key.
        by.then(a.id.cmp(&b.id))
    }
}

/// A column heading that sorts: its link, and the order it shows now.
pub(super) struct SortLink {
    label: &'static str,
    href: String,
    /// `ascending`/`descending` when the list is sorted by it (`aria-sort`).
    current: Option<&'static str>,
    /// ` ↑` or ` ↓` on the current column.
    arrow: &'static str,
}

/// The keys table: what the filter form, the sort links and the pager swap.
#[derive(Template)]
#[template(path = "admin/keys_partial.html")]
pub(super) struct KeysPartial {
    pub(super) keys: Vec<KeyRowView>,
    sorts: Vec<SortLink>,
    page: usize,
    pages: usize,
    total: usize,
    prev_href: Option<String>,
    next_href: Option<String>,
}

html_safe!(KeysPartial);

impl KeysPartial {
    /// A few keys in one table, without sort links or pager (a user's page).
    pub(super) fn unpaged(keys: Vec<KeyRowView>) -> KeysPartial {
        let total = keys.len();
        KeysPartial { keys, sorts: vec![], page: 1, pages: 1, total, prev_href: None, next_href: None }
    }
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    chrome: Chrome,
    q: String,
    sort: &'static str,
    dir: &'static str,
    status_options: Vec<(&'static str, &'static str, bool)>,
    table: KeysPartial,
}

impl Swappable for KeysPage {
    type Partial = KeysPartial;
    fn partial(&self) -> &KeysPartial {
        &self.table
    }
}

#[derive(Deserialize)]
pub struct KeysQuery {
    q: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<String>,
    notice: Option<String>,
}

/// `/keys?…` for the filter as it is, sorted and paged as given.
fn href(q: &str, status: &str, sort: SortBy, desc: bool, page: usize) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if !q.is_empty() {
        s.append_pair("q", q);
    }
    if !status.is_empty() {
        s.append_pair("status", status);
    }
    s.append_pair("sort", sort.code()).append_pair("dir", if desc { "desc" } else { "asc" });
    s.append_pair("page", &page.to_string());
    format!("/keys?{}", s.finish())
}

fn matches(k: &KeyRecord, needle: &str, users: &Names) -> bool {
    needle.is_empty()
        || k.fields.name.to_lowercase().contains(needle)
        || k.fields.owner.as_deref().unwrap_or_default().to_lowercase().contains(needle)
        || k.fields.user_id.and_then(|id| users.get(id)).is_some_and(|n| n.to_lowercase().contains(needle))
        || k.key_hint.to_lowercase().contains(needle)
}

pub async fn keys_page(
    req: HttpRequest,
    console: Console,
    state: Data<AdminState>,
    query: Query<KeysQuery>,
) -> Page {
    let w = state.windows();
    let tz = state.settings.app_tz;
    let q = query.q.clone().unwrap_or_default();
    let status = query.status.clone().unwrap_or_default();
    let sort = SortBy::parse(query.sort.as_deref().unwrap_or_default());
    let desc = query.dir.as_deref() == Some("desc");
    let needle = q.to_lowercase();
    let users = Names::users(&state).await?;
    let mut keys: Vec<KeyRecord> = state
        .store
        .list_keys()
        .await?
        .into_iter()
        .filter(|k| status.is_empty() || k.status(w.now).as_str() == status)
        .filter(|k| matches(k, &needle, &users))
        .collect();
    keys.sort_by(|a, b| {
        let o = sort.compare(a, b, &w);
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    let total = keys.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    // A page past the end shows the last; one that is not a number, the first.
    let page = query.page.as_deref().and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).clamp(1, pages);
    let rows = keys.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE).map(|k| key_row(k, &w, &users, tz));
    let sorts = SortBy::ALL
        .iter()
        .map(|(s, _, label)| {
            let here = *s == sort;
            // A click on the current column turns its order round.
            let next_desc = if here { !desc } else { *s == SortBy::DayTokens || *s == SortBy::Created };
            SortLink {
                label,
                href: href(&q, &status, *s, next_desc, 1),
                current: here.then_some(if desc { "descending" } else { "ascending" }),
                arrow: match (here, desc) {
                    (false, _) => "",
                    (true, false) => " ↑",
                    (true, true) => " ↓",
                },
            }
        })
        .collect();
    let table = KeysPartial {
        keys: rows.collect(),
        sorts,
        page,
        pages,
        total,
        prev_href: (page > 1).then(|| href(&q, &status, sort, desc, page - 1)),
        next_href: (page < pages).then(|| href(&q, &status, sort, desc, page + 1)),
    };
    let any = std::iter::once(("", "any"));
    let status_options = any
        .chain(KeyStatus::ALL.map(|s| (s.as_str(), s.as_str())))
        .map(|(v, l)| (v, l, v == status))
        .collect();
    let notice = query.notice.as_deref().and_then(Notice::parse);
    let chrome = Chrome::new(&console.session, Nav::Keys).with_notice(notice);
    let (sort, dir) = (sort.code(), if desc { "desc" } else { "asc" });
    render_swappable(&req, &KeysPage { chrome, q, sort, dir, status_options, table })
}
