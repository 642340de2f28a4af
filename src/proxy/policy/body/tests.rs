use super::*;

fn parsed(body: &str) -> Value {
    parse_strict(body.as_bytes()).unwrap()
}

#[test]
fn exact_duplicate_keys_are_refused_at_any_depth() {
    assert!(parse_strict(br#"{"model":"a","model":"b"}"#).is_err());
    assert!(parse_strict(br#"{"options":{"num_ctx":1,"num_ctx":2}}"#).is_err());
    assert!(parse_strict(br#"{"format":{"properties":{"a":1,"a":2}}}"#).is_err());
    // An escaped spelling is the same key once decoded.
    assert!(parse_strict(br#"{"model":"a","\u006dodel":"b"}"#).is_err());
    assert!(parse_strict(br#"{"model":"a"} trailing"#).is_err());
    assert!(parse_strict(b"{\"model\":\"\xff\"}").is_err());
    assert!(parse_strict(br#"{"model":"a","options":{"x":[1,{"y":2}]}}"#).is_ok());
    // Case is for `facts` to judge: maps keep both keys.
    assert!(parse_strict(br#"{"options":{"num_ctx":1,"Num_Ctx":2}}"#).is_ok());
}

#[test]
fn nesting_deeper_than_the_parser_allows_is_refused_not_overflowed() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse_strict(deep.as_bytes()).is_err());
    let deep = format!("{{\"model\":\"m\",\"format\":{}1{}}}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    assert!(parse_strict(deep.as_bytes()).is_err());
}

#[test]
fn wrong_types_are_refused() {
    for body in [
        r#"{"model": 5}"#,
        r#"{"model": "a", "stream": "yes"}"#,
        r#"{"model": "a", "options": {"num_predict": "ten"}}"#,
        r#"{"model": "a", "messages": "hi"}"#,
        r#"{"model": "a", "messages": ["hi"]}"#,
        r#"[1, 2]"#,
        r#"{"prompt": "no model"}"#,
        r#"{"model": " "}"#,
    ] {
        assert!(facts(Kind::Chat, &parsed(body)).is_err(), "{body}");
    }
}

#[test]
fn facts_come_from_the_fields_ollama_reads() {
    let f = facts(
        Kind::Generate,
        &parsed(r#"{"model": "llama3", "stream": false, "options": {"num_predict": 64}}"#),
    )
    .unwrap();
    assert_eq!(f.models, ["llama3"]);
    assert!(!f.stream);
    assert_eq!(f.max_output, Some(64));
    assert!(facts(Kind::Generate, &parsed(r#"{"model": "m"}"#)).unwrap().stream, "native streams by default");
    let copy = facts(Kind::Copy, &parsed(r#"{"source": "a", "destination": "b"}"#)).unwrap();
    assert_eq!(copy.models, ["a", "b"]);
}

#[test]
fn the_output_maximum_is_the_field_the_upstream_obeys_on_the_route() {
    let max = |kind, body: &str| facts(kind, &parsed(body)).unwrap().max_output;
    // OpenAI chat: only max_tokens reaches num_predict.
    assert_eq!(
        max(Kind::OpenAiChat, r#"{"model":"m","max_tokens":10,"max_completion_tokens":99}"#),
        Some(10)
    );
    assert_eq!(max(Kind::OpenAiChat, r#"{"model":"m","max_completion_tokens":99}"#), None);
    assert_eq!(max(Kind::OpenAiCompletions, r#"{"model":"m","max_tokens":7}"#), Some(7));
    // options are ignored on the OpenAI routes and cannot stand in for max_tokens.
    assert_eq!(max(Kind::OpenAiChat, r#"{"model":"m","options":{"num_predict":5}}"#), None);
    assert_eq!(
        max(Kind::OpenAiResponses, r#"{"model":"m","max_output_tokens":12,"max_tokens":3}"#),
        Some(12)
    );
    assert_eq!(max(Kind::OpenAiResponses, r#"{"model":"m","max_tokens":3}"#), None);
    assert_eq!(
        max(Kind::AnthropicMessages, r#"{"model":"m","max_tokens":20,"max_output_tokens":2}"#),
        Some(20)
    );
    // Native routes obey options.num_predict only.
    assert_eq!(max(Kind::Chat, r#"{"model":"m","max_tokens":3,"options":{"num_predict":40}}"#), Some(40));
    assert_eq!(max(Kind::Chat, r#"{"model":"m","max_tokens":3}"#), None);
    // Negative and zero maximums are no limit.
    assert_eq!(max(Kind::Generate, r#"{"model":"m","options":{"num_predict":-1}}"#), None);
    assert_eq!(max(Kind::Generate, r#"{"model":"m","options":{"num_predict":-2}}"#), None);
    assert_eq!(max(Kind::OpenAiChat, r#"{"model":"m","max_tokens":0}"#), None);
    // Routes that generate nothing have no output maximum.
    assert_eq!(max(Kind::Embed, r#"{"model":"m","options":{"num_predict":9}}"#), None);
}

#[test]
fn stream_is_read_only_where_the_route_has_it() {
    let stream = |kind, body: &str| facts(kind, &parsed(body)).unwrap().stream;
    assert!(!stream(Kind::OpenAiEmbeddings, r#"{"model":"m","input":"x","stream":true}"#));
    assert!(!stream(Kind::Embed, r#"{"model":"m","stream":true}"#));
    assert!(stream(Kind::OpenAiChat, r#"{"model":"m","stream":true}"#));
    assert!(!stream(Kind::OpenAiChat, r#"{"model":"m"}"#));
    assert!(stream(Kind::Pull, r#"{"model":"m"}"#));
    assert!(stream(Kind::Chat, r#"{"model":"m","stream":null}"#), "null is the default");
}

#[test]
fn manage_routes_name_every_model_ollama_reads() {
    let models = |kind, body: &str| facts(kind, &parsed(body)).map(|f| f.models);
    assert_eq!(models(Kind::Pull, r#"{"name":"a"}"#).unwrap(), ["a"]);
    assert_eq!(models(Kind::Pull, r#"{"model":"a","name":"b"}"#).unwrap(), ["a", "b"]);
    assert_eq!(models(Kind::Delete, r#"{"model":"","name":"b"}"#).unwrap(), ["b"]);
    assert_eq!(models(Kind::Show, r#"{"name":"b"}"#).unwrap(), ["b"]);
    assert_eq!(models(Kind::Create, r#"{"model":"new","from":"base"}"#).unwrap(), ["new", "base"]);
    assert_eq!(models(Kind::Create, r#"{"name":"new","from":"base"}"#).unwrap(), ["new", "base"]);
    assert_eq!(models(Kind::Create, r#"{"model":"new","files":{"a.gguf":"sha256:00"}}"#).unwrap(), ["new"]);
    for (kind, body) in [
        (Kind::Pull, r#"{}"#),
        (Kind::Pull, r#"{"model":"","name":""}"#),
        (Kind::Delete, r#"{"model":" ","name":"b"}"#),
        (Kind::Create, r#"{"from":"base"}"#),
        (Kind::Copy, r#"{"source":"a"}"#),
        (Kind::Copy, r#"{"destination":"b"}"#),
        (Kind::Copy, r#"{"source":"a","destination":7}"#),
        (Kind::Create, r#"{"model":"new","from":["base"]}"#),
    ] {
        assert!(models(kind, body).is_err(), "{kind:?} {body}");
    }
    // Inference routes read `model` only: Ollama has no `name` there.
    assert!(models(Kind::Chat, r#"{"name":"a"}"#).is_err());
    assert_eq!(models(Kind::Chat, r#"{"model":"a","name":"b"}"#).unwrap(), ["a"]);
}
