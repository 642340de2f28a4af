//! The rules of the guarded model store: which model names may be pulled,
//! created, copied or deleted, and from which registries.
//!
//! Ollama turns a model name into a path under its models directory
//! (`host/namespace/model/tag`), and a name that its parser let through with
//! a `..` in it once wrote files anywhere (CVE-2024-37032). The gate accepts
//! only what Ollama's own parser (`types/model/name.go`) would accept as a
//! registry name, and less: ASCII letters, digits, `_`, `-`, `.`, `:` and `/`
//! only, no `..`, no empty part, every part within Ollama's lengths.

use super::lengths::shown;

/// Ollama's default registry, and the public name it also answers to.
pub const DEFAULT_REGISTRY: &str = "registry.ollama.ai";
const OLLAMA_PUBLIC_HOST: &str = "ollama.com";

/// Longer than any name Ollama's parts add up to (350 + 3 × 80 + 3).
const MAX_NAME: usize = 600;

/// A model name, every part present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreName {
    pub host: String,
    pub namespace: String,
    pub model: String,
    pub tag: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Host,
    Namespace,
    Model,
    Tag,
}

impl Part {
    fn label(self) -> &'static str {
        match self {
            Part::Host => "registry host",
            Part::Namespace => "namespace",
            Part::Model => "model",
            Part::Tag => "tag",
        }
    }
    fn max(self) -> usize {
        if self == Part::Host {
            350
        } else {
            80
        }
    }
}

/// Parses a name as Ollama's `ParseName` would, with its defaults filled
/// in, refusing what Ollama's parser would refuse and more (see the module).
/// A trailing `:cloud` or `:local` is Ollama's source suffix, not a tag: it
/// is set aside before the name is read, as Ollama does.
pub fn parse(raw: &str) -> Result<StoreName, String> {
    let bad = |why: &str| -> Result<StoreName, String> { Err(format!("model name '{}' {why}", shown(raw))) };
    if raw.is_empty() {
        return bad("is empty");
    }
    if raw.len() > MAX_NAME {
        return Err(format!("model name is too long: at most {MAX_NAME} bytes"));
    }
    if let Some(c) = raw.chars().find(|c| !(c.is_ascii_alphanumeric() || "_-.:/".contains(*c))) {
        return bad(&format!(
            "has the character {c:?}: only ASCII letters, digits, '_', '-', '.', ':' and '/' are allowed"
        ));
    }
    if raw.contains("..") {
        return bad("has '..' in it");
    }
    let name = strip_source(raw);
    let (rest, tag) = match (name.rfind(':'), name.rfind('/')) {
        (Some(colon), slash) if slash.is_none_or(|s| colon > s) => (&name[..colon], Some(&name[colon + 1..])),
        _ => (name, None),
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let (host, namespace, model) = match parts.as_slice() {
        [model] => (None, None, *model),
        [namespace, model] => (None, Some(*namespace), *model),
        [host, namespace, model] => (Some(*host), Some(*namespace), *model),
        _ => return bad("has too many '/': at most host/namespace/model:tag"),
    };
    let named =
        [(Part::Host, host), (Part::Namespace, namespace), (Part::Model, Some(model)), (Part::Tag, tag)];
    for (part, value) in named {
        if let Some(value) = value {
            if let Err(why) = check_part(part, value) {
                return bad(&why);
            }
        }
    }
    Ok(StoreName {
        host: host.unwrap_or(DEFAULT_REGISTRY).to_ascii_lowercase(),
        namespace: namespace.unwrap_or("library").to_owned(),
        model: model.to_owned(),
        tag: tag.unwrap_or("latest").to_owned(),
    })
}

/// Ollama's `modelref.parseSourceSuffix`, for names the gate has already
/// limited to ASCII: `:cloud` and `:local` (any case) are not tags.
fn strip_source(name: &str) -> &str {
    match name.rfind(':') {
        Some(i) if matches!(name[i + 1..].to_ascii_lowercase().as_str(), "cloud" | "local") => &name[..i],
        _ => name,
    }
}

/// Ollama's `isValidPart`: a letter, digit or `_` first, then those and `-`;
/// `.` but in a namespace; `:` only in a host (a port).
fn check_part(part: Part, value: &str) -> Result<(), String> {
    let label = part.label();
    if value.is_empty() {
        return Err(format!("has an empty {label}"));
    }
    if value.len() > part.max() {
        return Err(format!("has a {label} longer than {} characters", part.max()));
    }
    let first = value.as_bytes()[0];
    if !(first.is_ascii_alphanumeric() || first == b'_') {
        return Err(format!("has a {label} that starts with '{}'", first as char));
    }
    for c in value.bytes() {
        let allowed = match c {
            b'.' => part != Part::Namespace,
            b':' => part == Part::Host,
            c => c.is_ascii_alphanumeric() || c == b'_' || c == b'-',
        };
        if !allowed {
            return Err(format!("has '{}' in its {label}", c as char));
        }
    }
    Ok(())
}

/// `sha256:` and 64 lowercase hex digits: how Ollama names a blob in its
/// API (its files on disk use `sha256-`, which the API never takes).
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// `PULL_ALLOWED_REGISTRIES`: the registry hosts models may come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registries {
    /// Lowercased hosts (with a port when given).
    hosts: Vec<String>,
    any: bool,
}

impl Default for Registries {
    fn default() -> Self {
        Registries { hosts: vec![DEFAULT_REGISTRY.to_owned()], any: false }
    }
}

impl Registries {
    /// A comma-separated list of hosts, or `*` for any.
    pub fn parse(text: &str) -> Result<Registries, String> {
        let mut registries = Registries { hosts: vec![], any: false };
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                registries.any = true;
                continue;
            }
            check_part(Part::Host, item).map_err(|why| format!("registry '{}' {why}", shown(item)))?;
            registries.hosts.push(item.to_ascii_lowercase());
        }
        if registries.hosts.is_empty() && !registries.any {
            return Err("name at least one registry host, or '*' for any".into());
        }
        Ok(registries)
    }

    fn listed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let ollama = |h: &str| h == DEFAULT_REGISTRY || h == OLLAMA_PUBLIC_HOST;
        self.hosts.iter().any(|h| *h == host || (ollama(h) && ollama(&host)))
    }

    /// Whether a pull from this host is allowed; `insecure` (no TLS checks,
    /// or plain HTTP) only from a host listed by name that is not Ollama's
    /// own registry, which always speaks TLS: `*` never allows it.
    pub fn check(&self, host: &str, insecure: bool) -> Result<(), String> {
        let listed = self.listed(host);
        if !listed && !self.any {
            return Err(format!(
                "pulls from registry '{}' are not allowed on this gate (PULL_ALLOWED_REGISTRIES: {})",
                shown(host),
                self.describe()
            ));
        }
        let ollama =
            host.eq_ignore_ascii_case(DEFAULT_REGISTRY) || host.eq_ignore_ascii_case(OLLAMA_PUBLIC_HOST);
        if insecure && (!listed || ollama) {
            return Err(format!(
                "'insecure' pulls skip the registry's TLS checks: allowed only from a registry \
                 PULL_ALLOWED_REGISTRIES names, never from Ollama's own or through '*' (asked for '{}')",
                shown(host)
            ));
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        let mut all = self.hosts.clone();
        if self.any {
            all.push("*".into());
        }
        all.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ollama_reads_are_filled_in_with_its_defaults() {
        let cases = [
            ("llama3", ("registry.ollama.ai", "library", "llama3", "latest")),
            ("llama3.2:1b", ("registry.ollama.ai", "library", "llama3.2", "1b")),
            ("someone/model_x:v1.0", ("registry.ollama.ai", "someone", "model_x", "v1.0")),
            ("Registry.Ollama.AI/library/Qwen3:8B", ("registry.ollama.ai", "library", "Qwen3", "8B")),
            ("host.example:5000/team/model", ("host.example:5000", "team", "model", "latest")),
            ("gpt-oss:120b-cloud", ("registry.ollama.ai", "library", "gpt-oss", "120b-cloud")),
            ("gpt-oss:20b:cloud", ("registry.ollama.ai", "library", "gpt-oss", "20b")),
            ("gpt-oss:CLOUD", ("registry.ollama.ai", "library", "gpt-oss", "latest")),
        ];
        for (raw, (host, namespace, model, tag)) in cases {
            let n = parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(
                (n.host.as_str(), n.namespace.as_str(), n.model.as_str(), n.tag.as_str()),
                (host, namespace, model, tag),
                "{raw}"
            );
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        let long = "a".repeat(1024 * 1024);
        let long_part = format!("{}:latest", "a".repeat(81));
        for raw in [
            "",
            "../../etc/passwd",
            "registry.ollama.ai/library/../../x",
            "model:tag/../x",
            "..",
            "a..b",
            "%2e%2e/%2e%2e/x",
            "model%3Alatest",
            "lib\\model",
            "C:\\models\\x",
            "/etc/passwd",
            "./model",
            "~/model",
            "model/",
            "/model",
            "a//b",
            "a/b/c/d",
            "model:",
            ":tag",
            "model:ta:g",
            "name space",
            "model\n",
            "model\0",
            "model\u{7f}",
            "llama\u{ff0e}3",
            "llam\u{430}3",
            "\u{212a}imi",
            "model@sha256:abc",
            "https://host/ns/model",
            "host/ns.x/model",
            "-model",
            ".model",
            "model:-tag",
            "model:.tag",
            "host:5000/ns/mo:del:tag",
            &long,
            &long_part,
        ] {
            assert!(parse(raw).is_err(), "{:?} was accepted", lengths_shown(raw));
        }
    }

    fn lengths_shown(s: &str) -> String {
        s.chars().take(40).collect()
    }

    #[test]
    fn registries_allow_ollama_by_default_and_insecure_only_by_name() {
        let default = Registries::default();
        assert!(default.check("registry.ollama.ai", false).is_ok());
        assert!(default.check("REGISTRY.OLLAMA.AI", false).is_ok());
        assert!(default.check("ollama.com", false).is_ok());
        assert!(default.check("evil.example", false).is_err());
        assert!(default.check("registry.ollama.ai", true).is_err());
        assert!(default.check("registry.ollama.ai:80", false).is_err());

        let any = Registries::parse("*").unwrap();
        assert!(any.check("evil.example", false).is_ok());
        assert!(any.check("evil.example", true).is_err());

        let mine = Registries::parse(" registry.ollama.ai , Models.Internal:5000 ").unwrap();
        assert!(mine.check("models.internal:5000", true).is_ok());
        assert!(mine.check("models.internal", false).is_err());
        assert_eq!(mine.describe(), "registry.ollama.ai,models.internal:5000");

        for bad in ["", " , ", "../x", "host/x", "a b", "%41"] {
            assert!(Registries::parse(bad).is_err(), "{bad}");
        }
    }
}
