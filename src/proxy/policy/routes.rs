//! The route policy: which method and path reach the upstream, under which scope.
//!
//! Default deny. Paths are matched exactly as sent, before any decoding: a
//! percent-encoded slash, a dot segment, a doubled slash or a case variant is
//! refused, never normalised into an allowed route.

use crate::domain::scopes::Scope;
use actix_web::http::Method;

/// The API family a path belongs to decides the error format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ollama,
    OpenAi,
    Anthropic,
}

impl Family {
    pub fn of(path: &str) -> Family {
        if path.starts_with("/v1/messages") {
            Family::Anthropic
        } else if path.starts_with("/v1/") {
            Family::OpenAi
        } else {
            Family::Ollama
        }
    }
}

/// What a route does, as far as policy and accounting care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Generate,
    Chat,
    Embed,
    /// Legacy `/api/embeddings`: the upstream reports no counts.
    Embeddings,
    OpenAiChat,
    OpenAiCompletions,
    OpenAiEmbeddings,
    OpenAiResponses,
    AnthropicMessages,
    AnthropicCountTokens,
    Tags,
    Show,
    Ps,
    Version,
    OpenAiModels,
    OpenAiModel,
    Pull,
    Create,
    Copy,
    Delete,
    Blob,
}

impl Kind {
    /// Runs a model on the backend: takes one of its slots, in fair turn.
    pub fn runs_a_model(self) -> bool {
        matches!(
            self,
            Kind::Generate
                | Kind::Chat
                | Kind::Embed
                | Kind::Embeddings
                | Kind::OpenAiChat
                | Kind::OpenAiCompletions
                | Kind::OpenAiEmbeddings
                | Kind::OpenAiResponses
                | Kind::AnthropicMessages
        )
    }

    /// Changes a backend's model store: goes to one backend, never retried.
    pub fn is_manage(self) -> bool {
        matches!(self, Kind::Pull | Kind::Create | Kind::Copy | Kind::Delete | Kind::Blob)
    }

    /// A list of models, merged across backends and filtered to the key's.
    pub fn is_listing(self) -> bool {
        matches!(self, Kind::Tags | Kind::Ps | Kind::OpenAiModels)
    }

    /// Counted in the daily and monthly request quotas. Listings, model
    /// details, the version and token counting are not: clients call them on
    /// their own (a page load, a model picker), and a person's quota of
    /// requests should not go on them. They still count against the per-minute
    /// request limit and concurrency, which protect the upstream.
    pub fn counts_in_request_quotas(self) -> bool {
        !matches!(
            self,
            Kind::Tags
                | Kind::Show
                | Kind::Ps
                | Kind::Version
                | Kind::OpenAiModels
                | Kind::OpenAiModel
                | Kind::AnthropicCountTokens
        )
    }

    /// The upstream's answer reports token counts (or, cut short, is charged
    /// an estimate). Everything else is charged zero tokens.
    pub fn reports_usage(self) -> bool {
        self.generates() || matches!(self, Kind::Embed | Kind::Embeddings | Kind::OpenAiEmbeddings)
    }

    /// Generates tokens (and so reserves output tokens on admission).
    pub fn generates(self) -> bool {
        matches!(
            self,
            Kind::Generate
                | Kind::Chat
                | Kind::OpenAiChat
                | Kind::OpenAiCompletions
                | Kind::OpenAiResponses
                | Kind::AnthropicMessages
        )
    }

    /// The body is JSON that names a model (blobs are raw bytes; GETs have no body).
    pub fn has_json_body(self) -> bool {
        !matches!(
            self,
            Kind::Blob | Kind::Tags | Kind::Ps | Kind::Version | Kind::OpenAiModels | Kind::OpenAiModel
        )
    }
}

#[derive(Debug)]
pub struct Route {
    pub kind: Kind,
    pub scope: Scope,
    /// The path sent upstream (always the canonical `/api/...` or `/v1/...` form).
    pub upstream_path: String,
    /// A short stable name for usage rows and logs.
    pub name: &'static str,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A path that is never forwarded for any key (`/api/push`, account routes...).
    NeverForwarded,
    /// Not on the list, oddly spelled, or the wrong method.
    NotAllowed,
}

const FIXED: &[(&str, &str, Kind, Scope)] = &[
    ("POST", "/api/generate", Kind::Generate, Scope::Inference),
    ("POST", "/api/chat", Kind::Chat, Scope::Inference),
    ("POST", "/api/embed", Kind::Embed, Scope::Inference),
    ("POST", "/api/embeddings", Kind::Embeddings, Scope::Inference),
    ("POST", "/v1/chat/completions", Kind::OpenAiChat, Scope::Inference),
    ("POST", "/v1/completions", Kind::OpenAiCompletions, Scope::Inference),
    ("POST", "/v1/embeddings", Kind::OpenAiEmbeddings, Scope::Inference),
    ("POST", "/v1/responses", Kind::OpenAiResponses, Scope::Inference),
    ("POST", "/v1/messages", Kind::AnthropicMessages, Scope::Inference),
    ("POST", "/v1/messages/count_tokens", Kind::AnthropicCountTokens, Scope::Inference),
    ("GET", "/api/tags", Kind::Tags, Scope::Models),
    ("POST", "/api/show", Kind::Show, Scope::Models),
    ("GET", "/api/ps", Kind::Ps, Scope::Models),
    ("GET", "/api/version", Kind::Version, Scope::Models),
    // Ollama answers HEAD on these two as on their GET (and on `/`, which the
    // gate answers itself).
    ("HEAD", "/api/tags", Kind::Tags, Scope::Models),
    ("HEAD", "/api/version", Kind::Version, Scope::Models),
    ("GET", "/v1/models", Kind::OpenAiModels, Scope::Models),
    ("POST", "/api/pull", Kind::Pull, Scope::Manage),
    ("POST", "/api/create", Kind::Create, Scope::Manage),
    ("POST", "/api/copy", Kind::Copy, Scope::Manage),
    ("DELETE", "/api/delete", Kind::Delete, Scope::Manage),
];

/// Refused for every key, whatever its scopes: pushes, the signed-in
/// account, and web search and fetch, which run on the operator's
/// ollama.com account (`/api/experimental/web_search` and `web_fetch` on a
/// local Ollama, `/api/web_search` and `/api/web_fetch` on ollama.com).
const NEVER: &[&str] = &[
    "/api/push",
    "/api/me",
    "/api/signout",
    "/api/user",
    "/api/experimental",
    "/api/web_search",
    "/api/web_fetch",
];

pub fn resolve(method: &Method, raw_path: &str) -> Result<Route, Refusal> {
    if !is_canonical(raw_path) {
        return Err(Refusal::NotAllowed);
    }
    // Seed-compatible aliases: native routes also answer without `/api`.
    let path: std::borrow::Cow<str> = if raw_path.starts_with("/api/") || raw_path.starts_with("/v1/") {
        raw_path.into()
    } else {
        format!("/api{raw_path}").into()
    };
    if NEVER.iter().any(|p| path == *p || path.starts_with(&format!("{p}/"))) {
        return Err(Refusal::NeverForwarded);
    }
    let method = method.as_str();
    if let Some((_, p, kind, scope)) = FIXED.iter().find(|(m, p, _, _)| *m == method && path == *p) {
        return Ok(Route { kind: *kind, scope: *scope, upstream_path: (*p).to_owned(), name: p });
    }
    if let Some(model) = path.strip_prefix("/v1/models/") {
        if method == "GET" && is_model_segment(model) && raw_path.starts_with("/v1/") {
            return Ok(Route {
                kind: Kind::OpenAiModel,
                scope: Scope::Models,
                upstream_path: path.into_owned(),
                name: "/v1/models/{model}",
            });
        }
    }
    if let Some(digest) = path.strip_prefix("/api/blobs/") {
        if matches!(method, "HEAD" | "POST") && is_digest(digest) {
            return Ok(Route {
                kind: Kind::Blob,
                scope: Scope::Manage,
                upstream_path: path.into_owned(),
                name: "/api/blobs/{digest}",
            });
        }
    }
    Err(Refusal::NotAllowed)
}

/// Only plain, already-canonical paths: no encoding tricks, no dot segments,
/// no empty segments, no backslashes, no trailing slash.
fn is_canonical(path: &str) -> bool {
    path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.:".contains(&b))
        && path[1..].split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

fn is_model_segment(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && !s.contains('/')
}

fn is_digest(s: &str) -> bool {
    crate::domain::model_store::is_digest(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: &str, path: &str) -> Option<Kind> {
        resolve(&Method::from_bytes(method.as_bytes()).unwrap(), path).ok().map(|r| r.kind)
    }

    #[test]
    fn listed_routes_resolve_with_their_scope() {
        assert_eq!(ok("POST", "/api/chat"), Some(Kind::Chat));
        assert_eq!(ok("POST", "/chat"), Some(Kind::Chat));
        assert_eq!(ok("GET", "/tags"), Some(Kind::Tags));
        assert_eq!(ok("DELETE", "/api/delete"), Some(Kind::Delete));
        assert_eq!(ok("GET", "/v1/models/llama3:8b"), Some(Kind::OpenAiModel));
        let digest = format!("/api/blobs/sha256:{}", "a".repeat(64));
        assert_eq!(ok("HEAD", &digest), Some(Kind::Blob));
        assert_eq!(resolve(&Method::POST, "/pull").unwrap().upstream_path, "/api/pull");
    }

    #[test]
    fn odd_spellings_never_reach_an_allowed_route() {
        for path in [
            "/api//pull",
            "/api/./pull",
            "/api/x/../pull",
            "/api%2Fpull",
            "/api/%70ull",
            "/API/pull",
            "/api/Pull",
            "/api/pull/",
            "/api\\pull",
            "//api/pull",
            "/api/chat;x",
            "/v1/../api/pull",
        ] {
            assert!(resolve(&Method::POST, path).is_err(), "{path} got through");
        }
        assert_eq!(ok("GET", "/api/chat"), None);
        assert_eq!(ok("POST", "/api/blobs/sha256:zz"), None);
        // Ollama's API names blobs `sha256:<hex>`; `sha256-` is its file name on disk.
        for digest in [
            format!("sha256-{}", "a".repeat(64)),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}", "a".repeat(65)),
            format!("SHA256:{}", "a".repeat(64)),
            format!("sha512:{}", "a".repeat(64)),
        ] {
            assert_eq!(ok("POST", &format!("/api/blobs/{digest}")), None, "{digest}");
        }
    }

    #[test]
    fn account_and_push_routes_are_never_forwarded() {
        for path in [
            "/api/push",
            "/push",
            "/api/me",
            "/api/signout",
            "/api/user/keys",
            "/api/experimental/x",
            "/api/experimental/web_search",
            "/api/experimental/web_fetch",
            "/experimental/web_search",
            "/api/web_search",
            "/api/web_fetch",
            "/web_search",
            "/web_fetch",
        ] {
            assert_eq!(resolve(&Method::POST, path).unwrap_err(), Refusal::NeverForwarded, "{path}");
        }
    }
}
