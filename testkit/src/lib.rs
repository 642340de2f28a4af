//! What ollama-gate's test suites share: a mock Ollama that writes what the
//! real one writes, the real gate binary run as a process, a fresh
//! PostgreSQL database per test, an OTLP receiver for traces, and the
//! signing of the `ollama` command line.

pub mod gate;
pub mod mock_ollama;
pub mod otlp;
pub mod pg;
pub mod signing;
