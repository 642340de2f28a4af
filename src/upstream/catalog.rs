//! The upstream's models (`/api/tags`), typed.

use serde::Deserialize;
use std::collections::HashSet;
use std::sync::Arc;

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
    /// Set on cloud models, and on models created or copied from one.
    #[serde(default)]
    pub remote_host: Option<String>,
}

impl ModelInfo {
    /// Ollama writes both; older versions only `name`.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref().or(self.model.as_deref())
    }

    pub fn is_remote(&self) -> bool {
        self.remote_host.as_deref().is_some_and(|h| !h.is_empty())
    }
}

/// Normalised model names; `None` when the upstream could not list them.
pub type Names = Option<Arc<HashSet<String>>>;
