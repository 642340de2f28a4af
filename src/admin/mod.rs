//! The admin listener: the JSON API for scripts (bearer password) and, beside
//! it, the console.

pub mod api;
pub mod assets;
pub mod error;
pub mod headers;
pub mod keys;
pub mod pages;
pub mod password;
pub mod session;
pub mod throttle;
