//! The steps the `Store` implementation is made of, shared by SQLite and
//! PostgreSQL like `sql_store!` itself: reading a key, one-statement key
//! changes, settling what dead processes left, and binding each statement's
//! parameters in the order its SQL numbers them.

/// Runs `$body` in a write transaction on `$tx`, commits, and reports the
/// outcome to the write health the backend keeps: every write goes through here.
macro_rules! write_tx {
    ($self:ident, $tx:ident, $body:block) => {{
        let result: StoreResult<_> = async {
            let mut writer = $self.writer().await?;
            let mut $tx = writer.begin().await?;
            let value = $body;
            $tx.commit().await?;
            Ok(value)
        }
        .await;
        $self.health.note(result)
    }};
}

pub(crate) use write_tx;

macro_rules! sql_steps {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn key_by_id<'e, E>(executor: E, id: i64) -> StoreResult<Option<KeyRecord>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let query = format!("SELECT {} FROM api_keys WHERE id = $1", sql::KEY_COLUMNS);
                let row = sqlx::query_as::<_, KeyRow>(&query).bind(id).fetch_optional(executor).await?;
                Ok(row.map(KeyRecord::from))
            }

            /// Runs a one-statement key change and returns the key as it is afterwards.
            async fn change_key<'q>(
                &self,
                id: i64,
                query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            ) -> StoreResult<Option<KeyRecord>> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    let changed = query.execute(&mut *tx).await?.rows_affected();
                    if changed == 0 {
                        None
                    } else {
                        Self::key_by_id(&mut *tx, id).await?
                    }
                })
            }

            /// Settles the reservations of the processes `whose` names, and
            /// forgets those processes, in one transaction.
            async fn settle_left_behind(
                &self,
                whose: super::sql_steps::LeftBehind<'_>,
                now: i64,
            ) -> StoreResult<u64> {
                use super::sql_steps::LeftBehind;
                $crate::store::sql_steps::write_tx!(self, tx, {
                    let left: Vec<(i64, i64, i64, i64)> = match whose {
                        LeftBehind::StaleBefore(t) => {
                            sqlx::query_as(sql::STALE_RESERVATIONS).bind(t).fetch_all(&mut *tx).await?
                        }
                        LeftBehind::Instance(id) => {
                            sqlx::query_as(sql::INSTANCE_RESERVATIONS).bind(id).fetch_all(&mut *tx).await?
                        }
                    };
                    let ids: Vec<i64> = left.iter().map(|r| r.0).collect();
                    Self::lock_budgets_of(&mut tx, ids).await?;
                    let settled = Self::settle_interrupted(&mut tx, left, now).await?;
                    match whose {
                        LeftBehind::StaleBefore(t) => {
                            sqlx::query(sql::DELETE_STALE_INSTANCES).bind(t).execute(&mut *tx).await?
                        }
                        LeftBehind::Instance(id) => {
                            sqlx::query(sql::REMOVE_INSTANCE).bind(id).execute(&mut *tx).await?
                        }
                    };
                    settled
                })
            }

            /// Settles reservations of processes that died mid-request: each is
            /// charged the prompt it had sent, marked estimated.
            async fn settle_interrupted(
                tx: &mut sqlx::Transaction<'_, $db>,
                reservations: Vec<(i64, i64, i64, i64)>,
                now: i64,
            ) -> StoreResult<u64> {
                let mut settled = 0;
                for (reservation_id, key_id, prompt_estimate, weighted_prompt) in reservations {
                    let s = Settlement {
                        reservation_id,
                        key_id,
                        prompt_tokens: prompt_estimate,
                        completion_tokens: 0,
                        estimated: true,
                        status: crate::domain::usage::Outcome::Interrupted.as_str(),
                        http_status: 0,
                        latency_ms: 0,
                        refund_request: false,
                        now,
                        weighted_tokens: weighted_prompt,
                        budgets: Vec::new(),
                        request_id: None,
                    };
                    let rows = Self::bind_settlement(sqlx::query(Self::settle_sql()), &s)
                        .fetch_all(&mut **tx)
                        .await?;
                    settled += u64::from(!rows.is_empty());
                }
                Ok(settled)
            }

            /// Binds an admission's parameters, numbered as the one-job admission
            /// statements expect (`pg_batch` binds the same values as arrays).
            pub(crate) fn bind_admission<'q>(
                query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
                a: &'q Admission,
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
                let w = &a.windows;
                query
                    .bind(a.key_id)
                    .bind(w.minute.start)
                    .bind(w.day.start)
                    .bind(w.month.start)
                    .bind(a.reserve_tokens)
                    .bind(&a.key_hash)
                    .bind(w.now)
                    .bind(&a.instance_id)
                    .bind(a.prompt_estimate)
                    .bind(&a.model)
                    .bind(a.route)
                    .bind(w.minute.end)
                    .bind(w.day.end)
                    .bind(w.month.end)
                    .bind(i64::from(a.counts_in_request_quotas))
                    .bind(a.budgets.first().copied())
                    .bind(a.budgets.get(1).copied())
                    .bind(a.budgets.get(2).copied())
                    .bind(a.budgets.get(3).copied())
                    .bind(a.budgets.get(4).copied())
                    .bind(a.budgets.len() as i64)
                    .bind(a.user_id)
                    .bind(a.team_id)
                    .bind(a.weighted_prompt)
            }

            /// Binds a settlement's parameters, numbered as the settlement statements expect.
            pub(crate) fn bind_settlement<'q>(
                query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
                s: &'q Settlement,
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
                query
                    .bind(s.reservation_id)
                    .bind(s.now)
                    .bind(s.status)
                    .bind(i64::from(s.http_status))
                    .bind(s.prompt_tokens)
                    .bind(s.completion_tokens)
                    .bind(s.estimated)
                    .bind(s.latency_ms)
                    .bind(i64::from(s.refund_request))
                    .bind(s.weighted_tokens)
                    .bind(s.request_id.as_deref())
            }

            pub(crate) fn bind_fields<'q>(
                query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
                f: &'q KeyFields,
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
                // The limit columns are in `LimitKind::ALL`'s order.
                let query = $crate::domain::limits::LimitKind::ALL
                    .into_iter()
                    .fold(query, |query, kind| query.bind(f.limits.get(kind)));
                query
                    .bind(f.clamps.max_num_ctx)
                    .bind(f.clamps.max_output_tokens)
                    .bind(f.clamps.max_images)
                    .bind(f.clamps.allow_keep_alive_extremes)
                    .bind(f.aliases.as_ref().map(|a| a.to_db()))
            }
        }
    };
}

pub(crate) use sql_steps;

/// Whose reservations are settled as interrupted.
#[derive(Clone, Copy)]
pub(crate) enum LeftBehind<'a> {
    /// Every process whose heartbeat is older than this (Unix seconds).
    StaleBefore(i64),
    /// One process, by its instance id.
    Instance(&'a str),
}
