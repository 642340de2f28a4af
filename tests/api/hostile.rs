//! Key holders who spell fields the way Go's decoder reads them, send numbers
//! past every bound, or name other models where the manage routes look.

use crate::helpers::*;
use awc::http::StatusCode;
use ollama_gate::proxy::policy::body;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug)]
enum Format {
    Ollama,
    OpenAi,
    Anthropic,
}

/// The message of a 400, checked to be in the family's own error shape.
fn bad_request_message(reply: &Reply, format: Format, what: &str) -> String {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{what}: {}", reply.text());
    let v = reply.json();
    let message = match format {
        Format::Ollama => v["error"].as_str(),
        Format::OpenAi => {
            assert_eq!(v["error"]["type"], "invalid_request_error", "{what}");
            assert_eq!(v["error"]["code"], "invalid_request", "{what}");
            v["error"]["message"].as_str()
        }
        Format::Anthropic => {
            assert_eq!(v["type"], "error", "{what}");
            assert_eq!(v["error"]["type"], "invalid_request_error", "{what}");
            v["error"]["message"].as_str()
        }
    };
    message.unwrap_or_else(|| panic!("{what}: no message in {v}")).to_owned()
}

async fn send_raw(app: &TestApp, key: &str, method: &str, path: &str, body: Vec<u8>) -> Reply {
    send(
        app.proxy_request(method, path, Some(key)).insert_header(("content-type", "application/json")),
        Some(body),
    )
    .await
}

async fn manage_key(app: &TestApp, extra: Value) -> (String, Value) {
    let mut body = json!({"name": "hostile", "scopes": ["inference", "models", "manage"],
        "limits": {"daily_requests": 1000, "daily_tokens": 100000}});
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    app.create_key(body).await
}

#[actix_web::test]
async fn a_folded_spelling_gets_400_in_the_familys_format_naming_the_key_and_nothing_is_forwarded_or_charged()
{
    let app = spawn_app().await;
    let (key, record) = manage_key(&app, json!({})).await;
    let chat = json!([{"role": "user", "content": "hi"}]);
    let cases: Vec<(&str, &str, Format, Value, &str)> = vec![
        (
            "POST",
            "/api/generate",
            Format::Ollama,
            json!({"model": "llama3", "prompt": "x", "\u{017F}tream": false}),
            "\u{017F}tream",
        ),
        (
            "POST",
            "/api/generate",
            Format::Ollama,
            json!({"model": "llama3", "prompt": "x", "\u{212A}EEP_ALIVE": -1}),
            "\u{212A}EEP_ALIVE",
        ),
        (
            "POST",
            "/generate",
            Format::Ollama,
            json!({"model": "llama3", "prompt": "x", "Options": {"num_predict": 99999}}),
            "Options",
        ),
        (
            "POST",
            "/api/chat",
            Format::Ollama,
            json!({"model": "llama3", "messages": [{"role": "user", "Content": "hi"}]}),
            "Content",
        ),
        (
            "POST",
            "/api/chat",
            Format::Ollama,
            json!({"model": "llama3", "messages": [{"role": "user", "content": "x", "Images": ["AA"]}]}),
            "Images",
        ),
        ("POST", "/api/embed", Format::Ollama, json!({"model": "llama3", "Input": "x"}), "Input"),
        (
            "POST",
            "/api/embeddings",
            Format::Ollama,
            json!({"model": "llama3", "prompt": "x", "MODEL": "other"}),
            "MODEL",
        ),
        ("POST", "/api/pull", Format::Ollama, json!({"model": "llama3", "Name": "other"}), "Name"),
        ("POST", "/api/create", Format::Ollama, json!({"model": "llama3", "FROM": "other"}), "FROM"),
        (
            "POST",
            "/api/copy",
            Format::Ollama,
            json!({"source": "llama3", "Destination": "other"}),
            "Destination",
        ),
        ("DELETE", "/api/delete", Format::Ollama, json!({"model": "llama3", "NAME": "other"}), "NAME"),
        ("POST", "/api/show", Format::Ollama, json!({"model": "llama3", "Model": "other"}), "Model"),
        (
            "POST",
            "/v1/chat/completions",
            Format::OpenAi,
            json!({"model": "llama3", "messages": chat, "Max_Tokens": 99999}),
            "Max_Tokens",
        ),
        (
            "POST",
            "/v1/chat/completions",
            Format::OpenAi,
            json!({"model": "llama3", "messages": chat, "stream": true, "stream_options": {"INCLUDE_USAGE": false}}),
            "INCLUDE_USAGE",
        ),
        (
            "POST",
            "/v1/completions",
            Format::OpenAi,
            json!({"model": "llama3", "prompt": "x", "\u{017F}tream": true}),
            "\u{017F}tream",
        ),
        (
            "POST",
            "/v1/embeddings",
            Format::OpenAi,
            json!({"model": "llama3", "input": "x", "Model": "other"}),
            "Model",
        ),
        (
            "POST",
            "/v1/responses",
            Format::OpenAi,
            json!({"model": "llama3", "input": "x", "max_output_to\u{212A}ens": 99999}),
            "max_output_to\u{212A}ens",
        ),
        (
            "POST",
            "/v1/messages",
            Format::Anthropic,
            json!({"model": "llama3", "max_tokens": 8, "messages": chat, "MAX_TOKENS": 99999}),
            "MAX_TOKENS",
        ),
        (
            "POST",
            "/v1/messages",
            Format::Anthropic,
            json!({"model": "llama3", "max_tokens": 8, "messages": [{"role": "user", "content": [{"TYPE": "image", "source": {}}]}]}),
            "TYPE",
        ),
        (
            "POST",
            "/v1/messages/count_tokens",
            Format::Anthropic,
            json!({"model": "llama3", "Messages": chat}),
            "Messages",
        ),
    ];
    for (method, path, format, body, spelled) in cases {
        let what = format!("{method} {path} {body}");
        let reply = send_raw(&app, &key, method, path, body.to_string().into_bytes()).await;
        let message = bad_request_message(&reply, format, &what);
        assert!(message.contains(&format!("'{spelled}'")), "{what}: '{message}' does not name the key");
        assert!(message.contains("read by the upstream as"), "{what}: {message}");
    }
    // A JSON escape is the same key once decoded.
    let escaped = br#"{"model": "llama3", "prompt": "x", "\u017Ftream": false}"#.to_vec();
    let reply = send_raw(&app, &key, "POST", "/api/generate", escaped).await;
    assert!(bad_request_message(&reply, Format::Ollama, "escaped").contains("'\u{017F}tream'"));

    assert_eq!(app.mock.count(), 0, "the mock saw {:?}", app.mock.requests());
    let usage = app.settled(&record["id"]).await["usage"].clone();
    assert_eq!(usage["day"]["requests"], 0, "{usage}");
    assert_eq!(usage["day"]["tokens"], 0, "{usage}");
}

#[actix_web::test]
async fn numbers_past_their_bounds_get_400_and_nothing_is_forwarded_or_charged() {
    let app = spawn_app().await;
    let (key, record) = manage_key(&app, json!({})).await;
    let chat = r#"[{"role":"user","content":"hi"}]"#;
    let cases = [
        (
            "/api/generate",
            Format::Ollama,
            r#"{"model":"llama3","prompt":"x","options":{"num_predict":9223372036854775808}}"#.to_owned(),
            "options.num_predict",
        ),
        (
            "/api/chat",
            Format::Ollama,
            format!(r#"{{"model":"llama3","messages":{chat},"options":{{"num_predict":-5}}}}"#),
            "options.num_predict",
        ),
        (
            "/api/chat",
            Format::Ollama,
            format!(r#"{{"model":"llama3","messages":{chat},"options":{{"num_ctx":1e9}}}}"#),
            "options.num_ctx",
        ),
        (
            "/v1/chat/completions",
            Format::OpenAi,
            format!(r#"{{"model":"llama3","messages":{chat},"max_tokens":1e19}}"#),
            "max_tokens",
        ),
        (
            "/v1/chat/completions",
            Format::OpenAi,
            format!(r#"{{"model":"llama3","messages":{chat},"max_tokens":"100"}}"#),
            "max_tokens",
        ),
        (
            "/v1/completions",
            Format::OpenAi,
            r#"{"model":"llama3","prompt":"x","max_tokens":2.5}"#.to_owned(),
            "max_tokens",
        ),
        (
            "/v1/responses",
            Format::OpenAi,
            r#"{"model":"llama3","input":"x","max_output_tokens":2147483648}"#.to_owned(),
            "max_output_tokens",
        ),
        (
            "/v1/messages",
            Format::Anthropic,
            format!(r#"{{"model":"llama3","messages":{chat},"max_tokens":0}}"#),
            "max_tokens",
        ),
    ];
    for (path, format, body, field) in cases {
        let reply = send_raw(&app, &key, "POST", path, body.clone().into_bytes()).await;
        let message = bad_request_message(&reply, format, &body);
        assert!(message.contains(&format!("'{field}' must be a whole number")), "{body}: {message}");
    }
    assert_eq!(app.mock.count(), 0, "the mock saw {:?}", app.mock.requests());
    assert_eq!(app.settled(&record["id"]).await["usage"]["day"]["requests"], 0);
}

#[actix_web::test]
async fn options_keys_are_matched_exactly_and_a_variant_is_forwarded_untouched() {
    let app = spawn_app().await;
    let (key, _) = manage_key(&app, json!({})).await;
    let sent = br#"{"model":"llama3","prompt":"x","stream":false,"options":{"NUM_PREDICT":5}}"#.to_vec();
    let reply = send_raw(&app, &key, "POST", "/api/generate", sent.clone()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let seen = app.mock.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, sent, "forwarded byte for byte: Ollama ignores NUM_PREDICT itself");
}

#[actix_web::test]
async fn manage_routes_refuse_a_model_outside_the_allow_list_in_every_position() {
    let app = spawn_app().await;
    let (key, _) = manage_key(&app, json!({"models": ["llama3"]})).await;
    let cases = [
        ("POST", "/api/copy", json!({"source": "mistral", "destination": "llama3"}), "mistral"),
        ("POST", "/api/copy", json!({"source": "llama3", "destination": "mistral"}), "mistral"),
        ("POST", "/api/create", json!({"model": "mistral", "from": "llama3"}), "mistral"),
        ("POST", "/api/create", json!({"model": "llama3", "from": "mistral"}), "mistral"),
        ("POST", "/api/create", json!({"name": "mistral", "from": "llama3"}), "mistral"),
        ("POST", "/api/create", json!({"model": "", "name": "mistral"}), "mistral"),
        ("POST", "/api/pull", json!({"model": "mistral"}), "mistral"),
        ("POST", "/api/pull", json!({"name": "mistral"}), "mistral"),
        ("POST", "/api/pull", json!({"model": "llama3", "name": "mistral"}), "mistral"),
        ("DELETE", "/api/delete", json!({"model": "mistral"}), "mistral"),
        ("DELETE", "/api/delete", json!({"name": "mistral"}), "mistral"),
        ("POST", "/api/show", json!({"name": "mistral"}), "mistral"),
        ("POST", "/api/show", json!({"model": "mistral"}), "mistral"),
    ];
    for (method, path, body, model) in cases {
        let reply = send_raw(&app, &key, method, path, body.to_string().into_bytes()).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {path} {body}: {}", reply.text());
        assert_eq!(reply.json()["error"], format!("model '{model}' is not allowed for this key"), "{body}");
    }
    assert_eq!(app.mock.count(), 0, "the mock saw {:?}", app.mock.requests());
    // The same routes with allowed names go through.
    let pull = send_raw(&app, &key, "POST", "/api/pull", br#"{"name": "llama3"}"#.to_vec()).await;
    assert_eq!(pull.status, StatusCode::OK, "{}", pull.text());
    let show = send_raw(&app, &key, "POST", "/api/show", br#"{"model": "llama3"}"#.to_vec()).await;
    assert_eq!(show.status, StatusCode::OK, "{}", show.text());
    assert_eq!(app.mock.count(), 2);
}

#[actix_web::test]
async fn count_tokens_counts_the_system_tools_tool_calls_and_tool_results() {
    let app = spawn_app().await;
    let (key, _) = manage_key(&app, json!({})).await;
    let description = "looks up the current weather for a city and reports it in degrees ".repeat(20);
    let bare = json!({"model": "llama3", "messages": [{"role": "user", "content": "what is the weather?"}]});
    let heavy = json!({
        "model": "llama3",
        "system": [{"type": "text", "text": "you are a forecaster"}],
        "tools": [{"name": "weather", "description": description,
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "messages": [
            {"role": "user", "content": "what is the weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Reykjavik"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                "content": [{"type": "text", "text": "sleet and a gale from the north"}]}]}]
    });
    let count = |reply: &Reply| {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()["input_tokens"].as_i64().expect("input_tokens")
    };
    let bare_tokens = count(&app.post("/v1/messages/count_tokens", Some(&key), bare).await);
    let heavy_tokens = count(&app.post("/v1/messages/count_tokens", Some(&key), heavy.clone()).await);
    let description_tokens = ollama_gate::tokens::count_now(&description);
    assert!(description_tokens > 200, "{description_tokens}");
    assert!(
        heavy_tokens >= bare_tokens + description_tokens,
        "tools are counted: {heavy_tokens} vs {bare_tokens} + {description_tokens}"
    );
    assert_eq!(heavy_tokens, body::prompt_tokens(&heavy));
    let text = body::prompt_text(&heavy);
    for part in ["you are a forecaster", "Reykjavik", "sleet and a gale", "weather"] {
        assert!(text.contains(part), "{part} is not counted");
    }
    assert_eq!(app.mock.count(), 0, "count_tokens is answered by the gate");
}
