//! Go decoding cases below the top level: struct fields nested in messages,
//! tools and content, keys that fold onto each other, exact duplicates.

use super::*;

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
