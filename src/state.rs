//! The one state both listeners share.

use crate::admin::password::AdminPassword;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::windows::Windows;
use crate::keys::KeyCache;
use crate::store::Store;
use crate::upstream::Upstreams;
use crate::usage_log::UsageLog;
use serde_json::Value;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

pub struct AppState {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub keys: KeyCache,
    pub upstreams: Upstreams,
    pub usage_log: UsageLog,
    pub admin_password: AdminPassword,
    /// Names this process's reservations, so a restart can tell whose are stale.
    pub instance_id: String,
    pub upstream_probe: Mutex<Option<(Instant, Value)>>,
    /// Changeable at run time from the admin, so kept apart from `settings`.
    pub anthropic_default_model: RwLock<Option<String>>,
    /// The upstream's model names, for mapping models Anthropic clients ask for.
    pub catalog: crate::proxy::models::Catalog,
    pub login_throttle: crate::admin::throttle::LoginThrottle,
    /// Counts tokens off the connection threads.
    pub tokenizer: crate::tokens::Tokenizer,
    /// Running response streams by key, so a revoked key's streams end.
    pub streams: crate::proxy::stream_watch::StreamWatch,
}

impl AppState {
    pub fn windows(&self) -> Windows {
        Windows::at(self.clock.now(), self.settings.app_tz)
    }
}
