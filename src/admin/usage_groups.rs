//! Usage totals grouped by hour, day, model, key, user or team, for the
//! JSON API's `/api/usage?group_by=`, the console's usage page and its CSV.

use super::error::AdminError;
use crate::store::{BucketBy, Store, StoreError, UsageBucket, UsageFilter};
use chrono_tz::Tz;
use std::collections::BTreeMap;

/// Requests and tokens of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub weighted_tokens: i64,
}

impl Totals {
    pub fn add(&mut self, b: &UsageBucket) {
        self.requests += b.requests;
        self.prompt_tokens += b.prompt_tokens;
        self.completion_tokens += b.completion_tokens;
        self.total_tokens += b.total_tokens;
        self.weighted_tokens += b.weighted_tokens;
    }
}

/// What a group is: its label in the API's terms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// The hour's start, in seconds.
    Hour(i64),
    /// The local day in `APP_TZ`, `YYYY-MM-DD`.
    Day(String),
    Model(String),
    /// The key's id and its name as usage recorded it last.
    Key(i64, String),
    /// The user's id when the request had one, and today's name (`None`:
    /// deleted since).
    User(Option<i64>, Option<String>),
    Team(Option<i64>, Option<String>),
}

/// The ways usage groups, as `group_by` names them.
pub const GROUP_BY: [&str; 6] = ["hour", "day", "model", "key", "user", "team"];

/// Totals per group, in the group's order.
pub async fn grouped(
    store: &dyn Store,
    filter: &UsageFilter,
    tz: Tz,
    group_by: &str,
) -> Result<Vec<(Group, Totals)>, AdminError> {
    // Quarter-hour buckets fold into local days in every zone, DST included;
    // the other groups want one bucket for all time.
    let all_time = i64::MAX / 4;
    let (seconds, split) = match group_by {
        "hour" => (3600, BucketBy::Time),
        "day" => (900, BucketBy::Time),
        "model" => (all_time, BucketBy::Model),
        "key" => (all_time, BucketBy::Key),
        "user" => (all_time, BucketBy::User),
        "team" => (all_time, BucketBy::Team),
        other => {
            return Err(AdminError::BadRequest(format!(
                "group_by '{other}' is not one of {}",
                GROUP_BY.join(", ")
            )))
        }
    };
    let names = names_for(store, group_by).await?;
    let mut by: BTreeMap<Group, Totals> = BTreeMap::new();
    let mut key_names: BTreeMap<i64, String> = BTreeMap::new();
    for b in store.usage_buckets(filter, seconds, split).await? {
        let name = |id: Option<i64>| id.and_then(|id| names.get(&id).cloned());
        let group = match group_by {
            "hour" => Group::Hour(b.bucket),
            "day" => Group::Day(
                chrono::DateTime::from_timestamp(b.bucket, 0)
                    .map(|t| t.with_timezone(&tz).format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
            ),
            "model" => Group::Model(b.model.clone()),
            // One group per key, named as its latest bucket says.
            "key" => {
                let n = key_names.entry(b.key_id).or_insert_with(|| b.key_name.clone()).clone();
                Group::Key(b.key_id, n)
            }
            "user" => Group::User(b.user_id, name(b.user_id)),
            _ => Group::Team(b.team_id, name(b.team_id)),
        };
        by.entry(group).or_default().add(&b);
    }
    Ok(by.into_iter().collect())
}

/// Today's names of users or teams, for those groups.
async fn names_for(store: &dyn Store, group_by: &str) -> Result<BTreeMap<i64, String>, StoreError> {
    Ok(match group_by {
        "user" => store.list_users().await?.into_iter().map(|u| (u.id, u.name)).collect(),
        "team" => store.list_teams().await?.into_iter().map(|t| (t.id, t.name)).collect(),
        _ => BTreeMap::new(),
    })
}
