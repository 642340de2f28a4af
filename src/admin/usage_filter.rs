//! Usage filters, read from a query string by the JSON API's `/api/usage`
//! and by the console's usage page and CSV export.

use super::error::AdminError;
use super::AdminState;
use crate::store::UsageFilter;
use serde::Deserialize;

/// Usage filters, shared by the JSON API and the console's usage page.
#[derive(Debug, Default, Deserialize)]
pub struct UsageQuery {
    /// A string, so that a form's empty "all keys" choice means no filter.
    pub key_id: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub model: Option<String>,
    pub status: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub group_by: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    /// The console's page number (50 rows a page).
    pub page: Option<i64>,
}

impl UsageQuery {
    pub fn filter(&self, state: &AdminState) -> Result<UsageFilter, AdminError> {
        self.filter_rows(state, self.limit.unwrap_or(100).clamp(1, 10_000), self.offset.unwrap_or(0).max(0))
    }

    pub fn filter_rows(
        &self,
        state: &AdminState,
        limit: i64,
        offset: i64,
    ) -> Result<UsageFilter, AdminError> {
        let tz = state.settings.app_tz;
        let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let time = |v: &Option<String>, end: bool| {
            given(v)
                .map(|t| crate::domain::time::parse_time(&t, tz, end).map_err(AdminError::BadRequest))
                .transpose()
        };
        let id = |name: &str, v: &Option<String>| {
            given(v)
                .map(|k| {
                    k.parse::<i64>()
                        .map_err(|_| AdminError::BadRequest(format!("{name} '{k}' is not a number")))
                })
                .transpose()
        };
        let key_id = id("key_id", &self.key_id)?;
        Ok(UsageFilter {
            key_id,
            // Usage records models by their canonical name (`llama3:latest`).
            model: given(&self.model).map(|m| crate::domain::model::normalize(&m)),
            status: given(&self.status),
            from: time(&self.from, false)?,
            to: time(&self.to, true)?,
            user_id: id("user_id", &self.user_id)?,
            team_id: id("team_id", &self.team_id)?,
            limit,
            offset,
            before_id: None,
        })
    }

    /// The filters as a query string, for links that keep them.
    pub fn query_string(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("key_id", &self.key_id),
            ("user_id", &self.user_id),
            ("team_id", &self.team_id),
            ("model", &self.model),
            ("status", &self.status),
            ("from", &self.from),
            ("to", &self.to),
            ("group_by", &self.group_by),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }
}
