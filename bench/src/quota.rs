//! Quota transactions per second: admissions and settlements straight
//! against the store, without HTTP, as the proxy issues them. Each task
//! admits a request on one shared key (limited, so every admission checks
//! every limit) and settles it.

use ollama_gate::admin::keys::{new_fields, CreateKey, KeyOps};
use ollama_gate::config::DatabaseUrl;
use ollama_gate::domain::limits::Limits;
use ollama_gate::domain::windows::Windows;
use ollama_gate::store::{connect, Admission, Admitted, Settlement, StoreOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Admitted-and-settled requests per second; each is two quota transactions.
pub async fn requests_per_second(url: &str, concurrency: usize, duration: Duration) -> anyhow::Result<f64> {
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
    let input = CreateKey { name: "tps".into(), limits: Some(limits), ..CreateKey::default() };
    let (_, key) = KeyOps::offline(store.as_ref(), 0).create(new_fields(input, chrono_tz::UTC)?).await?;
    let key = Arc::new(key);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|i| {
            let (store, key, done) = (store.clone(), key.clone(), done.clone());
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
                        model: "llama3".into(),
                        route: "/api/generate",
                        instance_id: instance.to_string(),
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
