//! Model names and per-key model allow-lists.

/// The one spelling of a model name that allow-lists, limits and usage use.
///
/// Ollama fills in what a name leaves out (`registry.ollama.ai`, `library`,
/// `latest`: `llama3` is `registry.ollama.ai/library/llama3:latest`) and
/// compares names without regard to case, with Go's Unicode folding (so
/// U+212A KELVIN SIGN is `k` and U+017F LONG S is `s`). So does this.
pub fn normalize(name: &str) -> String {
    let folded: String = name.trim().chars().flat_map(char::to_lowercase).map(fold_long_s).collect();
    let short = folded.strip_prefix("registry.ollama.ai/").unwrap_or(&folded);
    let short = short.strip_prefix("library/").unwrap_or(short);
    // A tag is the part after the last ':' that follows the last '/': registry
    // hosts may carry a port (`host:5000/llama3`).
    let last_segment = short.rsplit('/').next().unwrap_or(short);
    if last_segment.contains(':') {
        short.to_owned()
    } else {
        format!("{short}:latest")
    }
}

/// `to_lowercase` leaves U+017F as it is; Go folds it onto `s`.
fn fold_long_s(c: char) -> char {
    if c == '\u{17f}' {
        's'
    } else {
        c
    }
}

use super::lengths;

/// A key's model allow-list. `None` on the key means every model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelList(Vec<String>);

impl ModelList {
    pub fn new(names: Vec<String>) -> Result<Self, String> {
        if names.len() > lengths::MODEL_ENTRIES {
            return Err(format!("a model allow-list has at most {} entries", lengths::MODEL_ENTRIES));
        }
        let mut cleaned = Vec::with_capacity(names.len());
        for name in names {
            let name = name.trim().to_owned();
            if !lengths::fits(&name, lengths::MODEL_NAME) {
                return Err(format!(
                    "invalid model name '{}': 1 to {} bytes, no control characters",
                    lengths::shown(&name),
                    lengths::MODEL_NAME
                ));
            }
            if !cleaned.contains(&name) {
                cleaned.push(name);
            }
        }
        Ok(ModelList(cleaned))
    }

    pub fn allows(&self, requested: &str) -> bool {
        let wanted = normalize(requested);
        self.0.iter().any(|m| normalize(m) == wanted)
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    pub fn to_db(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".into())
    }

    pub fn from_db(text: &str) -> Self {
        ModelList(serde_json::from_str(text).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untagged_name_means_latest() {
        let list = ModelList::new(vec!["llama3".into(), "qwen3:8b".into()]).unwrap();
        assert!(list.allows("llama3:latest"));
        assert!(list.allows("llama3"));
        assert!(list.allows("qwen3:8b"));
        assert!(!list.allows("qwen3"));
        assert!(!list.allows("mistral"));
        assert_eq!(normalize("host:5000/llama3"), "host:5000/llama3:latest");
    }

    #[test]
    fn names_are_compared_as_ollama_compares_them() {
        let list = ModelList::new(vec!["llama3.2".into()]).unwrap();
        for same in [
            "llama3.2:latest",
            "LLAMA3.2",
            "Llama3.2:Latest",
            "library/llama3.2",
            "registry.ollama.ai/library/llama3.2:latest",
            "REGISTRY.OLLAMA.AI/Library/llama3.2",
        ] {
            assert!(list.allows(same), "{same}");
            assert_eq!(normalize(same), "llama3.2:latest");
        }
        for other in ["llama3.2:1b", "someone/llama3.2", "other.host/library/llama3.2", "llama3"] {
            assert!(!list.allows(other), "{other}");
        }
        // Kelvin sign and long s fold onto k and s, as Go's EqualFold does.
        let list = ModelList::new(vec!["sky".into()]).unwrap();
        assert!(list.allows("\u{17f}\u{212a}y"));
    }
}
