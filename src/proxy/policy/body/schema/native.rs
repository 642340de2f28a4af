//! Ollama's native API (api/types.go).

use super::{fields, leaves, list, object, Shape};

/// `api.GenerateRequest`.
pub(super) static GENERATE: Shape = Shape::Struct(leaves(
    "model prompt suffix system template context stream raw format keep_alive images \
     options think truncate shift _debug_render_only logprobs top_logprobs",
));

/// `api.ToolCall` with its `ToolCallFunction` (`arguments` is an ordered map).
static NATIVE_TOOL_CALL: Shape =
    Shape::Struct(fields("id", &[object("function", leaves("index name arguments"))]));

/// `api.Message` (also in `/api/create`'s `messages`).
static NATIVE_MESSAGE: Shape = Shape::Struct(fields(
    "role content thinking images tool_name tool_call_id",
    &[list("tool_calls", &NATIVE_TOOL_CALL)],
));

/// `api.Tool` (also OpenAI chat's `tools`). The JSON schema under
/// `parameters` is left opaque: nothing in it feeds a limit, and the tools
/// are counted as the JSON that was sent.
pub(super) static NATIVE_TOOL: Shape =
    Shape::Struct(fields("type items", &[object("function", leaves("name description parameters"))]));

/// `api.ChatRequest`.
pub(super) static CHAT: Shape = Shape::Struct(fields(
    "model stream format keep_alive options think truncate shift _debug_render_only \
     logprobs top_logprobs",
    &[list("messages", &NATIVE_MESSAGE), list("tools", &NATIVE_TOOL)],
));

/// `api.EmbedRequest`.
pub(super) static EMBED: Shape = Shape::Struct(leaves("model input keep_alive truncate dimensions options"));

/// `api.EmbeddingRequest` (legacy `/api/embeddings`).
pub(super) static EMBEDDINGS: Shape = Shape::Struct(leaves("model prompt keep_alive options"));

/// `api.PullRequest`.
pub(super) static PULL: Shape = Shape::Struct(leaves("model insecure username password stream name"));

/// `api.CreateRequest`, and `path` and `modelfile` of older Ollamas
/// (removed in 0.5.5), which the store refuses: their spellings are held to as for any field.
pub(super) static CREATE: Shape = Shape::Struct(fields(
    "model stream quantize draft_quantize from remote_host files draft_files adapters \
     template license system parameters renderer parser requires info name quantization path modelfile",
    &[list("messages", &NATIVE_MESSAGE)],
));

/// `api.CopyRequest`.
pub(super) static COPY: Shape = Shape::Struct(leaves("source destination"));

/// `api.DeleteRequest`.
pub(super) static DELETE: Shape = Shape::Struct(leaves("model name"));

/// `api.ShowRequest`.
pub(super) static SHOW: Shape = Shape::Struct(leaves("model system template verbose options name"));
