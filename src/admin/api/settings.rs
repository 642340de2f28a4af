//! `/api/settings` (the settings changeable at run time), `/api/ollama-models`
//! and `/api/proxy-info`.

use super::Reply;
use crate::admin::auth::ApiAdmin;
use crate::admin::error::AdminError;
use crate::admin::snippets::{client_snippets, public_base_url, snippet_model};
use crate::admin::AdminState;
use crate::domain::backend::{parse_list, BackendSpec};
use actix_web::web::{Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

fn settings_json(state: &AdminState) -> Value {
    let specs = state.upstreams.specs();
    let urls: Vec<&str> = specs.iter().map(|b| b.url.as_str()).collect();
    let backends: Vec<Value> = specs.iter().map(backend_json).collect();
    json!({
        "ollama_urls": urls,
        "backends": backends,
        "anthropic_default_model": state.runtime.anthropic_default_model(),
        "app_tz": state.settings.app_tz.name(),
    })
}

pub async fn get_settings(_: ApiAdmin, state: Data<AdminState>) -> Reply {
    Ok(HttpResponse::Ok().json(settings_json(&state)))
}

fn backend_json(b: &BackendSpec) -> Value {
    json!({
        "name": b.name, "url": b.url.as_str(), "slots": b.slots, "weight": b.weight,
        "enabled": b.enabled, "draining": b.draining,
    })
}

/// A backend in `PUT /api/settings`: only the URL is needed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendChange {
    pub url: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub slots: Option<u32>,
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub draining: Option<bool>,
}

impl BackendChange {
    /// The spelling of `OLLAMA_URL`, so that one parser checks every way in.
    fn to_text(&self) -> String {
        let mut options = url::form_urlencoded::Serializer::new(String::new());
        if let Some(name) = &self.name {
            options.append_pair("name", name);
        }
        for (option, value) in [("slots", self.slots), ("weight", self.weight)] {
            if let Some(v) = value {
                options.append_pair(option, &v.to_string());
            }
        }
        for (option, value) in [("enabled", self.enabled), ("draining", self.draining)] {
            if let Some(v) = value {
                options.append_pair(option, if v { "true" } else { "false" });
            }
        }
        let options = options.finish();
        let separator = if self.url.contains('?') { '&' } else { '?' };
        if options.is_empty() {
            self.url.clone()
        } else {
            format!("{}{separator}{options}", self.url)
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    /// Each spelled as in `OLLAMA_URL`; a URL without options that is in use
    /// already keeps the options it has.
    #[serde(default, alias = "upstream_urls")]
    pub ollama_urls: Option<Vec<String>>,
    #[serde(default)]
    pub backends: Option<Vec<BackendChange>>,
    /// The single-string spelling, comma-separated like `OLLAMA_URL`.
    #[serde(default)]
    pub ollama_url: Option<String>,
    #[serde(default, deserialize_with = "crate::domain::limits::present")]
    pub anthropic_default_model: Option<Option<String>>,
}

/// Settings saved here are kept in the database and win over the environment.
pub async fn apply_settings(
    state: &AdminState,
    actor: crate::domain::audit::Actor,
    change: SettingsChange,
) -> Result<(), AdminError> {
    let change = check_settings(state, change)?;
    crate::admin::audit::settings_change(state, actor, "settings.update", None, change).await?;
    Ok(())
}

/// A change of settings, checked whole, without storing anything: the
/// console checks each of its fields this way to show every error at once.
pub fn check_settings(
    state: &AdminState,
    change: SettingsChange,
) -> Result<crate::runtime::Change, AdminError> {
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
    let current = state.upstreams.specs();
    let upstreams = match (change.backends, urls) {
        (Some(_), Some(_)) => {
            return Err(AdminError::BadRequest("give either backends or ollama_urls, not both".into()))
        }
        (Some(backends), None) => {
            if backends.len() > lengths::UPSTREAMS || backends.iter().any(|b| b.url.len() > lengths::URL) {
                return Err(AdminError::BadRequest(format!(
                    "at most {} backends with URLs of at most {} bytes each",
                    lengths::UPSTREAMS,
                    lengths::URL
                )));
            }
            let texts: Vec<String> = backends.iter().map(BackendChange::to_text).collect();
            Some(parse_list(texts.iter().map(String::as_str), state.upstreams.default_slots))
        }
        (None, Some(urls)) => {
            let mut parsed = parse_list(urls.iter().map(String::as_str), state.upstreams.default_slots);
            if let Ok(parsed) = &mut parsed {
                for (spec, text) in parsed.iter_mut().zip(urls.iter().filter(|u| !u.trim().is_empty())) {
                    if !text.contains('?') {
                        if let Some(kept) = current.iter().find(|c| c.url == spec.url) {
                            *spec = kept.clone();
                        }
                    }
                }
            }
            Some(parsed)
        }
        (None, None) => None,
    };
    let upstreams = upstreams.transpose().map_err(AdminError::BadRequest)?;
    Ok(crate::runtime::Change { upstreams, anthropic_default_model: model })
}

pub async fn put_settings(admin: ApiAdmin, state: Data<AdminState>, body: Json<SettingsChange>) -> Reply {
    apply_settings(&state, admin.actor, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(settings_json(&state)))
}

pub async fn ollama_models(_: ApiAdmin, state: Data<AdminState>, client: Data<awc::Client>) -> Reply {
    Ok(HttpResponse::Ok().json(state.upstreams.tags(&client).await.map_err(AdminError::Upstream)?))
}

pub async fn proxy_info(
    _: ApiAdmin,
    req: HttpRequest,
    state: Data<AdminState>,
    client: Data<awc::Client>,
) -> Reply {
    let base = public_base_url(&state, &req);
    let model = snippet_model(&state, &client).await;
    Ok(HttpResponse::Ok().json(json!({
        "base_url": base,
        "openai_base_url": format!("{base}/v1"),
        "anthropic_base_url": base,
        "ollama_host": base,
        "snippets": client_snippets(&base, &model),
    })))
}
