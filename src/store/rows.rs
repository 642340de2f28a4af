//! Rows as the database returns them, and how they become the domain's types.

use super::records::{Counters, KeyFields, KeyRecord};
use crate::domain::alerts::SoftLimits;
use crate::domain::cidr::AddressList;
use crate::domain::clamps::{Clamps, ModelAliases};
use crate::domain::key::PreviousSecret;
use crate::domain::limits::{Count, Limits, Usage};
use crate::domain::model::ModelList;
use crate::domain::scopes::Scopes;

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
    pub user_id: Option<i64>,
    pub queue_priority: i64,
    pub alerts: String,
    pub allowed_ips: Option<String>,
    pub previous_key_hash: Option<String>,
    pub previous_key_hint: Option<String>,
    pub previous_valid_until: Option<i64>,
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
                priority: r.queue_priority,
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
                user_id: r.user_id,
                allowed_ips: r.allowed_ips.as_deref().map(AddressList::from_db),
            },
            previous: match (r.previous_key_hash, r.previous_key_hint, r.previous_valid_until) {
                (Some(key_hash), Some(key_hint), Some(valid_until)) => {
                    Some(PreviousSecret { key_hash, key_hint, valid_until })
                }
                _ => None,
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
            alerts: SoftLimits::from_db(&r.alerts),
            model_limits: Vec::new(),
            user: None,
            team: None,
        }
    }
}

/// Counters as `UPDATE ... RETURNING` hands them back after an admission.
#[derive(Debug, Default, sqlx::FromRow)]
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
