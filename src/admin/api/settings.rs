//! `/api/settings` (the settings changeable at run time), `/api/ollama-models`
//! and `/api/proxy-info`.

use super::Reply;
use crate::admin::auth::ApiAdmin;
use crate::admin::error::AdminError;
use crate::admin::snippets::{client_snippets, public_base_url};
use crate::admin::AdminState;
use crate::config::parse_upstream;
use actix_web::web::{Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

fn settings_json(state: &AdminState) -> Value {
    let urls: Vec<String> = state.upstreams.urls().iter().map(|u| u.to_string()).collect();
    json!({
        "ollama_urls": urls,
        "anthropic_default_model": state.runtime.anthropic_default_model(),
        "app_tz": state.settings.app_tz.name(),
    })
}

pub async fn get_settings(_: ApiAdmin, state: Data<AdminState>) -> Reply {
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

pub async fn put_settings(_: ApiAdmin, state: Data<AdminState>, body: Json<SettingsChange>) -> Reply {
    apply_settings(&state, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(settings_json(&state)))
}

pub async fn ollama_models(_: ApiAdmin, state: Data<AdminState>, client: Data<awc::Client>) -> Reply {
    Ok(HttpResponse::Ok().json(state.upstreams.tags(&client).await.map_err(AdminError::Upstream)?))
}

pub async fn proxy_info(_: ApiAdmin, req: HttpRequest, state: Data<AdminState>) -> Reply {
    let base = public_base_url(&state, &req);
    Ok(HttpResponse::Ok().json(json!({
        "base_url": base,
        "openai_base_url": format!("{base}/v1"),
        "anthropic_base_url": base,
        "ollama_host": base,
        "snippets": client_snippets(&base),
    })))
}
