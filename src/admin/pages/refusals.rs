//! A table of refused proxy requests by reason, for a period and optionally
//! one key: on a key's page, the usage page and the dashboard.

use super::html_safe;
use crate::admin::error::PageError;
use crate::admin::AdminState;
use crate::store::{RefusalFilter, RefusalGroup};
use askama::Template;

#[derive(Template)]
#[template(path = "admin/refusal_counts.html")]
pub struct RefusalCounts {
    heading: String,
    /// (reason, count), most first.
    rows: Vec<(String, i64)>,
}

html_safe!(RefusalCounts);

impl RefusalCounts {
    /// Counts by reason; `key_id` `None` for every key (and none).
    pub async fn load(
        state: &AdminState,
        heading: impl Into<String>,
        key_id: Option<i64>,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<RefusalCounts, PageError> {
        let filter = RefusalFilter { key_id: key_id.map(Some), from: from.map(crate::refusals::hour_of), to };
        let mut rows: Vec<(String, i64)> = state
            .store
            .refusal_rows(&filter, RefusalGroup::Reason)
            .await?
            .into_iter()
            .map(|r| (r.reason.unwrap_or_default(), r.count))
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(RefusalCounts { heading: heading.into(), rows })
    }

    /// The last `hours` hours up to now.
    pub async fn recent(
        state: &AdminState,
        heading: &str,
        key_id: Option<i64>,
        hours: i64,
    ) -> Result<RefusalCounts, PageError> {
        let now = state.clock.now().timestamp();
        Self::load(state, heading, key_id, Some(now - hours * 3600), None).await
    }
}
