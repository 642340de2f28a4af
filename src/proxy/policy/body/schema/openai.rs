//! OpenAI compatibility (openai/openai.go, openai/responses.go).

use super::native::NATIVE_TOOL;
use super::{fields, leaves, list, object, Field, Shape};

/// `openai.StreamOptions`.
const STREAM_OPTIONS: Field = object("stream_options", leaves("include_usage"));

/// `openai.ToolCall`: here `arguments` is a string.
static OPENAI_TOOL_CALL: Shape =
    Shape::Struct(fields("id index type", &[object("function", leaves("name arguments"))]));

/// `openai.Message`: `content` is `any`, its parts are maps read by exact key.
static OPENAI_MESSAGE: Shape = Shape::Struct(fields(
    "role content reasoning name tool_call_id",
    &[list("tool_calls", &OPENAI_TOOL_CALL)],
));

/// `openai.ChatCompletionRequest`. It has no `max_completion_tokens`.
pub(super) static OPENAI_CHAT: Shape = Shape::Struct(fields(
    "model stream max_tokens seed stop temperature frequency_penalty presence_penalty \
     top_p reasoning_effort logprobs top_logprobs _debug_render_only",
    &[
        list("messages", &OPENAI_MESSAGE),
        STREAM_OPTIONS,
        object("response_format", fields("type", &[object("json_schema", leaves("schema"))])),
        list("tools", &NATIVE_TOOL),
        object("reasoning", leaves("effort")),
    ],
));

/// `openai.CompletionRequest`.
pub(super) static OPENAI_COMPLETIONS: Shape = Shape::Struct(fields(
    "model prompt frequency_penalty max_tokens presence_penalty seed stop stream \
     temperature top_p suffix logprobs _debug_render_only",
    &[STREAM_OPTIONS],
));

/// `openai.EmbedRequest`.
pub(super) static OPENAI_EMBEDDINGS: Shape = Shape::Struct(leaves("input model dimensions encoding_format"));

// ---- OpenAI Responses (openai/responses.go) ----

/// The content items of a Responses message, a union decoded by its `type`
/// (input_text, input_image, output_text, input_file): every member's fields.
static RESPONSES_CONTENT: Shape =
    Shape::Struct(leaves("type text detail file_id image_url file_data file_url filename"));

/// The input items, a union decoded by `type` (or `role`): message,
/// function_call, function_call_output, reasoning, web_search_call.
static RESPONSES_ITEM: Shape = Shape::Struct(fields(
    "type role id call_id name arguments encrypted_content status",
    &[
        list("content", &RESPONSES_CONTENT),
        list("output", &RESPONSES_CONTENT),
        list("summary", &RESPONSES_SUMMARY),
        object("action", leaves("type query")),
    ],
));

/// `openai.ResponsesReasoningSummary`.
static RESPONSES_SUMMARY: Shape = Shape::Struct(leaves("type text"));

/// `openai.ResponsesTool`; a namespace nests further tools.
static RESPONSES_TOOL: Shape =
    Shape::Struct(fields("type name description strict parameters", &[list("tools", &RESPONSES_TOOL)]));

/// `openai.ResponsesRequest`.
pub(super) static RESPONSES: Shape = Shape::Struct(fields(
    "model background conversation include instructions max_output_tokens temperature \
     top_p truncation stream",
    &[
        list("input", &RESPONSES_ITEM),
        object("reasoning", leaves("effort generate_summary summary")),
        object("text", fields("", &[object("format", leaves("type name schema strict"))])),
        list("tools", &RESPONSES_TOOL),
    ],
));
