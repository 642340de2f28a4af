//! Today's names of users or teams by id, for pages that show whom a key or
//! a request was for. Usage keeps the id a request had; one deleted since
//! shows as `#id (deleted)`.

use crate::admin::AdminState;
use crate::store::StoreError;
use std::collections::HashMap;

pub struct Names(HashMap<i64, String>);

impl Names {
    pub fn of(pairs: impl IntoIterator<Item = (i64, String)>) -> Names {
        Names(pairs.into_iter().collect())
    }

    pub async fn users(state: &AdminState) -> Result<Names, StoreError> {
        Ok(Names::of(state.store.list_users().await?.into_iter().map(|u| (u.id, u.name))))
    }

    pub async fn teams(state: &AdminState) -> Result<Names, StoreError> {
        Ok(Names::of(state.store.list_teams().await?.into_iter().map(|t| (t.id, t.name))))
    }

    /// The name, if the id still names someone.
    pub fn get(&self, id: i64) -> Option<&str> {
        self.0.get(&id).map(String::as_str)
    }

    /// The name, or `#id (deleted)`.
    pub fn name(&self, id: i64) -> String {
        self.get(id).map_or_else(|| format!("#{id} (deleted)"), str::to_owned)
    }

    /// (id, name) for a link, when there is an id.
    pub fn link(&self, id: Option<i64>) -> Option<(i64, String)> {
        id.map(|id| (id, self.name(id)))
    }

    /// (id, name, selected) for a filter's or a form's choices, by name.
    pub fn options(&self, selected: Option<i64>) -> Vec<(i64, String, bool)> {
        let mut out: Vec<_> = self.0.iter().map(|(id, n)| (*id, n.clone(), Some(*id) == selected)).collect();
        out.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        out
    }
}
