//! Token estimates for when the upstream reports no counts of its own.
//!
//! The tokenizer takes ~100 ms and ~23 MiB to build, so it is built once, on a
//! background thread at startup, never on the request path.

use tiktoken_rs::cl100k_base_singleton;

/// Builds the tokenizer off the request path.
pub fn warm_up() {
    std::thread::Builder::new()
        .name("tokenizer-warm-up".into())
        .spawn(|| {
            cl100k_base_singleton();
        })
        .ok();
}

pub fn count(text: &str) -> i64 {
    if text.is_empty() {
        return 0;
    }
    cl100k_base_singleton().count_ordinary(text) as i64
}
