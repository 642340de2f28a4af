//! The charge table: each way a request ends, against what each API family's
//! tap has read by then.

use super::*;
use End::*;
use Outcome as O;
use Tokens::{Delivered as D, Prompt as P, N};

/// A tap's reading: prompt and completion as reported, the end marker seen,
/// an error in the body, an end marker expected.
fn read(
    prompt: Option<i64>,
    completion: Option<i64>,
    complete: bool,
    error: bool,
    expects_end: bool,
) -> Received {
    let tap = Reading { prompt, completion, units: 0, complete, upstream_error: error };
    Received { tap, expects_end, delivered: Delivered::default() }
}

/// Each family part way through a stream: Ollama and OpenAI chat report counts
/// only at the end, Anthropic reports the prompt in `message_start`, OpenAI's
/// `/v1/completions` reports both on every chunk.
fn midway(family: &str) -> Received {
    match family {
        "ollama" | "openai" => read(None, None, false, false, true),
        "anthropic" => read(Some(12), None, false, false, true),
        "openai-completions" => read(Some(12), Some(5), false, false, true),
        _ => unreachable!(),
    }
}

/// Each family after its end marker, with its final counts.
fn whole() -> Received {
    read(Some(12), Some(30), true, false, true)
}

const FAMILIES: [&str; 4] = ["ollama", "openai", "anthropic", "openai-completions"];
const GENERATES: Terms = Terms { reports_usage: true, prompt_estimate: None };
const ESTIMATED: Terms = Terms { reports_usage: true, prompt_estimate: Some(40) };
const NO_TOKENS: Terms = Terms { reports_usage: false, prompt_estimate: None };

/// (end, HTTP status, reading, terms) → (outcome, prompt, completion, estimated, error event owed)
type Row = (End, u16, Option<Received>, Terms, (Outcome, Tokens, Tokens, bool, bool));

#[rustfmt::skip]
fn table() -> Vec<(&'static str, Row)> {
    vec![
        // Complete answers: the upstream's counts stand, whatever came after them.
        ("complete", (Completed, 200, Some(whole()), GENERATES, (O::Ok, N(12), N(30), false, false))),
        ("abort after the end", (ClientAborted, 200, Some(whole()), GENERATES, (O::ClientAborted, N(12), N(30), false, false))),
        ("broke after the end", (UpstreamBroke, 200, Some(whole()), GENERATES, (O::UpstreamFailed, N(12), N(30), false, true))),
        ("idle after the end", (UpstreamIdle, 200, Some(whole()), GENERATES, (O::UpstreamTimeout, N(12), N(30), false, true))),
        ("too long after the end", (TooLong, 200, Some(whole()), GENERATES, (O::StreamTooLong, N(12), N(30), false, true))),
        ("revoked after the end", (KeyRevoked, 200, Some(whole()), GENERATES, (O::KeyRevoked, N(12), N(30), false, true))),
        // Ollama part way: nothing reported yet, the prompt is counted and the output is what was delivered.
        ("ollama closed early", (Completed, 200, Some(midway("ollama")), GENERATES, (O::UpstreamFailed, P, D, true, true))),
        ("ollama abort", (ClientAborted, 200, Some(midway("ollama")), GENERATES, (O::ClientAborted, P, D, true, false))),
        ("ollama abort, estimated", (ClientAborted, 200, Some(midway("ollama")), ESTIMATED, (O::ClientAborted, N(40), D, true, false))),
        ("ollama broke", (UpstreamBroke, 200, Some(midway("ollama")), GENERATES, (O::UpstreamFailed, P, D, true, true))),
        ("ollama idle", (UpstreamIdle, 200, Some(midway("ollama")), GENERATES, (O::UpstreamTimeout, P, D, true, true))),
        ("ollama too long", (TooLong, 200, Some(midway("ollama")), GENERATES, (O::StreamTooLong, P, D, true, true))),
        ("ollama revoked", (KeyRevoked, 200, Some(midway("ollama")), GENERATES, (O::KeyRevoked, P, D, true, true))),
        // OpenAI chat part way: as Ollama.
        ("openai closed early", (Completed, 200, Some(midway("openai")), GENERATES, (O::UpstreamFailed, P, D, true, true))),
        ("openai abort", (ClientAborted, 200, Some(midway("openai")), GENERATES, (O::ClientAborted, P, D, true, false))),
        ("openai broke", (UpstreamBroke, 200, Some(midway("openai")), GENERATES, (O::UpstreamFailed, P, D, true, true))),
        ("openai idle", (UpstreamIdle, 200, Some(midway("openai")), ESTIMATED, (O::UpstreamTimeout, N(40), D, true, true))),
        ("openai too long", (TooLong, 200, Some(midway("openai")), GENERATES, (O::StreamTooLong, P, D, true, true))),
        ("openai revoked", (KeyRevoked, 200, Some(midway("openai")), GENERATES, (O::KeyRevoked, P, D, true, true))),
        // Anthropic part way: the prompt as `message_start` reported it.
        ("anthropic closed early", (Completed, 200, Some(midway("anthropic")), GENERATES, (O::UpstreamFailed, N(12), D, true, true))),
        ("anthropic abort", (ClientAborted, 200, Some(midway("anthropic")), ESTIMATED, (O::ClientAborted, N(12), D, true, false))),
        ("anthropic broke", (UpstreamBroke, 200, Some(midway("anthropic")), GENERATES, (O::UpstreamFailed, N(12), D, true, true))),
        ("anthropic idle", (UpstreamIdle, 200, Some(midway("anthropic")), GENERATES, (O::UpstreamTimeout, N(12), D, true, true))),
        ("anthropic too long", (TooLong, 200, Some(midway("anthropic")), GENERATES, (O::StreamTooLong, N(12), D, true, true))),
        ("anthropic revoked", (KeyRevoked, 200, Some(midway("anthropic")), GENERATES, (O::KeyRevoked, N(12), D, true, true))),
        // OpenAI completions part way: a running count is not a final one; the output is what was delivered.
        ("completions closed early", (Completed, 200, Some(midway("openai-completions")), GENERATES, (O::UpstreamFailed, N(12), D, true, true))),
        ("completions abort", (ClientAborted, 200, Some(midway("openai-completions")), GENERATES, (O::ClientAborted, N(12), D, true, false))),
        ("completions broke", (UpstreamBroke, 200, Some(midway("openai-completions")), GENERATES, (O::UpstreamFailed, N(12), D, true, true))),
        ("completions revoked", (KeyRevoked, 200, Some(midway("openai-completions")), GENERATES, (O::KeyRevoked, N(12), D, true, true))),
        // Errors: the upstream's own, in the status or in the body.
        ("error status", (Completed, 500, Some(read(None, None, false, true, true)), GENERATES, (O::UpstreamError, N(0), N(0), false, false))),
        ("error status, counted", (Completed, 400, Some(read(Some(7), None, false, false, false)), GENERATES, (O::UpstreamError, N(7), N(0), false, false))),
        ("error status, broke", (UpstreamBroke, 500, Some(read(None, None, false, false, true)), GENERATES, (O::UpstreamFailed, P, D, true, true))),
        ("error in the body", (Completed, 200, Some(read(None, None, false, true, true)), GENERATES, (O::UpstreamFailed, P, D, true, false))),
        ("error after counts", (Completed, 200, Some(read(Some(12), Some(3), false, true, true)), GENERATES, (O::UpstreamFailed, N(12), D, true, false))),
        // Whole bodies without an end marker (embeddings, unstreamed answers).
        ("embedding", (Completed, 200, Some(read(Some(8), None, false, false, false)), GENERATES, (O::Ok, N(8), N(0), false, false))),
        ("body without counts", (Completed, 200, Some(read(None, None, false, false, false)), GENERATES, (O::Ok, P, D, true, false))),
        ("body without counts, abort", (ClientAborted, 200, Some(read(None, None, false, false, false)), ESTIMATED, (O::ClientAborted, N(40), D, true, false))),
        // Routes that use no tokens are charged nothing, however they end.
        ("listing", (Completed, 200, None, NO_TOKENS, (O::Ok, N(0), N(0), false, false))),
        ("listing refused", (Completed, 404, None, NO_TOKENS, (O::UpstreamError, N(0), N(0), false, false))),
        ("listing broke", (UpstreamBroke, 200, None, NO_TOKENS, (O::UpstreamFailed, N(0), N(0), false, true))),
        ("pull aborted", (ClientAborted, 200, Some(read(None, None, false, false, false)), NO_TOKENS, (O::ClientAborted, N(0), N(0), false, false))),
        ("pull cut off", (TooLong, 200, Some(read(None, None, false, false, false)), NO_TOKENS, (O::StreamTooLong, N(0), N(0), false, true))),
        // Given back: nothing reached the upstream, or nothing came back.
        ("not forwarded", (NotForwarded, 502, None, ESTIMATED, (O::NotForwarded, N(0), N(0), false, false))),
        ("client left first", (NotForwarded, 499, None, GENERATES, (O::NotForwarded, N(0), N(0), false, false))),
        ("unreachable", (UpstreamUnreachable, 502, None, GENERATES, (O::UpstreamUnreachable, N(0), N(0), false, false))),
        ("no tap", (Completed, 200, None, GENERATES, (O::UpstreamFailed, P, N(0), true, false))),
    ]
}

#[test]
fn each_end_is_charged_as_the_table_says() {
    for (case, (end, status, reading, terms, (outcome, prompt, completion, estimated, tell_client))) in
        table()
    {
        let refund = matches!(end, NotForwarded | UpstreamUnreachable);
        let expected = Charge { outcome, prompt, completion, estimated, refund, tell_client };
        assert_eq!(charge(end, status, reading.as_ref(), terms), expected, "{case}");
    }
}

#[test]
fn a_client_abort_bills_the_output_received_so_far_in_each_family() {
    for family in FAMILIES {
        let c = charge(ClientAborted, 200, Some(&midway(family)), GENERATES);
        assert_eq!(
            (c.outcome, c.completion, c.estimated, c.refund),
            (O::ClientAborted, D, true, false),
            "{family}"
        );
        let c = charge(ClientAborted, 200, Some(&whole()), GENERATES);
        assert_eq!((c.prompt, c.completion, c.estimated), (N(12), N(30), false), "{family}");
    }
}

#[test]
fn every_end_is_in_the_table_for_every_family() {
    let rows = table();
    for end in End::ALL {
        assert!(rows.iter().any(|(_, row)| row.0 == end), "{end:?}");
    }
    for family in ["ollama", "openai", "anthropic"] {
        for end in [Completed, ClientAborted, UpstreamBroke, UpstreamIdle, TooLong, KeyRevoked] {
            assert!(
                rows.iter().any(|(case, row)| case.starts_with(family) && row.0 == end),
                "{family} {end:?}"
            );
        }
    }
}
