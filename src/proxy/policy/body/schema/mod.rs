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
#[derive(Clone, Copy)]
pub enum Shape {
    /// A Go struct: keys fold onto these fields; keys that land on none are ignored.
    Struct(Fields),
    /// A Go slice of the inner shape. A value that is not an array (Anthropic's
    /// and Responses' string shorthands for content) holds no keys to check.
    List(&'static Shape),
    /// A map, `any` or raw JSON: keys are matched exactly, if at all.
    Opaque,
}

#[derive(Clone, Copy)]
pub struct Field {
    /// The canonical spelling: the field's `json` tag.
    pub name: &'static str,
    pub shape: Shape,
}

/// The fields of a Go struct: those whose values are opaque here (scalars,
/// maps, `any`), named in one string, and those with a shape of their own.
#[derive(Clone, Copy)]
pub struct Fields {
    /// Space-separated names.
    opaque: &'static str,
    nested: &'static [Field],
}

impl Fields {
    /// Every field of the struct, the opaque ones first.
    pub fn iter(self) -> impl Iterator<Item = Field> {
        self.opaque.split_ascii_whitespace().map(leaf).chain(self.nested.iter().copied())
    }
}

const fn leaf(name: &'static str) -> Field {
    Field { name, shape: Shape::Opaque }
}

/// A struct's fields: the opaque ones by name, then the others.
const fn fields(opaque: &'static str, nested: &'static [Field]) -> Fields {
    Fields { opaque, nested }
}

/// A struct whose fields are all opaque.
const fn leaves(opaque: &'static str) -> Fields {
    fields(opaque, &[])
}

const fn object(name: &'static str, fields: Fields) -> Field {
    Field { name, shape: Shape::Struct(fields) }
}

const fn list(name: &'static str, of: &'static Shape) -> Field {
    Field { name, shape: Shape::List(of) }
}

mod anthropic;
mod native;
mod openai;

use anthropic::*;
use native::*;
use openai::*;

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
mod tests;
