//! Reading request bodies the way the upstream reads them: strict JSON, field
//! names as Go's decoder matches them, bounded numbers, and the facts policy
//! needs.
//!
//! `parse_strict` refuses what is not one JSON value and exact duplicate keys
//! at any depth. `facts` does every route-specific check: field spellings
//! (`spelling`, against the route's `schema`), types, numbers (`numbers`) and
//! the models named. The handler runs both on the body as received and again
//! on the body it forwards, so what is checked is what is sent.

mod gofold;
mod numbers;
mod prompt;
mod schema;
mod spelling;

#[cfg(test)]
mod go_cases;

pub use schema::OutputField;

use super::routes::Kind;
use crate::domain::lengths;
use crate::proxy::error::ProxyError;
use schema::ModelFields;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Parses JSON, refusing trailing data and duplicate keys at any depth: Go
/// keeps the last of two equal keys, a reader that kept the first would
/// check one value and forward another. Keys that differ only in case are
/// a question for `facts`, which knows where Go folds them and where it
/// does not (maps such as `options`).
pub fn parse_strict(bytes: &[u8]) -> Result<Value, ProxyError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|_| v))
        .map_err(|e| ProxyError::BadRequest(format!("request body is not valid JSON: {e}")))?;
    Ok(value)
}

struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map(Value::Number).unwrap_or(Value::Null))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key '{}' (the upstream would read only the last)",
                    key.chars().take(64).collect::<String>()
                )));
            }
            let value = map.next_value_seed(StrictValue)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// What the policy and accounting need from a request body.
#[derive(Debug, Default)]
pub struct Facts {
    /// Every model the request names, the one the upstream uses first: copy
    /// names source and destination, create its model and `from`, the manage
    /// routes both `model` and `name` when both are given.
    pub models: Vec<String>,
    pub stream: bool,
    /// The output maximum the upstream will obey on this route; `None` when
    /// none is given or the one given means "no limit" (zero or negative).
    /// Native routes: `options.num_predict`. OpenAI chat and completions:
    /// `max_tokens` (Ollama has no `max_completion_tokens`; it is checked as
    /// a number and otherwise ignored). Responses: `max_output_tokens`.
    /// Anthropic messages: `max_tokens`. Fields of other routes change nothing.
    pub max_output: Option<i64>,
}

/// Where the output maximum the upstream obeys lives on a route, for code
/// that must set or lower it (clamps).
pub fn output_field(kind: Kind) -> Option<OutputField> {
    schema::of(kind).and_then(|r| r.output)
}

fn field<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| !v.is_null())
}

fn string_field(body: &Map<String, Value>, name: &str) -> Result<Option<String>, ProxyError> {
    match field(body, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ProxyError::BadRequest(format!("'{name}' must be a string"))),
    }
}

fn expect_kind(
    body: &Map<String, Value>,
    name: &str,
    ok: fn(&Value) -> bool,
    what: &str,
) -> Result<(), ProxyError> {
    match field(body, name) {
        Some(v) if !ok(v) => Err(ProxyError::BadRequest(format!("'{name}' must be {what}"))),
        _ => Ok(()),
    }
}

fn check_types(body: &Map<String, Value>) -> Result<(), ProxyError> {
    expect_kind(body, "stream", Value::is_boolean, "true or false")?;
    expect_kind(body, "options", Value::is_object, "an object")?;
    expect_kind(body, "messages", Value::is_array, "an array")?;
    expect_kind(body, "prompt", |v| v.is_string() || v.is_array(), "a string")?;
    expect_kind(body, "system", |v| v.is_string() || v.is_array(), "a string")?;
    expect_kind(body, "input", |v| v.is_string() || v.is_array(), "a string or an array of strings")?;
    expect_kind(body, "keep_alive", |v| v.is_string() || v.is_number(), "a duration string or a number")?;
    if let Some(Value::Array(messages)) = field(body, "messages") {
        if messages.iter().any(|m| !m.is_object()) {
            return Err(ProxyError::BadRequest("each of 'messages' must be an object".into()));
        }
    }
    Ok(())
}

/// Checks the body as the upstream will read it on this route and pulls out
/// the facts. Every spelling check happens here.
pub fn facts(kind: Kind, body: &Value) -> Result<Facts, ProxyError> {
    let Value::Object(object) = body else {
        return Err(ProxyError::BadRequest("request body must be a JSON object".into()));
    };
    let Some(route) = schema::of(kind) else {
        return Err(ProxyError::BadRequest("this route takes no JSON body".into()));
    };
    spelling::check(route.shape, body)?;
    check_types(object)?;
    let mut stream = route.stream_default.unwrap_or(false);
    if let (Some(_), Some(Value::Bool(b))) = (route.stream_default, field(object, "stream")) {
        stream = *b;
    }
    Ok(Facts { models: models(route.models, object)?, stream, max_output: max_output(kind, object)? })
}

/// The models a request names, each at most `lengths::MODEL_NAME` bytes: the
/// name is stored with the request's usage and shown in the console.
fn models(fields: ModelFields, body: &Map<String, Value>) -> Result<Vec<String>, ProxyError> {
    let named = named_models(fields, body)?;
    match named.iter().find(|m| m.len() > lengths::MODEL_NAME) {
        Some(long) => Err(ProxyError::BadRequest(format!(
            "model name '{}' is too long: at most {} bytes",
            lengths::shown(long),
            lengths::MODEL_NAME
        ))),
        None => Ok(named),
    }
}

fn named_models(fields: ModelFields, body: &Map<String, Value>) -> Result<Vec<String>, ProxyError> {
    let required = |name: &str| match string_field(body, name)? {
        Some(m) if !m.trim().is_empty() => Ok(m),
        _ => Err(ProxyError::BadRequest(format!("'{name}' is required"))),
    };
    match fields {
        ModelFields::Model => Ok(vec![required("model")?]),
        ModelFields::SourceAndDestination => Ok(vec![required("source")?, required("destination")?]),
        ModelFields::ModelOrName | ModelFields::ModelOrNameAndFrom => {
            // Ollama takes `cmp.Or(model, name)`: the first that is not "".
            let given: Vec<String> = [string_field(body, "model")?, string_field(body, "name")?]
                .into_iter()
                .flatten()
                .filter(|m| !m.is_empty())
                .collect();
            match given.first() {
                Some(used) if !used.trim().is_empty() => {}
                _ => return Err(ProxyError::BadRequest("'model' is required".into())),
            }
            let mut models: Vec<String> = given.into_iter().filter(|m| !m.trim().is_empty()).collect();
            if fields == ModelFields::ModelOrNameAndFrom {
                models.extend(string_field(body, "from")?.filter(|m| !m.trim().is_empty()));
            }
            Ok(models)
        }
    }
}

/// Reads every number that feeds a reservation or a clamp, on every route
/// (a clamp may read them wherever they are), and returns the one the
/// upstream obeys on this route as a limit.
fn max_output(kind: Kind, body: &Map<String, Value>) -> Result<Option<i64>, ProxyError> {
    let mut num_predict = None;
    if let Some(Value::Object(options)) = field(body, "options") {
        num_predict = numbers::bounded(options, "num_predict", "options.", numbers::OUTPUT)?;
        numbers::bounded(options, "num_ctx", "options.", numbers::CONTEXT)?;
    }
    let max_tokens_bounds =
        if kind == Kind::AnthropicMessages { numbers::ANTHROPIC_OUTPUT } else { numbers::OUTPUT };
    let max_tokens = numbers::bounded(body, "max_tokens", "", max_tokens_bounds)?;
    numbers::bounded(body, "max_completion_tokens", "", numbers::OUTPUT)?;
    let max_output_tokens = numbers::bounded(body, "max_output_tokens", "", numbers::OUTPUT)?;
    let obeyed = match output_field(kind) {
        Some(OutputField::NumPredict) => num_predict,
        Some(OutputField::Top("max_tokens")) => max_tokens,
        Some(OutputField::Top("max_output_tokens")) => max_output_tokens,
        Some(OutputField::Top(_)) | None => None,
    };
    Ok(numbers::as_limit(obeyed))
}

/// The estimate of the prompt's tokens the gate makes, counted here and now;
/// the gate itself counts `prompt_text` on its tokenizer pool.
pub fn prompt_tokens(body: &Value) -> i64 {
    crate::tokens::count_now(&prompt_text(body))
}

/// Everything the model reads from a request, as text, for a token estimate
/// (see `prompt` for what is counted).
pub fn prompt_text(body: &Value) -> String {
    prompt::text(body)
}

#[cfg(test)]
mod tests;
