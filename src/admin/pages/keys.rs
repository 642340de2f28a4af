//! A key's page and the changes made there: save, activate or deactivate,
//! rotate (after a page that asks), delete. A new secret is shown once, on a
//! page of its own. The list is in `key_list`.

use super::bars::{Bars, LimitTable};
use super::chart::{self, SeriesChart};
use super::key_form::{self, KeyForm};
use super::names::Names;
use super::public_keys::SignedRequests;
use super::refusals::RefusalCounts;
use super::usage::UsageRows;
use super::{key_list, redirect_notice, render, render_status, shown, to_secret_page};
use super::{Chrome, Nav, Notice, NoticeQuery, Page};
use crate::admin::auth::{Console, CsrfForm};
use crate::admin::error::AdminError;
use crate::admin::keys::KeyOps;
use crate::admin::public_keys::{PublicKeyError, PublicKeyOps};
use crate::admin::AdminState;
use crate::store::{KeyRecord, StoreError, UsageFilter};
use actix_web::http::{header, StatusCode};
use actix_web::web::{Data, Path, Query};
use actix_web::HttpRequest;
use askama::Template;
use serde::Deserialize;

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
    /// The rotated-out secret while it still works: (hint, until, until in UTC).
    previous: Option<(String, String, String)>,
    created: String,
    created_utc: String,
    expires: Option<String>,
    /// `Daily token limit reached: …` lines, one per limit reached.
    reached: Vec<String>,
    /// Today's and this month's requests and tokens, limits or not.
    usage: String,
    status: &'static str,
    active: bool,
    form: KeyForm,
    chart: SeriesChart,
    total_tokens: String,
    recent: UsageRows,
    refused_day: super::refusals::RefusalCounts,
    refused_month: super::refusals::RefusalCounts,
    signed: SignedRequests,
}

/// A key's page; with a form that has errors, or a public key that was
/// refused (what was pasted, and why), those and a 422.
async fn detail_page(
    state: &AdminState,
    client: &awc::Client,
    chrome: Chrome,
    k: &KeyRecord,
    form: KeyForm,
    refused: Option<(String, String)>,
) -> Page {
    let signed = SignedRequests::load(state, k.id, &chrome.csrf, refused).await?;
    let w = state.windows();
    let tz = state.settings.app_tz;
    let u = k.usage_at(&w);
    let users = Names::users(state).await?;
    let filter = UsageFilter { key_id: Some(k.id), limit: 20, ..UsageFilter::default() };
    let refused = form.has_errors() || signed.has_error();
    let status = if refused { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = KeyDetailPage {
        chrome,
        id: k.id,
        user: k.user.as_ref().map(|p| (p.id, p.name.clone())),
        team: k.team.as_ref().map(|p| (p.id, p.name.clone())),
        limits: LimitTable::new(Bars::new(&k.fields.limits, &u), &k.model_limits, &w),
        hint: k.key_hint.clone(),
        previous: k
            .previous_at(w.now)
            .map(|p| (p.key_hint.clone(), shown::time(p.valid_until, tz), shown::utc(p.valid_until))),
        created: shown::time(k.created_at, tz),
        created_utc: shown::utc(k.created_at),
        expires: k.fields.expires_at.map(|t| shown::expiry(t, tz)),
        reached: key_list::reached(k, &w).iter().map(|r| r.line(tz)).collect(),
        usage: key_list::usage_line(k, &w),
        status: k.status(w.now).as_str(),
        active: k.active,
        form: form.with_users(&users).with_models(&key_form::upstream_models(state, client).await),
        chart: chart::key_tokens_per_day(state, k.id).await?,
        total_tokens: shown::number(u.total.tokens),
        recent: UsageRows::new(&state.store.usage_rows(&filter).await?, state.settings.app_tz, &users),
        refused_day: RefusalCounts::recent(state, "Refused, last 24 hours", Some(k.id), 24).await?,
        refused_month: RefusalCounts::recent(state, "Refused, last 30 days", Some(k.id), 30 * 24).await?,
        signed,
    };
    render_status(status, &page)
}

pub async fn key_detail(
    console: Console,
    state: Data<AdminState>,
    client: Data<awc::Client>,
    id: Path<i64>,
    query: Query<NoticeQuery>,
) -> Page {
    let k = KeyOps::of(&state, console.actor).get(*id).await?;
    let chrome = Chrome::new(&console.session, Nav::Keys).with_notice(query.notice());
    let form = KeyForm::from_record(Some(&k), state.settings.app_tz);
    detail_page(&state, &client, chrome, &k, form, None).await
}

pub async fn update_key(
    req: HttpRequest,
    state: Data<AdminState>,
    client: Data<awc::Client>,
    id: Path<i64>,
    post: CsrfForm,
) -> Page {
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
        Err(form) => {
            detail_page(&state, &client, Chrome::new(&post.session, Nav::Keys), &k, *form, None).await
        }
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

/// `POST /keys/{id}/public-keys`: a pasted `.pub` line; a refused one comes
/// back on the key page with its error and a 422.
pub async fn add_public_key(
    req: HttpRequest,
    state: Data<AdminState>,
    client: Data<awc::Client>,
    id: Path<i64>,
    post: CsrfForm,
) -> Page {
    let pasted = post.form.get("public_key").to_owned();
    match PublicKeyOps::of(&state, post.actor).add(*id, &pasted).await {
        Ok(_) => Ok(redirect_notice(&req, &format!("/keys/{}", *id), Notice::Saved)),
        Err(e @ (PublicKeyError::Invalid(_) | PublicKeyError::Store(StoreError::Conflict(_)))) => {
            let k = KeyOps::of(&state, post.actor).get(*id).await?;
            let chrome = Chrome::new(&post.session, Nav::Keys);
            let form = KeyForm::from_record(Some(&k), state.settings.app_tz);
            detail_page(&state, &client, chrome, &k, form, Some((pasted, e.to_string()))).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/key_rotate.html")]
struct KeyRotatePage {
    chrome: Chrome,
    id: i64,
    name: String,
    /// (seconds, label) for how long the old secret keeps working.
    graces: &'static [(i64, &'static str)],
    /// A previous secret still in its grace, which this rotation ends: its hint.
    previous: Option<String>,
}

/// The grace periods the rotate page offers; the JSON API takes any up to 30 days.
const GRACES: [(i64, &str); 5] = [
    (0, "stops at once"),
    (3600, "keeps working for 1 hour"),
    (86_400, "keeps working for 1 day"),
    (7 * 86_400, "keeps working for 7 days"),
    (30 * 86_400, "keeps working for 30 days"),
];

/// Asks before a rotate, and how long the old secret should keep working.
pub async fn rotate_form(console: Console, state: Data<AdminState>, id: Path<i64>) -> Page {
    let k = KeyOps::of(&state, console.actor).get(*id).await?;
    let now = state.clock.now().timestamp();
    render(&KeyRotatePage {
        chrome: Chrome::new(&console.session, Nav::Keys),
        id: k.id,
        previous: k.previous_at(now).map(|p| p.key_hint.clone()),
        name: k.fields.name,
        graces: &GRACES,
    })
}

pub async fn rotate_key(req: HttpRequest, state: Data<AdminState>, id: Path<i64>, post: CsrfForm) -> Page {
    let text = post.form.get("grace_seconds").trim();
    let grace = match text {
        "" => None,
        t => Some(t.parse::<i64>().map_err(|_| {
            AdminError::BadRequest(format!("grace_seconds '{t}' is not a whole number of seconds"))
        })?),
    };
    let grace = crate::admin::keys::grace(grace).map_err(AdminError::from)?;
    let (secret, record) = KeyOps::of(&state, post.actor).rotate(*id, grace).await?;
    log::info!("rotated API key {} from the console", record.id);
    let heading = format!("New secret for “{}”", record.fields.name);
    Ok(to_secret_page(&req, &state, &post.session, heading, secret.expose(), record.id))
}

/// Ends a previous secret's grace period now.
pub async fn end_grace(req: HttpRequest, state: Data<AdminState>, id: Path<i64>, post: CsrfForm) -> Page {
    KeyOps::of(&state, post.actor).end_grace(*id).await?;
    Ok(redirect_notice(&req, &format!("/keys/{}", *id), Notice::GraceEnded))
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
