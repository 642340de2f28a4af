//! The admin listener: the JSON API for scripts (bearer password) and, beside
//! it, the console.

pub mod api;
pub mod assets;
pub mod audit;
pub mod audit_query;
pub mod auth;
pub mod error;
pub mod headers;
pub mod hosts;
pub mod keys;
pub mod metrics;
pub mod pages;
pub mod password;
pub mod people;
pub mod public_keys;
pub mod reveal;
pub mod session;
pub mod session_key;
pub mod snippets;
pub mod throttle;
pub mod usage_filter;
pub mod usage_groups;

use crate::state::Shared;
use std::sync::Arc;

/// The admin listener's state: the shared parts and those only the admin uses.
pub struct AdminState {
    pub shared: Arc<Shared>,
    pub password: password::AdminPassword,
    pub login_throttle: throttle::LoginThrottle,
}

impl std::ops::Deref for AdminState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}
