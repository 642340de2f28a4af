//! The proxy listener: authenticate, apply the route policy, admit against the
//! key's limits, stream to the upstream and settle from what passes by.

pub mod access;
pub mod admission;
pub mod auth;
pub mod body_pace;
pub mod cors;
pub mod error;
pub mod exchange;
pub mod forward;
pub mod handler;
pub mod info;
pub mod measure;
pub mod metered;
pub mod models;
pub mod policy;
pub mod ratelimit;
pub mod request_id;
pub mod reservation;
pub mod respond;
pub mod settle;
pub mod signed;
pub mod stream_watch;
pub mod tap;
pub mod trace;

use crate::state::Shared;
use std::sync::Arc;

/// The proxy listener's state: the shared parts and those only the proxy uses.
pub struct ProxyState {
    pub shared: Arc<Shared>,
    /// Counts tokens off the connection threads.
    pub tokenizer: Arc<crate::tokens::Tokenizer>,
    /// Running response streams by key, so a revoked key's streams end.
    pub streams: Arc<stream_watch::StreamWatch>,
    /// Exports the requests' spans; `None` when traces are off.
    pub tracer: Option<crate::telemetry::Tracer>,
}

impl std::ops::Deref for ProxyState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}
