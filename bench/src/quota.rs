//! Quota transactions per second: admissions and settlements straight
//! against the store, without HTTP, as the proxy issues them. Each task
//! admits a request on one shared key (limited, so every admission checks
//! every limit) and settles it. `Level` says how many levels the key's
//! requests are counted in besides its own row: its user, the user's team,
//! and for each of the three an entry for the model.

use ollama_gate::admin::keys::{new_fields, CreateKey, KeyOps};
use ollama_gate::admin::people::{CreateTeam, CreateUser, PeopleOps};
use ollama_gate::config::DatabaseUrl;
use ollama_gate::domain::limits::Limits;
use ollama_gate::domain::people::ModelLimit;
use ollama_gate::domain::windows::Windows;
use ollama_gate::store::{connect, Admission, Admitted, Settlement, StoreOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the bench key's requests are counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Level {
    /// The key's own row only.
    Key,
    /// The key and its user.
    User,
    /// The key, its user and the user's team.
    Team,
    /// All three, each with a `model_limits` entry for the model: six rows.
    Models,
}

/// Admitted-and-settled requests per second; each is two quota transactions.
pub async fn requests_per_second(
    url: &str,
    concurrency: usize,
    duration: Duration,
    level: Level,
) -> anyhow::Result<f64> {
    let store = connect(
        &DatabaseUrl::parse(url).map_err(anyhow::Error::msg)?,
        &StoreOptions { max_connections: 16, busy_timeout: Duration::from_secs(5) },
    )
    .await?;
    let big = Some(i64::MAX / 4);
    let limits = Limits {
        requests_per_minute: big,
        daily_requests: big,
        daily_tokens: big,
        monthly_tokens: big,
        ..Limits::default()
    };
    let entry = || Some(vec![ModelLimit { model: "llama3*".into(), limits }]);
    let with_models = level == Level::Models;
    let people = PeopleOps::offline(store.as_ref(), 0);
    // Names are unique: a database may be measured again.
    let tag = format!("{}-{}", std::process::id(), chrono::Utc::now().timestamp_micros());
    let team_id = match level {
        Level::Team | Level::Models => Some(
            people
                .create_team(CreateTeam {
                    name: format!("tps {tag}"),
                    limits: Some(limits),
                    model_limits: if with_models { entry() } else { None },
                    alerts: None,
                })
                .await?
                .id,
        ),
        _ => None,
    };
    let user_id = match level {
        Level::Key => None,
        _ => Some(
            people
                .create_user(CreateUser {
                    name: format!("tps {tag}"),
                    team_id,
                    limits: Some(limits),
                    model_limits: if with_models { entry() } else { None },
                    ..CreateUser::default()
                })
                .await?
                .id,
        ),
    };
    let input = CreateKey { name: "tps".into(), limits: Some(limits), user_id, ..CreateKey::default() };
    let ops = KeyOps::offline(store.as_ref(), 0);
    let (_, mut key) = ops.create(new_fields(input, chrono_tz::UTC)?).await?;
    if with_models {
        key = ops.set_model_limits(key.id, &entry().unwrap_or_default()).await?;
    }
    let mut budgets: Vec<i64> = key
        .scopes("llama3:latest", &Windows::at(chrono::Utc::now(), chrono_tz::UTC))
        .iter()
        .filter_map(|s| s.budget_id)
        .collect();
    budgets.sort_unstable();
    let expected = match level {
        Level::Key => 0,
        Level::User => 1,
        Level::Team => 2,
        Level::Models => 5,
    };
    anyhow::ensure!(
        budgets.len() == expected,
        "the bench key counts in {} budget rows, not {expected}",
        budgets.len()
    );
    let (user, team) = (key.user.as_ref().map(|u| u.id), key.team.as_ref().map(|t| t.id));
    let key = Arc::new(key);
    let budgets = Arc::new(budgets);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|i| {
            let (store, key, done, budgets) = (store.clone(), key.clone(), done.clone(), budgets.clone());
            tokio::spawn(async move {
                let instance = format!("tps-{i}");
                while Instant::now() < deadline {
                    let now = chrono::Utc::now();
                    let admission = Admission {
                        key_id: key.id,
                        key_hash: key.key_hash.clone(),
                        windows: Windows::at(now, chrono_tz::UTC),
                        counts_in_request_quotas: true,
                        reserve_tokens: 100,
                        prompt_estimate: 20,
                        model: "llama3:latest".into(),
                        route: "/api/generate",
                        instance_id: instance.to_string(),
                        budgets: budgets.to_vec(),
                        user_id: user,
                        team_id: team,
                        weighted_prompt: 20,
                    };
                    let Admitted::Yes { reservation_id, .. } = store.admit(&admission).await? else {
                        anyhow::bail!("the bench key was refused");
                    };
                    let settlement = Settlement {
                        reservation_id,
                        key_id: key.id,
                        prompt_tokens: 20,
                        completion_tokens: 60,
                        estimated: false,
                        status: "ok",
                        http_status: 200,
                        latency_ms: 1,
                        refund_request: false,
                        now: now.timestamp(),
                        weighted_tokens: 80,
                        budgets: budgets.to_vec(),
                        // As long as a generated one, as the proxy's settlements write.
                        request_id: Some(format!("{reservation_id:032x}")),
                    };
                    store.settle(&settlement).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}
