//! Token estimates for when the upstream reports no counts of its own, and
//! for `count_tokens`.
//!
//! Counting happens on the tokenizer pool (`pool`), in pieces (`pieces`), but
//! for short texts, which are counted where they are asked for.
//! The tokenizer's tables take ~100 ms and ~23 MiB to build: the pool's first
//! thread builds them at startup, never a request.

mod pieces;
mod pool;

pub use pool::{Busy, Pending, Tokenizer};

/// The pool's count, made on the calling thread: for tests and tools.
pub fn count_now(text: &str) -> i64 {
    let bpe = tiktoken_rs::cl100k_base_singleton();
    pieces::pieces(text).map(|piece| bpe.count_ordinary(piece) as i64).sum()
}
