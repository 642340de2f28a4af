use super::*;

mod chunking;

fn tap(kind: Kind, sse: bool, end: Option<EndMarker>, chunks: &[&[u8]]) -> Tap {
    let mut tap = Tap::new(kind, sse, end);
    for chunk in chunks {
        tap.observe(chunk);
    }
    tap
}

fn whole(kind: Kind, sse: bool, end: Option<EndMarker>, text: &str) -> Tap {
    tap(kind, sse, end, &[text.as_bytes()])
}

/// A streamed response of a route, in one piece.
fn streamed(kind: Kind, text: &str) -> Tap {
    let mut tap = Tap::for_route(kind, true, true);
    tap.observe(text.as_bytes());
    tap
}

fn delivered(tap: &mut Tap) -> String {
    String::from_utf8(tap.take_delivered().text).unwrap()
}

type Verdict = (Option<i64>, Option<i64>, bool, bool);

fn verdict(t: &Tap) -> Verdict {
    (t.prompt(), t.completion(), t.done(), t.error())
}

const OLLAMA_STREAM: &str = concat!(
    "{\"model\":\"m\",\"response\":\"say \\\"eval_count\\\":999 \",\"done\":false}\n",
    "{\"model\":\"m\",\"response\":\"hi \\u003cb\\u003e\",\"done\":false}\n",
    "{\"model\":\"m\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",",
    "\"prompt_eval_count\":26,\"eval_count\":290}\n"
);

const OPENAI_STREAM: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n\
    data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"completion_tokens\\\":5}\"}}]}}]}\n\n\
    data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}}\n\n\
    data: [DONE]\n\n";

const RESPONSES_STREAM: &str = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"usage\":null}}\n\n\
    event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"tok \"}\n\n\
    event: response.output_text.done\ndata: {\"type\":\"response.output_text.done\",\"text\":\"tok \"}\n\n\
    event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"output\":[],\"usage\":{\"input_tokens\":4,\"output_tokens\":1,\"total_tokens\":5}}}\n\n";

const ANTHROPIC_STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":9,\"output_tokens\":0}}}\n\n\
    event: ping\ndata: {\"type\":\"ping\"}\n\n\
    event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"tok tok\"}}\n\n\
    event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n\
    event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

#[test]
fn ollama_counts_come_from_the_final_object_not_from_the_generated_text() {
    let mut t = whole(Kind::Generate, false, Some(EndMarker::OllamaDone), OLLAMA_STREAM);
    assert_eq!(verdict(&t), (Some(26), Some(290), true, false));
    assert_eq!(delivered(&mut t), "say \"eval_count\":999 hi <b>");
}

#[test]
fn a_tool_call_argument_named_like_a_count_changes_nothing() {
    let text = concat!(
        "{\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"f\",",
        "\"arguments\":{\"eval_count\":999,\"prompt_eval_count\":5,\"done\":true}}}]},\"done\":false}\n",
        "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"prompt_eval_count\":3,\"eval_count\":4}\n"
    );
    let t = whole(Kind::Chat, false, Some(EndMarker::OllamaDone), text);
    assert_eq!(verdict(&t), (Some(3), Some(4), true, false));
    let cut = whole(Kind::Chat, false, Some(EndMarker::OllamaDone), text.lines().next().unwrap());
    assert_eq!(verdict(&cut), (None, None, false, false), "the arguments are not the final object");
}

#[test]
fn a_finished_ollama_response_without_counts_reports_zero() {
    let t = whole(Kind::Generate, false, Some(EndMarker::OllamaDone), "{\"response\":\"\",\"done\":true}\n");
    assert_eq!(verdict(&t), (Some(0), Some(0), true, false));
    let t =
        whole(Kind::Generate, false, Some(EndMarker::OllamaDone), "{\"response\":\"a\",\"done\":false}\n");
    assert_eq!(verdict(&t), (None, None, false, false), "an unfinished one is unknown, not zero");
    let t = whole(Kind::Embed, false, None, "{\"model\":\"m\",\"embeddings\":[[0.1]]}");
    assert_eq!(t.prompt(), Some(0));
    let t =
        whole(Kind::Embed, false, None, "{\"model\":\"m\",\"embeddings\":[[0.1]],\"prompt_eval_count\":6}");
    assert_eq!(t.prompt(), Some(6));
}

#[test]
fn an_ollama_error_line_mid_stream_is_noticed() {
    let text = "{\"response\":\"a\",\"done\":false}\n{\"error\":\"model crashed\"}\n";
    let t = whole(Kind::Generate, false, Some(EndMarker::OllamaDone), text);
    assert!(t.error() && !t.done() && t.cut_short());
}

#[test]
fn a_line_that_is_not_json_spoils_only_itself() {
    let text = "{\"response\":\"a\",\"done\":fals}\n{\"response\":\"b\",\"done\":true,\"eval_count\":2}\n";
    let t = whole(Kind::Generate, false, Some(EndMarker::OllamaDone), text);
    assert_eq!(verdict(&t), (Some(0), Some(2), true, false));
}

#[test]
fn pretty_json_with_escaped_keys_reads_like_compact() {
    let text = "{\n  \"done\" : true ,\n  \"prompt\\u005feval_count\" :\t12,\r\n  \"eval_count\": 3\n}\n";
    let t = whole(Kind::Generate, false, Some(EndMarker::OllamaDone), text);
    assert_eq!(verdict(&t), (Some(12), Some(3), true, false));
}

#[test]
fn a_number_at_the_very_end_of_a_value_is_read_once_the_value_closes() {
    let t = tap(Kind::Generate, false, None, &[b"{\"done\":true,\"eval_count\":1", b"2"]);
    assert_eq!(t.completion(), None);
    let t = tap(Kind::Generate, false, None, &[b"{\"done\":true,\"eval_count\":1", b"2}"]);
    assert_eq!(t.completion(), Some(12));
}

#[test]
fn openai_usage_is_read_from_its_place_and_done_from_the_sentinel() {
    let mut t = whole(Kind::OpenAiChat, true, Some(EndMarker::OpenAiDone), OPENAI_STREAM);
    assert_eq!(verdict(&t), (Some(11), Some(7), true, false));
    assert_eq!(delivered(&mut t), "xf{\"completion_tokens\":5}");
    let body = "{\"choices\":[{\"message\":{\"content\":\"hi\"}}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}";
    assert_eq!(verdict(&whole(Kind::OpenAiChat, false, None, body)), (Some(2), Some(1), false, false));
}

#[test]
fn sse_framing_follows_the_event_stream_rules() {
    // CRLF, CR, no space after `data:`, a comment, JSON split over two data lines.
    let text = ": keep-alive\r\ndata:{\"choices\":[{\"text\":\"a\"}]}\n\ndata:{\"choices\":[],\r\ndata: \"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\r\r\
        data:[DONE]\r\n\r\n";
    let mut t = whole(Kind::OpenAiCompletions, true, Some(EndMarker::OpenAiDone), text);
    assert_eq!(verdict(&t), (Some(3), Some(1), true, false));
    assert_eq!(delivered(&mut t), "a");
    let not_done = whole(Kind::OpenAiChat, true, Some(EndMarker::OpenAiDone), "data: [DONE]x\n\n");
    assert!(!not_done.done());
    let unfinished = whole(Kind::OpenAiChat, true, Some(EndMarker::OpenAiDone), "data: [DONE]");
    assert!(!unfinished.done(), "an event is dispatched by its blank line");
}

#[test]
fn an_openai_error_event_is_noticed() {
    let t = streamed(Kind::OpenAiChat, "data: {\"error\":{\"message\":\"boom\"}}\n\n");
    assert!(t.error() && t.cut_short());
}

#[test]
fn responses_count_on_completed_and_text_only_from_delta_events() {
    let mut t = whole(Kind::OpenAiResponses, true, Some(EndMarker::ResponseCompleted), RESPONSES_STREAM);
    assert_eq!(verdict(&t), (Some(4), Some(1), true, false));
    assert_eq!(delivered(&mut t), "tok ");
}

#[test]
fn anthropic_counts_the_prompt_early_and_the_output_at_the_end() {
    let mut t = whole(Kind::AnthropicMessages, true, Some(EndMarker::MessageStop), ANTHROPIC_STREAM);
    assert_eq!(verdict(&t), (Some(9), Some(2), true, false));
    assert_eq!(delivered(&mut t), "tok tok");
    let cut = ANTHROPIC_STREAM.split("event: message_delta").next().unwrap();
    let t = whole(Kind::AnthropicMessages, true, Some(EndMarker::MessageStop), cut);
    assert_eq!(verdict(&t), (Some(9), None, false, false));
    let error = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n";
    let t = streamed(Kind::AnthropicMessages, error);
    assert!(t.error() && t.cut_short());
}

#[test]
fn delivered_text_past_the_cap_is_counted_by_bytes() {
    let mut d = Delivered::default();
    d.push(&vec![b'a'; DELIVERED_CAP]);
    d.push(&[b'b'; 400]);
    assert_eq!(d.text.len(), DELIVERED_CAP);
    assert_eq!(d.overflow, 400);
}

#[test]
fn escapes_and_surrogate_pairs_are_decoded_across_chunks() {
    let text = "{\"response\":\"\\ud83d\\ude00 \\u00e9\\n\\\"\",\"done\":false}\n";
    for size in 1..text.len() {
        let chunks: Vec<&[u8]> = text.as_bytes().chunks(size).collect();
        let mut t = tap(Kind::Generate, false, None, &chunks);
        assert_eq!(delivered(&mut t), "\u{1F600} \u{e9}\n\"", "size {size}");
    }
}

#[test]
fn deep_nesting_is_walked_within_bounds() {
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let text = format!("{{\"x\":{deep},\"done\":true,\"eval_count\":5}}\n");
    let t = whole(Kind::Generate, false, None, &text);
    assert_eq!(verdict(&t), (None, None, false, false), "past the bound the object is not read");
    let nested = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let text = format!("{{\"x\":{nested},\"done\":true,\"eval_count\":5}}\n");
    assert_eq!(whole(Kind::Generate, false, None, &text).completion(), Some(5));
}
