//! Quota transactions per second: admissions and settlements straight against
//! the store, without HTTP, as the proxy issues them.
//!
//!   cargo run --release --example quota_tps -- sqlite:///tmp/tps.db
//!   cargo run --release --example quota_tps -- postgres://postgres@127.0.0.1:54329/tps --concurrency 32
//!
//! Each of `--concurrency` tasks admits a request on one shared key (limited,
//! so every admission checks every limit) and settles it, for `--seconds`.

use ollama_gate::admin::keys::{create, new_fields, CreateKey};
use ollama_gate::config::DatabaseUrl;
use ollama_gate::domain::limits::Limits;
use ollama_gate::domain::windows::Windows;
use ollama_gate::store::{connect, Admission, Admitted, Settlement, StoreOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args.first().cloned().unwrap_or_else(|| "sqlite:///tmp/ollama-gate-tps.db".into());
    let concurrency = arg(&args, "--concurrency", 32);
    let seconds = arg(&args, "--seconds", 5);
    let store = connect(
        &DatabaseUrl::parse(&url).map_err(anyhow::Error::msg)?,
        &StoreOptions { max_connections: 16, busy_timeout: Duration::from_secs(5) },
    )
    .await?;
    let limits = Limits {
        requests_per_minute: Some(i64::MAX / 4),
        daily_requests: Some(i64::MAX / 4),
        daily_tokens: Some(i64::MAX / 4),
        monthly_tokens: Some(i64::MAX / 4),
        ..Limits::default()
    };
    let input = CreateKey { name: "tps".into(), limits: Some(limits), ..CreateKey::default() };
    let (_, key) =
        create(store.as_ref(), new_fields(input, chrono_tz::UTC).map_err(anyhow::Error::msg)?, 0).await?;
    let key = Arc::new(key);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|i| {
            let (store, key, done) = (store.clone(), key.clone(), done.clone());
            tokio::spawn(async move {
                let instance = format!("tps-{i}");
                while Instant::now() < deadline {
                    let now = chrono::Utc::now();
                    let admission = Admission {
                        key_id: key.id,
                        key_hash: &key.key_hash,
                        windows: Windows::at(now, chrono_tz::UTC),
                        reserve_tokens: 100,
                        prompt_estimate: 20,
                        model: "llama3",
                        route: "/api/generate",
                        instance_id: &instance,
                    };
                    let Ok(Admitted::Yes { reservation_id, .. }) = store.admit(&admission).await else {
                        panic!("admission failed");
                    };
                    let settlement = Settlement {
                        reservation_id,
                        prompt_tokens: 20,
                        completion_tokens: 60,
                        estimated: false,
                        status: "ok",
                        http_status: 200,
                        latency_ms: 1,
                        refund_request: false,
                        now: now.timestamp(),
                    };
                    store.settle(&settlement).await.expect("settlement");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "{url}: {n} requests admitted and settled in {elapsed:.1} s with {concurrency} tasks: \
         {:.0} requests/s ({:.0} quota transactions/s)",
        n as f64 / elapsed,
        2.0 * n as f64 / elapsed
    );
    Ok(())
}
