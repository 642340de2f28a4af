//! The `Store` implementation shared by SQLite and PostgreSQL.
//!
//! The two differ only in how they connect and how a write transaction begins
//! (`BEGIN IMMEDIATE` on SQLite, a plain `BEGIN` on PostgreSQL, whose row locks
//! serialise admissions on one key), and in how admission and settlement, the
//! two writes on every request, reach the database in one trip each. Everything
//! else is the same statements, bound the same way, so it is written once here.
//! A backend provides `fn reader(&self)` (a pool, or an error when the database
//! is known to be unusable), `check_file_now`, `health` (a `WriteHealth` that
//! every write reports to), `async fn writer(&self)`, a connection to write on
//! whose `begin()` starts the write transaction, `admit_once`, `settle_once`
//! and `settle_sql` (settlement inside a transaction).

macro_rules! sql_store {
    ($store:ty, $db:ty) => {
        $crate::store::sql_steps::sql_steps!($store, $db);
        $crate::store::people::people_store!($store, $db);
        $crate::store::audit::audit_store!($store, $db);
        $crate::store::refusals::refusals_store!($store, $db);
        $crate::store::alerts::alerts_store!($store, $db);
        $crate::store::public_keys::public_keys_store!($store, $db);

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn ping(&self) -> StoreResult<()> {
                self.check_file_now()?;
                sqlx::query("SELECT 1").execute(self.reader()?).await?;
                Ok(())
            }

            fn write_failure(&self) -> Option<$crate::store::WriteFailure> {
                self.health.failure()
            }

            fn observe_batches(&self, observer: $crate::store::BatchObserver) {
                self.group.observe(observer)
            }

            async fn create_key(&self, key: &NewKey) -> StoreResult<KeyRecord> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    use sqlx::Row;
                    let f = &key.fields;
                    let query = sqlx::query(sql::INSERT_KEY)
                        .bind(&f.name)
                        .bind(&f.owner)
                        .bind(&key.key_hash)
                        .bind(&key.key_hint)
                        .bind(f.expires_at)
                        .bind(key.now)
                        .bind(f.scopes.to_db())
                        .bind(f.models.as_ref().map(|m| m.to_db()));
                    let id: i64 = Self::bind_fields(query, f)
                        .bind(f.user_id)
                        .bind(f.priority)
                        .bind(f.allowed_ips.as_ref().map(|a| a.to_db()))
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get(0)?;
                    let record = Self::key_by_id(&mut *tx, id).await?.ok_or(sqlx::Error::RowNotFound)?;
                    record
                })
            }

            async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
                let query = format!("SELECT {} FROM api_keys ORDER BY id", sql::KEY_COLUMNS);
                let rows = sqlx::query_as::<_, KeyRow>(&query).fetch_all(self.reader()?).await?;
                Ok(rows.into_iter().map(KeyRecord::from).collect())
            }

            async fn get_key(&self, id: i64) -> StoreResult<Option<KeyRecord>> {
                self.with_levels(Self::key_by_id(self.reader()?, id).await?).await
            }

            async fn find_key_by_hash(&self, hash: &str, now: i64) -> StoreResult<Option<KeyRecord>> {
                let query = format!("SELECT {} FROM api_keys {}", sql::KEY_COLUMNS, sql::KEY_BY_SECRET);
                let row = sqlx::query_as::<_, KeyRow>(&query)
                    .bind(hash)
                    .bind(now)
                    .fetch_optional(self.reader()?)
                    .await?;
                self.with_levels(row.map(KeyRecord::from)).await
            }

            async fn save_key_fields(
                &self,
                id: i64,
                f: &KeyFields,
                now: i64,
            ) -> StoreResult<Option<KeyRecord>> {
                let query = sqlx::query(sql::UPDATE_KEY_FIELDS)
                    .bind(id)
                    .bind(&f.name)
                    .bind(&f.owner)
                    .bind(f.expires_at)
                    .bind(f.scopes.to_db())
                    .bind(f.models.as_ref().map(|m| m.to_db()));
                self.change_key(
                    id,
                    Self::bind_fields(query, f)
                        .bind(now)
                        .bind(f.user_id)
                        .bind(f.priority)
                        .bind(f.allowed_ips.as_ref().map(|a| a.to_db())),
                )
                .await
            }

            async fn set_active(&self, id: i64, active: bool, now: i64) -> StoreResult<Option<KeyRecord>> {
                self.change_key(id, sqlx::query(sql::SET_ACTIVE).bind(id).bind(active).bind(now)).await
            }

            async fn rotate_key(
                &self,
                id: i64,
                hash: &str,
                hint: &str,
                now: i64,
                previous_until: Option<i64>,
            ) -> StoreResult<Option<KeyRecord>> {
                let query = sqlx::query(sql::ROTATE_KEY)
                    .bind(id)
                    .bind(hash.to_owned())
                    .bind(hint.to_owned())
                    .bind(now)
                    .bind(previous_until);
                self.change_key(id, query).await
            }

            async fn end_grace(&self, id: i64, now: i64) -> StoreResult<Option<KeyRecord>> {
                self.change_key(id, sqlx::query(sql::END_GRACE).bind(id).bind(now)).await
            }

            async fn delete_key(&self, id: i64) -> StoreResult<bool> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    let deleted =
                        sqlx::query(sql::DELETE_KEY).bind(id).execute(&mut *tx).await?.rows_affected();
                    sqlx::query($crate::store::public_keys::DELETE_OF_KEY).bind(id).execute(&mut *tx).await?;
                    deleted > 0
                })
            }

            async fn admit(&self, a: &Admission) -> StoreResult<Admitted> {
                let admitted = self.health.note(self.admit_once(a).await)?;
                if let Some((counters, reservation_id)) = admitted {
                    return Ok(Admitted::Yes { reservation_id, usage: counters.into() });
                }
                // Nothing changed; read the key to say why. Another request may
                // have changed it since, so the reason given is the one that holds now.
                let w = &a.windows;
                Ok(match self.get_key(a.key_id).await? {
                    Some(k) if k.active && !k.is_expired(w.now) && k.key_hash == a.key_hash => {
                        Admitted::Refused(Box::new(k))
                    }
                    _ => Admitted::KeyGone,
                })
            }

            async fn settle(&self, s: &Settlement) -> StoreResult<bool> {
                self.health.note(self.settle_once(s).await)
            }

            async fn settle_stale(&self, stale_before: i64, now: i64) -> StoreResult<u64> {
                self.settle_left_behind(super::sql_steps::LeftBehind::StaleBefore(stale_before), now).await
            }

            async fn settle_instance(&self, instance_id: &str, now: i64) -> StoreResult<u64> {
                self.settle_left_behind(super::sql_steps::LeftBehind::Instance(instance_id), now).await
            }

            async fn instances(&self) -> StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar(sql::LIST_INSTANCES).fetch_all(self.reader()?).await?)
            }

            async fn heartbeat(&self, instance_id: &str, now: i64) -> StoreResult<()> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query(sql::HEARTBEAT).bind(instance_id).bind(now).execute(&mut *tx).await?;
                })
            }

            async fn remove_instance(&self, instance_id: &str) -> StoreResult<()> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query(sql::REMOVE_INSTANCE).bind(instance_id).execute(&mut *tx).await?;
                })
            }

            async fn usage_rows(&self, f: &UsageFilter) -> StoreResult<Vec<UsageRow>> {
                let rows = sqlx::query_as::<_, UsageRow>(&sql::usage_rows())
                    .bind(f.key_id)
                    .bind(&f.model)
                    .bind(&f.status)
                    .bind(f.from)
                    .bind(f.to)
                    .bind(f.user_id)
                    .bind(f.team_id)
                    .bind(f.limit)
                    .bind(f.offset)
                    .bind(f.before_id)
                    .fetch_all(self.reader()?)
                    .await?;
                Ok(rows)
            }

            async fn usage_buckets(
                &self,
                f: &UsageFilter,
                bucket_seconds: i64,
                by: $crate::store::BucketBy,
            ) -> StoreResult<Vec<UsageBucket>> {
                let rows = sqlx::query_as::<_, UsageBucket>(&sql::usage_buckets(by))
                    .bind(f.key_id)
                    .bind(&f.model)
                    .bind(&f.status)
                    .bind(f.from)
                    .bind(f.to)
                    .bind(f.user_id)
                    .bind(f.team_id)
                    .bind(bucket_seconds.max(1))
                    .fetch_all(self.reader()?)
                    .await?;
                Ok(rows)
            }

            async fn model_quarters(&self, from: i64) -> StoreResult<Vec<$crate::store::ModelBucket>> {
                let rows = sqlx::query_as::<_, $crate::store::ModelBucket>(sql::MODEL_QUARTERS)
                    .bind(from)
                    .fetch_all(self.reader()?)
                    .await?;
                Ok(rows)
            }

            async fn import_key(&self, k: &KeyRecord) -> StoreResult<()> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    let f = &k.fields;
                    let c = &k.counters;
                    let query = sqlx::query(sql::IMPORT_KEY)
                        .bind(k.id)
                        .bind(&f.name)
                        .bind(&f.owner)
                        .bind(&k.key_hash)
                        .bind(&k.key_hint)
                        .bind(k.active)
                        .bind(f.expires_at)
                        .bind(k.created_at)
                        .bind(k.updated_at)
                        .bind(f.scopes.to_db())
                        .bind(f.models.as_ref().map(|m| m.to_db()));
                    Self::bind_fields(query, f)
                        .bind(c.minute_start)
                        .bind(c.minute_requests)
                        .bind(c.minute_tokens)
                        .bind(c.day_start)
                        .bind(c.day_requests)
                        .bind(c.day_tokens)
                        .bind(c.month_start)
                        .bind(c.month_requests)
                        .bind(c.month_tokens)
                        .bind(c.total_requests)
                        .bind(c.total_tokens)
                        .bind(c.minute_end)
                        .bind(c.day_end)
                        .bind(c.month_end)
                        .bind(f.user_id)
                        .bind(f.priority)
                        .bind(f.allowed_ips.as_ref().map(|a| a.to_db()))
                        .bind(k.previous.as_ref().map(|p| p.key_hash.clone()))
                        .bind(k.previous.as_ref().map(|p| p.key_hint.clone()))
                        .bind(k.previous.as_ref().map(|p| p.valid_until))
                        .execute(&mut *tx)
                        .await?;
                })
            }

            async fn usage_after(&self, after_id: i64, limit: i64) -> StoreResult<Vec<UsageRow>> {
                Ok(sqlx::query_as::<_, UsageRow>(&sql::usage_after())
                    .bind(after_id)
                    .bind(limit)
                    .fetch_all(self.reader()?)
                    .await?)
            }

            async fn import_usage(&self, rows: &[UsageRow]) -> StoreResult<()> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    let statement = sql::import_usage();
                    for r in rows {
                        sqlx::query(&statement)
                            .bind(r.id)
                            .bind(r.created_at)
                            .bind(r.key_id)
                            .bind(&r.key_name)
                            .bind(&r.model)
                            .bind(&r.route)
                            .bind(&r.status)
                            .bind(r.http_status)
                            .bind(r.prompt_tokens)
                            .bind(r.completion_tokens)
                            .bind(r.total_tokens)
                            .bind(r.estimated)
                            .bind(r.latency_ms)
                            .bind(r.user_id)
                            .bind(r.team_id)
                            .bind(r.weighted_tokens)
                            .bind(&r.request_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                })
            }

            async fn all_settings(&self) -> StoreResult<Vec<(String, String)>> {
                Ok(sqlx::query_as(sql::ALL_SETTINGS).fetch_all(self.reader()?).await?)
            }

            async fn finish_import(&self) -> StoreResult<()> {
                self.reset_sequences().await
            }

            async fn is_empty(&self) -> StoreResult<bool> {
                let rows: i64 = sqlx::query_scalar(sql::COUNT_ROWS).fetch_one(self.reader()?).await?;
                Ok(rows == 0)
            }

            async fn revoke_session(&self, id: &str, expires_at: i64, now: i64) -> StoreResult<()> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query(sql::FORGET_EXPIRED_REVOCATIONS).bind(now).execute(&mut *tx).await?;
                    sqlx::query(sql::REVOKE_SESSION).bind(id).bind(expires_at).execute(&mut *tx).await?;
                })
            }

            async fn is_session_revoked(&self, id: &str) -> StoreResult<bool> {
                let n: i64 =
                    sqlx::query_scalar(sql::IS_SESSION_REVOKED).bind(id).fetch_one(self.reader()?).await?;
                Ok(n > 0)
            }

            async fn get_setting(&self, name: &str) -> StoreResult<Option<String>> {
                Ok(sqlx::query_scalar(sql::GET_SETTING).bind(name).fetch_optional(self.reader()?).await?)
            }

            async fn put_setting(&self, name: &str, value: &str) -> StoreResult<()> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query(sql::PUT_SETTING).bind(name).bind(value).execute(&mut *tx).await?;
                })
            }

            async fn init_setting(&self, name: &str, value: &str) -> StoreResult<String> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query(sql::INIT_SETTING).bind(name).bind(value).execute(&mut *tx).await?;
                    let stored: String =
                        sqlx::query_scalar(sql::GET_SETTING).bind(name).fetch_one(&mut *tx).await?;
                    stored
                })
            }
        }
    };
}

pub(crate) use sql_store;
