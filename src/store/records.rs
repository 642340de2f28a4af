//! What the store reads and writes.

use crate::domain::clamps::{Clamps, ModelAliases};
use crate::domain::limits::{Count, Limits, Usage};
use crate::domain::model::ModelList;
use crate::domain::scopes::Scopes;
use crate::domain::windows::{self, Window, Windows};

/// A key as stored, with its counters. The plaintext is never here.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub id: i64,
    pub key_hash: String,
    pub key_hint: String,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub fields: KeyFields,
    pub counters: Counters,
}

/// The part of a key an admin edits.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyFields {
    pub name: String,
    pub owner: Option<String>,
    pub expires_at: Option<i64>,
    pub scopes: Scopes,
    pub models: Option<ModelList>,
    pub limits: Limits,
    pub clamps: Clamps,
    pub aliases: Option<ModelAliases>,
}

impl KeyRecord {
    pub fn is_expired(&self, now: i64) -> bool {
        self.fields.expires_at.is_some_and(|t| t <= now)
    }

    pub fn usage_at(&self, windows: &Windows) -> Usage {
        self.counters.usage_at(windows)
    }
}

/// Raw counters; a window's numbers count only while it is current
/// (`windows::is_current`: an admission now would add to them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub minute_start: i64,
    pub minute_end: i64,
    pub minute_requests: i64,
    pub minute_tokens: i64,
    pub day_start: i64,
    pub day_end: i64,
    pub day_requests: i64,
    pub day_tokens: i64,
    pub month_start: i64,
    pub month_end: i64,
    pub month_requests: i64,
    pub month_tokens: i64,
    pub total_requests: i64,
    pub total_tokens: i64,
    pub in_flight: i64,
}

impl Counters {
    pub fn usage_at(&self, w: &Windows) -> Usage {
        let current = |start: i64, end: i64, requests: i64, tokens: i64, computed: Window| {
            if windows::is_current(Window { start, end }, computed, w.now) {
                Count { requests, tokens }
            } else {
                Count::default()
            }
        };
        Usage {
            minute: current(
                self.minute_start,
                self.minute_end,
                self.minute_requests,
                self.minute_tokens,
                w.minute,
            ),
            day: current(self.day_start, self.day_end, self.day_requests, self.day_tokens, w.day),
            month: current(self.month_start, self.month_end, self.month_requests, self.month_tokens, w.month),
            total: Count { requests: self.total_requests, tokens: self.total_tokens },
            in_flight: self.in_flight,
        }
    }
}

pub struct NewKey {
    pub key_hash: String,
    pub key_hint: String,
    pub fields: KeyFields,
    pub now: i64,
}

pub struct Admission<'a> {
    pub key_id: i64,
    /// Checked again inside the transaction, so a rotated secret stops at once.
    pub key_hash: &'a str,
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
    pub model: &'a str,
    pub route: &'a str,
    pub instance_id: &'a str,
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

/// A key row as the database returns it.
#[derive(Debug, sqlx::FromRow)]
pub struct KeyRow {
    pub id: i64,
    pub name: String,
    pub owner: Option<String>,
    pub key_hash: String,
    pub key_hint: String,
    pub active: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub scopes: String,
    pub models: Option<String>,
    pub requests_per_minute: Option<i64>,
    pub tokens_per_minute: Option<i64>,
    pub daily_requests: Option<i64>,
    pub daily_tokens: Option<i64>,
    pub monthly_requests: Option<i64>,
    pub monthly_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub max_concurrent: Option<i64>,
    pub max_num_ctx: Option<i64>,
    pub max_output_tokens: Option<i64>,
    pub max_images: Option<i64>,
    pub allow_keep_alive_extremes: bool,
    pub model_aliases: Option<String>,
    pub minute_start: i64,
    pub minute_requests_used: i64,
    pub minute_tokens_used: i64,
    pub day_start: i64,
    pub day_requests_used: i64,
    pub day_tokens_used: i64,
    pub month_start: i64,
    pub month_requests_used: i64,
    pub month_tokens_used: i64,
    pub total_requests_used: i64,
    pub total_tokens_used: i64,
    pub in_flight: i64,
    pub minute_end: i64,
    pub day_end: i64,
    pub month_end: i64,
}

impl From<KeyRow> for KeyRecord {
    fn from(r: KeyRow) -> Self {
        KeyRecord {
            id: r.id,
            key_hash: r.key_hash,
            key_hint: r.key_hint,
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
            fields: KeyFields {
                name: r.name,
                owner: r.owner,
                expires_at: r.expires_at,
                scopes: Scopes::from_db(&r.scopes),
                models: r.models.as_deref().map(ModelList::from_db),
                limits: Limits {
                    requests_per_minute: r.requests_per_minute,
                    tokens_per_minute: r.tokens_per_minute,
                    daily_requests: r.daily_requests,
                    daily_tokens: r.daily_tokens,
                    monthly_requests: r.monthly_requests,
                    monthly_tokens: r.monthly_tokens,
                    total_tokens: r.total_tokens,
                    max_concurrent: r.max_concurrent,
                },
                clamps: Clamps {
                    max_num_ctx: r.max_num_ctx,
                    max_output_tokens: r.max_output_tokens,
                    max_images: r.max_images,
                    allow_keep_alive_extremes: r.allow_keep_alive_extremes,
                },
                aliases: r.model_aliases.as_deref().map(ModelAliases::from_db),
            },
            counters: Counters {
                minute_start: r.minute_start,
                minute_end: r.minute_end,
                minute_requests: r.minute_requests_used,
                minute_tokens: r.minute_tokens_used,
                day_start: r.day_start,
                day_end: r.day_end,
                day_requests: r.day_requests_used,
                day_tokens: r.day_tokens_used,
                month_start: r.month_start,
                month_end: r.month_end,
                month_requests: r.month_requests_used,
                month_tokens: r.month_tokens_used,
                total_requests: r.total_requests_used,
                total_tokens: r.total_tokens_used,
                in_flight: r.in_flight,
            },
        }
    }
}

/// Counters as `UPDATE ... RETURNING` hands them back after an admission.
#[derive(Debug, sqlx::FromRow)]
pub struct CounterRow {
    pub minute_requests_used: i64,
    pub minute_tokens_used: i64,
    pub day_requests_used: i64,
    pub day_tokens_used: i64,
    pub month_requests_used: i64,
    pub month_tokens_used: i64,
    pub total_requests_used: i64,
    pub total_tokens_used: i64,
    pub in_flight: i64,
}

impl From<CounterRow> for Usage {
    fn from(r: CounterRow) -> Self {
        Usage {
            minute: Count { requests: r.minute_requests_used, tokens: r.minute_tokens_used },
            day: Count { requests: r.day_requests_used, tokens: r.day_tokens_used },
            month: Count { requests: r.month_requests_used, tokens: r.month_tokens_used },
            total: Count { requests: r.total_requests_used, tokens: r.total_tokens_used },
            in_flight: r.in_flight,
        }
    }
}
