//! Model names and per-key model allow-lists.

/// Ollama treats `llama3` and `llama3:latest` as the same model; so do we.
pub fn normalize(name: &str) -> String {
    let name = name.trim();
    // A tag is the part after the last ':' that follows the last '/': registry
    // hosts may carry a port (`host:5000/llama3`).
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    if last_segment.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

/// A key's model allow-list. `None` on the key means every model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelList(Vec<String>);

impl ModelList {
    pub fn new(names: Vec<String>) -> Result<Self, String> {
        let mut cleaned = Vec::with_capacity(names.len());
        for name in names {
            let name = name.trim().to_owned();
            if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
                return Err(format!("invalid model name '{name}'"));
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
}
