//! What the Models page's forms name: a model (checked before it goes to a
//! backend) and the backends to act on. Shared by pulls, deletes and
//! unloads, and by the page that offers them.

use crate::admin::AdminState;
use crate::domain::model_store;
use crate::upstream::pool::Backend;
use std::sync::Arc;

/// The longest model name taken (Ollama's own names are far shorter).
const MAX_NAME: usize = 200;
/// The backend choice that means every backend.
pub const ALL_BACKENDS: &str = "*";

/// Why a model name is refused, if it is: names go to the backend as they
/// are, so only what Ollama's names are made of is let through.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Type the name of a model, for example llama3.2:1b.".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("A model name is at most {MAX_NAME} characters."));
    }
    if name.chars().any(char::is_whitespace) {
        return Err("A model name has no spaces.".into());
    }
    if name.contains("..") {
        return Err("A model name cannot contain “..”.".into());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-:/".contains(c);
    if !name.chars().all(allowed) {
        return Err("A model name is made of letters, digits and . _ - : / only.".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("A model name starts with a letter or a digit.".into());
    }
    // The proxy's rules for manage keys too: a typo must not traverse.
    model_store::parse(name)
        .map(|_| ())
        .map_err(|e| format!("Not a model name Ollama's registry takes: {e}."))
}

/// A pull from the console: a model name, from a registry that
/// `PULL_ALLOWED_REGISTRIES` allows, as for manage keys.
pub fn check_pull(state: &AdminState, name: &str) -> Result<(), String> {
    check_name(name)?;
    let parsed = model_store::parse(name).map_err(|e| format!("{e}."))?;
    state.settings.pull_allowed_registries.check(&parsed.host, false).map_err(|e| format!("{e}."))
}

/// The backends a form's choice names: one by name, every one, or by
/// default the first.
pub fn chosen(state: &AdminState, choice: &str) -> Result<Vec<Arc<Backend>>, String> {
    let pool = state.upstreams.pool();
    let enabled: Vec<Arc<Backend>> = pool.backends.iter().filter(|b| b.spec.enabled).cloned().collect();
    match choice {
        ALL_BACKENDS => Ok(enabled),
        "" => enabled.into_iter().next().map(|b| vec![b]).ok_or_else(|| "Every backend is disabled.".into()),
        name => match pool.named(name) {
            Some(b) if b.spec.enabled => Ok(vec![b.clone()]),
            Some(_) => Err(format!("The backend {name} is disabled.")),
            None => Err(format!("No backend is named {name}.")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_refused_with_a_reason_and_ollamas_names_pass() {
        for good in ["llama3", "llama3.2:1b", "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "qwen3:8b"]
        {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        let long = "a".repeat(MAX_NAME + 1);
        for bad in [
            "",
            "llama 3",
            "../etc",
            "a..b",
            "llama3;rm",
            "<b>",
            "-rf",
            long.as_str(),
            "a/b/c/d",
            "a//b",
            "model:tag/x",
            "ns.x/model",
            "model:",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
