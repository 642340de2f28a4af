//! The admin listener: the JSON API for scripts (bearer password) and, beside
//! it, the console.

pub mod api;
pub mod assets;
pub mod error;
pub mod forwarded;
pub mod headers;
pub mod hosts;
pub mod keys;
pub mod pages;
pub mod password;
pub mod reveal;
pub mod session;
pub mod session_key;
pub mod throttle;
