//! Go decoding cases of values: maps and opaque values keep their keys as
//! sent, and the numbers a clamp may read are bounded.

use super::*;

#[test]
fn options_keys_match_exactly_and_are_forwarded_as_they_are() {
    for kind in [Kind::Generate, Kind::Chat] {
        let base = routes().into_iter().find(|(k, _)| *k == kind).map(|(_, b)| b).unwrap_or_default();
        // Ollama's FromMap ignores NUM_PREDICT: it is no limit, and no refusal.
        let f = accepted(kind, with(&base, "options", json!({"NUM_PREDICT": 5})));
        assert_eq!(f.max_output, None, "{kind:?}");
        let f = accepted(
            kind,
            with(&base, "options", json!({"num_predict": 5, "NUM_PREDICT": 500, "Num_Ctx": 1})),
        );
        assert_eq!(f.max_output, Some(5), "{kind:?}");
        // Nor is a variant's value checked: Ollama never reads it.
        accepted(kind, with(&base, "options", json!({"NUM_PREDICT": "lots", "num_ctx": 2048})));
    }
    let forwarded = parse_strict(br#"{"model":"m","options":{"NUM_PREDICT":5}}"#).unwrap();
    assert_eq!(forwarded["options"], json!({"NUM_PREDICT": 5}), "parsing keeps the key as sent");
}

#[test]
fn opaque_values_keep_their_keys_as_sent() {
    let chat = json!([{"role": "user", "content": "hi"}]);
    // JSON schemas, tool-call arguments, OpenAI content parts, Anthropic
    // system blocks and tool results are maps or raw JSON upstream.
    accepted(Kind::Generate, json!({"model": "m", "format": {"Type": "object", "type": "object"}}));
    accepted(
        Kind::Chat,
        json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
        {"function": {"name": "f", "arguments": {"city": "a", "CITY": "b"}}}]}]}),
    );
    accepted(
        Kind::Chat,
        json!({"model": "m", "messages": chat, "tools": [{"type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {}, "A": {}}}}}]}),
    );
    accepted(
        Kind::OpenAiChat,
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "a", "TEXT": "b"}]}]}),
    );
    accepted(
        Kind::AnthropicMessages,
        json!({"model": "m", "max_tokens": 8, "messages": chat,
        "system": [{"type": "text", "text": "a", "Text": "b"}]}),
    );
    accepted(
        Kind::AnthropicMessages,
        json!({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "Text": "b"}]}]}]}),
    );
    accepted(Kind::Create, json!({"model": "m", "parameters": {"num_ctx": 1, "NUM_CTX": 2}}));
}

#[test]
fn output_maximums_at_and_beyond_their_bounds() {
    let chat = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (Kind::Generate, json!({"model": "m"}), "options.num_predict"),
        (Kind::Chat, json!({"model": "m", "messages": chat}), "options.num_predict"),
        (Kind::OpenAiChat, json!({"model": "m", "messages": chat}), "max_tokens"),
        (Kind::OpenAiCompletions, json!({"model": "m", "prompt": "x"}), "max_tokens"),
        (Kind::OpenAiResponses, json!({"model": "m", "input": "x"}), "max_output_tokens"),
        (Kind::AnthropicMessages, json!({"model": "m", "messages": chat}), "max_tokens"),
    ];
    let set = |base: &Value, place: &str, n: Value| match place.strip_prefix("options.") {
        Some(name) => with(base, "options", json!({ name: n })),
        None => with(base, place, n),
    };
    let big = |s: &str| serde_json::from_str::<Value>(s).unwrap();
    for (kind, base, place) in cases {
        assert_eq!(accepted(kind, set(&base, place, json!(1))).max_output, Some(1), "{kind:?}");
        assert_eq!(accepted(kind, set(&base, place, json!(2_147_483_647))).max_output, Some(2_147_483_647));
        if kind != Kind::AnthropicMessages {
            assert_eq!(accepted(kind, set(&base, place, json!(-1))).max_output, None, "{kind:?}");
            assert_eq!(accepted(kind, set(&base, place, json!(-2))).max_output, None, "{kind:?}");
        }
        for n in [
            json!(2_147_483_648i64),
            big("9223372036854775808"),
            big("18446744073709551616"),
            big("1e19"),
            big("1e3"),
            big("10.0"),
            big("0.5"),
            json!(-5),
            json!(i64::MIN),
            json!("10"),
            json!(true),
            json!([10]),
        ] {
            refused(kind, &set(&base, place, n), &[place]);
        }
    }
    // Anthropic's own rule: Ollama refuses a max_tokens below 1.
    for n in [0, -1, -2] {
        refused(
            Kind::AnthropicMessages,
            &json!({"model": "m", "max_tokens": n, "messages": chat}),
            &["max_tokens"],
        );
    }
}

#[test]
fn numbers_are_checked_where_a_clamp_may_read_them_even_if_the_upstream_ignores_them() {
    let chat = json!([{"role": "user", "content": "hi"}]);
    for (kind, body, place) in [
        (
            Kind::OpenAiChat,
            json!({"model": "m", "messages": chat, "max_completion_tokens": 1e19}),
            "max_completion_tokens",
        ),
        (
            Kind::OpenAiChat,
            json!({"model": "m", "messages": chat, "options": {"num_ctx": -1}}),
            "options.num_ctx",
        ),
        (
            Kind::Chat,
            json!({"model": "m", "messages": chat, "options": {"num_ctx": 4294967296u64}}),
            "options.num_ctx",
        ),
        (Kind::Embed, json!({"model": "m", "options": {"num_ctx": 1.5}}), "options.num_ctx"),
        (Kind::Generate, json!({"model": "m", "max_tokens": -7}), "max_tokens"),
    ] {
        refused(kind, &body, &[place]);
    }
    // In bounds, they change nothing on a route that ignores them.
    let f = accepted(Kind::OpenAiChat, json!({"model": "m", "messages": chat, "max_completion_tokens": 3}));
    assert_eq!(f.max_output, None);
}
