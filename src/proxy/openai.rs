//! OpenAI-compatible specifics: exact usage on streamed completions.
//!
//! Ollama reports usage on a streamed OpenAI call only when asked
//! (`stream_options.include_usage`), in a last chunk with `"choices":[]`. The
//! gate always asks, so it can charge exactly, and removes that chunk again
//! when the client did not ask: the client sees what it asked for.

use actix_web::web::{Bytes, BytesMut};
use futures_util::Stream;
use serde_json::{json, Value};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Sets `stream_options.include_usage`; true when the client had not asked for
/// it, so its usage chunk must be taken out of the response.
pub fn request_usage(body: &mut Value) -> bool {
    if body.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true) {
        return false;
    }
    match body.get_mut("stream_options") {
        Some(Value::Object(options)) => {
            options.insert("include_usage".into(), Value::Bool(true));
        }
        _ => body["stream_options"] = json!({ "include_usage": true }),
    }
    true
}

/// Passes SSE events through whole, except the usage-only chunk.
pub struct DropUsageChunk<S> {
    inner: S,
    pending: BytesMut,
    finished: bool,
}

impl<S> DropUsageChunk<S> {
    pub fn new(inner: S) -> Self {
        DropUsageChunk { inner, pending: BytesMut::new(), finished: false }
    }

    /// The complete events in `pending`, minus the usage chunk; the incomplete
    /// tail stays for the next read.
    fn complete_events(&mut self) -> Bytes {
        let mut out = BytesMut::new();
        while let Some(end) = memchr::memmem::find(&self.pending, b"\n\n") {
            let event = self.pending.split_to(end + 2);
            if !is_usage_chunk(&event) {
                out.extend_from_slice(&event);
            }
        }
        out.freeze()
    }
}

fn is_usage_chunk(event: &[u8]) -> bool {
    memchr::memmem::find(event, b"\"choices\":[]").is_some()
        && memchr::memmem::find(event, b"\"usage\":").is_some()
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
                    let rest = this.pending.split().freeze();
                    return Poll::Ready((!rest.is_empty() && !is_usage_chunk(&rest)).then_some(Ok(rest)));
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

    #[test]
    fn usage_is_requested_unless_the_client_asked() {
        let mut asked = json!({"stream": true, "stream_options": {"include_usage": true}});
        assert!(!request_usage(&mut asked));
        let mut silent = json!({"stream": true});
        assert!(request_usage(&mut silent));
        assert_eq!(silent["stream_options"]["include_usage"], true);
        let mut other = json!({"stream": true, "stream_options": {"include_obfuscation": false}});
        assert!(request_usage(&mut other));
        assert_eq!(other["stream_options"], json!({"include_obfuscation": false, "include_usage": true}));
    }

    #[actix_web::test]
    async fn only_the_usage_chunk_is_removed_however_the_bytes_are_cut() {
        let text = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n\
            data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n\
            data: [DONE]\n\n";
        for size in [1, 5, 17, text.len()] {
            let chunks: Vec<Result<Bytes, ()>> =
                text.as_bytes().chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            let out: Vec<Bytes> =
                DropUsageChunk::new(futures_util::stream::iter(chunks)).map(|r| r.unwrap()).collect().await;
            let joined: Vec<u8> = out.concat();
            assert_eq!(
                String::from_utf8(joined).unwrap(),
                "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n",
                "chunk size {size}"
            );
        }
    }
}
