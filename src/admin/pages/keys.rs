//! The keys list (its table swapped by htmx as the filter changes), a key's
//! page, and the changes made there: save, activate or deactivate, rotate,
//! delete. A new secret is shown once, on a page of its own.

use super::bars::{Bars, LimitTable};
use super::chart::DayChart;
use super::key_form::{self, KeyForm};
use super::names::Names;
use super::refusals::RefusalCounts;
use super::usage::UsageRows;
use super::{html_safe, redirect_notice, render, render_status, render_swappable, to_secret_page};
use super::{Chrome, Nav, Notice, NoticeQuery, Page, Swappable};
use crate::admin::auth::{Console, CsrfForm};
use crate::admin::error::AdminError;
use crate::admin::keys::KeyOps;
use crate::admin::AdminState;
use crate::domain::key::KeyStatus;
use crate::domain::time::rfc3339;
use crate::domain::windows::Windows;
use crate::store::{KeyRecord, UsageFilter};
use actix_web::http::{header, StatusCode};
use actix_web::web::{Data, Path, Query};
use actix_web::HttpRequest;
use askama::Template;
use serde::Deserialize;

pub(super) struct KeyRowView {
    id: i64,
    name: String,
    owner: String,
    /// The key's user: (id, name).
    user: Option<(i64, String)>,
    hint: String,
    status: &'static str,
    expires: String,
    bars: Bars,
}

/// A key as a row of a table; `users` names the key's user.
pub(super) fn key_row(k: &KeyRecord, w: &Windows, users: &Names) -> KeyRowView {
    let bars = Bars::new(&k.fields.limits, &k.usage_at(w));
    KeyRowView {
        id: k.id,
        user: users.link(k.fields.user_id),
        name: k.fields.name.clone(),
        owner: k.fields.owner.clone().unwrap_or_default(),
        hint: k.key_hint.clone(),
        status: k.status(w.now).as_str(),
        expires: k.fields.expires_at.map(rfc3339).unwrap_or_else(|| "never".into()),
        bars,
    }
}

/// The keys table: what the filter form swaps.
#[derive(Template)]
#[template(path = "admin/keys_partial.html")]
pub(super) struct KeysPartial {
    pub(super) keys: Vec<KeyRowView>,
}

html_safe!(KeysPartial);

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    chrome: Chrome,
    q: String,
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
    notice: Option<String>,
}

pub async fn keys_page(
    req: HttpRequest,
    console: Console,
    state: Data<AdminState>,
    query: Query<KeysQuery>,
) -> Page {
    let w = state.windows();
    let q = query.q.clone().unwrap_or_default();
    let status = query.status.clone().unwrap_or_default();
    let needle = q.to_lowercase();
    let users = Names::users(&state).await?;
    let keys: Vec<KeyRowView> = state
        .store
        .list_keys()
        .await?
        .iter()
        .map(|k| key_row(k, &w, &users))
        .filter(|k| status.is_empty() || k.status == status)
        .filter(|k| {
            needle.is_empty()
                || k.name.to_lowercase().contains(&needle)
                || k.owner.to_lowercase().contains(&needle)
                || k.user.as_ref().is_some_and(|(_, name)| name.to_lowercase().contains(&needle))
                || k.hint.to_lowercase().contains(&needle)
        })
        .collect();
    let any = std::iter::once(("", "any"));
    let status_options = any
        .chain(KeyStatus::ALL.map(|s| (s.as_str(), s.as_str())))
        .map(|(v, l)| (v, l, v == status))
        .collect();
    let notice = query.notice.as_deref().and_then(Notice::parse);
    let chrome = Chrome::new(&console.session, Nav::Keys).with_notice(notice);
    render_swappable(&req, &KeysPage { chrome, q, status_options, table: KeysPartial { keys } })
}

#[derive(Template)]
#[template(path = "admin/key_detail.html")]
struct KeyDetailPage {
    chrome: Chrome,
    id: i64,
    /// The key's user and their team: (id, name).
    user: Option<(i64, String)>,
    team: Option<(i64, String)>,
    limits: LimitTable,
    hint: String,
    created: String,
    status: &'static str,
    active: bool,
    form: KeyForm,
    chart: DayChart,
    day_requests: i64,
    day_tokens: i64,
    month_requests: i64,
    month_tokens: i64,
    total_tokens: i64,
    recent: UsageRows,
    refused_day: super::refusals::RefusalCounts,
    refused_month: super::refusals::RefusalCounts,
}

/// A key's page; with a form that has errors, those and a 422.
async fn detail_page(state: &AdminState, chrome: Chrome, k: &KeyRecord, form: KeyForm) -> Page {
    let w = state.windows();
    let u = k.usage_at(&w);
    let users = Names::users(state).await?;
    let filter = UsageFilter { key_id: Some(k.id), limit: 20, ..UsageFilter::default() };
    let status = if form.has_errors() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = KeyDetailPage {
        chrome,
        id: k.id,
        user: k.user.as_ref().map(|p| (p.id, p.name.clone())),
        team: k.team.as_ref().map(|p| (p.id, p.name.clone())),
        limits: LimitTable::new(Bars::new(&k.fields.limits, &u), &k.model_limits, &w),
        hint: k.key_hint.clone(),
        created: rfc3339(k.created_at),
        status: k.status(w.now).as_str(),
        active: k.active,
        form: form.with_users(&users),
        chart: DayChart::tokens_per_day(state, Some(k.id)).await?,
        day_requests: u.day.requests,
        day_tokens: u.day.tokens,
        month_requests: u.month.requests,
        month_tokens: u.month.tokens,
        total_tokens: u.total.tokens,
        recent: UsageRows::new(&state.store.usage_rows(&filter).await?, state.settings.app_tz, &users),
        refused_day: RefusalCounts::recent(state, "Refused, last 24 hours", Some(k.id), 24).await?,
        refused_month: RefusalCounts::recent(state, "Refused, last 30 days", Some(k.id), 30 * 24).await?,
    };
    render_status(status, &page)
}

pub async fn key_detail(
    console: Console,
    state: Data<AdminState>,
    id: Path<i64>,
    query: Query<NoticeQuery>,
) -> Page {
    let k = KeyOps::of(&state, console.actor).get(*id).await?;
    let chrome = Chrome::new(&console.session, Nav::Keys).with_notice(query.notice());
    detail_page(&state, chrome, &k, KeyForm::from_record(Some(&k))).await
}

pub async fn update_key(req: HttpRequest, state: Data<AdminState>, id: Path<i64>, post: CsrfForm) -> Page {
    let ops = KeyOps::of(&state, post.actor);
    let k = ops.get(*id).await?;
    match key_form::checked(&post.form, state.settings.app_tz) {
        Ok(mut key) => {
            // A form without the user field leaves the key's user as it is,
            // and one without limits per model leaves those.
            if !post.form.has("user_id") {
                key.fields.user_id = k.fields.user_id;
            }
            ops.save(k.id, &key.fields).await?;
            if post.form.has("model_limits") {
                ops.set_model_limits(k.id, &key.model_limits).await?;
            }
            if let Some(soft) = &key.alerts {
                ops.set_soft_limits(k.id, soft).await?;
            }
            Ok(redirect_notice(&req, &format!("/keys/{}", k.id), Notice::Saved))
        }
        Err(form) => detail_page(&state, Chrome::new(&post.session, Nav::Keys), &k, *form).await,
    }
}

pub async fn set_active(
    req: HttpRequest,
    state: Data<AdminState>,
    path: Path<(i64, String)>,
    post: CsrfForm,
) -> Page {
    let (id, action) = path.into_inner();
    let (active, notice) = match action.as_str() {
        "activate" => (true, Notice::Activated),
        "deactivate" => (false, Notice::Deactivated),
        _ => return Err(AdminError::NotFound("no such action".into()).into()),
    };
    KeyOps::of(&state, post.actor).set_active(id, active).await?;
    Ok(redirect_notice(&req, &format!("/keys/{id}"), notice))
}

pub async fn rotate_key(req: HttpRequest, state: Data<AdminState>, id: Path<i64>, post: CsrfForm) -> Page {
    let (secret, record) = KeyOps::of(&state, post.actor).rotate(*id).await?;
    log::info!("rotated API key {} from the console", record.id);
    let heading = format!("New secret for “{}”", record.fields.name);
    Ok(to_secret_page(&req, &state, &post.session, heading, secret.expose(), record.id))
}

#[derive(Template)]
#[template(path = "admin/key_delete.html")]
struct KeyDeletePage {
    chrome: Chrome,
    id: i64,
    name: String,
}

pub async fn delete_key_form(console: Console, state: Data<AdminState>, id: Path<i64>) -> Page {
    let k = KeyOps::of(&state, console.actor).get(*id).await?;
    render(&KeyDeletePage { chrome: Chrome::new(&console.session, Nav::Keys), id: k.id, name: k.fields.name })
}

pub async fn delete_key(req: HttpRequest, state: Data<AdminState>, id: Path<i64>, post: CsrfForm) -> Page {
    KeyOps::of(&state, post.actor).delete(*id).await?;
    log::info!("deleted API key {} from the console", *id);
    Ok(redirect_notice(&req, "/keys", Notice::Deleted))
}

#[derive(Template)]
#[template(path = "admin/key_secret.html")]
struct KeySecretPage {
    chrome: Chrome,
    heading: String,
    /// `None` once the secret has been shown: the page then says so.
    secret: Option<String>,
    id: i64,
}

#[derive(Deserialize)]
pub struct RevealQuery {
    #[serde(default)]
    t: String,
}

/// Shows a waiting secret once; every later view (reload, Back, Forward)
/// says it was shown. Never stored by the browser or by htmx's history.
pub async fn key_secret(
    console: Console,
    state: Data<AdminState>,
    id: Path<i64>,
    query: Query<RevealQuery>,
) -> Page {
    let now = state.clock.now().timestamp();
    let chrome = Chrome::new(&console.session, Nav::Keys);
    let page = match crate::admin::reveal::take(&query.t, &console.session.id, *id, now) {
        Some(r) => KeySecretPage { chrome, heading: r.heading, secret: Some(r.secret), id: r.key_id },
        None => {
            KeySecretPage { chrome, heading: "This secret was already shown".into(), secret: None, id: *id }
        }
    };
    let mut page = render(&page)?;
    page.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(page)
}
