//! The table of Go decoding cases, route family by route family: every
//! spelling that Go's `encoding/json` would decode into a field the gate
//! reads is either the canonical one or refused.

use super::schema::{self, Shape};
use super::*;
use serde_json::json;

mod nested;
mod values;

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

fn top_fields(kind: Kind) -> Vec<schema::Field> {
    match schema::of(kind).map(|r| r.shape) {
        Some(Shape::Struct(fields)) => fields.iter().collect(),
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
