//! The admin JSON API (API.md section 4), for scripts.

use super::error::AdminError;
use super::keys::{self, key_json, CreateKey, PatchKey};
use crate::admin::AdminState;
use crate::config::parse_upstream;
use crate::domain::limits::LimitsPatch;
use crate::domain::time::rfc3339;
use crate::store::{UsageBucket, UsageFilter};
use actix_web::web::{self, Data, Json, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

type Reply = Result<HttpResponse, AdminError>;

/// Every admin API route first proves it holds the admin password, or a
/// logged-in console session (whose changes also need the CSRF token).
pub async fn require_admin(req: &HttpRequest, state: &AdminState) -> Result<(), AdminError> {
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if let Some(token) = presented {
        // The bearer password is a way in like the login form: throttled the same way.
        let ip = super::forwarded::client_address(req, &state.settings.trusted_proxies);
        let right = state.login_throttle.check(&state.password, ip, state.clock.as_ref(), token).await?;
        return if right { Ok(()) } else { Err(AdminError::Unauthorized) };
    }
    use actix_session::SessionExt;
    let session = req.get_session();
    let Some(data) = super::session::logged_in(&session, state).await? else {
        return Err(AdminError::Unauthorized);
    };
    if req.method() != actix_web::http::Method::GET {
        super::session::check_csrf(req, &data, None)?;
    }
    Ok(())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api-keys", web::get().to(list_keys))
        .route("/api-keys", web::post().to(create_key))
        .route("/api-keys/{id}", web::get().to(get_key))
        .route("/api-keys/{id}", web::patch().to(update_key))
        .route("/api-keys/{id}", web::delete().to(delete_key))
        .route("/api-keys/{id}/quota", web::patch().to(update_quota))
        .route("/api-keys/{id}/activate", web::put().to(activate_key))
        .route("/api-keys/{id}/deactivate", web::put().to(deactivate_key))
        .route("/api-keys/{id}/rotate", web::post().to(rotate_key))
        .route("/usage", web::get().to(usage))
        .route("/stats", web::get().to(stats))
        .route("/settings", web::get().to(get_settings))
        .route("/settings", web::put().to(put_settings))
        .route("/ollama-models", web::get().to(ollama_models))
        .route("/proxy-info", web::get().to(proxy_info));
}

fn now(state: &AdminState) -> i64 {
    state.clock.now().timestamp()
}

fn not_found(id: i64) -> AdminError {
    AdminError::NotFound(format!("no API key with id {id}"))
}

async fn list_keys(req: HttpRequest, state: Data<AdminState>) -> Reply {
    require_admin(&req, &state).await?;
    let w = state.windows();
    let keys: Vec<Value> = state.store.list_keys().await?.iter().map(|k| key_json(k, &w)).collect();
    Ok(HttpResponse::Ok().json(keys))
}

async fn create_key(req: HttpRequest, state: Data<AdminState>, body: Json<CreateKey>) -> Reply {
    require_admin(&req, &state).await?;
    let fields =
        keys::new_fields(body.into_inner(), state.settings.app_tz).map_err(AdminError::BadRequest)?;
    let (secret, record) = keys::create(state.store.as_ref(), fields, now(&state)).await?;
    log::info!("created API key {} ({})", record.id, record.key_hint);
    let mut body = key_json(&record, &state.windows());
    body["key"] = Value::String(secret.expose().to_owned());
    Ok(HttpResponse::Created().insert_header(("cache-control", "no-store")).json(body))
}

async fn get_key(req: HttpRequest, state: Data<AdminState>, id: Path<i64>) -> Reply {
    require_admin(&req, &state).await?;
    let key = state.store.get_key(*id).await?.ok_or_else(|| not_found(*id))?;
    Ok(HttpResponse::Ok().json(key_json(&key, &state.windows())))
}

async fn update_key(req: HttpRequest, state: Data<AdminState>, id: Path<i64>, body: Json<PatchKey>) -> Reply {
    require_admin(&req, &state).await?;
    let current = state.store.get_key(*id).await?.ok_or_else(|| not_found(*id))?;
    let fields = keys::patched_fields(&current.fields, body.into_inner(), state.settings.app_tz)
        .map_err(AdminError::BadRequest)?;
    saved(&state, *id, state.store.save_key_fields(*id, &fields, now(&state)).await?)
}

async fn update_quota(
    req: HttpRequest,
    state: Data<AdminState>,
    id: Path<i64>,
    body: Json<LimitsPatch>,
) -> Reply {
    require_admin(&req, &state).await?;
    let current = state.store.get_key(*id).await?.ok_or_else(|| not_found(*id))?;
    let fields = keys::limits_patched(&current.fields, &body).map_err(AdminError::BadRequest)?;
    saved(&state, *id, state.store.save_key_fields(*id, &fields, now(&state)).await?)
}

async fn activate_key(req: HttpRequest, state: Data<AdminState>, id: Path<i64>) -> Reply {
    require_admin(&req, &state).await?;
    saved(&state, *id, state.store.set_active(*id, true, now(&state)).await?)
}

async fn deactivate_key(req: HttpRequest, state: Data<AdminState>, id: Path<i64>) -> Reply {
    require_admin(&req, &state).await?;
    saved(&state, *id, state.store.set_active(*id, false, now(&state)).await?)
}

async fn rotate_key(req: HttpRequest, state: Data<AdminState>, id: Path<i64>) -> Reply {
    require_admin(&req, &state).await?;
    let (secret, record) =
        keys::rotate(state.store.as_ref(), *id, now(&state)).await?.ok_or_else(|| not_found(*id))?;
    state.keys.clear();
    log::info!("rotated API key {} (now {})", record.id, record.key_hint);
    let mut body = key_json(&record, &state.windows());
    body["key"] = Value::String(secret.expose().to_owned());
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(body))
}

async fn delete_key(req: HttpRequest, state: Data<AdminState>, id: Path<i64>) -> Reply {
    require_admin(&req, &state).await?;
    if !state.store.delete_key(*id).await? {
        return Err(not_found(*id));
    }
    state.keys.clear();
    log::info!("deleted API key {}", *id);
    Ok(HttpResponse::NoContent().finish())
}

/// A changed key takes effect on the next request in this process.
fn saved(state: &AdminState, id: i64, record: Option<crate::store::KeyRecord>) -> Reply {
    let record = record.ok_or_else(|| not_found(id))?;
    state.keys.clear();
    Ok(HttpResponse::Ok().json(key_json(&record, &state.windows())))
}

/// Usage filters, shared by the JSON API and the console's usage page.
#[derive(Debug, Default, Deserialize)]
pub struct UsageQuery {
    /// A string, so that a form's empty "all keys" choice means no filter.
    pub key_id: Option<String>,
    pub model: Option<String>,
    pub status: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub group_by: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    /// The console's page number (50 rows a page).
    pub page: Option<i64>,
}

impl UsageQuery {
    pub fn filter(&self, state: &AdminState) -> Result<UsageFilter, AdminError> {
        self.filter_rows(state, self.limit.unwrap_or(100).clamp(1, 10_000), self.offset.unwrap_or(0).max(0))
    }

    pub fn filter_rows(
        &self,
        state: &AdminState,
        limit: i64,
        offset: i64,
    ) -> Result<UsageFilter, AdminError> {
        let tz = state.settings.app_tz;
        let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let time = |v: &Option<String>, end: bool| {
            given(v)
                .map(|t| crate::domain::time::parse_time(&t, tz, end).map_err(AdminError::BadRequest))
                .transpose()
        };
        let key_id = given(&self.key_id)
            .map(|k| {
                k.parse::<i64>().map_err(|_| AdminError::BadRequest(format!("key_id '{k}' is not a number")))
            })
            .transpose()?;
        Ok(UsageFilter {
            key_id,
            // Usage records models by their canonical name (`llama3:latest`).
            model: given(&self.model).map(|m| crate::domain::model::normalize(&m)),
            status: given(&self.status),
            from: time(&self.from, false)?,
            to: time(&self.to, true)?,
            limit,
            offset,
        })
    }

    /// The filters as a query string, for links that keep them.
    pub fn query_string(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("key_id", &self.key_id),
            ("model", &self.model),
            ("status", &self.status),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }
}

fn totals(b: &UsageBucket) -> [i64; 4] {
    [b.requests, b.prompt_tokens, b.completion_tokens, b.total_tokens]
}

fn counts_json(c: [i64; 4]) -> Value {
    json!({"requests": c[0], "prompt_tokens": c[1], "completion_tokens": c[2], "total_tokens": c[3]})
}

fn add(into: &mut [i64; 4], from: [i64; 4]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

async fn usage(req: HttpRequest, state: Data<AdminState>, query: Query<UsageQuery>) -> Reply {
    require_admin(&req, &state).await?;
    let filter = query.filter(&state)?;
    let store = &state.store;
    let tz = state.settings.app_tz;
    let rows: Vec<Value> = match query.group_by.as_deref().filter(|g| !g.is_empty()) {
        None => store
            .usage_rows(&filter)
            .await?
            .into_iter()
            .map(|r| {
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                v["created_at"] = Value::String(rfc3339(r.created_at));
                v
            })
            .collect(),
        Some("hour") => {
            let mut by: BTreeMap<i64, [i64; 4]> = BTreeMap::new();
            for b in store.usage_buckets(&filter, 3600).await? {
                add(by.entry(b.bucket).or_default(), totals(&b));
            }
            by.into_iter().map(|(t, c)| with_label(counts_json(c), "hour", json!(rfc3339(t)))).collect()
        }
        Some("day") => {
            // Quarter-hour buckets fold into local days in every zone, DST included.
            let mut by: BTreeMap<String, [i64; 4]> = BTreeMap::new();
            for b in store.usage_buckets(&filter, 900).await? {
                let day = chrono::DateTime::from_timestamp(b.bucket, 0)
                    .map(|t| t.with_timezone(&tz).format("%Y-%m-%d").to_string())
                    .unwrap_or_default();
                add(by.entry(day).or_default(), totals(&b));
            }
            by.into_iter().map(|(d, c)| with_label(counts_json(c), "day", json!(d))).collect()
        }
        Some("model") => {
            let mut by: BTreeMap<String, [i64; 4]> = BTreeMap::new();
            for b in store.usage_buckets(&filter, i64::MAX / 4).await? {
                add(by.entry(b.model.clone()).or_default(), totals(&b));
            }
            by.into_iter().map(|(m, c)| with_label(counts_json(c), "model", json!(m))).collect()
        }
        Some("key") => {
            let mut by: BTreeMap<i64, (String, [i64; 4])> = BTreeMap::new();
            for b in store.usage_buckets(&filter, i64::MAX / 4).await? {
                let entry = by.entry(b.key_id).or_insert_with(|| (b.key_name.clone(), [0; 4]));
                add(&mut entry.1, totals(&b));
            }
            by.into_iter()
                .map(|(id, (name, c))| {
                    let v = with_label(counts_json(c), "key_id", json!(id));
                    with_label(v, "key_name", json!(name))
                })
                .collect()
        }
        Some(other) => {
            return Err(AdminError::BadRequest(format!(
                "group_by '{other}' is not one of hour, day, model, key"
            )))
        }
    };
    Ok(HttpResponse::Ok().json(json!({ "group_by": query.group_by, "rows": rows })))
}

fn with_label(mut v: Value, name: &str, label: Value) -> Value {
    v[name] = label;
    v
}

#[derive(Deserialize)]
struct StatsQuery {
    hours: Option<i64>,
}

/// Hourly usage per key and model over the last `hours` (default 24).
async fn stats(req: HttpRequest, state: Data<AdminState>, query: Query<StatsQuery>) -> Reply {
    require_admin(&req, &state).await?;
    let hours = query.hours.unwrap_or(24).clamp(1, 24 * 90);
    let to = now(&state);
    let from = (to / 3600 - hours + 1) * 3600;
    let filter = UsageFilter { from: Some(from), ..UsageFilter::default() };
    let rows: Vec<Value> = state
        .store
        .usage_buckets(&filter, 3600)
        .await?
        .iter()
        .map(|b| {
            let v = with_label(counts_json(totals(b)), "hour", json!(rfc3339(b.bucket)));
            let v = with_label(v, "key_id", json!(b.key_id));
            let v = with_label(v, "key_name", json!(b.key_name));
            with_label(v, "model", json!(b.model))
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"from": rfc3339(from), "to": rfc3339(to), "rows": rows})))
}

fn settings_json(state: &AdminState) -> Value {
    let urls: Vec<String> = state.upstreams.urls().iter().map(|u| u.to_string()).collect();
    json!({
        "ollama_urls": urls,
        "anthropic_default_model": state.runtime.anthropic_default_model(),
        "app_tz": state.settings.app_tz.name(),
    })
}

async fn get_settings(req: HttpRequest, state: Data<AdminState>) -> Reply {
    require_admin(&req, &state).await?;
    Ok(HttpResponse::Ok().json(settings_json(&state)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    #[serde(default)]
    pub ollama_urls: Option<Vec<String>>,
    /// The single-string spelling, comma-separated like `OLLAMA_URL`.
    #[serde(default)]
    pub ollama_url: Option<String>,
    #[serde(default, deserialize_with = "crate::domain::limits::present")]
    pub anthropic_default_model: Option<Option<String>>,
}

/// Settings saved here are kept in the database and win over the environment.
pub async fn apply_settings(state: &AdminState, change: SettingsChange) -> Result<(), AdminError> {
    use crate::domain::lengths;
    let urls =
        change.ollama_urls.or_else(|| change.ollama_url.map(|s| s.split(',').map(str::to_owned).collect()));
    // Everything is checked before anything is stored.
    let model =
        change.anthropic_default_model.map(|m| m.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()));
    if let Some(Some(m)) = &model {
        if !lengths::fits(m, lengths::MODEL_NAME) {
            return Err(AdminError::BadRequest(format!(
                "anthropic_default_model '{}' must be at most {} bytes, no control characters",
                lengths::shown(m),
                lengths::MODEL_NAME
            )));
        }
    }
    if let Some(urls) = &urls {
        if urls.len() > lengths::UPSTREAMS || urls.iter().any(|u| u.len() > lengths::URL) {
            return Err(AdminError::BadRequest(format!(
                "at most {} upstream URLs of at most {} bytes each",
                lengths::UPSTREAMS,
                lengths::URL
            )));
        }
    }
    let upstreams = match urls {
        None => None,
        Some(urls) => {
            let parsed = urls
                .iter()
                .map(|u| u.trim())
                .filter(|u| !u.is_empty())
                .map(parse_upstream)
                .collect::<Result<Vec<_>, _>>()
                .map_err(AdminError::BadRequest)?;
            if parsed.is_empty() {
                return Err(AdminError::BadRequest("at least one upstream URL is needed".into()));
            }
            Some(parsed)
        }
    };
    let change = crate::runtime::Change { upstreams, anthropic_default_model: model };
    state.runtime.apply(state.store.as_ref(), &state.upstreams, change).await?;
    Ok(())
}

async fn put_settings(req: HttpRequest, state: Data<AdminState>, body: Json<SettingsChange>) -> Reply {
    require_admin(&req, &state).await?;
    apply_settings(&state, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(settings_json(&state)))
}

async fn ollama_models(req: HttpRequest, state: Data<AdminState>, client: Data<awc::Client>) -> Reply {
    require_admin(&req, &state).await?;
    Ok(HttpResponse::Ok().json(state.upstreams.tags(&client).await.map_err(AdminError::Upstream)?))
}

/// The proxy's base URL as clients should use it.
pub fn public_base_url(state: &AdminState, req: &HttpRequest) -> String {
    if let Some(url) = &state.settings.public_url {
        return url.as_str().trim_end_matches('/').to_owned();
    }
    let host = match state.settings.proxy_host.as_str() {
        "0.0.0.0" | "::" | "[::]" | "" => {
            let conn = req.connection_info();
            let requested = conn.host().to_owned();
            let name = requested.rsplit_once(':').map(|(h, _)| h.to_owned()).unwrap_or(requested);
            if name.is_empty() {
                "localhost".to_owned()
            } else {
                name
            }
        }
        h => h.to_owned(),
    };
    format!("http://{host}:{}", state.settings.proxy_port)
}

pub fn client_snippets(base: &str) -> Value {
    json!({
        "curl": format!("curl {base}/api/chat -H \"Authorization: Bearer $OLLAMA_GATE_KEY\" \\\n  -d '{{\"model\": \"llama3.2\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'"),
        "openai_python": format!("from openai import OpenAI\nclient = OpenAI(base_url=\"{base}/v1\", api_key=os.environ[\"OLLAMA_GATE_KEY\"])"),
        "anthropic_python": format!("from anthropic import Anthropic\nclient = Anthropic(base_url=\"{base}\", api_key=os.environ[\"OLLAMA_GATE_KEY\"])"),
        "ollama_python": format!("from ollama import Client\nclient = Client(host=\"{base}\", headers={{\"Authorization\": \"Bearer \" + os.environ[\"OLLAMA_GATE_KEY\"]}})"),
        "claude_code": format!("ANTHROPIC_BASE_URL={base} ANTHROPIC_AUTH_TOKEN=$OLLAMA_GATE_KEY claude"),
        "langchain": format!("from langchain_ollama import ChatOllama\nllm = ChatOllama(model=\"llama3.2\", base_url=\"{base}\",\n    client_kwargs={{\"headers\": {{\"Authorization\": \"Bearer \" + os.environ[\"OLLAMA_GATE_KEY\"]}}}})"),
        "open_webui": format!("Admin settings > Connections > OpenAI API: URL {base}/v1, key $OLLAMA_GATE_KEY"),
        "environment": format!("OPENAI_BASE_URL={base}/v1\nOPENAI_API_KEY=$OLLAMA_GATE_KEY\nOLLAMA_HOST={base}"),
    })
}

async fn proxy_info(req: HttpRequest, state: Data<AdminState>) -> Reply {
    require_admin(&req, &state).await?;
    let base = public_base_url(&state, &req);
    Ok(HttpResponse::Ok().json(json!({
        "base_url": base,
        "openai_base_url": format!("{base}/v1"),
        "anthropic_base_url": base,
        "ollama_host": base,
        "snippets": client_snippets(&base),
    })))
}
