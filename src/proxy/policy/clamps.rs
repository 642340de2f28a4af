//! Applying a key's clamps to a request body before it is forwarded.
//!
//! Clamped values are what is forwarded and what is reserved: the body is
//! changed here, and the request's facts are read again afterwards.

use super::body::OutputField;
use super::routes::Kind;
use crate::domain::clamps::Clamps;
use crate::domain::keep_alive::KeepAlive;
use crate::proxy::error::ProxyError;
use serde_json::{json, Value};
use std::time::Duration;

/// Changes the body to respect the clamps; true when anything changed.
/// Refuses what cannot be lowered: too many images, a forbidden keep_alive.
pub fn apply(
    kind: Kind,
    body: &mut Value,
    clamps: &Clamps,
    max_keep_alive: Duration,
) -> Result<bool, ProxyError> {
    if reads_keep_alive(kind) {
        check_keep_alive(body.get("keep_alive"), clamps, max_keep_alive)?;
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
        changed |= lower_output(kind, body, max);
    }
    Ok(changed)
}

/// Lowers the requested maximum output to `max`, and sets it where none was
/// asked. The field the upstream obeys on the route is always set (Ollama's
/// OpenAI layer reads `max_tokens`, not `max_completion_tokens`), and zero or
/// a negative value counts as no limit (-1 and -2 mean "no limit" to Ollama,
/// and some of its runners treat 0 so too). Other output fields the client
/// sent are lowered as well, so the forwarded body never says two things.
pub fn lower_output(kind: Kind, body: &mut Value, max: i64) -> bool {
    let Some(obeyed) = super::body::output_field(kind) else { return false };
    let Some(object) = body.as_object_mut() else { return false };
    let over = |v: Option<&Value>| v.and_then(Value::as_i64).is_none_or(|n| n <= 0 || n > max);
    let mut changed = false;
    match obeyed {
        OutputField::NumPredict => {
            let options = object.entry("options").or_insert_with(|| json!({}));
            let Some(options) = options.as_object_mut() else { return false };
            if over(options.get("num_predict")) {
                options.insert("num_predict".into(), json!(max));
                changed = true;
            }
        }
        OutputField::Top(name) => {
            if over(object.get(name)) {
                object.insert(name.into(), json!(max));
                changed = true;
            }
        }
    }
    for other in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
        if object.get(other).is_some_and(|v| !v.is_null()) && over(object.get(other)) {
            object.insert(other.into(), json!(max));
            changed = true;
        }
    }
    changed
}

/// Ollama's own routes read `keep_alive`; its OpenAI and Anthropic layers do not.
fn reads_keep_alive(kind: Kind) -> bool {
    matches!(kind, Kind::Generate | Kind::Chat | Kind::Embed | Kind::Embeddings)
}

/// Unloading a model at once evicts it for everyone, and pinning it keeps
/// its memory from every other model: both, and anything longer than
/// `MAX_KEEP_ALIVE`, are refused unless the key's clamps allow extremes.
fn check_keep_alive(value: Option<&Value>, clamps: &Clamps, max: Duration) -> Result<(), ProxyError> {
    let keep_alive = KeepAlive::from_json(value).map_err(ProxyError::BadRequest)?;
    if clamps.allow_keep_alive_extremes {
        return Ok(());
    }
    let shown = value.map(Value::to_string).unwrap_or_default();
    match keep_alive {
        KeepAlive::Default => Ok(()),
        KeepAlive::For(d) if d <= max => Ok(()),
        KeepAlive::For(_) => Err(ProxyError::Forbidden(format!(
            "keep_alive {shown} is longer than this gate allows ({}s at most)",
            max.as_secs()
        ))),
        KeepAlive::Unload => Err(ProxyError::Forbidden(format!(
            "keep_alive {shown} is not allowed for this key: it unloads the model for everyone"
        ))),
        KeepAlive::Forever => Err(ProxyError::Forbidden(format!(
            "keep_alive {shown} is not allowed for this key: it pins the model in memory"
        ))),
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
        assert!(apply(Kind::Chat, &mut native, &clamps(), HOUR).unwrap());
        assert_eq!(native["options"], json!({"num_ctx": 4096, "num_predict": 100}));
        let mut openai = json!({"model": "m", "max_completion_tokens": 5000});
        apply(Kind::OpenAiChat, &mut openai, &clamps(), HOUR).unwrap();
        assert_eq!(openai["max_completion_tokens"], 100);
        let mut bare = json!({"model": "m"});
        apply(Kind::OpenAiChat, &mut bare, &clamps(), HOUR).unwrap();
        assert_eq!(bare["max_tokens"], 100);
        // Ollama's OpenAI layer obeys max_tokens alone: it is set beside the other.
        let mut newer = json!({"model": "m", "max_completion_tokens": 50});
        assert!(apply(Kind::OpenAiChat, &mut newer, &clamps(), HOUR).unwrap());
        assert_eq!(
            (newer["max_tokens"].clone(), newer["max_completion_tokens"].clone()),
            (json!(100), json!(50))
        );
        let mut zero = json!({"model": "m", "options": {"num_predict": 0}});
        apply(Kind::Generate, &mut zero, &clamps(), HOUR).unwrap();
        assert_eq!(zero["options"]["num_predict"], 100, "0 is no limit to some runners");
        let mut small = json!({"model": "m", "max_tokens": 10});
        assert!(!apply(Kind::AnthropicMessages, &mut small, &clamps(), HOUR).unwrap());
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn keep_alive_extremes_and_extra_images_are_refused() {
        for keep_alive in [
            json!(-1),
            json!("-1m"),
            json!(0),
            json!("0s"),
            json!("0"),
            json!(0.5),
            json!("999ms"),
            json!(3601),
            json!("1h0m1s"),
            json!(1e19),
            json!("2562047h"),
            json!(-0.0001),
        ] {
            let mut body = json!({"model": "m", "keep_alive": keep_alive});
            assert!(
                matches!(apply(Kind::Generate, &mut body, &clamps(), HOUR), Err(ProxyError::Forbidden(_))),
                "{keep_alive}"
            );
        }
        for unreadable in [json!("10"), json!("ten minutes"), json!(true), json!([1])] {
            let mut body = json!({"model": "m", "keep_alive": unreadable});
            assert!(matches!(apply(Kind::Chat, &mut body, &clamps(), HOUR), Err(ProxyError::BadRequest(_))));
        }
        for fine in [json!("10m"), json!(3600), json!("1h"), json!(1.5), Value::Null] {
            let mut body = json!({"model": "m", "keep_alive": fine});
            assert!(apply(Kind::Generate, &mut body, &clamps(), HOUR).is_ok(), "{fine}");
        }
        // Ollama's OpenAI layer does not read it, so it decides nothing there.
        let mut ignored = json!({"model": "m", "keep_alive": -1});
        assert!(apply(Kind::OpenAiChat, &mut ignored, &clamps(), HOUR).is_ok());
        let allowed = Clamps { allow_keep_alive_extremes: true, ..clamps() };
        let mut pinned = json!({"model": "m", "keep_alive": -1});
        assert!(apply(Kind::Generate, &mut pinned, &allowed, HOUR).is_ok());
        let mut two = json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}]});
        assert!(apply(Kind::OpenAiChat, &mut two, &clamps(), HOUR).is_err());
        assert_eq!(count_images(&json!({"messages": [{"images": ["a", "b"]}], "images": ["c"]})), 3);
    }
}
