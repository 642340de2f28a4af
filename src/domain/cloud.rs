//! Cloud models: those a signed-in Ollama runs on its operator's ollama.com
//! account rather than on its own hardware.
//!
//! Ollama knows a cloud model two ways, and so does the gate:
//! - by its name: a last `:`-part of `cloud`, or ending in `-cloud`
//!   (`gpt-oss:120b-cloud`, `qwen3.5:cloud`), in any case, with spaces around
//!   it trimmed (Ollama's `modelref.parseSourceSuffix`);
//! - by its manifest: a model created or copied from a cloud model keeps the
//!   `remote_host` of its source, whatever it is called, and the backend lists
//!   it with `remote_host` set. The gate's backend probes record those names
//!   here ([`set_remote`]).

use super::model::normalize;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

/// The pseudo-pattern of `model_limits` that matches every cloud model.
pub const PATTERN: &str = "@cloud";

/// Cloud by its name alone, as Ollama reads the name.
pub fn is_cloud_name(name: &str) -> bool {
    let name = name.trim();
    match source_suffix(name) {
        Some((_, Source::Cloud)) => true,
        // `x:cloud:local` Ollama refuses as conflicting; `x-cloud:local` asks
        // for a local copy. Either way the gate counts a cloud name under it.
        Some((base, Source::Local)) => source_suffix(base).is_some_and(|(_, s)| s == Source::Cloud),
        None => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Local,
    Cloud,
}

/// The name without its source suffix, and that source (`modelref.parseSourceSuffix`).
fn source_suffix(raw: &str) -> Option<(&str, Source)> {
    let idx = raw.rfind(':')?;
    let suffix_raw = raw[idx + 1..].trim();
    let suffix = lower(suffix_raw);
    match suffix.as_str() {
        "cloud" => return Some((&raw[..idx], Source::Cloud)),
        "local" => return Some((&raw[..idx], Source::Local)),
        _ => {}
    }
    (!suffix_raw.contains('/') && suffix.ends_with("-cloud")).then_some((&raw[..idx], Source::Cloud))
}

/// Go's `strings.ToLower`, as far as it matters here: `CLOUD` and its
/// Unicode look-alikes that fold onto ASCII letters.
fn lower(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Names (normalised) each backend lists with a `remote_host`, by backend URL.
static REMOTE: RwLock<BTreeMap<String, Arc<HashSet<String>>>> = RwLock::new(BTreeMap::new());

/// Records what one backend's listing says is remote.
pub fn set_remote(backend: &str, names: HashSet<String>) {
    let mut all = REMOTE.write().unwrap_or_else(|e| e.into_inner());
    all.insert(backend.to_owned(), Arc::new(names));
}

/// Whether some backend lists this model with a `remote_host`.
pub fn listed_remote(name: &str) -> bool {
    let wanted = normalize(name);
    REMOTE.read().unwrap_or_else(|e| e.into_inner()).values().any(|names| names.contains(&wanted))
}

/// Cloud by its name, or by what a backend lists.
pub fn is_cloud(name: &str) -> bool {
    is_cloud_name(name) || listed_remote(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_names_as_ollama_reads_them() {
        for cloud in [
            "gpt-oss:120b-cloud",
            "qwen3-coder:480b-cloud",
            "deepseek-v3.1:671b-cloud",
            "kimi-k2:1t-cloud",
            "glm-5.1:cloud",
            "gpt-oss:cloud",
            "GPT-OSS:120B-CLOUD",
            "gpt-oss:120b-Cloud ",
            " gpt-oss:CLOUD",
            "gpt-oss:20b:cloud",
            "gpt-oss: cloud",
            "registry.ollama.ai/library/gpt-oss:120b-cloud",
            "host:5000/x/y:cloud",
            "gpt-oss:120b-cloud:local",
            "gpt-oss:cloud:local",
        ] {
            assert!(is_cloud_name(cloud), "{cloud}");
            assert!(is_cloud_name(&normalize(cloud)), "normalised {cloud}");
        }
        for local in [
            "gpt-oss:120b",
            "cloud",
            "cloud-model",
            "my-cloud",
            "cloud:latest",
            "gpt-oss:120b:local",
            "host-cloud:5000/llama3",
            "ns/cloudy:tag",
            "gpt-oss:cloudy",
            "",
        ] {
            assert!(!is_cloud_name(local), "{local}");
        }
    }

    #[test]
    fn the_pseudo_pattern_matches_cloud_models_only() {
        use crate::domain::people::{check_pattern, matches};
        let pattern = check_pattern(" @CLOUD ").unwrap();
        assert_eq!(pattern, PATTERN);
        for model in ["gpt-oss:120b-cloud", "glm-5.1:cloud", "kimi-k2:1t-cloud"] {
            assert!(matches(&pattern, &normalize(model)), "{model}");
        }
        for model in ["llama3:latest", "cloud:latest", "@cloud"] {
            assert!(!matches(&pattern, model), "{model}");
        }
    }

    #[test]
    fn a_listed_remote_model_is_cloud_whatever_its_name() {
        set_remote("http://unit.test:1", HashSet::from([normalize("my-local-looking")]));
        assert!(is_cloud("My-Local-Looking:latest"));
        assert!(is_cloud("registry.ollama.ai/library/my-local-looking"));
        assert!(!is_cloud("my-local-looking:7b"));
        set_remote("http://unit.test:1", HashSet::new());
        assert!(!is_cloud("my-local-looking"));
    }
}
