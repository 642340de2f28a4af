//! How the upstream decodes each route's body, level by level.
//!
//! Written from Ollama's Go types (api/types.go, openai/openai.go,
//! openai/responses.go, anthropic/anthropic.go) and the handlers that decode
//! them (server/routes.go, server/create.go, middleware/). Where Ollama decodes
//! into a Go struct, keys fold onto fields (see `gofold`); every field of the
//! struct is listed, whether or not the gate reads it, so that no spelling of
//! any of them passes unnoticed. Maps (`options`, `parameters`), `any`,
//! `json.RawMessage` and ordered maps (tool-call `arguments`, `input_schema`,
//! JSON schemas, `format`) keep keys exactly as sent: they are opaque here.

use super::super::routes::Kind;

/// How the upstream decodes one JSON value.
pub enum Shape {
    /// A Go struct: keys fold onto these fields; keys that land on none are ignored.
    Struct(&'static [Field]),
    /// A Go slice of the inner shape. A value that is not an array (Anthropic's
    /// and Responses' string shorthands for content) holds no keys to check.
    List(&'static Shape),
    /// A map, `any` or raw JSON: keys are matched exactly, if at all.
    Opaque,
}

pub struct Field {
    /// The canonical spelling: the field's `json` tag.
    pub name: &'static str,
    pub shape: Shape,
}

const fn leaf(name: &'static str) -> Field {
    Field { name, shape: Shape::Opaque }
}

const fn object(name: &'static str, fields: &'static [Field]) -> Field {
    Field { name, shape: Shape::Struct(fields) }
}

const fn list(name: &'static str, of: &'static Shape) -> Field {
    Field { name, shape: Shape::List(of) }
}

// ---- Ollama's native API (api/types.go) ----

/// `api.GenerateRequest`.
static GENERATE: Shape = Shape::Struct(&[
    leaf("model"),
    leaf("prompt"),
    leaf("suffix"),
    leaf("system"),
    leaf("template"),
    leaf("context"),
    leaf("stream"),
    leaf("raw"),
    leaf("format"),
    leaf("keep_alive"),
    leaf("images"),
    leaf("options"),
    leaf("think"),
    leaf("truncate"),
    leaf("shift"),
    leaf("_debug_render_only"),
    leaf("logprobs"),
    leaf("top_logprobs"),
]);

/// `api.ToolCall` with its `ToolCallFunction` (`arguments` is an ordered map).
static NATIVE_TOOL_CALL: Shape =
    Shape::Struct(&[leaf("id"), object("function", &[leaf("index"), leaf("name"), leaf("arguments")])]);

/// `api.Message` (also in `/api/create`'s `messages`).
static NATIVE_MESSAGE: Shape = Shape::Struct(&[
    leaf("role"),
    leaf("content"),
    leaf("thinking"),
    leaf("images"),
    list("tool_calls", &NATIVE_TOOL_CALL),
    leaf("tool_name"),
    leaf("tool_call_id"),
]);

/// `api.Tool` (also OpenAI chat's `tools`). The JSON schema under
/// `parameters` is left opaque: nothing in it feeds a limit, and the tools
/// are counted as the JSON that was sent.
static NATIVE_TOOL: Shape = Shape::Struct(&[
    leaf("type"),
    leaf("items"),
    object("function", &[leaf("name"), leaf("description"), leaf("parameters")]),
]);

/// `api.ChatRequest`.
static CHAT: Shape = Shape::Struct(&[
    leaf("model"),
    list("messages", &NATIVE_MESSAGE),
    leaf("stream"),
    leaf("format"),
    leaf("keep_alive"),
    list("tools", &NATIVE_TOOL),
    leaf("options"),
    leaf("think"),
    leaf("truncate"),
    leaf("shift"),
    leaf("_debug_render_only"),
    leaf("logprobs"),
    leaf("top_logprobs"),
]);

/// `api.EmbedRequest`.
static EMBED: Shape = Shape::Struct(&[
    leaf("model"),
    leaf("input"),
    leaf("keep_alive"),
    leaf("truncate"),
    leaf("dimensions"),
    leaf("options"),
]);

/// `api.EmbeddingRequest` (legacy `/api/embeddings`).
static EMBEDDINGS: Shape =
    Shape::Struct(&[leaf("model"), leaf("prompt"), leaf("keep_alive"), leaf("options")]);

/// `api.PullRequest`.
static PULL: Shape = Shape::Struct(&[
    leaf("model"),
    leaf("insecure"),
    leaf("username"),
    leaf("password"),
    leaf("stream"),
    leaf("name"),
]);

/// `api.CreateRequest`.
static CREATE: Shape = Shape::Struct(&[
    leaf("model"),
    leaf("stream"),
    leaf("quantize"),
    leaf("draft_quantize"),
    leaf("from"),
    leaf("remote_host"),
    leaf("files"),
    leaf("draft_files"),
    leaf("adapters"),
    leaf("template"),
    leaf("license"),
    leaf("system"),
    leaf("parameters"),
    list("messages", &NATIVE_MESSAGE),
    leaf("renderer"),
    leaf("parser"),
    leaf("requires"),
    leaf("info"),
    leaf("name"),
    leaf("quantization"),
]);

/// `api.CopyRequest`.
static COPY: Shape = Shape::Struct(&[leaf("source"), leaf("destination")]);

/// `api.DeleteRequest`.
static DELETE: Shape = Shape::Struct(&[leaf("model"), leaf("name")]);

/// `api.ShowRequest`.
static SHOW: Shape = Shape::Struct(&[
    leaf("model"),
    leaf("system"),
    leaf("template"),
    leaf("verbose"),
    leaf("options"),
    leaf("name"),
]);

// ---- OpenAI compatibility (openai/openai.go) ----

/// `openai.StreamOptions`.
const STREAM_OPTIONS: Field = object("stream_options", &[leaf("include_usage")]);

/// `openai.ToolCall`: here `arguments` is a string.
static OPENAI_TOOL_CALL: Shape = Shape::Struct(&[
    leaf("id"),
    leaf("index"),
    leaf("type"),
    object("function", &[leaf("name"), leaf("arguments")]),
]);

/// `openai.Message`: `content` is `any`, its parts are maps read by exact key.
static OPENAI_MESSAGE: Shape = Shape::Struct(&[
    leaf("role"),
    leaf("content"),
    leaf("reasoning"),
    list("tool_calls", &OPENAI_TOOL_CALL),
    leaf("name"),
    leaf("tool_call_id"),
]);

/// `openai.ChatCompletionRequest`. It has no `max_completion_tokens`.
static OPENAI_CHAT: Shape = Shape::Struct(&[
    leaf("model"),
    list("messages", &OPENAI_MESSAGE),
    leaf("stream"),
    STREAM_OPTIONS,
    leaf("max_tokens"),
    leaf("seed"),
    leaf("stop"),
    leaf("temperature"),
    leaf("frequency_penalty"),
    leaf("presence_penalty"),
    leaf("top_p"),
    object("response_format", &[leaf("type"), object("json_schema", &[leaf("schema")])]),
    list("tools", &NATIVE_TOOL),
    object("reasoning", &[leaf("effort")]),
    leaf("reasoning_effort"),
    leaf("logprobs"),
    leaf("top_logprobs"),
    leaf("_debug_render_only"),
]);

/// `openai.CompletionRequest`.
static OPENAI_COMPLETIONS: Shape = Shape::Struct(&[
    leaf("model"),
    leaf("prompt"),
    leaf("frequency_penalty"),
    leaf("max_tokens"),
    leaf("presence_penalty"),
    leaf("seed"),
    leaf("stop"),
    leaf("stream"),
    STREAM_OPTIONS,
    leaf("temperature"),
    leaf("top_p"),
    leaf("suffix"),
    leaf("logprobs"),
    leaf("_debug_render_only"),
]);

/// `openai.EmbedRequest`.
static OPENAI_EMBEDDINGS: Shape =
    Shape::Struct(&[leaf("input"), leaf("model"), leaf("dimensions"), leaf("encoding_format")]);

// ---- OpenAI Responses (openai/responses.go) ----

/// The content items of a Responses message, a union decoded by its `type`
/// (input_text, input_image, output_text, input_file): every member's fields.
static RESPONSES_CONTENT: Shape = Shape::Struct(&[
    leaf("type"),
    leaf("text"),
    leaf("detail"),
    leaf("file_id"),
    leaf("image_url"),
    leaf("file_data"),
    leaf("file_url"),
    leaf("filename"),
]);

/// The input items, a union decoded by `type` (or `role`): message,
/// function_call, function_call_output, reasoning, web_search_call.
static RESPONSES_ITEM: Shape = Shape::Struct(&[
    leaf("type"),
    leaf("role"),
    list("content", &RESPONSES_CONTENT),
    leaf("id"),
    leaf("call_id"),
    leaf("name"),
    leaf("arguments"),
    list("output", &RESPONSES_CONTENT),
    list("summary", &RESPONSES_SUMMARY),
    leaf("encrypted_content"),
    leaf("status"),
    object("action", &[leaf("type"), leaf("query")]),
]);

/// `openai.ResponsesReasoningSummary`.
static RESPONSES_SUMMARY: Shape = Shape::Struct(&[leaf("type"), leaf("text")]);

/// `openai.ResponsesTool`; a namespace nests further tools.
static RESPONSES_TOOL: Shape = Shape::Struct(&[
    leaf("type"),
    leaf("name"),
    leaf("description"),
    leaf("strict"),
    leaf("parameters"),
    list("tools", &RESPONSES_TOOL),
]);

/// `openai.ResponsesRequest`.
static RESPONSES: Shape = Shape::Struct(&[
    leaf("model"),
    leaf("background"),
    leaf("conversation"),
    leaf("include"),
    list("input", &RESPONSES_ITEM),
    leaf("instructions"),
    leaf("max_output_tokens"),
    object("reasoning", &[leaf("effort"), leaf("generate_summary"), leaf("summary")]),
    leaf("temperature"),
    object("text", &[object("format", &[leaf("type"), leaf("name"), leaf("schema"), leaf("strict")])]),
    leaf("top_p"),
    leaf("truncation"),
    list("tools", &RESPONSES_TOOL),
    leaf("stream"),
]);

// ---- Anthropic compatibility (anthropic/anthropic.go) ----

/// `anthropic.ContentBlock`. A tool result's `content` is `any`: its blocks
/// are maps read by exact key, like `system`'s.
static CONTENT_BLOCK: Shape = Shape::Struct(&[
    leaf("type"),
    leaf("text"),
    list(
        "citations",
        &Shape::Struct(&[
            leaf("type"),
            leaf("url"),
            leaf("title"),
            leaf("encrypted_index"),
            leaf("cited_text"),
        ]),
    ),
    object("source", &[leaf("type"), leaf("media_type"), leaf("data"), leaf("url")]),
    leaf("id"),
    leaf("name"),
    leaf("input"),
    leaf("tool_use_id"),
    leaf("content"),
    leaf("is_error"),
    leaf("thinking"),
    leaf("signature"),
]);

/// `anthropic.MessageParam`: `content` is a string or a list of blocks.
static ANTHROPIC_MESSAGE: Shape = Shape::Struct(&[leaf("role"), list("content", &CONTENT_BLOCK)]);

/// `anthropic.Tool`.
static ANTHROPIC_TOOL: Shape =
    Shape::Struct(&[leaf("type"), leaf("name"), leaf("description"), leaf("input_schema"), leaf("max_uses")]);

const THINKING: Field = object("thinking", &[leaf("type"), leaf("budget_tokens")]);

/// `anthropic.MessagesRequest`.
static ANTHROPIC_MESSAGES: Shape = Shape::Struct(&[
    leaf("model"),
    leaf("max_tokens"),
    list("messages", &ANTHROPIC_MESSAGE),
    leaf("system"),
    leaf("stream"),
    leaf("temperature"),
    leaf("top_p"),
    leaf("top_k"),
    leaf("stop_sequences"),
    list("tools", &ANTHROPIC_TOOL),
    object("tool_choice", &[leaf("type"), leaf("name"), leaf("disable_parallel_tool_use")]),
    THINKING,
    object("metadata", &[leaf("user_id")]),
    object("output_config", &[leaf("effort")]),
]);

/// `anthropic.CountTokensRequest`: the gate answers it itself, reading it
/// the way Ollama's own estimate would.
static ANTHROPIC_COUNT_TOKENS: Shape = Shape::Struct(&[
    leaf("model"),
    list("messages", &ANTHROPIC_MESSAGE),
    leaf("system"),
    list("tools", &ANTHROPIC_TOOL),
    THINKING,
]);

/// Which fields of a body name models, as the upstream's handler reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFields {
    /// `model`, required.
    Model,
    /// `cmp.Or(model, name)`: the first that is not empty is used; the gate
    /// checks every one given.
    ModelOrName,
    /// As `ModelOrName`, and `from` when given (`/api/create`).
    ModelOrNameAndFrom,
    /// `source` and `destination`, both required (`/api/copy`).
    SourceAndDestination,
}

/// Where the output maximum the upstream obeys lives in a route's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputField {
    /// `options.num_predict` (native routes).
    NumPredict,
    /// A top-level field of this name.
    Top(&'static str),
}

/// Everything the gate knows about how one route's body is read upstream.
pub struct Route {
    pub shape: &'static Shape,
    pub models: ModelFields,
    /// The output maximum the upstream obeys on this route, if it has one.
    pub output: Option<OutputField>,
    /// `None` when the route has no `stream` field; otherwise its default.
    pub stream_default: Option<bool>,
}

const fn route(
    shape: &'static Shape,
    models: ModelFields,
    output: Option<OutputField>,
    stream_default: Option<bool>,
) -> Route {
    Route { shape, models, output, stream_default }
}

use ModelFields::*;
use OutputField::*;

static R_GENERATE: Route = route(&GENERATE, Model, Some(NumPredict), Some(true));
static R_CHAT: Route = route(&CHAT, Model, Some(NumPredict), Some(true));
static R_EMBED: Route = route(&EMBED, Model, None, None);
static R_EMBEDDINGS: Route = route(&EMBEDDINGS, Model, None, None);
// Ollama maps `max_tokens` to num_predict; `max_completion_tokens` is not a
// field of its ChatCompletionRequest and is ignored.
static R_OPENAI_CHAT: Route = route(&OPENAI_CHAT, Model, Some(Top("max_tokens")), Some(false));
static R_OPENAI_COMPLETIONS: Route = route(&OPENAI_COMPLETIONS, Model, Some(Top("max_tokens")), Some(false));
static R_OPENAI_EMBEDDINGS: Route = route(&OPENAI_EMBEDDINGS, Model, None, None);
static R_RESPONSES: Route = route(&RESPONSES, Model, Some(Top("max_output_tokens")), Some(false));
static R_ANTHROPIC: Route = route(&ANTHROPIC_MESSAGES, Model, Some(Top("max_tokens")), Some(false));
static R_COUNT_TOKENS: Route = route(&ANTHROPIC_COUNT_TOKENS, Model, None, None);
static R_SHOW: Route = route(&SHOW, ModelOrName, None, None);
static R_PULL: Route = route(&PULL, ModelOrName, None, Some(true));
static R_CREATE: Route = route(&CREATE, ModelOrNameAndFrom, None, Some(true));
static R_COPY: Route = route(&COPY, SourceAndDestination, None, None);
static R_DELETE: Route = route(&DELETE, ModelOrName, None, None);

/// How the upstream reads the body of a route; `None` for routes without a JSON body.
pub fn of(kind: Kind) -> Option<&'static Route> {
    Some(match kind {
        Kind::Generate => &R_GENERATE,
        Kind::Chat => &R_CHAT,
        Kind::Embed => &R_EMBED,
        Kind::Embeddings => &R_EMBEDDINGS,
        Kind::OpenAiChat => &R_OPENAI_CHAT,
        Kind::OpenAiCompletions => &R_OPENAI_COMPLETIONS,
        Kind::OpenAiEmbeddings => &R_OPENAI_EMBEDDINGS,
        Kind::OpenAiResponses => &R_RESPONSES,
        Kind::AnthropicMessages => &R_ANTHROPIC,
        Kind::AnthropicCountTokens => &R_COUNT_TOKENS,
        Kind::Show => &R_SHOW,
        Kind::Pull => &R_PULL,
        Kind::Create => &R_CREATE,
        Kind::Copy => &R_COPY,
        Kind::Delete => &R_DELETE,
        Kind::Tags | Kind::Ps | Kind::Version | Kind::OpenAiModels | Kind::OpenAiModel | Kind::Blob => {
            return None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::gofold::fold_name;
    use super::*;
    use std::collections::HashSet;

    const ALL: &[Kind] = &[
        Kind::Generate,
        Kind::Chat,
        Kind::Embed,
        Kind::Embeddings,
        Kind::OpenAiChat,
        Kind::OpenAiCompletions,
        Kind::OpenAiEmbeddings,
        Kind::OpenAiResponses,
        Kind::AnthropicMessages,
        Kind::AnthropicCountTokens,
        Kind::Show,
        Kind::Pull,
        Kind::Create,
        Kind::Copy,
        Kind::Delete,
    ];

    /// Walks every struct once (the Responses tools nest themselves).
    fn check(shape: &'static Shape, seen: &mut HashSet<usize>) {
        if !seen.insert(shape as *const Shape as usize) {
            return;
        }
        match shape {
            Shape::Struct(fields) => {
                let mut folded = HashSet::new();
                for f in *fields {
                    assert!(f.name.is_ascii(), "{}", f.name);
                    assert!(folded.insert(fold_name(f.name)), "two fields fold alike: {}", f.name);
                    check(&f.shape, seen);
                }
            }
            Shape::List(inner) => check(inner, seen),
            Shape::Opaque => {}
        }
    }

    #[test]
    fn every_json_route_has_a_schema_whose_fields_are_ascii_and_fold_apart() {
        let mut seen = HashSet::new();
        for kind in ALL {
            let route = of(*kind).unwrap_or_else(|| panic!("{kind:?} has no schema"));
            check(route.shape, &mut seen);
        }
        assert!(of(Kind::Blob).is_none());
    }

    #[test]
    fn the_output_field_is_a_field_of_the_route() {
        for kind in ALL {
            let route = of(*kind).unwrap();
            let Shape::Struct(fields) = route.shape else { panic!("{kind:?} is not a struct") };
            let has = |name: &str| fields.iter().any(|f| f.name == name);
            match route.output {
                Some(OutputField::NumPredict) => assert!(has("options"), "{kind:?}"),
                Some(OutputField::Top(name)) => assert!(has(name), "{kind:?}"),
                None => {}
            }
            assert_eq!(route.stream_default.is_some(), has("stream"), "{kind:?}");
        }
    }
}
