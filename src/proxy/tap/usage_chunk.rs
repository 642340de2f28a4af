//! Exact usage on streamed OpenAI completions, without showing the client
//! more than it asked for.
//!
//! Ollama reports usage on a streamed OpenAI call only when asked
//! (`stream_options.include_usage`), in a last chunk with `"choices":[]`. The
//! gate always asks (`policy::rewrite::request_usage`), so it can charge
//! exactly, and removes that chunk again here when the client did not ask: the
//! client sees what it asked for. On `/v1/completions` Ollama puts `usage` on
//! every chunk; it goes from each.

use super::scan::{is_space, EventEnd};
use actix_web::web::{Bytes, BytesMut};
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Bytes kept while waiting for the end of an event; past this they pass on.
const MAX_PENDING: usize = 1024 * 1024;

/// Passes SSE events through whole and unchanged, except what the gate asked
/// for and the client did not: the usage-only chunk of chat completions, and
/// the `usage` member that `/v1/completions` puts on every chunk.
pub struct DropUsageChunk<S> {
    inner: S,
    pending: BytesMut,
    /// How far into `pending` the search for the end of its first event got.
    end: EventEnd,
    finished: bool,
}

impl<S> DropUsageChunk<S> {
    pub fn new(inner: S) -> Self {
        DropUsageChunk { inner, pending: BytesMut::new(), end: EventEnd::default(), finished: false }
    }

    /// The complete events in `pending`, without the usage; the incomplete
    /// tail stays for the next read.
    fn complete_events(&mut self) -> Bytes {
        let mut out = BytesMut::new();
        while let Some(len) = self.end.find(&self.pending) {
            let event = self.pending.split_to(len);
            self.end = EventEnd::default();
            without_usage(&event, &mut out);
        }
        if self.pending.len() > MAX_PENDING {
            // No event is this long: not SSE as expected, so it passes as it is.
            out.extend_from_slice(&self.pending.split());
            self.end = EventEnd::default();
        }
        out.freeze()
    }
}

/// Appends `event` to `out`, minus the usage the client did not ask for.
fn without_usage(event: &[u8], out: &mut BytesMut) {
    // Only the raw key `"usage"` is ever removed (below), so an event without
    // those bytes passes as it is, unread: every chunk but the last.
    if memchr::memmem::find(event, b"\"usage\"").is_none() {
        out.extend_from_slice(event);
        return;
    }
    let Some(data) = single_data_value(event) else {
        out.extend_from_slice(event);
        return;
    };
    let json = &event[data.clone()];
    let Some(members) = top_level_members(json) else {
        out.extend_from_slice(event);
        return;
    };
    let Some(usage) = members.iter().find(|m| m.key == b"\"usage\"") else {
        out.extend_from_slice(event);
        return;
    };
    let no_choices = members.iter().any(|m| {
        m.key == b"\"choices\"" && json[m.value.clone()].iter().filter(|b| !is_space(**b)).eq(b"[]".iter())
    });
    if no_choices {
        // The usage-only chunk: the whole event goes.
        return;
    }
    let cut = member_with_comma(&members, usage);
    out.extend_from_slice(&event[..data.start + cut.start]);
    out.extend_from_slice(&event[data.start + cut.end..]);
}

/// The span of the event's data value when it has exactly one `data:` line.
fn single_data_value(event: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut found = None;
    let mut start = 0;
    while start < event.len() {
        let rest = &event[start..];
        let len = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
        let line = &rest[..len];
        if let Some(value) = line.strip_prefix(b"data:") {
            if found.is_some() {
                return None;
            }
            let skip = usize::from(value.first() == Some(&b' '));
            let from = start + 5 + skip;
            found = Some(from..start + len);
        }
        start += len + 1;
    }
    found
}

struct Member {
    /// The key as written, quotes included.
    key: Vec<u8>,
    /// From the key's opening quote through the end of the value.
    span: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
}

fn skip_space(json: &[u8], mut i: usize) -> usize {
    while json.get(i).is_some_and(|b| is_space(*b)) {
        i += 1;
    }
    i
}

/// The members of a complete JSON object, or `None` if it is not one.
fn top_level_members(json: &[u8]) -> Option<Vec<Member>> {
    let mut i = skip_space(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_space(json, i + 1);
    let mut members = Vec::new();
    if json.get(i) == Some(&b'}') {
        return Some(members);
    }
    loop {
        let key_start = i;
        let key_end = skip_value(json, i).filter(|_| json.get(i) == Some(&b'"'))?;
        i = skip_space(json, key_end);
        if json.get(i) != Some(&b':') {
            return None;
        }
        let value_start = skip_space(json, i + 1);
        let value_end = skip_value(json, value_start)?;
        members.push(Member {
            key: json[key_start..key_end].to_vec(),
            span: key_start..value_end,
            value: value_start..value_end,
        });
        i = skip_space(json, value_end);
        match json.get(i) {
            Some(b',') => i = skip_space(json, i + 1),
            Some(b'}') => return Some(members),
            _ => return None,
        }
    }
}

/// The end of the JSON value that starts at `i`.
fn skip_value(json: &[u8], i: usize) -> Option<usize> {
    match json.get(i)? {
        b'"' => {
            let mut j = i + 1;
            loop {
                match json.get(j)? {
                    b'\\' => j += 2,
                    b'"' => return Some(j + 1),
                    _ => j += 1,
                }
            }
        }
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match json.get(j)? {
                    b'"' => {
                        j = skip_value(json, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while json.get(j).is_some_and(|b| !is_space(*b) && !matches!(b, b',' | b'}' | b']')) {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// The bytes to remove for `member`: it and the comma that joins it to a neighbour.
fn member_with_comma(members: &[Member], member: &Member) -> std::ops::Range<usize> {
    let index = members.iter().position(|m| std::ptr::eq(m, member)).unwrap_or(0);
    match (members.get(index + 1), index.checked_sub(1).and_then(|p| members.get(p))) {
        // `"usage":{..}, "next"`: up to the next key.
        (Some(next), _) => member.span.start..next.span.start,
        // The last member: from the end of the previous value.
        (None, Some(previous)) => previous.span.end..member.span.end,
        (None, None) => member.span.clone(),
    }
}

impl<S, E> Stream for DropUsageChunk<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    this.pending.extend_from_slice(&chunk);
                    let events = this.complete_events();
                    if !events.is_empty() {
                        return Poll::Ready(Some(Ok(events)));
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.finished = true;
                    // Whatever did not end with a blank line (an error event the gate appended).
                    let rest = this.pending.split();
                    let mut out = BytesMut::new();
                    without_usage(&rest, &mut out);
                    return Poll::Ready((!out.is_empty()).then(|| Ok(out.freeze())));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    async fn through(text: &str, size: usize) -> String {
        let chunks: Vec<Result<Bytes, ()>> =
            text.as_bytes().chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let out: Vec<Bytes> = DropUsageChunk::new(futures_util::stream::iter(chunks))
            .map(|r| r.unwrap_or_default())
            .collect()
            .await;
        String::from_utf8(out.concat()).unwrap()
    }

    #[actix_web::test]
    async fn only_the_usage_chunk_is_removed_however_the_bytes_are_cut() {
        let text = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n\
            data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n\
            data: [DONE]\n\n";
        for size in [1, 5, 17, text.len()] {
            assert_eq!(
                through(text, size).await,
                "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n",
                "chunk size {size}"
            );
        }
    }

    #[actix_web::test]
    async fn the_usage_member_goes_from_every_completions_chunk_and_nothing_else_changes() {
        let text = concat!(
            "data: {\"id\":\"c\",\"choices\":[{\"text\":\"\\u003cb\\u003e \\\"usage\\\":1\"}],\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}}\n\n",
            "data:{ \"usage\" : {\"prompt_tokens\":0} ,  \"choices\" : [ {\"text\":\"b\"} ] }\r\n\r\n",
            ": comment\r",
            "\r",
            "data: {\"id\":\"c\",\"choices\":[ ],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\r\r",
            "data: [DONE]\n\n",
        );
        let expected = concat!(
            "data: {\"id\":\"c\",\"choices\":[{\"text\":\"\\u003cb\\u003e \\\"usage\\\":1\"}]}\n\n",
            "data:{ \"choices\" : [ {\"text\":\"b\"} ] }\r\n\r\n",
            ": comment\r\r",
            "data: [DONE]\n\n",
        );
        for size in 1..=text.len() {
            assert_eq!(through(text, size).await, expected, "chunk size {size}");
        }
    }

    #[actix_web::test]
    async fn events_without_usage_pass_byte_for_byte() {
        let text = "event: x\ndata: {\"choices\":[{\"delta\":{}}]}\n\ndata: {\"a\":\n\n";
        assert_eq!(through(text, 3).await, text);
    }
}
