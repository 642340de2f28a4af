//! Users, teams and budget rows (`budgets`: the limits and counters of a
//! user, a team, or one `model_limits` entry of a key, user or team), for
//! SQLite and PostgreSQL alike, like `sql_store!`.

use super::{Budget, ModelLimit, Owner, StoreResult, TeamRecord, UserFields, UserRecord};
use crate::domain::alerts::SoftLimits;
use crate::domain::key::Counters;
use crate::domain::limits::Limits;

/// Users, teams and their limits.
#[async_trait::async_trait]
pub trait People: Send + Sync {
    async fn create_team(&self, name: &str, now: i64) -> StoreResult<TeamRecord>;
    async fn list_teams(&self) -> StoreResult<Vec<TeamRecord>>;
    async fn get_team(&self, id: i64) -> StoreResult<Option<TeamRecord>>;
    async fn rename_team(&self, id: i64, name: &str, now: i64) -> StoreResult<bool>;
    /// Deletes a team; its users stay, without a team. Usage history stays.
    async fn delete_team(&self, id: i64) -> StoreResult<bool>;

    async fn create_user(&self, fields: &UserFields, now: i64) -> StoreResult<UserRecord>;
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    async fn get_user(&self, id: i64) -> StoreResult<Option<UserRecord>>;
    async fn save_user(&self, id: i64, fields: &UserFields, now: i64) -> StoreResult<bool>;
    /// Deletes a user; their keys stay, without a user. Usage history stays.
    async fn delete_user(&self, id: i64) -> StoreResult<bool>;

    /// A user's or team's own limits (its budget row without a model).
    async fn set_own_limits(&self, owner: Owner, owner_id: i64, limits: &Limits) -> StoreResult<()>;
    /// Replaces an owner's `model_limits` entries; an entry that names the
    /// same model as before keeps its counters.
    async fn set_model_limits(&self, owner: Owner, owner_id: i64, entries: &[ModelLimit]) -> StoreResult<()>;
    /// Every budget row, for listings and copying.
    async fn all_budgets(&self) -> StoreResult<Vec<Budget>>;

    /// Copying a whole database: rows with their ids and counters.
    async fn import_people(
        &self,
        teams: &[TeamRecord],
        users: &[UserRecord],
        budgets: &[Budget],
    ) -> StoreResult<()>;
}

pub const BUDGET_COLUMNS: &str = "id, owner_kind, owner_id, model, position, requests_per_minute, \
    tokens_per_minute, daily_requests, daily_tokens, monthly_requests, monthly_tokens, total_tokens, \
    max_concurrent, minute_start, minute_end, minute_requests_used, minute_tokens_used, day_start, day_end, \
    day_requests_used, day_tokens_used, month_start, month_end, month_requests_used, month_tokens_used, \
    total_requests_used, total_tokens_used, in_flight";

pub const INSERT_BUDGET: &str = "INSERT INTO budgets (owner_kind, owner_id, model, position, \
    requests_per_minute, tokens_per_minute, daily_requests, daily_tokens, monthly_requests, monthly_tokens, \
    total_tokens, max_concurrent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
pub const UPDATE_BUDGET: &str = "UPDATE budgets SET position = $2, requests_per_minute = $3, \
    tokens_per_minute = $4, daily_requests = $5, daily_tokens = $6, monthly_requests = $7, \
    monthly_tokens = $8, total_tokens = $9, max_concurrent = $10 WHERE id = $1";
pub const UPDATE_OWN_BUDGET: &str = "UPDATE budgets SET requests_per_minute = $3, \
    tokens_per_minute = $4, daily_requests = $5, daily_tokens = $6, monthly_requests = $7, \
    monthly_tokens = $8, total_tokens = $9, max_concurrent = $10 \
    WHERE owner_kind = $1 AND owner_id = $2 AND model IS NULL";
pub const DELETE_BUDGET: &str = "DELETE FROM budgets WHERE id = $1";
pub const DELETE_BUDGETS_OF: &str = "DELETE FROM budgets WHERE owner_kind = $1 AND owner_id = $2";
pub fn budgets_of() -> String {
    format!(
        "SELECT {BUDGET_COLUMNS} FROM budgets WHERE owner_kind = $1 AND owner_id = $2 ORDER BY position, id"
    )
}
pub fn all_budgets() -> String {
    format!("SELECT {BUDGET_COLUMNS} FROM budgets ORDER BY owner_kind, owner_id, position, id")
}
/// The budget rows of a key, its user ($2) and its team ($3).
pub fn budgets_of_levels() -> String {
    format!(
        "SELECT {BUDGET_COLUMNS} FROM budgets WHERE (owner_kind = 'key' AND owner_id = $1) \
         OR (owner_kind = 'user' AND owner_id = $2) OR (owner_kind = 'team' AND owner_id = $3) \
         ORDER BY position, id"
    )
}
pub const IMPORT_BUDGET: &str = "INSERT INTO budgets (id, owner_kind, owner_id, model, position, \
    requests_per_minute, tokens_per_minute, daily_requests, daily_tokens, monthly_requests, monthly_tokens, \
    total_tokens, max_concurrent, minute_start, minute_end, minute_requests_used, minute_tokens_used, day_start, \
    day_end, day_requests_used, day_tokens_used, month_start, month_end, month_requests_used, month_tokens_used, \
    total_requests_used, total_tokens_used, in_flight) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
    $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, 0)";

pub const INSERT_TEAM: &str =
    "INSERT INTO teams (name, created_at, updated_at) VALUES ($1, $2, $2) RETURNING id";
pub const TEAM_COLUMNS: &str = "id, name, created_at, updated_at, alerts";
pub const RENAME_TEAM: &str = "UPDATE teams SET name = $2, updated_at = $3 WHERE id = $1";
pub const UNTEAM_USERS: &str = "UPDATE users SET team_id = NULL WHERE team_id = $1";
pub const DELETE_TEAM: &str = "DELETE FROM teams WHERE id = $1";
pub const IMPORT_TEAM: &str = "INSERT INTO teams (id, name, created_at, updated_at) VALUES ($1, $2, $3, $4)";

pub const INSERT_USER: &str = "INSERT INTO users (name, email, team_id, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $4) RETURNING id";
pub const USER_COLUMNS: &str = "id, name, email, team_id, created_at, updated_at, alerts";
pub const SAVE_USER: &str =
    "UPDATE users SET name = $2, email = $3, team_id = $4, updated_at = $5 WHERE id = $1";
pub const UNUSER_KEYS: &str = "UPDATE api_keys SET user_id = NULL WHERE user_id = $1";
pub const DELETE_USER: &str = "DELETE FROM users WHERE id = $1";
pub const IMPORT_USER: &str = "INSERT INTO users (id, name, email, team_id, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6)";
pub const KEYS_OF_USERS: &str = "SELECT user_id, id FROM api_keys WHERE user_id IS NOT NULL ORDER BY id";
pub const KEYS_OF_USER: &str = "SELECT user_id, id FROM api_keys WHERE user_id = $1 ORDER BY id";
/// A key's user and that user's team, by the user's id.
pub const USER_AND_TEAM: &str = "SELECT u.id, u.name, t.id AS team_id, t.name AS team_name, \
    u.alerts, t.alerts AS team_alerts FROM users u LEFT JOIN teams t ON t.id = u.team_id WHERE u.id = $1";

/// A budget row as the database returns it.
#[derive(Debug, sqlx::FromRow)]
pub struct BudgetRow {
    pub id: i64,
    pub owner_kind: String,
    pub owner_id: i64,
    pub model: Option<String>,
    pub position: i64,
    pub requests_per_minute: Option<i64>,
    pub tokens_per_minute: Option<i64>,
    pub daily_requests: Option<i64>,
    pub daily_tokens: Option<i64>,
    pub monthly_requests: Option<i64>,
    pub monthly_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub max_concurrent: Option<i64>,
    pub minute_start: i64,
    pub minute_end: i64,
    pub minute_requests_used: i64,
    pub minute_tokens_used: i64,
    pub day_start: i64,
    pub day_end: i64,
    pub day_requests_used: i64,
    pub day_tokens_used: i64,
    pub month_start: i64,
    pub month_end: i64,
    pub month_requests_used: i64,
    pub month_tokens_used: i64,
    pub total_requests_used: i64,
    pub total_tokens_used: i64,
    pub in_flight: i64,
}

impl From<BudgetRow> for Budget {
    fn from(r: BudgetRow) -> Self {
        Budget {
            id: r.id,
            owner: Owner::from_db(&r.owner_kind),
            owner_id: r.owner_id,
            model: r.model,
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

#[derive(Debug, sqlx::FromRow)]
pub struct TeamRow {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub alerts: String,
}

#[derive(Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub team_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub alerts: String,
}

/// A user's or team's own budget row, or an empty one when it has none
/// (a row lost to a failed write is recreated by the next limits change).
pub fn own_of(budgets: &[Budget], owner: Owner, owner_id: i64) -> Budget {
    budgets
        .iter()
        .find(|b| b.owner == owner && b.owner_id == owner_id && b.model.is_none())
        .cloned()
        .unwrap_or(Budget {
            id: 0,
            owner,
            owner_id,
            model: None,
            limits: Limits::default(),
            counters: Counters::default(),
        })
}

/// An owner's `model_limits` rows, in order.
pub fn models_of(budgets: &[Budget], owner: Owner, owner_id: i64) -> Vec<Budget> {
    budgets
        .iter()
        .filter(|b| b.owner == owner && b.owner_id == owner_id && b.model.is_some())
        .cloned()
        .collect()
}

pub fn team_record(row: TeamRow, budgets: &[Budget]) -> TeamRecord {
    TeamRecord {
        own: own_of(budgets, Owner::Team, row.id),
        models: models_of(budgets, Owner::Team, row.id),
        id: row.id,
        name: row.name,
        created_at: row.created_at,
        updated_at: row.updated_at,
        alerts: SoftLimits::from_db(&row.alerts),
    }
}

pub fn user_record(row: UserRow, budgets: &[Budget], keys: &[(i64, i64)]) -> UserRecord {
    UserRecord {
        own: own_of(budgets, Owner::User, row.id),
        models: models_of(budgets, Owner::User, row.id),
        key_ids: keys.iter().filter(|(user, _)| *user == row.id).map(|(_, key)| *key).collect(),
        id: row.id,
        name: row.name,
        email: row.email,
        team_id: row.team_id,
        created_at: row.created_at,
        updated_at: row.updated_at,
        alerts: SoftLimits::from_db(&row.alerts),
    }
}

/// A unique name taken: the admin gets a 409 naming it, not a database error.
pub fn taken(e: sqlx::Error, what: &str, name: &str) -> super::StoreError {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => {
            super::StoreError::Conflict(format!("a {what} named '{name}' already exists"))
        }
        _ => e.into(),
    }
}

macro_rules! people_store {
    ($store:ty, $db:ty) => {
        impl $store {
            fn bind_limits<'q>(
                query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
                limits: &Limits,
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
                // The limit columns are in `LimitKind::ALL`'s order.
                $crate::domain::limits::LimitKind::ALL
                    .into_iter()
                    .fold(query, |query, kind| query.bind(limits.get(kind)))
            }

            async fn insert_budget<'c>(
                tx: &mut sqlx::Transaction<'c, $db>,
                owner: Owner,
                owner_id: i64,
                model: Option<&str>,
                position: i64,
                limits: &Limits,
            ) -> StoreResult<()> {
                let query = sqlx::query(people::INSERT_BUDGET)
                    .bind(owner.as_str())
                    .bind(owner_id)
                    .bind(model.map(str::to_owned))
                    .bind(position);
                Self::bind_limits(query, limits).execute(&mut **tx).await?;
                Ok(())
            }

            async fn budgets_where(&self, owner: Owner, owner_id: i64) -> StoreResult<Vec<Budget>> {
                let rows = sqlx::query_as::<_, people::BudgetRow>(&people::budgets_of())
                    .bind(owner.as_str())
                    .bind(owner_id)
                    .fetch_all(self.reader()?)
                    .await?;
                Ok(rows.into_iter().map(Budget::from).collect())
            }

            /// Fills in a key's model entries, user and team, as admission needs them.
            async fn with_levels(&self, key: Option<KeyRecord>) -> StoreResult<Option<KeyRecord>> {
                use $crate::domain::people::Principal;
                let Some(mut key) = key else { return Ok(None) };
                type Who = (i64, String, Option<i64>, Option<String>, String, Option<String>);
                let who: Option<Who> = match key.fields.user_id {
                    Some(user_id) => {
                        sqlx::query_as(people::USER_AND_TEAM)
                            .bind(user_id)
                            .fetch_optional(self.reader()?)
                            .await?
                    }
                    None => None,
                };
                let (user_id, team_id) = match &who {
                    Some((user, _, team, ..)) => (Some(*user), *team),
                    None => (None, None),
                };
                let budgets: Vec<Budget> =
                    sqlx::query_as::<_, people::BudgetRow>(&people::budgets_of_levels())
                        .bind(key.id)
                        .bind(user_id)
                        .bind(team_id)
                        .fetch_all(self.reader()?)
                        .await?
                        .into_iter()
                        .map(Budget::from)
                        .collect();
                let principal = |owner, id: i64, name: String, alerts: &str| Principal {
                    id,
                    name,
                    alerts: $crate::domain::alerts::SoftLimits::from_db(alerts),
                    own: people::own_of(&budgets, owner, id),
                    models: people::models_of(&budgets, owner, id),
                };
                key.model_limits = people::models_of(&budgets, Owner::Key, key.id);
                if let Some((user, user_name, team, team_name, user_alerts, team_alerts)) = who {
                    key.user = Some(principal(Owner::User, user, user_name, &user_alerts));
                    if let (Some(team), Some(team_name)) = (team, team_name) {
                        let team_alerts = team_alerts.unwrap_or_default();
                        key.team = Some(principal(Owner::Team, team, team_name, &team_alerts));
                    }
                }
                Ok(Some(key))
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::people::People for $store {
            async fn create_team(&self, name: &str, now: i64) -> StoreResult<TeamRecord> {
                let id: i64 = $crate::store::sql_steps::write_tx!(self, tx, {
                    let id: i64 = sqlx::query_scalar(people::INSERT_TEAM)
                        .bind(name.to_owned())
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(|e| people::taken(e, "team", name))?;
                    Self::insert_budget(&mut tx, Owner::Team, id, None, 0, &Limits::default()).await?;
                    id
                })?;
                self.get_team(id).await?.ok_or(StoreError::Database(sqlx::Error::RowNotFound))
            }

            async fn list_teams(&self) -> StoreResult<Vec<TeamRecord>> {
                let query = format!("SELECT {} FROM teams ORDER BY id", people::TEAM_COLUMNS);
                let rows = sqlx::query_as::<_, people::TeamRow>(&query).fetch_all(self.reader()?).await?;
                let budgets = self.all_budgets().await?;
                Ok(rows.into_iter().map(|r| people::team_record(r, &budgets)).collect())
            }

            async fn get_team(&self, id: i64) -> StoreResult<Option<TeamRecord>> {
                let query = format!("SELECT {} FROM teams WHERE id = $1", people::TEAM_COLUMNS);
                let row = sqlx::query_as::<_, people::TeamRow>(&query)
                    .bind(id)
                    .fetch_optional(self.reader()?)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let budgets = self.budgets_where(Owner::Team, id).await?;
                Ok(Some(people::team_record(row, &budgets)))
            }

            async fn rename_team(&self, id: i64, name: &str, now: i64) -> StoreResult<bool> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    let changed = sqlx::query(people::RENAME_TEAM)
                        .bind(id)
                        .bind(name.to_owned())
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| people::taken(e, "team", name))?
                        .rows_affected();
                    changed > 0
                })
            }

            async fn delete_team(&self, id: i64) -> StoreResult<bool> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query(people::UNTEAM_USERS).bind(id).execute(&mut *tx).await?;
                    sqlx::query(people::DELETE_BUDGETS_OF)
                        .bind(Owner::Team.as_str())
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(people::DELETE_TEAM).bind(id).execute(&mut *tx).await?.rows_affected() > 0
                })
            }

            async fn create_user(&self, f: &UserFields, now: i64) -> StoreResult<UserRecord> {
                let id: i64 = $crate::store::sql_steps::write_tx!(self, tx, {
                    let id: i64 = sqlx::query_scalar(people::INSERT_USER)
                        .bind(f.name.clone())
                        .bind(f.email.clone())
                        .bind(f.team_id)
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(|e| people::taken(e, "user", &f.name))?;
                    Self::insert_budget(&mut tx, Owner::User, id, None, 0, &Limits::default()).await?;
                    id
                })?;
                self.get_user(id).await?.ok_or(StoreError::Database(sqlx::Error::RowNotFound))
            }

            async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
                let query = format!("SELECT {} FROM users ORDER BY id", people::USER_COLUMNS);
                let rows = sqlx::query_as::<_, people::UserRow>(&query).fetch_all(self.reader()?).await?;
                let budgets = self.all_budgets().await?;
                let keys: Vec<(i64, i64)> =
                    sqlx::query_as(people::KEYS_OF_USERS).fetch_all(self.reader()?).await?;
                Ok(rows.into_iter().map(|r| people::user_record(r, &budgets, &keys)).collect())
            }

            async fn get_user(&self, id: i64) -> StoreResult<Option<UserRecord>> {
                let query = format!("SELECT {} FROM users WHERE id = $1", people::USER_COLUMNS);
                let row = sqlx::query_as::<_, people::UserRow>(&query)
                    .bind(id)
                    .fetch_optional(self.reader()?)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let budgets = self.budgets_where(Owner::User, id).await?;
                let keys: Vec<(i64, i64)> =
                    sqlx::query_as(people::KEYS_OF_USER).bind(id).fetch_all(self.reader()?).await?;
                Ok(Some(people::user_record(row, &budgets, &keys)))
            }

            async fn save_user(&self, id: i64, f: &UserFields, now: i64) -> StoreResult<bool> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    let changed = sqlx::query(people::SAVE_USER)
                        .bind(id)
                        .bind(f.name.clone())
                        .bind(f.email.clone())
                        .bind(f.team_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| people::taken(e, "user", &f.name))?
                        .rows_affected();
                    changed > 0
                })
            }

            async fn delete_user(&self, id: i64) -> StoreResult<bool> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query(people::UNUSER_KEYS).bind(id).execute(&mut *tx).await?;
                    sqlx::query(people::DELETE_BUDGETS_OF)
                        .bind(Owner::User.as_str())
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(people::DELETE_USER).bind(id).execute(&mut *tx).await?.rows_affected() > 0
                })
            }

            async fn set_own_limits(&self, owner: Owner, owner_id: i64, limits: &Limits) -> StoreResult<()> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    let query = sqlx::query(people::UPDATE_OWN_BUDGET).bind(owner.as_str()).bind(owner_id);
                    let changed = Self::bind_limits(query, limits).execute(&mut *tx).await?.rows_affected();
                    if changed == 0 {
                        Self::insert_budget(&mut tx, owner, owner_id, None, 0, limits).await?;
                    }
                })
            }

            async fn set_model_limits(
                &self,
                owner: Owner,
                owner_id: i64,
                entries: &[ModelLimit],
            ) -> StoreResult<()> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    let current: Vec<Budget> = sqlx::query_as::<_, people::BudgetRow>(&people::budgets_of())
                        .bind(owner.as_str())
                        .bind(owner_id)
                        .fetch_all(&mut *tx)
                        .await?
                        .into_iter()
                        .map(Budget::from)
                        .filter(|b| b.model.is_some())
                        .collect();
                    for b in current
                        .iter()
                        .filter(|b| !entries.iter().any(|e| b.model.as_deref() == Some(&e.model)))
                    {
                        sqlx::query(people::DELETE_BUDGET).bind(b.id).execute(&mut *tx).await?;
                    }
                    for (n, entry) in entries.iter().enumerate() {
                        let position = n as i64 + 1;
                        match current.iter().find(|b| b.model.as_deref() == Some(&entry.model)) {
                            Some(b) => {
                                let query = sqlx::query(people::UPDATE_BUDGET).bind(b.id).bind(position);
                                Self::bind_limits(query, &entry.limits).execute(&mut *tx).await?;
                            }
                            None => {
                                Self::insert_budget(
                                    &mut tx,
                                    owner,
                                    owner_id,
                                    Some(&entry.model),
                                    position,
                                    &entry.limits,
                                )
                                .await?
                            }
                        }
                    }
                })
            }

            async fn all_budgets(&self) -> StoreResult<Vec<Budget>> {
                let rows = sqlx::query_as::<_, people::BudgetRow>(&people::all_budgets())
                    .fetch_all(self.reader()?)
                    .await?;
                Ok(rows.into_iter().map(Budget::from).collect())
            }

            async fn import_people(
                &self,
                teams: &[TeamRecord],
                users: &[UserRecord],
                budgets: &[Budget],
            ) -> StoreResult<()> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    for t in teams {
                        sqlx::query(people::IMPORT_TEAM)
                            .bind(t.id)
                            .bind(t.name.clone())
                            .bind(t.created_at)
                            .bind(t.updated_at)
                            .execute(&mut *tx)
                            .await?;
                    }
                    for u in users {
                        sqlx::query(people::IMPORT_USER)
                            .bind(u.id)
                            .bind(u.name.clone())
                            .bind(u.email.clone())
                            .bind(u.team_id)
                            .bind(u.created_at)
                            .bind(u.updated_at)
                            .execute(&mut *tx)
                            .await?;
                    }
                    for (n, b) in budgets.iter().enumerate() {
                        let c = &b.counters;
                        let query = sqlx::query(people::IMPORT_BUDGET)
                            .bind(b.id)
                            .bind(b.owner.as_str())
                            .bind(b.owner_id)
                            .bind(b.model.clone())
                            .bind(n as i64);
                        Self::bind_limits(query, &b.limits)
                            .bind(c.minute_start)
                            .bind(c.minute_end)
                            .bind(c.minute_requests)
                            .bind(c.minute_tokens)
                            .bind(c.day_start)
                            .bind(c.day_end)
                            .bind(c.day_requests)
                            .bind(c.day_tokens)
                            .bind(c.month_start)
                            .bind(c.month_end)
                            .bind(c.month_requests)
                            .bind(c.month_tokens)
                            .bind(c.total_requests)
                            .bind(c.total_tokens)
                            .execute(&mut *tx)
                            .await?;
                    }
                })
            }
        }
    };
}

pub(crate) use people_store;
