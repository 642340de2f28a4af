//! The tap reads the same however the bytes arrive: cut anywhere, cut at the
//! event boundaries, spaced out with any JSON whitespace, with LF, CRLF or CR
//! line ends.

use super::*;
use proptest::prelude::*;

/// Each family's stream, and the events (units) in it.
const FAMILIES: [(Kind, bool, Option<EndMarker>, &str, u64); 4] = [
    (Kind::Chat, false, Some(EndMarker::OllamaDone), OLLAMA_STREAM, 3),
    (Kind::OpenAiChat, true, Some(EndMarker::OpenAiDone), OPENAI_STREAM, 4),
    (Kind::OpenAiResponses, true, Some(EndMarker::ResponseCompleted), RESPONSES_STREAM, 4),
    (Kind::AnthropicMessages, true, Some(EndMarker::MessageStop), ANTHROPIC_STREAM, 5),
];

/// Re-writes compact JSON with whitespace at the places RFC 8259 allows it.
fn spaced(compact: &str, spaces: &[u8]) -> String {
    let ws = [" ", "\n", "\t", "\r\n", "  "];
    let mut out = String::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut k = 0;
    for c in compact.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        let pick = |k: &mut usize| {
            let s = spaces.get(*k % spaces.len().max(1)).copied().unwrap_or(0);
            *k += 1;
            ws.get(usize::from(s) % (ws.len() + 1)).copied().unwrap_or("")
        };
        if matches!(c, ':' | ',' | '}' | ']') {
            out.push_str(pick(&mut k));
        }
        out.push(c);
        if matches!(c, ':' | ',' | '{' | '[') {
            out.push_str(pick(&mut k));
        }
        if c == '"' {
            in_string = true;
        }
    }
    out
}

/// Each NDJSON line or SSE data line spaced out (keeping lines whole for NDJSON).
fn spaced_stream(stream: &str, sse: bool, spaces: &[u8]) -> String {
    stream
        .split_inclusive('\n')
        .map(|line| {
            if sse {
                match line.strip_prefix("data: ").filter(|l| l.starts_with('{')) {
                    Some(json) => {
                        format!("data: {}\n", spaced(json.trim_end(), spaces).replace(['\n', '\r'], " "))
                    }
                    None => line.to_owned(),
                }
            } else {
                spaced(line.trim_end(), spaces).replace(['\n', '\r'], " ") + "\n"
            }
        })
        .collect()
}

fn split_at(text: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (text.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut from = 0;
    for p in points {
        chunks.push(text[from..p].to_vec());
        from = p;
    }
    chunks.push(text[from..].to_vec());
    chunks
}

fn run(kind: Kind, sse: bool, end: Option<EndMarker>, chunks: &[Vec<u8>]) -> (Reading, String) {
    let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    let mut t = tap(kind, sse, end, &refs);
    (t.reading(), delivered(&mut t))
}

/// Chunks cut `shift` bytes from the end of each `boundary` (a line end or an event end).
fn aligned(text: &[u8], boundary: &str, shift: isize) -> Vec<Vec<u8>> {
    let ends = memchr::memmem::find_iter(text, boundary.as_bytes()).map(|at| at + boundary.len());
    let cuts: Vec<usize> = ends.map(|c| c.saturating_add_signed(shift).min(text.len())).collect();
    split_at(text, &cuts)
}

/// The same stream with other line ends.
fn line_ends(stream: &str, ends: &str) -> String {
    stream.replace('\n', ends)
}

#[test]
fn units_count_lines_and_events_whatever_the_line_ends() {
    for (kind, sse, end, stream, units) in FAMILIES {
        for ends in ["\n", "\r\n", "\r"] {
            let t = whole(kind, sse, end, &line_ends(stream, ends));
            assert_eq!(t.reading().units, units, "{kind:?} with {ends:?}");
            assert!(!t.cut_short(), "{kind:?} with {ends:?}");
        }
    }
}

#[test]
fn event_aligned_chunks_read_like_one_piece() {
    for (kind, sse, end, stream, _) in FAMILIES {
        let reference = run(kind, sse, end, &[stream.as_bytes().to_vec()]);
        for ends in ["\n", "\r\n"] {
            let text = line_ends(stream, ends);
            let boundary = if sse { ends.repeat(2) } else { ends.to_owned() };
            // At each boundary, and a byte either side (inside `\r\n\r\n`, or the next event's first byte).
            for shift in [-1, 0, 1] {
                let chunks = aligned(text.as_bytes(), &boundary, shift);
                assert_eq!(run(kind, sse, end, &chunks), reference, "{kind:?} {ends:?} {shift}");
            }
        }
    }
}

#[test]
fn a_key_spaced_from_its_value_is_read_however_the_bytes_are_cut() {
    let ndjson = "{\"done\" :\ttrue,\r\n \"prompt_eval_count\"\n:\n 7 , \"eval_count\"  :  12 }\n";
    let sse = "data: { \"choices\" : [ ] ,\r\ndata:  \"usage\"\t:\t{ \"prompt_tokens\" :3, \"completion_tokens\"\r\n\
        data: : 5 } }\r\n\r\ndata: [DONE]\r\n\r\n";
    for size in 1..=sse.len() {
        let cut = |text: &str| text.as_bytes().chunks(size).map(<[u8]>::to_vec).collect::<Vec<_>>();
        let t = run(Kind::Generate, false, Some(EndMarker::OllamaDone), &cut(ndjson)).0;
        assert_eq!((t.prompt, t.completion, t.complete), (Some(7), Some(12), true), "size {size}");
        let t = run(Kind::OpenAiChat, true, Some(EndMarker::OpenAiDone), &cut(sse)).0;
        assert_eq!((t.prompt, t.completion, t.complete, t.units), (Some(3), Some(5), true, 2), "size {size}");
    }
}

proptest! {
    #[test]
    fn any_chunking_and_any_json_whitespace_give_the_same_counts_and_verdict(
        family in 0usize..4,
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        spaces in proptest::collection::vec(any::<u8>(), 1..16),
        cut_at in any::<usize>(),
        ends in 0usize..3,
    ) {
        let (kind, sse, end, stream, _) = FAMILIES[family];
        let reference = run(kind, sse, end, &[stream.as_bytes().to_vec()]);
        let variant = line_ends(&spaced_stream(stream, sse, &spaces), ["\n", "\r\n", "\r"][ends]);
        prop_assert_eq!(&run(kind, sse, end, &split_at(variant.as_bytes(), &cuts)), &reference);
        // A prefix (a stream cut anywhere) reads the same however it is chunked.
        let prefix = &variant.as_bytes()[..cut_at % (variant.len() + 1)];
        let in_one = run(kind, sse, end, &[prefix.to_vec()]);
        prop_assert_eq!(run(kind, sse, end, &split_at(prefix, &cuts)), in_one);
    }
}
