//! What the store is asked and answers.

use crate::domain::alerts::SoftLimits;
pub use crate::domain::key::{Counters, KeyFields, KeyRecord, KeyStatus};
use crate::domain::limits::Usage;
pub use crate::domain::people::{Budget, ModelLimit, Owner};
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
    /// The `budgets` rows the request counts in besides the key's own row
    /// (`KeyRecord::scopes`), at most `MAX_BUDGETS`, in id order.
    pub budgets: Vec<i64>,
    /// Who the request is for, kept with its usage row.
    pub user_id: Option<i64>,
    pub team_id: Option<i64>,
    /// The prompt estimate as the limits count it: what a process that dies
    /// mid-request is charged.
    pub weighted_prompt: i64,
}

/// The most budget rows one admission counts in: the key's model entry,
/// the user's own and model entry, the team's own and model entry.
pub const MAX_BUDGETS: usize = 5;

#[derive(Debug)]
pub enum Admitted {
    Yes {
        reservation_id: i64,
        usage: Usage,
    },
    /// A limit would be broken; the key and its levels as they are now.
    Refused(Box<KeyRecord>),
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
    /// `prompt_tokens + completion_tokens` as the limits count them.
    pub weighted_tokens: i64,
    /// The budget rows the reservation holds room on: batches lock them first.
    pub budgets: Vec<i64>,
    /// The request's `x-request-id`; none for reservations settled after their process died.
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    pub key_id: Option<i64>,
    pub model: Option<String>,
    pub status: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub user_id: Option<i64>,
    pub team_id: Option<i64>,
    pub limit: i64,
    pub offset: i64,
    /// Only rows older than this id: a cursor for reading every row in pages.
    pub before_id: Option<i64>,
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
    pub user_id: Option<i64>,
    pub team_id: Option<i64>,
    pub weighted_tokens: i64,
    /// None on rows from before request ids, and on requests settled after their process died.
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageBucket {
    pub bucket: i64,
    pub key_id: i64,
    pub key_name: String,
    pub model: String,
    pub user_id: Option<i64>,
    pub team_id: Option<i64>,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub weighted_tokens: i64,
}

/// What usage buckets are split by besides time. Each grouping sorts only
/// its own columns: on a large log the sort is most of a query's time. The
/// columns a grouping leaves out read 0, "" or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketBy {
    /// Key, model, user and team.
    All,
    /// Time only.
    Time,
    Model,
    Key,
    User,
    Team,
}

/// Tokens of one model in one slice of time.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ModelBucket {
    pub bucket: i64,
    pub model: String,
    pub total_tokens: i64,
}

/// A team, with its own limits and its per-model ones.
#[derive(Debug, Clone)]
pub struct TeamRecord {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub own: Budget,
    pub models: Vec<Budget>,
    pub alerts: SoftLimits,
}

/// A person: their keys count against their limits, and their team's.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub team_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub own: Budget,
    pub models: Vec<Budget>,
    pub key_ids: Vec<i64>,
    pub alerts: SoftLimits,
}

/// What an admin sets on a user besides limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFields {
    pub name: String,
    pub email: Option<String>,
    pub team_id: Option<i64>,
}
