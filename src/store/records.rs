//! What the store is asked and answers.

pub use crate::domain::key::{Counters, KeyFields, KeyRecord, KeyStatus};
use crate::domain::limits::{Limits, Usage};
use crate::domain::windows::Windows;

pub struct NewKey {
    pub key_hash: String,
    pub key_hint: String,
    pub fields: KeyFields,
    pub now: i64,
}

/// A request to admit. It owns its parts: it may wait in the writer's queue
/// after its caller has gone.
#[derive(Debug, Clone)]
pub struct Admission {
    pub key_id: i64,
    /// Checked again inside the transaction, so a rotated secret stops at once.
    pub key_hash: String,
    /// Computed from the clock just before admitting; the store counts into
    /// the stored windows instead when these are not later than them.
    pub windows: Windows,
    /// False for requests that only protect the upstream (listings, `/api/show`,
    /// `/api/version`, `/v1/models`, `count_tokens`): they count against
    /// `requests_per_minute` and `max_concurrent`, and hold a concurrency slot
    /// until settled, but not against the daily, monthly and lifetime request counters.
    pub counts_in_request_quotas: bool,
    pub reserve_tokens: i64,
    pub prompt_estimate: i64,
    pub model: String,
    pub route: &'static str,
    pub instance_id: String,
}

#[derive(Debug)]
pub enum Admitted {
    Yes {
        reservation_id: i64,
        usage: Usage,
    },
    /// A limit would be broken; the key's limits and usage as they are now.
    Refused {
        limits: Limits,
        usage: Usage,
    },
    /// Deleted, deactivated, expired or rotated since it was looked up.
    KeyGone,
}

#[derive(Debug, Clone)]
pub struct Settlement {
    pub reservation_id: i64,
    /// The key the reservation holds room on: batches take the keys' locks
    /// in the order of their ids (`pg_batch`).
    pub key_id: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub estimated: bool,
    pub status: &'static str,
    pub http_status: u16,
    pub latency_ms: i64,
    /// The upstream never answered: give the request back too.
    pub refund_request: bool,
    pub now: i64,
}

#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    pub key_id: Option<i64>,
    pub model: Option<String>,
    pub status: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct UsageRow {
    pub id: i64,
    pub created_at: i64,
    pub key_id: i64,
    pub key_name: String,
    pub model: String,
    pub route: String,
    pub status: String,
    pub http_status: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub estimated: bool,
    pub latency_ms: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageBucket {
    pub bucket: i64,
    pub key_id: i64,
    pub key_name: String,
    pub model: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
}
