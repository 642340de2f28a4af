//! Anthropic compatibility (anthropic/anthropic.go).

use super::{fields, leaves, list, object, Field, Shape};

/// `anthropic.ContentBlock`. A tool result's `content` is `any`: its blocks
/// are maps read by exact key, like `system`'s.
static CONTENT_BLOCK: Shape = Shape::Struct(fields(
    "type text id name input tool_use_id content is_error thinking signature",
    &[
        list("citations", &Shape::Struct(leaves("type url title encrypted_index cited_text"))),
        object("source", leaves("type media_type data url")),
    ],
));

/// `anthropic.MessageParam`: `content` is a string or a list of blocks.
static ANTHROPIC_MESSAGE: Shape = Shape::Struct(fields("role", &[list("content", &CONTENT_BLOCK)]));

/// `anthropic.Tool`.
static ANTHROPIC_TOOL: Shape = Shape::Struct(leaves("type name description input_schema max_uses"));

const THINKING: Field = object("thinking", leaves("type budget_tokens"));

/// `anthropic.MessagesRequest`.
pub(super) static ANTHROPIC_MESSAGES: Shape = Shape::Struct(fields(
    "model max_tokens system stream temperature top_p top_k stop_sequences",
    &[
        list("messages", &ANTHROPIC_MESSAGE),
        list("tools", &ANTHROPIC_TOOL),
        object("tool_choice", leaves("type name disable_parallel_tool_use")),
        THINKING,
        object("metadata", leaves("user_id")),
        object("output_config", leaves("effort")),
    ],
));

/// `anthropic.CountTokensRequest`: the gate answers it itself, reading it
/// the way Ollama's own estimate would.
pub(super) static ANTHROPIC_COUNT_TOKENS: Shape = Shape::Struct(fields(
    "model system",
    &[list("messages", &ANTHROPIC_MESSAGE), list("tools", &ANTHROPIC_TOOL), THINKING],
));
