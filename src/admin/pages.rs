//! The HTML console: one template struct per page, plain forms that work
//! without JavaScript, htmx making some of them quicker. Every change is a
//! POST followed by a redirect; the two that make a secret redirect to a page
//! that shows it once (see `reveal`).

use super::error::AdminError;
use super::keys::{self as key_ops, CreateKey, PatchKey};
use super::session::{self, SessionData};
use crate::admin::api::{apply_settings, client_snippets, public_base_url, SettingsChange, UsageQuery};
use crate::admin::AdminState;
use crate::domain::clamps::{Clamps, ClampsPatch};
use crate::domain::limits::{Limits, LimitsPatch};
use crate::domain::scopes::Scope;
use crate::domain::time::rfc3339;
use crate::runtime::SettingName;
use crate::store::{KeyRecord, UsageFilter, UsageRow};
use actix_session::Session;
use actix_web::http::header;
use actix_web::web::{self, Bytes, Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

type Page = Result<HttpResponse, AdminError>;

/// Form fields, in order; repeated names (checkboxes) keep every value.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &Bytes) -> Form {
        Form(url::form_urlencoded::parse(body).into_owned().collect())
    }
    fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }
    fn csrf(&self) -> Option<&str> {
        Some(self.get("csrf_token")).filter(|t| !t.is_empty())
    }
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(body)
}

fn render(page: impl Template) -> Page {
    page.render().map(html).map_err(|e| {
        log::error!("template failed: {e}");
        AdminError::BadRequest("the page could not be drawn".into())
    })
}

/// After a change: back to a page (htmx follows `HX-Redirect`).
fn see_other(req: &HttpRequest, to: &str) -> HttpResponse {
    if req.headers().contains_key("hx-request") {
        HttpResponse::Ok().insert_header(("hx-redirect", to.to_owned())).finish()
    } else {
        HttpResponse::SeeOther().insert_header((header::LOCATION, to.to_owned())).finish()
    }
}

/// The logged-in admin, or a trip to the login page.
async fn admin(
    req: &HttpRequest,
    session: &Session,
    state: &AdminState,
) -> Result<SessionData, HttpResponse> {
    match session::logged_in(session, state).await {
        Ok(Some(data)) => Ok(data),
        Ok(None) => Err(see_other(req, "/login")),
        Err(e) => Err(actix_web::ResponseError::error_response(&e)),
    }
}

/// The logged-in admin with a valid CSRF token, for state-changing requests.
async fn admin_changing(
    req: &HttpRequest,
    session: &Session,
    state: &AdminState,
    form: &Form,
) -> Result<SessionData, HttpResponse> {
    let data = admin(req, session, state).await?;
    session::check_csrf(req, &data, form.csrf()).map_err(|e| actix_web::ResponseError::error_response(&e))?;
    Ok(data)
}

macro_rules! or_return {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(response) => return Ok(response),
        }
    };
}

// ---- login ----

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    csrf: String,
    error: Option<String>,
}

pub async fn login_form(session: Session, state: Data<AdminState>) -> Page {
    let data = session::anonymous(&session, state.clock.now().timestamp());
    render(LoginPage { csrf: data.csrf, error: None })
}

pub async fn login(req: HttpRequest, session: Session, state: Data<AdminState>, body: Bytes) -> Page {
    let form = Form::parse(&body);
    let now = state.clock.now().timestamp();
    let data = session::anonymous(&session, now);
    session::check_csrf(&req, &data, form.csrf())?;
    let ip = super::forwarded::client_address(&req, &state.settings.trusted_proxies);
    let right = match state
        .login_throttle
        .check(&state.password, ip, state.clock.as_ref(), form.get("password"))
        .await
    {
        Ok(right) => right,
        Err(refused) => {
            log::warn!("admin login from {ip} refused: too many wrong passwords");
            return Err(refused);
        }
    };
    if !right {
        let mut page = html(
            LoginPage { csrf: data.csrf, error: Some("Wrong password.".into()) }.render().unwrap_or_default(),
        );
        *page.status_mut() = actix_web::http::StatusCode::UNAUTHORIZED;
        return Ok(page);
    }
    session::log_in(&session, &state).await?;
    log::info!("admin logged in from {ip}");
    Ok(see_other(&req, "/"))
}

pub async fn logout(req: HttpRequest, session: Session, state: Data<AdminState>, body: Bytes) -> Page {
    let form = Form::parse(&body);
    let data = or_return!(admin_changing(&req, &session, &state, &form).await);
    session::log_out(&session, &state, &data).await?;
    Ok(see_other(&req, "/login"))
}

// ---- charts ----

/// Bars per day, drawn on the server as SVG: no chart library, no script.
fn day_chart(days: &[(String, i64)], unit: &str) -> String {
    let max = days.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let (w, h, pad) = (720.0_f64, 160.0_f64, 24.0_f64);
    let step = (w - 2.0 * pad) / days.len().max(1) as f64;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{unit} per day\"><line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>",
        h - pad,
        w - pad,
        h - pad
    );
    for (i, (day, value)) in days.iter().enumerate() {
        let bar = (*value as f64 / max as f64) * (h - 2.0 * pad);
        let x = pad + i as f64 * step;
        svg.push_str(&format!(
            "<rect class=\"day\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bar:.1}\"><title>{} {}: {value}</title></rect>",
            h - pad - bar,
            (step - 2.0).max(1.0),
            escape(day),
            escape(unit)
        ));
        if i % 7 == 0 {
            svg.push_str(&format!(
                "<text x=\"{x:.1}\" y=\"{:.1}\">{}</text>",
                h - 6.0,
                escape(day.get(5..).unwrap_or(day))
            ));
        }
    }
    svg.push_str(&format!("<text x=\"{pad}\" y=\"14\">max {max}</text></svg>"));
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Tokens per local day over the last 30 days, for one key or all.
async fn daily_tokens(state: &AdminState, key_id: Option<i64>) -> Result<Vec<(String, i64)>, AdminError> {
    let tz = state.settings.app_tz;
    let today = state.clock.now().with_timezone(&tz).date_naive();
    let first = today - chrono::Duration::days(29);
    let from =
        crate::domain::time::parse_time(&first.to_string(), tz, false).map_err(AdminError::BadRequest)?;
    let filter = UsageFilter { key_id, from: Some(from), ..UsageFilter::default() };
    let mut by_day: BTreeMap<String, i64> =
        (0..30).map(|i| ((first + chrono::Duration::days(i)).to_string(), 0)).collect();
    for b in state.store.usage_buckets(&filter, 900).await? {
        if let Some(t) = chrono::DateTime::from_timestamp(b.bucket, 0) {
            *by_day.entry(t.with_timezone(&tz).date_naive().to_string()).or_default() += b.total_tokens;
        }
    }
    Ok(by_day.into_iter().collect())
}

// ---- dashboard ----

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    csrf: String,
    nav: &'static str,
    notice: Option<String>,
    today_requests: i64,
    today_tokens: i64,
    month_requests: i64,
    month_tokens: i64,
    active_keys: usize,
    total_keys: usize,
    upstream_status: String,
    upstream_class: &'static str,
    upstream_version: String,
    chart: String,
    top_keys: Vec<(String, i64, i64)>,
    top_models: Vec<(String, i64, i64)>,
}

pub async fn dashboard(
    req: HttpRequest,
    session: Session,
    state: Data<AdminState>,
    client: Data<awc::Client>,
) -> Page {
    let data = or_return!(admin(&req, &session, &state).await);
    let w = state.windows();
    let keys = state.store.list_keys().await?;
    let month = UsageFilter { from: Some(w.month.start), ..UsageFilter::default() };
    let buckets = state.store.usage_buckets(&month, 900).await?;
    let (mut today, mut this_month) = ((0, 0), (0, 0));
    let mut per_key: HashMap<String, (i64, i64)> = HashMap::new();
    let mut per_model: HashMap<String, (i64, i64)> = HashMap::new();
    for b in &buckets {
        this_month = (this_month.0 + b.requests, this_month.1 + b.total_tokens);
        if b.bucket >= w.day.start {
            today = (today.0 + b.requests, today.1 + b.total_tokens);
        }
        for (map, name) in [(&mut per_key, &b.key_name), (&mut per_model, &b.model)] {
            let e = map.entry(name.clone()).or_default();
            *e = (e.0 + b.requests, e.1 + b.total_tokens);
        }
    }
    let top = |map: HashMap<String, (i64, i64)>| {
        let mut rows: Vec<(String, i64, i64)> = map.into_iter().map(|(k, (r, t))| (k, r, t)).collect();
        rows.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        rows.truncate(5);
        rows
    };
    let upstream = state.upstreams.status(&client).await;
    let up = upstream["status"] == "ok";
    render(DashboardPage {
        csrf: data.csrf,
        nav: "dashboard",
        notice: None,
        today_requests: today.0,
        today_tokens: today.1,
        month_requests: this_month.0,
        month_tokens: this_month.1,
        active_keys: keys.iter().filter(|k| k.active && !k.is_expired(w.now)).count(),
        total_keys: keys.len(),
        upstream_status: if up { "up".into() } else { "down".into() },
        upstream_class: if up { "up" } else { "down" },
        upstream_version: upstream["version"].as_str().map(|v| format!("Ollama {v}")).unwrap_or_default(),
        chart: day_chart(&daily_tokens(&state, None).await?, "tokens"),
        top_keys: top(per_key),
        top_models: top(per_model),
    })
}

// ---- keys ----

struct Bar {
    label: &'static str,
    used: i64,
    limit: i64,
    high: i64,
}

struct KeyRowView {
    id: i64,
    name: String,
    owner: String,
    hint: String,
    status: &'static str,
    expires: String,
    bars: Vec<Bar>,
}

fn status_of(k: &KeyRecord, now: i64) -> &'static str {
    if !k.active {
        "inactive"
    } else if k.is_expired(now) {
        "expired"
    } else {
        "active"
    }
}

fn key_row(k: &KeyRecord, w: &crate::domain::windows::Windows) -> KeyRowView {
    let u = k.usage_at(w);
    let l = &k.fields.limits;
    let bars = [
        ("requests/min", l.requests_per_minute, u.minute.requests),
        ("tokens/min", l.tokens_per_minute, u.minute.tokens),
        ("requests today", l.daily_requests, u.day.requests),
        ("tokens today", l.daily_tokens, u.day.tokens),
        ("requests/month", l.monthly_requests, u.month.requests),
        ("tokens/month", l.monthly_tokens, u.month.tokens),
        ("tokens in all", l.total_tokens, u.total.tokens),
        ("in flight", l.max_concurrent, u.in_flight),
    ]
    .into_iter()
    .filter_map(|(label, limit, used)| limit.map(|limit| Bar { label, used, limit, high: limit * 9 / 10 }))
    .collect();
    KeyRowView {
        id: k.id,
        name: k.fields.name.clone(),
        owner: k.fields.owner.clone().unwrap_or_default(),
        hint: k.key_hint.clone(),
        status: status_of(k, w.now),
        expires: k.fields.expires_at.map(rfc3339).unwrap_or_else(|| "never".into()),
        bars,
    }
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    csrf: String,
    nav: &'static str,
    notice: Option<String>,
    q: String,
    status_options: Vec<(&'static str, &'static str, bool)>,
    keys: Vec<KeyRowView>,
}

#[derive(serde::Deserialize)]
pub struct KeysQuery {
    q: Option<String>,
    status: Option<String>,
    notice: Option<String>,
}

pub async fn keys_page(
    req: HttpRequest,
    session: Session,
    state: Data<AdminState>,
    query: Query<KeysQuery>,
) -> Page {
    let data = or_return!(admin(&req, &session, &state).await);
    let w = state.windows();
    let q = query.q.clone().unwrap_or_default();
    let status = query.status.clone().unwrap_or_default();
    let needle = q.to_lowercase();
    let keys: Vec<KeyRowView> = state
        .store
        .list_keys()
        .await?
        .iter()
        .map(|k| key_row(k, &w))
        .filter(|k| status.is_empty() || k.status == status)
        .filter(|k| {
            needle.is_empty()
                || k.name.to_lowercase().contains(&needle)
                || k.owner.to_lowercase().contains(&needle)
                || k.hint.to_lowercase().contains(&needle)
        })
        .collect();
    let status_options =
        [("", "any"), ("active", "active"), ("inactive", "inactive"), ("expired", "expired")]
            .into_iter()
            .map(|(v, l)| (v, l, v == status))
            .collect();
    render(KeysPage { csrf: data.csrf, nav: "keys", notice: notice(&query.notice), q, status_options, keys })
}

fn notice(code: &Option<String>) -> Option<String> {
    Some(
        match code.as_deref()? {
            "deleted" => "The key was deleted.",
            "saved" => "Saved.",
            "activated" => "The key is active.",
            "deactivated" => "The key is deactivated: it is refused from the next request on.",
            "password" => "The password is changed; every other session has ended.",
            _ => return None,
        }
        .to_owned(),
    )
}

/// The key form's fields; names equal the JSON API's field names.
struct KeyForm {
    name: String,
    owner: String,
    expires_at: String,
    scope_options: Vec<(&'static str, bool)>,
    models: String,
    model_aliases: String,
    limits: Vec<(&'static str, &'static str, String)>,
    clamps: Vec<(&'static str, &'static str, String)>,
    allow_keep_alive_extremes: bool,
    errors: Vec<(&'static str, String)>,
}

const LIMIT_FIELDS: [(&str, &str); 8] = [
    ("requests_per_minute", "Requests per minute"),
    ("tokens_per_minute", "Tokens per minute"),
    ("daily_requests", "Requests per day"),
    ("daily_tokens", "Tokens per day"),
    ("monthly_requests", "Requests per month"),
    ("monthly_tokens", "Tokens per month"),
    ("total_tokens", "Tokens in all"),
    ("max_concurrent", "Requests at once"),
];
const CLAMP_FIELDS: [(&str, &str); 3] = [
    ("max_num_ctx", "Largest context (num_ctx)"),
    ("max_output_tokens", "Largest output (tokens)"),
    ("max_images", "Images per request"),
];

impl KeyForm {
    fn error_for(&self, field: &str) -> Option<&String> {
        self.errors.iter().find(|(f, _)| *f == field).map(|(_, e)| e)
    }

    fn blank() -> KeyForm {
        KeyForm::from_record(None)
    }

    fn from_record(k: Option<&KeyRecord>) -> KeyForm {
        let f = k.map(|k| &k.fields);
        let limits = f.map(|f| f.limits).unwrap_or_default();
        let clamps = f.map(|f| f.clamps).unwrap_or_default();
        let scopes = f.map(|f| f.scopes).unwrap_or_else(crate::domain::scopes::Scopes::default_for_new_keys);
        let text = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        let named = |name: &str| limits.named().iter().find(|(n, _)| *n == name).and_then(|(_, v)| *v);
        KeyForm {
            name: f.map(|f| f.name.clone()).unwrap_or_default(),
            owner: f.and_then(|f| f.owner.clone()).unwrap_or_default(),
            expires_at: f.and_then(|f| f.expires_at).map(rfc3339).unwrap_or_default(),
            scope_options: Scope::ALL.iter().map(|s| (s.as_str(), scopes.contains(*s))).collect(),
            models: f.and_then(|f| f.models.as_ref()).map(|m| m.names().join(", ")).unwrap_or_default(),
            model_aliases: f
                .and_then(|f| f.aliases.as_ref())
                .map(|a| a.0.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join("\n"))
                .unwrap_or_default(),
            limits: LIMIT_FIELDS.iter().map(|(n, l)| (*n, *l, text(named(n)))).collect(),
            clamps: [clamps.max_num_ctx, clamps.max_output_tokens, clamps.max_images]
                .iter()
                .zip(CLAMP_FIELDS)
                .map(|(v, (n, l))| (n, l, text(*v)))
                .collect(),
            allow_keep_alive_extremes: clamps.allow_keep_alive_extremes,
            errors: vec![],
        }
    }

    /// What was typed, kept so a form with errors comes back filled in.
    fn from_form(form: &Form) -> KeyForm {
        let scopes = form.all("scopes");
        KeyForm {
            name: form.get("name").to_owned(),
            owner: form.get("owner").to_owned(),
            expires_at: form.get("expires_at").to_owned(),
            scope_options: Scope::ALL
                .iter()
                .map(|s| (s.as_str(), scopes.iter().any(|x| x == s.as_str())))
                .collect(),
            models: form.get("models").to_owned(),
            model_aliases: form.get("model_aliases").to_owned(),
            limits: LIMIT_FIELDS.iter().map(|(n, l)| (*n, *l, form.get(n).to_owned())).collect(),
            clamps: CLAMP_FIELDS.iter().map(|(n, l)| (*n, *l, form.get(n).to_owned())).collect(),
            allow_keep_alive_extremes: form.get("allow_keep_alive_extremes") == "true",
            errors: vec![],
        }
    }
}

fn number(
    form: &Form,
    name: &'static str,
    errors: &mut Vec<(&'static str, String)>,
    group: &'static str,
) -> Option<i64> {
    let text = form.get(name).trim();
    if text.is_empty() {
        return None;
    }
    match text.parse::<i64>() {
        Ok(n) if n >= 0 => Some(n),
        _ => {
            errors.push((group, format!("{name} must be a whole number, 0 or more")));
            None
        }
    }
}

/// Reads the key form into the JSON API's create body; errors go next to their fields.
fn read_key_form(form: &Form) -> Result<CreateKey, Box<KeyForm>> {
    let mut errors = vec![];
    let mut n = |name: &'static str, group: &'static str| number(form, name, &mut errors, group);
    let limits = Limits {
        requests_per_minute: n("requests_per_minute", "limits"),
        tokens_per_minute: n("tokens_per_minute", "limits"),
        daily_requests: n("daily_requests", "limits"),
        daily_tokens: n("daily_tokens", "limits"),
        monthly_requests: n("monthly_requests", "limits"),
        monthly_tokens: n("monthly_tokens", "limits"),
        total_tokens: n("total_tokens", "limits"),
        max_concurrent: n("max_concurrent", "limits"),
    };
    let clamps = Clamps {
        max_num_ctx: n("max_num_ctx", "clamps"),
        max_output_tokens: n("max_output_tokens", "clamps"),
        max_images: n("max_images", "clamps"),
        allow_keep_alive_extremes: form.get("allow_keep_alive_extremes") == "true",
    };
    let scopes = form.all("scopes");
    if scopes.is_empty() {
        errors.push(("scopes", "choose at least one scope".into()));
    }
    let models: Vec<String> =
        form.get("models").split(',').map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned).collect();
    let mut aliases = BTreeMap::new();
    for line in form.get("model_aliases").lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                aliases.insert(from.trim().to_owned(), to.trim().to_owned());
            }
            _ => errors.push(("model_aliases", format!("'{line}' is not 'asked = answered'"))),
        }
    }
    if !errors.is_empty() {
        let mut back = KeyForm::from_form(form);
        back.errors = errors;
        return Err(Box::new(back));
    }
    Ok(CreateKey {
        name: form.get("name").to_owned(),
        owner: Some(form.get("owner").to_owned()),
        expires_at: Some(form.get("expires_at").to_owned()),
        scopes: Some(scopes),
        models: (!models.is_empty()).then_some(models),
        limits: Some(limits),
        clamps: Some(clamps),
        model_aliases: Some(aliases),
    })
}

/// Which field a validation message belongs next to.
fn field_of(message: &str) -> &'static str {
    for field in ["expires_at", "scope", "model alias", "model", "clamp", "limit"] {
        if message.contains(field) {
            return match field {
                "scope" => "scopes",
                "model alias" => "model_aliases",
                "model" => "models",
                "clamp" => "clamps",
                "limit" => "limits",
                f => f,
            };
        }
    }
    "name"
}

#[derive(Template)]
#[template(path = "admin/key_new.html")]
struct KeyNewPage {
    csrf: String,
    nav: &'static str,
    notice: Option<String>,
    form: KeyForm,
}

pub async fn new_key_form(req: HttpRequest, session: Session, state: Data<AdminState>) -> Page {
    let data = or_return!(admin(&req, &session, &state).await);
    render(KeyNewPage { csrf: data.csrf, nav: "keys", notice: None, form: KeyForm::blank() })
}

#[derive(Template)]
#[template(path = "admin/key_secret.html")]
struct KeySecretPage {
    csrf: String,
    nav: &'static str,
    notice: Option<String>,
    heading: String,
    /// `None` once the secret has been shown: the page then says so.
    secret: Option<String>,
    id: i64,
}

#[derive(serde::Deserialize)]
pub struct RevealQuery {
    #[serde(default)]
    t: String,
}

/// After a create or a rotate: the secret waits for one view of its page.
fn to_secret_page(
    req: &HttpRequest,
    state: &AdminState,
    data: &SessionData,
    heading: String,
    secret: &str,
    id: i64,
) -> HttpResponse {
    let token = super::reveal::put(&data.id, id, heading, secret, state.clock.now().timestamp());
    see_other(req, &format!("/keys/{id}/secret?t={token}"))
}

/// Shows a waiting secret once; every later view (reload, Back, Forward)
/// says it was shown. Never stored by the browser or by htmx's history.
pub async fn key_secret(
    req: HttpRequest,
    session: Session,
    state: Data<AdminState>,
    id: Path<i64>,
    query: Query<RevealQuery>,
) -> Page {
    let data = or_return!(admin(&req, &session, &state).await);
    let now = state.clock.now().timestamp();
    let page = match super::reveal::take(&query.t, &data.id, *id, now) {
        Some(r) => KeySecretPage {
            csrf: data.csrf,
            nav: "keys",
            notice: None,
            heading: r.heading,
            secret: Some(r.secret),
            id: r.key_id,
        },
        None => KeySecretPage {
            csrf: data.csrf,
            nav: "keys",
            notice: None,
            heading: "This secret was already shown".into(),
            secret: None,
            id: *id,
        },
    };
    let mut page = render(page)?;
    page.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(page)
}

fn form_error(csrf: String, form: KeyForm) -> Page {
    let mut page = render(KeyNewPage { csrf, nav: "keys", notice: None, form })?;
    *page.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(page)
}

pub async fn create_key(req: HttpRequest, session: Session, state: Data<AdminState>, body: Bytes) -> Page {
    let form = Form::parse(&body);
    let data = or_return!(admin_changing(&req, &session, &state, &form).await);
    let input = match read_key_form(&form) {
        Ok(input) => input,
        Err(back) => return form_error(data.csrf, *back),
    };
    let fields = match key_ops::new_fields(input, state.settings.app_tz) {
        Ok(f) => f,
        Err(message) => {
            let mut back = KeyForm::from_form(&form);
            back.errors.push((field_of(&message), message));
            return form_error(data.csrf, back);
        }
    };
    let (secret, record) =
        key_ops::create(state.store.as_ref(), fields, state.clock.now().timestamp()).await?;
    log::info!("created API key {} ({}) from the console", record.id, record.key_hint);
    let heading = format!("Key “{}” created", record.fields.name);
    Ok(to_secret_page(&req, &state, &data, heading, secret.expose(), record.id))
}

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

fn usage_view(r: &UsageRow, tz: chrono_tz::Tz) -> UsageRowView {
    UsageRowView {
        time: chrono::DateTime::from_timestamp(r.created_at, 0)
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default(),
        key_id: r.key_id,
        key_name: r.key_name.clone(),
        model: r.model.clone(),
        route: r.route.clone(),
        status: r.status.clone(),
        status_class: match r.status.as_str() {
            "ok" => "ok",
            "client_aborted" | "interrupted" => "aborted",
            _ => "failed",
        },
        prompt: r.prompt_tokens,
        completion: r.completion_tokens,
        estimated: r.estimated,
        latency: r.latency_ms,
    }
}

#[derive(Template)]
#[template(path = "admin/key_detail.html")]
struct KeyDetailPage {
    csrf: String,
    nav: &'static str,
    notice: Option<String>,
    id: i64,
    hint: String,
    created: String,
    status: &'static str,
    active: bool,
    form: KeyForm,
    chart: String,
    day_requests: i64,
    day_tokens: i64,
    month_requests: i64,
    month_tokens: i64,
    total_tokens: i64,
    rows: Vec<UsageRowView>,
}

#[derive(serde::Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

async fn detail_page(
    state: &AdminState,
    csrf: String,
    k: &KeyRecord,
    form: KeyForm,
    notice: Option<String>,
) -> Page {
    let w = state.windows();
    let u = k.usage_at(&w);
    let filter = UsageFilter { key_id: Some(k.id), limit: 20, ..UsageFilter::default() };
    let rows =
        state.store.usage_rows(&filter).await?.iter().map(|r| usage_view(r, state.settings.app_tz)).collect();
    let errors = !form.errors.is_empty();
    let mut page = render(KeyDetailPage {
        csrf,
        nav: "keys",
        notice,
        id: k.id,
        hint: k.key_hint.clone(),
        created: rfc3339(k.created_at),
        status: status_of(k, w.now),
        active: k.active,
        form,
        chart: day_chart(&daily_tokens(state, Some(k.id)).await?, "tokens"),
        day_requests: u.day.requests,
        day_tokens: u.day.tokens,
        month_requests: u.month.requests,
        month_tokens: u.month.tokens,
        total_tokens: u.total.tokens,
        rows,
    })?;
    if errors {
        *page.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(page)
}

async fn find_key(state: &AdminState, id: i64) -> Result<KeyRecord, AdminError> {
    state.store.get_key(id).await?.ok_or_else(|| AdminError::NotFound(format!("no API key with id {id}")))
}

pub async fn key_detail(
    req: HttpRequest,
    session: Session,
    state: Data<AdminState>,
    id: Path<i64>,
    query: Query<NoticeQuery>,
) -> Page {
    let data = or_return!(admin(&req, &session, &state).await);
    let k = find_key(&state, *id).await?;
    let form = KeyForm::from_record(Some(&k));
    detail_page(&state, data.csrf, &k, form, notice(&query.notice)).await
}

pub async fn update_key(
    req: HttpRequest,
    session: Session,
    state: Data<AdminState>,
    id: Path<i64>,
    body: Bytes,
) -> Page {
    let form = Form::parse(&body);
    let data = or_return!(admin_changing(&req, &session, &state, &form).await);
    let k = find_key(&state, *id).await?;
    let input = match read_key_form(&form) {
        Ok(input) => input,
        Err(back) => return detail_page(&state, data.csrf, &k, *back, None).await,
    };
    let patch = PatchKey {
        name: Some(input.name),
        owner: Some(input.owner),
        expires_at: Some(input.expires_at),
        scopes: input.scopes,
        models: Some(input.models),
        clamps: input.clamps.map(|c| ClampsPatch {
            max_num_ctx: Some(c.max_num_ctx),
            max_output_tokens: Some(c.max_output_tokens),
            max_images: Some(c.max_images),
            allow_keep_alive_extremes: Some(c.allow_keep_alive_extremes),
        }),
        model_aliases: Some(input.model_aliases),
    };
    let limits = input.limits.unwrap_or_default();
    let limits_patch = LimitsPatch {
        requests_per_minute: Some(limits.requests_per_minute),
        tokens_per_minute: Some(limits.tokens_per_minute),
        daily_requests: Some(limits.daily_requests),
        daily_tokens: Some(limits.daily_tokens),
        monthly_requests: Some(limits.monthly_requests),
        monthly_tokens: Some(limits.monthly_tokens),
        total_tokens: Some(limits.total_tokens),
        max_concurrent: Some(limits.max_concurrent),
    };
    let fields = key_ops::patched_fields(&k.fields, patch, state.settings.app_tz)
        .and_then(|f| key_ops::limits_patched(&f, &limits_patch));
    let fields = match fields {
        Ok(f) => f,
        Err(message) => {
            let mut back = KeyForm::from_form(&form);
            back.errors.push((field_of(&message), message));
            return detail_page(&state, data.csrf, &k, back, None).await;
        }
    };
    state.store.save_key_fields(k.id, &fields, state.clock.now().timestamp()).await?;
    state.keys.clear();
    Ok(see_other(&req, &format!("/keys/{}?notice=saved", k.id)))
}

pub async fn set_active(
    req: HttpRequest,
    session: Session,
    state: Data<AdminState>,
    path: Path<(i64, String)>,
    body: Bytes,
) -> Page {
    let form = Form::parse(&body);
    or_return!(admin_changing(&req, &session, &state, &form).await);
    let (id, action) = path.into_inner();
    let active = match action.as_str() {
        "activate" => true,
        "deactivate" => false,
        _ => return Err(AdminError::NotFound("no such action".into())),
    };
    state
        .store
        .set_active(id, active, state.clock.now().timestamp())
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no API key with id {id}")))?;
    state.keys.clear();
    Ok(see_other(&req, &format!("/keys/{id}?notice={action}d")))
}

pub async fn rotate_key(
    req: HttpRequest,
    session: Session,
    state: Data<AdminState>,
    id: Path<i64>,
    body: Bytes,
) -> Page {
    let form = Form::parse(&body);
    let data = or_return!(admin_changing(&req, &session, &state, &form).await);
    let (secret, record) = key_ops::rotate(state.store.as_ref(), *id, state.clock.now().timestamp())
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no API key with id {id}")))?;
    state.keys.clear();
    log::info!("rotated API key {} from the console", record.id);
    let heading = format!("New secret for “{}”", record.fields.name);
    Ok(to_secret_page(&req, &state, &data, heading, secret.expose(), record.id))
}

#[derive(Template)]
#[template(path = "admin/key_delete.html")]
struct KeyDeletePage {
    csrf: String,
    nav: &'static str,
    notice: Option<String>,
    id: i64,
    name: String,
}

pub async fn delete_key_form(
    req: HttpRequest,
    session: Session,
    state: Data<AdminState>,
    id: Path<i64>,
) -> Page {
    let data = or_return!(admin(&req, &session, &state).await);
    let k = find_key(&state, *id).await?;
    render(KeyDeletePage { csrf: data.csrf, nav: "keys", notice: None, id: k.id, name: k.fields.name })
}

pub async fn delete_key(
    req: HttpRequest,
    session: Session,
    state: Data<AdminState>,
    id: Path<i64>,
    body: Bytes,
) -> Page {
    let form = Form::parse(&body);
    or_return!(admin_changing(&req, &session, &state, &form).await);
    if !state.store.delete_key(*id).await? {
        return Err(AdminError::NotFound(format!("no API key with id {id}")));
    }
    state.keys.clear();
    log::info!("deleted API key {} from the console", *id);
    Ok(see_other(&req, "/keys?notice=deleted"))
}

// ---- usage ----

const PAGE_SIZE: i64 = 50;

#[derive(Template)]
#[template(path = "admin/usage.html")]
struct UsagePage {
    csrf: String,
    nav: &'static str,
    notice: Option<String>,
    key_options: Vec<(i64, String, bool)>,
    model: String,
    status: String,
    from: String,
    to: String,
    rows: Vec<UsageRowView>,
    query: String,
    page: i64,
    prev_page: Option<i64>,
    next_page: Option<i64>,
}

pub async fn usage_page(
    req: HttpRequest,
    session: Session,
    state: Data<AdminState>,
    query: Query<UsageQuery>,
) -> Page {
    let data = or_return!(admin(&req, &session, &state).await);
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
    render(UsagePage {
        csrf: data.csrf,
        nav: "usage",
        notice: None,
        key_options,
        model: query.model.clone().unwrap_or_default(),
        status: query.status.clone().unwrap_or_default(),
        from: query.from.clone().unwrap_or_default(),
        to: query.to.clone().unwrap_or_default(),
        rows: rows.iter().map(|r| usage_view(r, state.settings.app_tz)).collect(),
        query: query.query_string(),
        page,
        prev_page: (page > 1).then_some(page - 1),
        next_page: more.then_some(page + 1),
    })
}

fn csv_field(text: &str) -> String {
    // Quote everything, and keep spreadsheet formulas from running.
    let text = if text.starts_with(['=', '+', '-', '@']) { format!("'{text}") } else { text.to_owned() };
    format!("\"{}\"", text.replace('"', "\"\""))
}

pub async fn usage_csv(
    req: HttpRequest,
    session: Session,
    state: Data<AdminState>,
    query: Query<UsageQuery>,
) -> Page {
    or_return!(admin(&req, &session, &state).await);
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

// ---- models ----

struct ModelView {
    name: String,
    family: String,
    parameters: String,
    quantization: String,
    size: String,
    loaded: bool,
}

#[derive(Template)]
#[template(path = "admin/models.html")]
struct ModelsPage {
    csrf: String,
    nav: &'static str,
    notice: Option<String>,
    error: Option<String>,
    models: Vec<ModelView>,
}

pub async fn models_page(
    req: HttpRequest,
    session: Session,
    state: Data<AdminState>,
    client: Data<awc::Client>,
) -> Page {
    let data = or_return!(admin(&req, &session, &state).await);
    let (tags, error) = match state.upstreams.tags(&client).await {
        Ok(tags) => (tags, None),
        Err(e) => (Value::Null, Some(e)),
    };
    let loaded: Vec<String> = match state.upstreams.get_json(&client, "/api/ps").await {
        Ok(ps) => ps["models"]
            .as_array()
            .map(|a| a.iter().filter_map(|m| m["name"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        Err(_) => vec![],
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let models = tags["models"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|m| {
                    let name = text(&m["name"]);
                    ModelView {
                        loaded: loaded.contains(&name),
                        family: text(&m["details"]["family"]),
                        parameters: text(&m["details"]["parameter_size"]),
                        quantization: text(&m["details"]["quantization_level"]),
                        size: m["size"].as_f64().map(|b| format!("{:.1} GB", b / 1e9)).unwrap_or_default(),
                        name,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    render(ModelsPage { csrf: data.csrf, nav: "models", notice: None, error, models })
}

// ---- settings ----

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsPage {
    csrf: String,
    nav: &'static str,
    notice: Option<String>,
    ollama_urls: String,
    anthropic_default_model: String,
    upstream_error: Option<String>,
    password_from_env: bool,
    password_error: Option<String>,
}

fn settings_view(state: &AdminState, csrf: String, notice: Option<String>) -> SettingsPage {
    SettingsPage {
        csrf,
        nav: "settings",
        notice,
        ollama_urls: state.upstreams.urls().iter().map(|u| u.to_string()).collect::<Vec<_>>().join("\n"),
        anthropic_default_model: state.runtime.anthropic_default_model().unwrap_or_default(),
        upstream_error: None,
        password_from_env: state.settings.admin_password.is_some()
            || state.settings.admin_password_hash.is_some(),
        password_error: None,
    }
}

pub async fn settings_page(
    req: HttpRequest,
    session: Session,
    state: Data<AdminState>,
    query: Query<NoticeQuery>,
) -> Page {
    let data = or_return!(admin(&req, &session, &state).await);
    render(settings_view(&state, data.csrf, notice(&query.notice)))
}

pub async fn save_settings(req: HttpRequest, session: Session, state: Data<AdminState>, body: Bytes) -> Page {
    let form = Form::parse(&body);
    let data = or_return!(admin_changing(&req, &session, &state, &form).await);
    let change = SettingsChange {
        ollama_urls: Some(form.get("ollama_urls").lines().map(str::to_owned).collect()),
        ollama_url: None,
        anthropic_default_model: Some(Some(form.get("anthropic_default_model").to_owned())),
    };
    if let Err(e) = apply_settings(&state, change).await {
        let mut page = settings_view(&state, data.csrf, None);
        page.ollama_urls = form.get("ollama_urls").to_owned();
        page.upstream_error = Some(e.to_string());
        let mut response = render(page)?;
        *response.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(response);
    }
    Ok(see_other(&req, "/settings?notice=saved"))
}

pub async fn change_password(
    req: HttpRequest,
    session: Session,
    state: Data<AdminState>,
    body: Bytes,
) -> Page {
    let form = Form::parse(&body);
    let data = or_return!(admin_changing(&req, &session, &state, &form).await);
    let problem = if state.settings.admin_password.is_some() || state.settings.admin_password_hash.is_some() {
        Some("The password is set by ADMIN_PASSWORD or ADMIN_PASSWORD_HASH; change it there.")
    } else if !state
        .login_throttle
        .check(
            &state.password,
            super::forwarded::client_address(&req, &state.settings.trusted_proxies),
            state.clock.as_ref(),
            form.get("current"),
        )
        .await?
    {
        // A stolen session may not guess the password here any faster than at the door.
        Some("The current password is wrong.")
    } else if form.get("new").chars().count() < 12 {
        Some("The new password needs 12 characters or more.")
    } else if form.get("new").len() > crate::domain::lengths::PASSWORD {
        Some("The new password may have at most 1024 bytes.")
    } else if form.get("new") != form.get("confirm") {
        Some("The two new passwords differ.")
    } else {
        None
    };
    if let Some(problem) = problem {
        let mut page = settings_view(&state, data.csrf, None);
        page.password_error = Some(problem.into());
        let mut response = render(page)?;
        *response.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(response);
    }
    let new = form.get("new").to_owned();
    let phc = tokio::task::spawn_blocking(move || super::password::hash(&new))
        .await
        .map_err(|e| AdminError::BadRequest(e.to_string()))?
        .map_err(AdminError::BadRequest)?;
    state.store.put_setting(SettingName::AdminPasswordHash.as_str(), &phc).await?;
    state.password.set_hash(phc);
    // Every session issued before now ends; this one starts again at once.
    let epoch = session::current_epoch(&state).await? + 1;
    state.store.put_setting(SettingName::SessionEpoch.as_str(), &epoch.to_string()).await?;
    session::log_in(&session, &state).await?;
    log::info!("admin password changed from the console");
    Ok(see_other(&req, "/settings?notice=password"))
}

// ---- connect ----

#[derive(Template)]
#[template(path = "admin/connect.html")]
struct ConnectPage {
    csrf: String,
    nav: &'static str,
    notice: Option<String>,
    base: String,
    snippets: Vec<(&'static str, String)>,
}

pub async fn connect_page(req: HttpRequest, session: Session, state: Data<AdminState>) -> Page {
    let data = or_return!(admin(&req, &session, &state).await);
    let base = public_base_url(&state, &req);
    let s = client_snippets(&base);
    let text = |name: &str| s[name].as_str().unwrap_or_default().to_owned();
    let snippets = vec![
        ("curl", text("curl")),
        ("OpenAI SDK (Python)", text("openai_python")),
        ("Anthropic SDK (Python)", text("anthropic_python")),
        ("Claude Code", text("claude_code")),
        ("ollama client (Python)", text("ollama_python")),
        ("LangChain", text("langchain")),
        ("Open WebUI", text("open_webui")),
        ("Environment variables", text("environment")),
    ];
    render(ConnectPage { csrf: data.csrf, nav: "connect", notice: None, base, snippets })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(dashboard))
        .route("/login", web::get().to(login_form))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/keys", web::get().to(keys_page))
        .route("/keys", web::post().to(create_key))
        .route("/keys/new", web::get().to(new_key_form))
        .route("/keys/{id}", web::get().to(key_detail))
        .route("/keys/{id}", web::post().to(update_key))
        .route("/keys/{id}/rotate", web::post().to(rotate_key))
        .route("/keys/{id}/secret", web::get().to(key_secret))
        .route("/keys/{id}/delete", web::get().to(delete_key_form))
        .route("/keys/{id}/delete", web::post().to(delete_key))
        .route("/keys/{id}/{action}", web::post().to(set_active))
        .route("/usage", web::get().to(usage_page))
        .route("/usage.csv", web::get().to(usage_csv))
        .route("/models", web::get().to(models_page))
        .route("/settings", web::get().to(settings_page))
        .route("/settings", web::post().to(save_settings))
        .route("/settings/password", web::post().to(change_password))
        .route("/connect", web::get().to(connect_page));
}
