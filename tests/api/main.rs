//! Integration tests: the real application on real sockets, a real SQLite file,
//! and a mock Ollama.

use testkit::{mock_ollama, pg};

mod accounting;
mod admin_api;
mod admin_door;
mod alerts;
mod audit;
mod backends;
mod cloud;
mod compat;
mod console;
mod faults;
mod group_commit;
mod helpers;
mod hostile;
mod images;
mod key_access;
mod lengths;
mod lifecycle;
mod metrics;
mod model_store;
mod nginx;
mod people;
mod policy;
mod quota;
mod raw;
mod refusals;
mod request_ids;
mod reservations;
mod signed;
mod slow_clients;
mod streams;
mod tokenizer;
mod traces;
mod upstream_headers;
mod windows;
