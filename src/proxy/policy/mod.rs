//! The route policy and what it does to a request body before it goes
//! upstream: which routes are forwarded (`routes`), how bodies are read
//! (`body`), the key's clamps (`clamps`), remote images (`images`), cloud models (`cloud`), the guarded model
//! store (`store`, `store_version`), the
//! gate's own rewrites (`rewrite`), and the `plan` they add up to.

pub mod body;
pub mod clamps;
pub mod cloud;
pub mod images;
pub mod plan;
pub mod rewrite;
pub mod routes;
pub mod store;
pub mod store_version;
