//! The guarded model store: what a `manage` key may ask of a backend's
//! model store.
//!
//! - Every model name a manage route takes (pull, create, copy, delete) is a
//!   registry name by `domain::model_store`'s rules.
//! - A pull comes only from a registry `PULL_ALLOWED_REGISTRIES` allows.
//! - A create never names a file on the server: no legacy `path`, no
//!   `modelfile` whose `FROM` or `ADAPTER` is a path, no `from` that is a
//!   path, and the files it is built from are blobs already uploaded
//!   (`sha256:` digests) under relative names that stay where they are put.

use super::routes::Kind;
use crate::domain::lengths::shown;
use crate::domain::model_store::{self, is_digest, Registries};
use crate::proxy::error::ProxyError;
use serde_json::{Map, Value};

/// Checks a manage route's body; other routes pass.
pub fn check(kind: Kind, body: &Value, registries: &Registries) -> Result<(), ProxyError> {
    let Value::Object(body) = body else { return Ok(()) };
    match kind {
        Kind::Pull => pull(body, registries),
        Kind::Create => create(body),
        Kind::Copy => names(body, &["source", "destination"]),
        Kind::Delete => names(body, &["model", "name"]),
        _ => Ok(()),
    }
}

fn bad(why: String) -> ProxyError {
    ProxyError::BadRequest(why)
}

fn text<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    body.get(field).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Each name given, by the store's name rules.
fn names(body: &Map<String, Value>, fields: &[&str]) -> Result<(), ProxyError> {
    for field in fields {
        if let Some(name) = text(body, field) {
            model_store::parse(name).map_err(|e| bad(format!("'{field}': {e}")))?;
        }
    }
    Ok(())
}

fn pull(body: &Map<String, Value>, registries: &Registries) -> Result<(), ProxyError> {
    let insecure = body.get("insecure").and_then(Value::as_bool).unwrap_or(false);
    for field in ["model", "name"] {
        if let Some(name) = text(body, field) {
            let parsed = model_store::parse(name).map_err(|e| bad(format!("'{field}': {e}")))?;
            registries.check(&parsed.host, insecure).map_err(ProxyError::Forbidden)?;
        }
    }
    Ok(())
}

fn create(body: &Map<String, Value>) -> Result<(), ProxyError> {
    names(body, &["model", "name"])?;
    if body.get("path").is_some_and(|v| !v.is_null()) {
        return Err(
            bad("'path' names a Modelfile on the server: send the Modelfile's fields instead".into()),
        );
    }
    if let Some(modelfile) = body.get("modelfile").filter(|v| !v.is_null()) {
        modelfile_lines(modelfile)?;
    }
    if let Some(from) = text(body, "from") {
        if is_path(from) {
            return Err(bad(format!(
                "'from' ('{}') is a path on the server: name a model, or upload the files as blobs",
                shown(from)
            )));
        }
        model_store::parse(from).map_err(|e| bad(format!("'from': {e}")))?;
    }
    for field in ["files", "adapters", "draft_files"] {
        match body.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Object(files)) => blobs(field, files)?,
            Some(_) => return Err(bad(format!("'{field}' must be an object of file names to blob digests"))),
        }
    }
    Ok(())
}

/// The legacy `modelfile`: its `FROM` and `ADAPTER` may name a model or a
/// blob, never a file on the server.
fn modelfile_lines(modelfile: &Value) -> Result<(), ProxyError> {
    let Some(text) = modelfile.as_str() else {
        return Err(bad("'modelfile' must be a string".into()));
    };
    for line in text.lines() {
        let line = line.trim();
        let (command, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        if !(command.eq_ignore_ascii_case("from") || command.eq_ignore_ascii_case("adapter")) {
            continue;
        }
        let arg = rest.trim().trim_matches('"');
        if is_path(arg) || (!arg.is_empty() && !is_digest(arg) && model_store::parse(arg).is_err()) {
            return Err(bad(format!(
                "the Modelfile's {} names '{}', which is not a model name: files on the server are not allowed",
                command.to_ascii_uppercase(),
                shown(arg)
            )));
        }
    }
    Ok(())
}

/// Something Ollama would read as a file path rather than a model name.
fn is_path(s: &str) -> bool {
    let s = s.trim();
    let drive = s.len() >= 2
        && s.as_bytes()[0].is_ascii_alphabetic()
        && s.as_bytes()[1] == b':'
        && s.as_bytes().get(2).is_none_or(|c| *c == b'\\' || *c == b'/');
    s.starts_with('/')
        || s.starts_with('~')
        || s == "."
        || s == ".."
        || s.starts_with("./")
        || s.starts_with("../")
        || s.contains('\\')
        || s.contains("/../")
        || s.ends_with("/..")
        || s.starts_with("file:")
        || drive
}

/// `files`, `adapters`, `draft_files`: relative names that stay put, blob digests.
fn blobs(field: &str, files: &Map<String, Value>) -> Result<(), ProxyError> {
    for (name, digest) in files {
        if !is_relative_file(name) {
            return Err(bad(format!(
                "'{field}' names '{}': file names must be relative, without '..', '.', empty parts, \
                 backslashes or drive letters",
                shown(name)
            )));
        }
        if !digest.as_str().is_some_and(is_digest) {
            return Err(bad(format!(
                "'{field}.{}' must be a blob digest: 'sha256:' and 64 lowercase hex digits",
                shown(name)
            )));
        }
    }
    Ok(())
}

/// Go's `fs.ValidPath`, and no backslashes, colons or control characters
/// (which Windows reads as separators, drives and streams).
fn is_relative_file(name: &str) -> bool {
    !name.is_empty()
        && !name.chars().any(|c| c.is_control() || c == '\\' || c == ':')
        && name.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(kind: Kind, body: Value) -> bool {
        check(kind, &body, &Registries::default()).is_err()
    }

    #[test]
    fn pulls_name_a_model_of_an_allowed_registry() {
        assert!(!refused(Kind::Pull, json!({"model": "llama3.2:1b"})));
        assert!(!refused(Kind::Pull, json!({"name": "ollama.com/library/llama3"})));
        for body in [
            json!({"model": "../../etc/passwd"}),
            json!({"model": "registry.ollama.ai/library/../../x"}),
            json!({"model": "llama3", "name": "evil.example/x/y"}),
            json!({"model": "evil.example/x/y"}),
            json!({"model": "llama3", "insecure": true}),
            json!({"model": "%2e%2e/x"}),
            json!({"model": "llam\u{430}3"}),
        ] {
            assert!(refused(Kind::Pull, body.clone()), "{body}");
        }
    }

    #[test]
    fn creates_never_name_files_on_the_server() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(!refused(Kind::Create, json!({"model": "mine", "from": "llama3"})));
        assert!(!refused(Kind::Create, json!({"model": "mine", "files": {"model.gguf": digest}})));
        assert!(!refused(Kind::Create, json!({"model": "mine", "modelfile": "FROM llama3\nSYSTEM hi"})));
        for body in [
            json!({"model": "mine", "path": "/tmp/Modelfile"}),
            json!({"model": "mine", "modelfile": "FROM /etc/passwd"}),
            json!({"model": "mine", "modelfile": "from ./x.gguf"}),
            json!({"model": "mine", "modelfile": "FROM llama3\nADAPTER ../lora.bin"}),
            json!({"model": "mine", "modelfile": "FROM \"C:\\\\models\\\\x.gguf\""}),
            json!({"model": "mine", "modelfile": 5}),
            json!({"model": "mine", "from": "/root/.ollama/models/blobs/x"}),
            json!({"model": "mine", "from": "./x.gguf"}),
            json!({"model": "mine", "from": "../x"}),
            json!({"model": "mine", "from": "~/x.gguf"}),
            json!({"model": "mine", "from": "C:/x.gguf"}),
            json!({"model": "mine", "from": "c:\\x.gguf"}),
            json!({"model": "mine", "from": "models\\x"}),
            json!({"model": "mine", "files": {"../x.gguf": digest}}),
            json!({"model": "mine", "files": {"/etc/x.gguf": digest}}),
            json!({"model": "mine", "files": {"a//b.gguf": digest}}),
            json!({"model": "mine", "files": {"C:x.gguf": digest}}),
            json!({"model": "mine", "adapters": {"..\\x": digest}}),
            json!({"model": "mine", "files": {"x.gguf": "/etc/passwd"}}),
            json!({"model": "mine", "files": {"x.gguf": format!("sha256-{}", "a".repeat(64))}}),
            json!({"model": "mine", "files": {"x.gguf": format!("sha256:{}", "A".repeat(64))}}),
            json!({"model": "mine", "draft_files": {"x.gguf": "sha256:abc"}}),
            json!({"model": "mine", "files": ["x.gguf"]}),
            json!({"model": "../mine", "from": "llama3"}),
        ] {
            assert!(refused(Kind::Create, body.clone()), "{body}");
        }
    }

    #[test]
    fn copies_and_deletes_take_store_names() {
        assert!(!refused(Kind::Copy, json!({"source": "llama3", "destination": "me/llama3:mine"})));
        assert!(refused(Kind::Copy, json!({"source": "llama3", "destination": "../../x"})));
        assert!(refused(Kind::Copy, json!({"source": "a/../b", "destination": "x"})));
        assert!(refused(Kind::Delete, json!({"model": "x:tag/../y"})));
        assert!(refused(Kind::Delete, json!({"model": "llama3", "name": "../y"})));
        assert!(!refused(Kind::Delete, json!({"name": "llama3"})));
    }
}
