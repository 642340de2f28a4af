//! The proxy listener: authenticate, apply the route policy, admit against the
//! key's limits, stream to the upstream and settle from what passes by.

pub mod auth;
pub mod body;
pub mod body_pace;
pub mod clamps;
pub mod error;
pub mod forward;
pub mod handler;
pub mod images;
pub mod info;
pub mod metered;
pub mod models;
pub mod openai;
pub mod ratelimit;
pub mod reservation;
pub mod routes;
pub mod stream_watch;
pub mod usage_tap;
