//! Per-key clamps: bounds on what one request may ask of the upstream.

use super::limits::present;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clamps {
    /// Largest context window (`options.num_ctx`); larger requests are lowered to it.
    #[serde(default)]
    pub max_num_ctx: Option<i64>,
    /// Largest output (`num_predict`, `max_tokens`, ...); also what is reserved when none is asked.
    #[serde(default)]
    pub max_output_tokens: Option<i64>,
    /// Most images in one request; more is refused.
    #[serde(default)]
    pub max_images: Option<i64>,
    /// `keep_alive` of -1 pins a model in memory and 0 evicts everyone else's:
    /// both are refused unless this is set.
    #[serde(default)]
    pub allow_keep_alive_extremes: bool,
}

impl Clamps {
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("max_num_ctx", self.max_num_ctx),
            ("max_output_tokens", self.max_output_tokens),
            ("max_images", self.max_images),
        ] {
            if value.is_some_and(|v| v < 0) {
                return Err(format!("clamp {name} must be 0 or more, or null for none"));
            }
        }
        Ok(())
    }

    pub fn apply(&mut self, patch: &ClampsPatch) {
        for (slot, change) in [
            (&mut self.max_num_ctx, patch.max_num_ctx),
            (&mut self.max_output_tokens, patch.max_output_tokens),
            (&mut self.max_images, patch.max_images),
        ] {
            if let Some(value) = change {
                *slot = value;
            }
        }
        if let Some(allow) = patch.allow_keep_alive_extremes {
            self.allow_keep_alive_extremes = allow;
        }
    }
}

/// A change to clamps: an absent field is left alone, `null` removes the clamp.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClampsPatch {
    #[serde(default, deserialize_with = "present")]
    pub max_num_ctx: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub max_output_tokens: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub max_images: Option<Option<i64>>,
    #[serde(default)]
    pub allow_keep_alive_extremes: Option<bool>,
}

/// Names a key's clients ask for, and the models that answer them
/// (`claude-sonnet-4-5` -> `qwen3:8b`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelAliases(pub BTreeMap<String, String>);

impl ModelAliases {
    pub fn new(map: BTreeMap<String, String>) -> Result<Self, String> {
        use super::lengths::{self, shown};
        if map.len() > lengths::MODEL_ENTRIES {
            return Err(format!("a key has at most {} model aliases", lengths::MODEL_ENTRIES));
        }
        for (from, to) in &map {
            for name in [from, to] {
                if name.trim().is_empty() || !lengths::fits(name, lengths::MODEL_NAME) {
                    return Err(format!(
                        "invalid model alias '{}' -> '{}': names of 1 to {} bytes, no control characters",
                        shown(from),
                        shown(to),
                        lengths::MODEL_NAME
                    ));
                }
            }
        }
        Ok(ModelAliases(map))
    }

    pub fn resolve(&self, requested: &str) -> Option<&str> {
        self.0.get(requested).map(String::as_str)
    }

    pub fn to_db(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }

    pub fn from_db(text: &str) -> Self {
        ModelAliases(serde_json::from_str(text).unwrap_or_default())
    }
}
