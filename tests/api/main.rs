//! Integration tests: the real application on real sockets, a real SQLite file,
//! and a mock Ollama.

mod accounting;
mod admin_api;
mod compat;
mod console;
mod helpers;
mod hostile;
mod lifecycle;
mod mock_ollama;
#[path = "../support/pg.rs"]
#[allow(dead_code)]
mod pg;
mod policy;
mod quota;
mod raw;
mod reservations;
mod slow_clients;
mod streams;
mod upstream_headers;
mod windows;
