//! The key form: its fields as typed or as stored, reading it into the
//! checked fields of a key (errors stand next to their fields), and the
//! new-key page.

use super::names::Names;
use super::{alert_fields, model_limits};
use super::{render, render_status, shown, Chrome, Form, Nav, Page};
use crate::admin::auth::{Console, CsrfForm};
use crate::admin::keys::{self as key_ops, CreateKey, FieldError, KeyOps};
use crate::admin::AdminState;
use crate::domain::alerts::SoftLimits;
use crate::domain::clamps::Clamps;
use crate::domain::limits::{LimitKind, Limits};
use crate::domain::model::normalize;
use crate::domain::people::ModelLimit;
use crate::domain::scopes::Scope;
use crate::domain::time::rfc3339;
use crate::store::{KeyFields, KeyRecord};
use actix_web::http::StatusCode;
use actix_web::web::{Data, Query};
use actix_web::HttpRequest;
use askama::Template;
use chrono_tz::Tz;
use std::collections::BTreeMap;

/// The key form's fields; names equal the JSON API's field names.
pub struct KeyForm {
    pub(super) name: String,
    pub(super) owner: String,
    pub(super) expires_at: String,
    pub(super) scope_options: Vec<(&'static str, bool, &'static str)>,
    pub(super) models: String,
    pub(super) model_aliases: String,
    /// The key's user's id as text; empty for none.
    pub(super) user_id: String,
    /// Every user, as (id, name, selected), for the user field.
    pub(super) user_options: Vec<(i64, String, bool)>,
    /// Limits per model, one entry a line (`model_limits`).
    pub(super) model_limits: String,
    /// Its share of turns in the fair queue, as text.
    pub(super) priority: String,
    /// The addresses it may be used from, one a line; empty for anywhere.
    pub(super) allowed_ips: String,
    pub(super) limits: Vec<(&'static str, &'static str, String)>,
    pub(super) alerts: Vec<alert_fields::AlertField>,
    pub(super) clamps: Vec<(&'static str, &'static str, String)>,
    pub(super) allow_keep_alive_extremes: bool,
    pub(super) errors: Vec<FieldError>,
    /// `APP_TZ`'s name, for the expiry's help text.
    pub(super) zone: String,
    /// The upstream's models as (name, on the key's list) for the picker;
    /// empty when the upstream could not be asked.
    pub(super) model_choices: Vec<(String, bool)>,
    /// Why the upstream's models are not offered, when they are not.
    pub(super) models_unlisted: Option<String>,
    /// Names on the key's list that no backend has: a warning only.
    pub(super) unknown_models: Vec<String>,
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
    /// Every error of a field (a group such as `limits` may have several).
    pub(super) fn error_for(&self, field: &str) -> Option<String> {
        let all: Vec<&str> =
            self.errors.iter().filter(|e| e.field == field).map(|e| e.message.as_str()).collect();
        (!all.is_empty()).then(|| all.join("; "))
    }

    /// The summary's lines: (the field's id, its message), in form order.
    pub(super) fn summary(&self) -> Vec<(&'static str, &str)> {
        self.errors.iter().map(|e| (e.field, e.message.as_str())).collect()
    }

    /// Offers the upstream's models as checkboxes and moves the ones the key
    /// allows out of the free text, which keeps the rest; flags names that no
    /// backend has. `Err` (the upstream could not be asked) leaves the text.
    pub fn with_models(mut self, upstream: &Result<Vec<String>, String>) -> KeyForm {
        let names = match upstream {
            Ok(names) => names,
            Err(e) => {
                self.models_unlisted = Some(e.clone());
                return self;
            }
        };
        let listed: Vec<String> = split_models(&self.models);
        let wanted: Vec<String> = listed.iter().map(|m| normalize(m)).collect();
        self.model_choices = names.iter().map(|n| (n.clone(), wanted.contains(&normalize(n)))).collect();
        let known: Vec<String> = names.iter().map(|n| normalize(n)).collect();
        let rest: Vec<&String> = listed.iter().filter(|m| !known.contains(&normalize(m))).collect();
        self.unknown_models = rest.iter().map(|m| (*m).clone()).collect();
        self.models = rest.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
        self
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    fn blank(tz: Tz) -> KeyForm {
        KeyForm::from_record(None, tz)
    }

    /// Fills the user field's choices, marking the form's user.
    pub fn with_users(mut self, users: &Names) -> KeyForm {
        self.user_options = users.options(self.user_id.parse().ok());
        self
    }

    pub fn from_record(k: Option<&KeyRecord>, tz: Tz) -> KeyForm {
        let f = k.map(|k| &k.fields);
        let limits = f.map(|f| f.limits).unwrap_or_default();
        let clamps = f.map(|f| f.clamps).unwrap_or_default();
        let scopes = f.map(|f| f.scopes).unwrap_or_else(crate::domain::scopes::Scopes::default_for_new_keys);
        let text = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        KeyForm {
            name: f.map(|f| f.name.clone()).unwrap_or_default(),
            owner: f.and_then(|f| f.owner.clone()).unwrap_or_default(),
            expires_at: f.and_then(|f| f.expires_at).map(|t| expiry_text(t, tz)).unwrap_or_default(),
            scope_options: Scope::ALL
                .iter()
                .map(|s| (s.as_str(), scopes.contains(*s), s.explanation()))
                .collect(),
            models: f.and_then(|f| f.models.as_ref()).map(|m| m.names().join(", ")).unwrap_or_default(),
            model_aliases: f
                .and_then(|f| f.aliases.as_ref())
                .map(|a| a.0.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join("\n"))
                .unwrap_or_default(),
            user_id: f.and_then(|f| f.user_id).map(|id| id.to_string()).unwrap_or_default(),
            user_options: vec![],
            model_limits: k.map(|k| model_limits::to_text(&k.model_limits)).unwrap_or_default(),
            priority: f.map(|f| f.priority).unwrap_or(1).to_string(),
            allowed_ips: f
                .and_then(|f| f.allowed_ips.as_ref())
                .map(|a| a.to_vec().join("\n"))
                .unwrap_or_default(),
            limits: stored_limits(&limits),
            alerts: alert_fields::stored(&k.map(|k| k.alerts.clone()).unwrap_or_default()),
            clamps: [clamps.max_num_ctx, clamps.max_output_tokens, clamps.max_images]
                .iter()
                .zip(CLAMP_FIELDS)
                .map(|(v, (n, l))| (n, l, text(*v)))
                .collect(),
            allow_keep_alive_extremes: clamps.allow_keep_alive_extremes,
            errors: vec![],
            zone: tz.name().to_owned(),
            model_choices: vec![],
            models_unlisted: None,
            unknown_models: vec![],
        }
    }

    /// What was typed, kept so a form with errors comes back filled in.
    fn from_form(form: &Form, tz: Tz) -> KeyForm {
        let scopes = form.all("scopes");
        KeyForm {
            models: form_models(form).join(", "),
            name: form.get("name").to_owned(),
            owner: form.get("owner").to_owned(),
            expires_at: form.get("expires_at").to_owned(),
            scope_options: Scope::ALL
                .iter()
                .map(|s| (s.as_str(), scopes.iter().any(|x| x == s.as_str()), s.explanation()))
                .collect(),
            model_aliases: form.get("model_aliases").to_owned(),
            user_id: form.get("user_id").trim().to_owned(),
            user_options: vec![],
            model_limits: form.get("model_limits").to_owned(),
            priority: form.get("priority").to_owned(),
            allowed_ips: form.get("allowed_ips").to_owned(),
            limits: typed_limits(form),
            alerts: alert_fields::typed(form),
            clamps: CLAMP_FIELDS.iter().map(|(n, l)| (*n, *l, form.get(n).to_owned())).collect(),
            allow_keep_alive_extremes: form.get("allow_keep_alive_extremes") == "true",
            errors: vec![],
            zone: tz.name().to_owned(),
            model_choices: vec![],
            models_unlisted: None,
            unknown_models: vec![],
        }
    }
}

/// An expiry as the form shows it: a date when it is the end of a day in
/// `APP_TZ` (stored as the next midnight), else the instant in RFC 3339.
fn expiry_text(ts: i64, tz: Tz) -> String {
    if shown::date(ts, tz) != shown::date(ts - 1, tz) {
        shown::date(ts - 1, tz)
    } else {
        rfc3339(ts)
    }
}

/// Names in a comma-separated list, trimmed, empty ones left out.
fn split_models(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned).collect()
}

/// The models a form allows: the ticked upstream models, then the typed ones.
fn form_models(form: &Form) -> Vec<String> {
    let mut out: Vec<String> = form.all("model_picks").into_iter().map(|m| m.trim().to_owned()).collect();
    for m in split_models(form.get("models")) {
        if !out.iter().any(|o| normalize(o) == normalize(&m)) {
            out.push(m);
        }
    }
    out
}

/// The upstream's model names, or why they could not be had.
pub async fn upstream_models(state: &AdminState, client: &awc::Client) -> Result<Vec<String>, String> {
    let tags = state.upstreams.tags(client).await?;
    let names = tags["models"]
        .as_array()
        .map(|list| list.iter().filter_map(|m| m["name"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    Ok(names)
}

/// The limit fields (name, label, text) as stored: empty for unlimited.
pub(super) fn stored_limits(limits: &Limits) -> Vec<(&'static str, &'static str, String)> {
    let text = |name: &str| limits.named().iter().find(|(n, _)| *n == name).and_then(|(_, v)| *v);
    LIMIT_FIELDS.iter().map(|(n, l)| (*n, *l, text(n).map(|v| v.to_string()).unwrap_or_default())).collect()
}

/// The limit fields (name, label, text) as typed.
pub(super) fn typed_limits(form: &Form) -> Vec<(&'static str, &'static str, String)> {
    LIMIT_FIELDS.iter().map(|(n, l)| (*n, *l, form.get(n).to_owned())).collect()
}

fn number(form: &Form, name: &'static str, errors: &mut Vec<FieldError>, group: &'static str) -> Option<i64> {
    let text = form.get(name).trim();
    if text.is_empty() {
        return None;
    }
    match text.parse::<i64>() {
        Ok(n) if n >= 0 => Some(n),
        _ => {
            errors.push(FieldError::new(group, format!("{name} must be a whole number, 0 or more")));
            None
        }
    }
}

/// An optional whole number of any sign (empty: none); `refused` words the
/// error for what was typed. The API's own checks judge its range.
fn integer(
    form: &Form,
    name: &'static str,
    errors: &mut Vec<FieldError>,
    refused: impl FnOnce(&str) -> String,
) -> Option<i64> {
    let text = form.get(name).trim();
    if text.is_empty() {
        return None;
    }
    text.parse::<i64>().map_err(|_| errors.push(FieldError::new(name, refused(text)))).ok()
}

/// The limit fields of a key's, user's or team's form (empty: unlimited).
pub(super) fn read_limits(form: &Form, errors: &mut Vec<FieldError>) -> Limits {
    let mut limits = Limits::default();
    for kind in LimitKind::ALL {
        limits.set(kind, number(form, kind.field(), errors, "limits"));
    }
    limits
}

/// Reads the key form into the JSON API's create body, with the errors of
/// reading it (a field that cannot be read is left out of the body).
fn read_key_form(form: &Form) -> (CreateKey, Vec<FieldError>) {
    let mut errors = vec![];
    let limits = read_limits(form, &mut errors);
    let alerts = alert_fields::read(form, &mut errors);
    let mut n = |name: &'static str, group: &'static str| number(form, name, &mut errors, group);
    let clamps = Clamps {
        max_num_ctx: n("max_num_ctx", "clamps"),
        max_output_tokens: n("max_output_tokens", "clamps"),
        max_images: n("max_images", "clamps"),
        allow_keep_alive_extremes: form.get("allow_keep_alive_extremes") == "true",
    };
    let scopes = form.all("scopes");
    if scopes.is_empty() {
        errors.push(FieldError::new("scopes", "choose at least one scope"));
    }
    let models = form_models(form);
    let mut aliases = BTreeMap::new();
    for line in form.get("model_aliases").lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                aliases.insert(from.trim().to_owned(), to.trim().to_owned());
            }
            _ => errors.push(FieldError::new("model_aliases", format!("'{line}' is not 'asked = answered'"))),
        }
    }
    let user_id = integer(form, "user_id", &mut errors, |text| format!("'{text}' is not a user"));
    let priority =
        integer(form, "priority", &mut errors, |text| format!("priority '{text}' is not a whole number"));
    let model_limits = match model_limits::parse(form.get("model_limits")) {
        Ok(entries) => Some(entries),
        Err(e) => {
            errors.push(FieldError::new("model_limits", e));
            None
        }
    };
    let body = CreateKey {
        user_id,
        priority,
        model_limits,
        allowed_ips: Some(vec![form.get("allowed_ips").to_owned()]),
        name: form.get("name").to_owned(),
        owner: Some(form.get("owner").to_owned()),
        expires_at: Some(form.get("expires_at").to_owned()),
        scopes: Some(scopes),
        models: (!models.is_empty()).then_some(models),
        limits: Some(limits),
        clamps: Some(clamps),
        model_aliases: Some(aliases),
        alerts: alerts.map(|soft| Some(soft.to_json())),
    };
    (body, errors)
}

/// Leaves a refused field out of the body (its default is always valid), so
/// the next check reaches the fields after it. `false`: nothing to leave out.
fn drop_field(body: &mut CreateKey, field: &str) -> bool {
    match field {
        "name" => body.name = "-".into(),
        "owner" => body.owner = None,
        "expires_at" => body.expires_at = None,
        "scopes" => body.scopes = None,
        "models" => body.models = None,
        "model_aliases" => body.model_aliases = None,
        "priority" => body.priority = None,
        "allowed_ips" => body.allowed_ips = None,
        "limits" => body.limits = None,
        "clamps" => body.clamps = None,
        _ => return false,
    }
    true
}

/// A key as its form says: its fields and its limits per model.
pub struct CheckedKey {
    pub fields: KeyFields,
    pub model_limits: Vec<ModelLimit>,
    /// `None` when the form has no alert fields.
    pub alerts: Option<SoftLimits>,
}

/// The form as the fields of a key, or the form back with its errors.
/// Every error shows at once: those of reading the form, then the domain's
/// checks, which stop at their first refusal, so each refused field is left
/// out in turn and the checks run again on the rest.
pub fn checked(form: &Form, tz: Tz) -> Result<CheckedKey, Box<KeyForm>> {
    let (mut input, mut errors) = read_key_form(form);
    let entries =
        key_ops::model_limits(input.model_limits.take().as_deref()).map_err(|e| errors.push(e)).ok();
    let alerts = key_ops::soft_limits(input.alerts.take()).map_err(|e| errors.push(e)).ok();
    let mut dropped: Vec<&'static str> = errors.iter().map(|e| e.field).collect();
    let fields = loop {
        for field in &dropped {
            drop_field(&mut input, field);
        }
        match key_ops::new_fields(input, tz) {
            Ok(fields) => break Some(fields),
            Err(e) => {
                // Each turn leaves out one more field, so this ends.
                let again = dropped.contains(&e.field) || !is_key_field(e.field);
                if !errors.iter().any(|x| x.field == e.field) {
                    dropped.push(e.field);
                    errors.push(e);
                }
                if again {
                    break None;
                }
                input = read_key_form(form).0;
                input.model_limits = None;
                input.alerts = None;
            }
        }
    };
    match (fields, entries, alerts) {
        (Some(fields), Some(entries), Some(alerts)) if errors.is_empty() => {
            Ok(CheckedKey { fields, model_limits: entries.unwrap_or_default(), alerts })
        }
        _ => {
            if errors.is_empty() {
                errors.push(FieldError::new("name", "the key could not be checked; try again"));
            }
            errors
                .sort_by_key(|e| FIELD_ORDER.iter().position(|f| *f == e.field).unwrap_or(FIELD_ORDER.len()));
            Err(Box::new(KeyForm { errors, ..KeyForm::from_form(form, tz) }))
        }
    }
}

/// The fields in the order the form shows them, for the summary.
const FIELD_ORDER: [&str; 14] = [
    "name",
    "user_id",
    "priority",
    "owner",
    "expires_at",
    "scopes",
    "allowed_ips",
    "models",
    "model_aliases",
    "limits",
    "model_limits",
    "alerts",
    "clamps",
    "",
];

fn is_key_field(field: &str) -> bool {
    drop_field(&mut CreateKey::default(), field)
}

#[derive(Template)]
#[template(path = "admin/key_new.html")]
struct KeyNewPage {
    chrome: Chrome,
    form: KeyForm,
}

#[derive(serde::Deserialize)]
pub struct NewKeyQuery {
    /// Opens the form with this user chosen (a user's page links here).
    user_id: Option<i64>,
}

pub async fn new_key_form(
    console: Console,
    state: Data<AdminState>,
    client: Data<awc::Client>,
    query: Query<NewKeyQuery>,
) -> Page {
    let mut form = KeyForm::blank(state.settings.app_tz).with_models(&upstream_models(&state, &client).await);
    if let Some(id) = query.user_id {
        form.user_id = id.to_string();
    }
    let form = form.with_users(&Names::users(&state).await?);
    render(&KeyNewPage { chrome: Chrome::new(&console.session, Nav::Keys), form })
}

pub async fn create_key(
    req: HttpRequest,
    state: Data<AdminState>,
    client: Data<awc::Client>,
    post: CsrfForm,
) -> Page {
    let key = match checked(&post.form, state.settings.app_tz) {
        Ok(key) => key,
        Err(form) => {
            let upstream = upstream_models(&state, &client).await;
            let form = form.with_users(&Names::users(&state).await?).with_models(&upstream);
            let page = KeyNewPage { chrome: Chrome::new(&post.session, Nav::Keys), form };
            return render_status(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let ops = KeyOps::of(&state, post.actor);
    let (secret, mut record) = ops.create(key.fields).await?;
    if !key.model_limits.is_empty() {
        record = ops.set_model_limits(record.id, &key.model_limits).await?;
    }
    if let Some(soft) = key.alerts.filter(|s| !s.is_empty()) {
        record = ops.set_soft_limits(record.id, &soft).await?;
    }
    log::info!("created API key {} ({}) from the console", record.id, record.key_hint);
    let heading = format!("Key “{}” created", record.fields.name);
    Ok(super::to_secret_page(&req, &state, &post.session, heading, secret.expose(), record.id))
}
