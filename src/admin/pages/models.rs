//! The models the upstream has, and which of them are loaded.

use super::{render, Chrome, Nav, Page};
use crate::admin::auth::Console;
use crate::admin::AdminState;
use actix_web::web::Data;
use askama::Template;
use serde_json::Value;

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
    chrome: Chrome,
    error: Option<String>,
    models: Vec<ModelView>,
}

pub async fn models_page(console: Console, state: Data<AdminState>, client: Data<awc::Client>) -> Page {
    let (tags, error) = match state.upstreams.tags(&client).await {
        Ok(tags) => (tags, None),
        Err(e) => (Value::Null, Some(e)),
    };
    let loaded: Vec<String> = match state.upstreams.merged(&client, "/api/ps").await {
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
    render(&ModelsPage { chrome: Chrome::new(&console.session, Nav::Models), error, models })
}
