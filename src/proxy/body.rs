//! Reading request bodies: size limit, strict JSON, and the facts policy needs.

use super::error::ProxyError;
use super::routes::Kind;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fmt;

/// Parses JSON, refusing duplicate keys and keys that differ only in case, at
/// any depth. Ollama decodes keys without regard to case, so
/// `{"model": "allowed", "MODEL": "other"}` must never pass an allow-list.
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
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.to_lowercase()) {
                return Err(de::Error::custom(format!(
                    "duplicate key '{key}' (keys are compared without case)"
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
    /// Every model the request names (copy names two).
    pub models: Vec<String>,
    pub stream: bool,
    /// The requested maximum output, if any.
    pub max_output: Option<i64>,
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

fn int_field(body: &Map<String, Value>, name: &str) -> Result<Option<i64>, ProxyError> {
    match field(body, name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| ProxyError::BadRequest(format!("'{name}' must be an integer"))),
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

/// Checks the types of the fields the gate relies on and pulls out the facts.
pub fn facts(kind: Kind, body: &Value) -> Result<Facts, ProxyError> {
    let Value::Object(body) = body else {
        return Err(ProxyError::BadRequest("request body must be a JSON object".into()));
    };
    expect_kind(body, "stream", Value::is_boolean, "true or false")?;
    expect_kind(body, "options", Value::is_object, "an object")?;
    expect_kind(body, "messages", Value::is_array, "an array")?;
    expect_kind(body, "prompt", |v| v.is_string() || v.is_array(), "a string")?;
    expect_kind(body, "system", |v| v.is_string() || v.is_array(), "a string")?;
    expect_kind(body, "input", |v| v.is_string() || v.is_array(), "a string or an array of strings")?;
    expect_kind(body, "keep_alive", |v| v.is_string() || v.is_number(), "a duration string or a number")?;
    if let Some(Value::Array(messages)) = field(body, "messages") {
        for m in messages {
            if !m.is_object() {
                return Err(ProxyError::BadRequest("each of 'messages' must be an object".into()));
            }
        }
    }

    let mut facts = Facts { stream: default_stream(kind), ..Facts::default() };
    if let Some(Value::Bool(b)) = field(body, "stream") {
        facts.stream = *b;
    }
    match kind {
        Kind::Copy => {
            for name in ["source", "destination"] {
                let model = string_field(body, name)?
                    .ok_or_else(|| ProxyError::BadRequest(format!("'{name}' is required")))?;
                facts.models.push(model);
            }
        }
        _ => {
            // Older Ollama clients send `name` where newer ones send `model`.
            let model = match string_field(body, "model")? {
                Some(m) => Some(m),
                None => string_field(body, "name")?,
            };
            match model {
                Some(m) if !m.trim().is_empty() => facts.models.push(m),
                _ => return Err(ProxyError::BadRequest("'model' is required".into())),
            }
        }
    }
    let options = match field(body, "options") {
        Some(Value::Object(o)) => Some(o),
        _ => None,
    };
    let num_predict = match options {
        Some(o) => int_field(o, "num_predict")?,
        None => None,
    };
    if let Some(o) = options {
        int_field(o, "num_ctx")?;
    }
    let max_tokens = int_field(body, "max_tokens")?;
    let max_completion = int_field(body, "max_completion_tokens")?;
    let max_output = int_field(body, "max_output_tokens")?;
    // Negative num_predict means "no limit" to Ollama.
    facts.max_output = max_completion.or(max_tokens).or(max_output).or(num_predict).filter(|n| *n >= 0);
    Ok(facts)
}

fn default_stream(kind: Kind) -> bool {
    matches!(kind, Kind::Generate | Kind::Chat | Kind::Pull | Kind::Create)
}

/// An estimate of the prompt's tokens, for reservations and for upstream
/// responses that report no counts.
pub fn prompt_tokens(body: &Value) -> i64 {
    crate::tokens::count(&prompt_text(body))
}

/// The text a request sends to the model, for a token estimate.
pub fn prompt_text(body: &Value) -> String {
    let mut text = String::new();
    let mut push = |v: &Value| collect_text(v, &mut text);
    for name in ["system", "prompt", "input", "instructions", "suffix"] {
        if let Some(v) = body.get(name) {
            push(v);
        }
    }
    if let Some(Value::Array(messages)) = body.get("messages") {
        for m in messages {
            if let Some(content) = m.get("content") {
                push(content);
            }
        }
    }
    text
}

fn collect_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(s);
        }
        Value::Array(items) => items.iter().for_each(|i| collect_text(i, out)),
        // OpenAI / Anthropic content parts: {"type": "text", "text": "..."}
        Value::Object(o) => {
            if let Some(t) = o.get("text") {
                collect_text(t, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_and_case_variant_keys_are_refused_at_any_depth() {
        assert!(parse_strict(br#"{"model":"a","model":"b"}"#).is_err());
        assert!(parse_strict(br#"{"model":"a","MODEL":"b"}"#).is_err());
        assert!(parse_strict(br#"{"options":{"num_ctx":1,"Num_Ctx":2}}"#).is_err());
        assert!(parse_strict(br#"{"model":"a"} trailing"#).is_err());
        assert!(parse_strict(b"{\"model\":\"\xff\"}").is_err());
        assert!(parse_strict(br#"{"model":"a","options":{"x":[1,{"y":2}]}}"#).is_ok());
    }

    #[test]
    fn wrong_types_are_refused() {
        for body in [
            r#"{"model": 5}"#,
            r#"{"model": "a", "stream": "yes"}"#,
            r#"{"model": "a", "options": {"num_predict": "ten"}}"#,
            r#"{"model": "a", "messages": "hi"}"#,
            r#"[1, 2]"#,
            r#"{"prompt": "no model"}"#,
        ] {
            let v: Value = serde_json::from_str(body).unwrap();
            assert!(facts(Kind::Chat, &v).is_err(), "{body}");
        }
    }

    #[test]
    fn facts_come_from_the_fields_ollama_reads() {
        let v: Value =
            serde_json::from_str(r#"{"model": "llama3", "stream": false, "options": {"num_predict": 64}}"#)
                .unwrap();
        let f = facts(Kind::Generate, &v).unwrap();
        assert_eq!(f.models, vec!["llama3".to_string()]);
        assert!(!f.stream);
        assert_eq!(f.max_output, Some(64));
        let v: Value = serde_json::from_str(r#"{"source": "a", "destination": "b"}"#).unwrap();
        assert_eq!(facts(Kind::Copy, &v).unwrap().models.len(), 2);
    }

    #[test]
    fn prompt_text_gathers_messages_and_prompt() {
        let v: Value = serde_json::from_str(
            r#"{"system": "be brief", "messages": [{"role": "user", "content": "hello"},
                {"role": "user", "content": [{"type": "text", "text": "world"}]}]}"#,
        )
        .unwrap();
        assert_eq!(prompt_text(&v), "be brief\nhello\nworld");
    }
}
