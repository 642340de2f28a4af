//! What the gate changes in a body before it goes upstream, besides the
//! key's aliases and the Anthropic default model (`proxy::models`) and the
//! clamps (`clamps`): it asks for exact usage on streamed OpenAI completions.

use serde_json::{json, Value};

/// Sets `stream_options.include_usage`; true when the client had not asked for
/// it, so its usage chunk must be taken out of the response.
pub fn request_usage(body: &mut Value) -> bool {
    if body.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true) {
        return false;
    }
    match body.get_mut("stream_options") {
        Some(Value::Object(options)) => {
            options.insert("include_usage".into(), Value::Bool(true));
        }
        _ => body["stream_options"] = json!({ "include_usage": true }),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_requested_unless_the_client_asked() {
        let mut asked = json!({"stream": true, "stream_options": {"include_usage": true}});
        assert!(!request_usage(&mut asked));
        let mut silent = json!({"stream": true});
        assert!(request_usage(&mut silent));
        assert_eq!(silent["stream_options"]["include_usage"], true);
        let mut other = json!({"stream": true, "stream_options": {"include_obfuscation": false}});
        assert!(request_usage(&mut other));
        assert_eq!(other["stream_options"], json!({"include_obfuscation": false, "include_usage": true}));
    }
}
