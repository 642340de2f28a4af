//! What both listeners share: the settings, the store, the key cache, the
//! upstreams and the usage log. Each listener wraps it in its own state
//! (`proxy::ProxyState`, `admin::AdminState`) with the parts only it uses, so
//! the proxy cannot reach the admin password and the admin cannot reach the
//! proxy's tokenizer.

use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::windows::Windows;
use crate::key_cache::KeyCache;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::store::Store;
use crate::upstream::Upstreams;
use crate::usage_log::UsageLog;
use std::sync::Arc;

pub struct Shared {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub keys: KeyCache,
    pub upstreams: std::sync::Arc<Upstreams>,
    pub usage_log: UsageLog,
    /// Names this process's reservations, so a restart can tell whose are stale.
    pub instance_id: String,
    /// Changeable at run time from the admin, so kept apart from `settings`.
    pub runtime: Runtime,
    /// Refused proxy requests not yet added to the database.
    pub refusals: crate::refusals::RefusalCounter,
    /// What `/metrics` shows; both listeners' paths record into it.
    pub metrics: Arc<Metrics>,
    /// Soft limits reached, backends down and up: raised here, sent in the background.
    pub alerts: crate::alerts::Alerts,
}

impl Shared {
    pub fn windows(&self) -> Windows {
        Windows::at(self.clock.now(), self.settings.app_tz)
    }
}
