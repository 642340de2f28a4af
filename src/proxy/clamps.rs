//! Applying a key's clamps to a request body before it is forwarded.
//!
//! Clamped values are what is forwarded and what is reserved: the body is
//! changed here, and the request's facts are read again afterwards.

use super::error::ProxyError;
use super::routes::Kind;
use crate::domain::clamps::Clamps;
use serde_json::{json, Value};

/// Changes the body to respect the clamps; true when anything changed.
/// Refuses what cannot be lowered: too many images, a forbidden keep_alive.
pub fn apply(kind: Kind, body: &mut Value, clamps: &Clamps) -> Result<bool, ProxyError> {
    if !clamps.allow_keep_alive_extremes {
        if let Some(keep_alive) = body.get("keep_alive").filter(|v| is_extreme(v)) {
            return Err(ProxyError::Forbidden(format!(
                "keep_alive {keep_alive} is not allowed for this key: -1 pins a model in memory and 0 unloads it for everyone"
            )));
        }
    }
    if let Some(max) = clamps.max_images {
        let n = count_images(body);
        if n > max {
            return Err(ProxyError::Forbidden(format!(
                "{n} images in one request; this key allows at most {max}"
            )));
        }
    }
    let mut changed = false;
    if let Some(max) = clamps.max_num_ctx {
        if let Some(options) = body.get_mut("options").and_then(Value::as_object_mut) {
            if options.get("num_ctx").and_then(Value::as_i64).is_some_and(|n| n > max) {
                options.insert("num_ctx".into(), json!(max));
                changed = true;
            }
        }
    }
    if let Some(max) = clamps.max_output_tokens {
        changed |= clamp_output(kind, body, max);
    }
    Ok(changed)
}

/// Lowers the requested maximum output to `max`, and sets it where none was asked.
fn clamp_output(kind: Kind, body: &mut Value, max: i64) -> bool {
    let Some(object) = body.as_object_mut() else { return false };
    let over = |v: Option<&Value>| v.and_then(Value::as_i64).is_none_or(|n| n < 0 || n > max);
    match kind {
        Kind::Generate | Kind::Chat => {
            let options = object.entry("options").or_insert_with(|| json!({}));
            let Some(options) = options.as_object_mut() else { return false };
            if over(options.get("num_predict")) {
                options.insert("num_predict".into(), json!(max));
                return true;
            }
            false
        }
        Kind::OpenAiChat | Kind::OpenAiCompletions | Kind::OpenAiResponses | Kind::AnthropicMessages => {
            let fields: &[&str] = match kind {
                Kind::OpenAiChat => &["max_completion_tokens", "max_tokens"],
                Kind::OpenAiResponses => &["max_output_tokens"],
                _ => &["max_tokens"],
            };
            let present: Vec<&str> = fields.iter().copied().filter(|f| object.contains_key(*f)).collect();
            let mut changed = false;
            if present.is_empty() {
                object.insert(fields[fields.len() - 1].into(), json!(max));
                changed = true;
            }
            for field in present {
                if over(object.get(field)) {
                    object.insert(field.into(), json!(max));
                    changed = true;
                }
            }
            changed
        }
        _ => false,
    }
}

/// `-1`, `"-1m"`, `0`, `"0"`, `"0s"`: pin forever or unload at once.
fn is_extreme(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_f64().is_some_and(|n| n <= 0.0),
        Value::String(s) => {
            let s = s.trim();
            let number = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            s.starts_with('-') || number.parse::<f64>().is_ok_and(|n| n <= 0.0)
        }
        _ => false,
    }
}

/// Images in any of the families' shapes: Ollama's `images` arrays, OpenAI's
/// `image_url` / `input_image` parts, Anthropic's `image` blocks.
pub fn count_images(value: &Value) -> i64 {
    match value {
        Value::Array(items) => items.iter().map(count_images).sum(),
        Value::Object(o) => {
            let own = match o.get("type").and_then(Value::as_str) {
                Some("image_url" | "input_image" | "image") => 1,
                _ => 0,
            };
            let native = o.get("images").and_then(Value::as_array).map_or(0, |a| a.len() as i64);
            own + native + o.iter().filter(|(k, _)| *k != "images").map(|(_, v)| count_images(v)).sum::<i64>()
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clamps() -> Clamps {
        Clamps {
            max_num_ctx: Some(4096),
            max_output_tokens: Some(100),
            max_images: Some(1),
            allow_keep_alive_extremes: false,
        }
    }

    #[test]
    fn outputs_and_contexts_are_lowered_and_set_where_missing() {
        let mut native = json!({"model": "m", "options": {"num_ctx": 32768, "num_predict": -1}});
        assert!(apply(Kind::Chat, &mut native, &clamps()).unwrap());
        assert_eq!(native["options"], json!({"num_ctx": 4096, "num_predict": 100}));
        let mut openai = json!({"model": "m", "max_completion_tokens": 5000});
        apply(Kind::OpenAiChat, &mut openai, &clamps()).unwrap();
        assert_eq!(openai["max_completion_tokens"], 100);
        let mut bare = json!({"model": "m"});
        apply(Kind::OpenAiChat, &mut bare, &clamps()).unwrap();
        assert_eq!(bare["max_tokens"], 100);
        let mut small = json!({"model": "m", "max_tokens": 10});
        assert!(!apply(Kind::AnthropicMessages, &mut small, &clamps()).unwrap());
    }

    #[test]
    fn keep_alive_extremes_and_extra_images_are_refused() {
        for keep_alive in [json!(-1), json!("-1m"), json!(0), json!("0s"), json!("0")] {
            let mut body = json!({"model": "m", "keep_alive": keep_alive});
            assert!(apply(Kind::Generate, &mut body, &clamps()).is_err(), "{keep_alive}");
        }
        let mut fine = json!({"model": "m", "keep_alive": "10m"});
        assert!(apply(Kind::Generate, &mut fine, &clamps()).is_ok());
        let mut two = json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}]});
        assert!(apply(Kind::OpenAiChat, &mut two, &clamps()).is_err());
        assert_eq!(count_images(&json!({"messages": [{"images": ["a", "b"]}], "images": ["c"]})), 3);
    }
}
