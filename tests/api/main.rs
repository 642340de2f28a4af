//! Integration tests: the real application on real sockets, a real SQLite file,
//! and a mock Ollama.

mod accounting;
mod admin_api;
mod helpers;
mod lifecycle;
mod mock_ollama;
mod policy;
mod quota;
