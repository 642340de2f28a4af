//! The upstream's models (`/api/tags`), typed, and a cache of their names.

use super::Upstreams;
use crate::domain::model::normalize;
use serde::Deserialize;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `/api/tags` as Ollama writes it; fields the gate does not read are kept
/// as they are by the admin API, which passes the whole answer on.
#[derive(Debug, Default, Deserialize)]
pub struct Tags {
    #[serde(default)]
    pub models: Vec<ModelInfo>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ModelInfo {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
}

impl ModelInfo {
    /// Ollama writes both; older versions only `name`.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref().or(self.model.as_deref())
    }
}

/// Normalised model names; `None` when the upstream could not list them.
pub type Names = Option<Arc<HashSet<String>>>;

/// The upstream's model names, fetched at most once a minute.
#[derive(Default)]
pub struct Catalog {
    cached: Mutex<Option<(Instant, Names)>>,
}

const FRESH_FOR: Duration = Duration::from_secs(60);
/// After a failed fetch, how long before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

impl Catalog {
    pub fn clear(&self) {
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Upstreams {
    /// The upstream's `/api/tags`, as it sent it.
    pub async fn tags(&self, client: &awc::Client) -> Result<serde_json::Value, String> {
        self.get_json(client, "/api/tags").await
    }

    /// The normalised names of the upstream's models; `None` when it could not say.
    pub async fn model_names(&self, client: &awc::Client) -> Names {
        if let Some((at, names)) = self.catalog.cached.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            let ttl = if names.is_some() { FRESH_FOR } else { RETRY_AFTER };
            if at.elapsed() < ttl {
                return names;
            }
        }
        let names = self.tags(client).await.ok().map(|tags| {
            let tags: Tags = serde_json::from_value(tags).unwrap_or_default();
            Arc::new(tags.models.iter().filter_map(ModelInfo::name).map(normalize).collect::<HashSet<_>>())
        });
        *self.catalog.cached.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), names.clone()));
        names
    }
}
