//! The table of Go decoding cases, route family by route family: every
//! spelling that Go's `encoding/json` would decode into a field the gate
//! reads is either the canonical one or refused.

use super::schema::{self, Shape};
use super::*;
use serde_json::json;

/// Every route with a JSON body, with a small body the upstream accepts.
fn routes() -> Vec<(Kind, Value)> {
    let chat = json!([{"role": "user", "content": "hi"}]);
    vec![
        (Kind::Generate, json!({"model": "m", "prompt": "hi"})),
        (Kind::Chat, json!({"model": "m", "messages": chat})),
        (Kind::Embed, json!({"model": "m", "input": "hi"})),
        (Kind::Embeddings, json!({"model": "m", "prompt": "hi"})),
        (Kind::Pull, json!({"model": "m"})),
        (Kind::Create, json!({"model": "m", "from": "base"})),
        (Kind::Copy, json!({"source": "a", "destination": "b"})),
        (Kind::Delete, json!({"model": "m"})),
        (Kind::Show, json!({"model": "m"})),
        (Kind::OpenAiChat, json!({"model": "m", "messages": chat})),
        (Kind::OpenAiCompletions, json!({"model": "m", "prompt": "hi"})),
        (Kind::OpenAiEmbeddings, json!({"model": "m", "input": "hi"})),
        (Kind::OpenAiResponses, json!({"model": "m", "input": "hi"})),
        (Kind::AnthropicMessages, json!({"model": "m", "max_tokens": 8, "messages": chat})),
        (Kind::AnthropicCountTokens, json!({"model": "m", "messages": chat})),
    ]
}

fn top_fields(kind: Kind) -> &'static [schema::Field] {
    match schema::of(kind).map(|r| r.shape) {
        Some(Shape::Struct(fields)) => fields,
        _ => panic!("{kind:?} has no struct schema"),
    }
}

/// The spellings Go would decode into `field` besides the canonical one.
fn other_spellings(field: &str) -> Vec<String> {
    let mut out = vec![field.to_ascii_uppercase()];
    let mut title: Vec<char> = field.chars().collect();
    if let Some(first) = title.first_mut() {
        *first = first.to_ascii_uppercase();
    }
    out.push(title.into_iter().collect());
    if field.contains('s') {
        out.push(field.replace('s', "\u{017F}"));
    }
    if field.contains('k') {
        out.push(field.replace('k', "\u{212A}"));
    }
    out.retain(|s| s != field);
    out.dedup();
    out
}

fn refused(kind: Kind, body: &Value, names: &[&str]) {
    let text = body.to_string();
    let body = parse_strict(text.as_bytes()).unwrap_or_else(|e| panic!("{text} does not parse: {e}"));
    match facts(kind, &body) {
        Ok(f) => panic!("{kind:?} accepted {text} as {f:?}"),
        Err(e) => {
            assert!(matches!(e, ProxyError::BadRequest(_)), "{kind:?} {text}: {e:?}");
            for name in names {
                assert!(
                    e.to_string().contains(&format!("'{name}'")),
                    "{kind:?} {text}: '{e}' does not name {name}"
                );
            }
        }
    }
}

fn accepted(kind: Kind, body: Value) -> Facts {
    let text = body.to_string();
    let body = parse_strict(text.as_bytes()).unwrap_or_else(|e| panic!("{text} does not parse: {e}"));
    facts(kind, &body).unwrap_or_else(|e| panic!("{kind:?} refused {text}: {e}"))
}

fn with(base: &Value, key: &str, value: Value) -> Value {
    let mut body = base.clone();
    body[key] = value;
    body
}

#[test]
fn every_route_accepts_its_canonical_body() {
    for (kind, body) in routes() {
        accepted(kind, body);
    }
}

#[test]
fn every_top_level_field_in_another_spelling_is_refused_naming_key_and_field() {
    let mut cases = 0;
    for (kind, base) in routes() {
        for field in top_fields(kind) {
            for spelling in other_spellings(field.name) {
                refused(kind, &with(&base, &spelling, json!("x")), &[&spelling, field.name]);
                cases += 1;
            }
        }
    }
    assert!(cases > 300, "only {cases} cases");
}

#[test]
fn the_fields_the_gate_enforces_are_covered_in_every_family_that_has_them() {
    // A sample of the table above, spelled out, so that a schema losing one of
    // these fields fails here by name.
    let enforced = [
        (
            Kind::Generate,
            &[
                "model",
                "prompt",
                "system",
                "suffix",
                "template",
                "stream",
                "keep_alive",
                "images",
                "options",
                "think",
                "format",
            ][..],
        ),
        (Kind::Chat, &["model", "messages", "tools", "stream", "keep_alive", "options", "think", "format"]),
        (Kind::Embed, &["model", "input", "keep_alive", "options"]),
        (Kind::Embeddings, &["model", "prompt", "keep_alive", "options"]),
        (Kind::Pull, &["model", "name", "stream"]),
        (Kind::Create, &["model", "name", "from", "stream", "messages", "system", "template"]),
        (Kind::Copy, &["source", "destination"]),
        (Kind::Delete, &["model", "name"]),
        (Kind::Show, &["model", "name", "options"]),
        (Kind::OpenAiChat, &["model", "messages", "stream", "stream_options", "max_tokens", "tools"]),
        (Kind::OpenAiCompletions, &["model", "prompt", "suffix", "stream", "stream_options", "max_tokens"]),
        (Kind::OpenAiEmbeddings, &["model", "input"]),
        (Kind::OpenAiResponses, &["model", "input", "instructions", "max_output_tokens", "stream", "tools"]),
        (Kind::AnthropicMessages, &["model", "messages", "system", "max_tokens", "stream", "tools"]),
        (Kind::AnthropicCountTokens, &["model", "messages", "system", "tools"]),
    ];
    for (kind, fields) in enforced {
        let known: Vec<&str> = top_fields(kind).iter().map(|f| f.name).collect();
        for field in fields {
            assert!(known.contains(field), "{kind:?} lacks {field}");
        }
    }
}

#[test]
fn long_s_and_kelvin_spellings_of_enforced_fields_are_refused() {
    let chat = json!([{"role": "user", "content": "hi"}]);
    for (kind, body, key, field) in [
        (Kind::Generate, json!({"model": "m", "\u{017F}tream": false}), "\u{017F}tream", "stream"),
        (Kind::Generate, json!({"model": "m", "\u{212A}eep_alive": -1}), "\u{212A}eep_alive", "keep_alive"),
        (Kind::Generate, json!({"model": "m", "image\u{017F}": ["AA"]}), "image\u{017F}", "images"),
        (
            Kind::Generate,
            json!({"model": "m", "option\u{017F}": {"num_predict": -1}}),
            "option\u{017F}",
            "options",
        ),
        (
            Kind::Chat,
            json!({"model": "m", "me\u{017F}\u{017F}ages": chat}),
            "me\u{017F}\u{017F}ages",
            "messages",
        ),
        (Kind::Pull, json!({"model": "m", "MODEL": "other"}), "MODEL", "model"),
        (
            Kind::Copy,
            json!({"source": "a", "destination": "b", "\u{017F}ource": "c"}),
            "\u{017F}ource",
            "source",
        ),
        (Kind::Create, json!({"model": "m", "From": "base"}), "From", "from"),
        (
            Kind::OpenAiChat,
            json!({"model": "m", "messages": chat, "max_to\u{212A}en\u{017F}": 1}),
            "max_to\u{212A}en\u{017F}",
            "max_tokens",
        ),
        (Kind::OpenAiCompletions, json!({"model": "m", "Max_Tokens": 100000}), "Max_Tokens", "max_tokens"),
        (
            Kind::OpenAiResponses,
            json!({"model": "m", "MAX_OUTPUT_TOKENS": 9}),
            "MAX_OUTPUT_TOKENS",
            "max_output_tokens",
        ),
        (
            Kind::OpenAiResponses,
            json!({"model": "m", "In\u{017F}tructions": "x"}),
            "In\u{017F}tructions",
            "instructions",
        ),
        (
            Kind::AnthropicMessages,
            json!({"model": "m", "max_tokens": 8, "\u{017F}ystem": "x"}),
            "\u{017F}ystem",
            "system",
        ),
        (Kind::AnthropicCountTokens, json!({"model": "m", "Tools": []}), "Tools", "tools"),
        (Kind::OpenAiEmbeddings, json!({"Model": "m"}), "Model", "model"),
        (Kind::Embed, json!({"model": "m", "INPUT": ["a"]}), "INPUT", "input"),
    ] {
        refused(kind, &body, &[key, field]);
    }
}

#[test]
fn other_spellings_nested_in_structs_are_refused_with_their_place() {
    for (kind, body, key, field, place) in [
        (
            Kind::Chat,
            json!({"model": "m", "messages": [{"role": "user", "Content": "hi"}]}),
            "Content",
            "content",
            "messages[0]",
        ),
        (
            Kind::Chat,
            json!({"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "user", "Images": ["AA"]}]}),
            "Images",
            "images",
            "messages[1]",
        ),
        (
            Kind::Chat,
            json!({"model": "m", "messages": [{"role": "user", "image\u{017F}": ["AA"]}]}),
            "image\u{017F}",
            "images",
            "messages[0]",
        ),
        (
            Kind::Chat,
            json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"Function": {"name": "f"}}]}]}),
            "Function",
            "function",
            "messages[0].tool_calls[0]",
        ),
        (
            Kind::Chat,
            json!({"model": "m", "tools": [{"type": "function", "function": {"Name": "f"}}]}),
            "Name",
            "name",
            "tools[0].function",
        ),
        (
            Kind::Create,
            json!({"model": "m", "messages": [{"ROLE": "system"}]}),
            "ROLE",
            "role",
            "messages[0]",
        ),
        (
            Kind::OpenAiChat,
            json!({"model": "m", "messages": [{"role": "user", "CONTENT": "x"}]}),
            "CONTENT",
            "content",
            "messages[0]",
        ),
        (
            Kind::OpenAiChat,
            json!({"model": "m", "stream": true, "stream_options": {"Include_Usage": false}}),
            "Include_Usage",
            "include_usage",
            "stream_options",
        ),
        (
            Kind::OpenAiCompletions,
            json!({"model": "m", "stream_options": {"include_u\u{017F}age": false}}),
            "include_u\u{017F}age",
            "include_usage",
            "stream_options",
        ),
        (
            Kind::OpenAiResponses,
            json!({"model": "m", "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "Text": "x"}]}]}),
            "Text",
            "text",
            "input[0].content[0]",
        ),
        (
            Kind::OpenAiResponses,
            json!({"model": "m", "input": [{"TYPE": "message", "role": "user", "content": "x"}]}),
            "TYPE",
            "type",
            "input[0]",
        ),
        (
            Kind::OpenAiResponses,
            json!({"model": "m", "input": [{"type": "message", "role": "user", "content": [{"Type": "input_image", "image_url": "data:,"}]}]}),
            "Type",
            "type",
            "input[0].content[0]",
        ),
        (
            Kind::OpenAiResponses,
            json!({"model": "m", "tools": [{"type": "namespace", "tools": [{"NAME": "f"}]}]}),
            "NAME",
            "name",
            "tools[0].tools[0]",
        ),
        (
            Kind::AnthropicMessages,
            json!({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": [{"TYPE": "image", "source": {}}]}]}),
            "TYPE",
            "type",
            "messages[0].content[0]",
        ),
        (
            Kind::AnthropicMessages,
            json!({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": [{"type": "image", "Source": {}}]}]}),
            "Source",
            "source",
            "messages[0].content[0]",
        ),
        (
            Kind::AnthropicMessages,
            json!({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "Content": "x"}]}),
            "Content",
            "content",
            "messages[0]",
        ),
        (
            Kind::AnthropicCountTokens,
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "\u{212A}": 1, "TEXT": "x"}]}]}),
            "TEXT",
            "text",
            "messages[0].content[0]",
        ),
    ] {
        refused(kind, &body, &[key, field]);
        let message = facts(kind, &body).unwrap_err().to_string();
        assert!(message.contains(&format!(" in {place} ")), "{message} does not say {place}");
    }
}

#[test]
fn keys_that_fold_onto_each_other_are_refused_naming_both() {
    refused(Kind::Generate, &json!({"model": "m", "foo": 1, "FOO": 2}), &["foo", "FOO"]);
    refused(
        Kind::Chat,
        &json!({"model": "m", "messages": [{"role": "user", "x\u{017F}": 1, "XS": 2}]}),
        &["x\u{017F}", "XS"],
    );
    // The canonical key and a variant: the variant is named, with its field.
    refused(Kind::Generate, &json!({"model": "m", "Model": "other"}), &["Model", "model"]);
    refused(Kind::Generate, &json!({"model": "m", "stream": true, "STREAM": false}), &["STREAM", "stream"]);
}

#[test]
fn exact_duplicates_are_refused_on_every_route_at_every_level() {
    for body in [
        r#"{"model":"m","model":"other"}"#,
        r#"{"model":"m","stream":true,"stream":false}"#,
        r#"{"model":"m","options":{"num_predict":1,"num_predict":99999}}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"a","content":"b"}]}"#,
        r#"{"model":"m","format":{"type":"object","type":"string"}}"#,
        r#"{"model":"m","messages":[{"tool_calls":[{"function":{"arguments":{"a":1,"a":2}}}]}]}"#,
    ] {
        assert!(parse_strict(body.as_bytes()).is_err(), "{body}");
    }
}

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
