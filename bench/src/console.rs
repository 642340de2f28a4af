//! The console on a large usage log: 200,000 rows seeded straight into the
//! SQLite file (one transaction) before the gate starts, then the dashboard,
//! the usage page, its daily totals and the CSV export timed over HTTP as a
//! logged-in browser asks for them. Target: under 200 ms each, the CSV's
//! first bytes included (its whole body is reported, not held to it).
//!
//!   cargo run --release -p ollama-gate-bench -- console
//!   cargo run --release -p ollama-gate-bench -- console --rows 50000 --gate-bin target/debug/ollama-gate
//!   cargo run --release -p ollama-gate-bench -- console --days 1    # every row today: the worst case

use crate::procs::{self, GateSetup, ADMIN_PASSWORD};
use anyhow::{bail, Context};
use ollama_gate::admin::keys::{new_fields, CreateKey, KeyOps};
use ollama_gate::config::DatabaseUrl;
use ollama_gate::store::{connect, StoreOptions, UsageRow};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// More models than the chart draws on their own, so "other" is summed too.
const MODELS: [&str; 8] = [
    "llama3:latest",
    "qwen3:8b",
    "mistral:7b",
    "gemma3:4b",
    "phi4:14b",
    "deepseek-r1:8b",
    "llava:7b",
    "tinyllama",
];
const TARGET_MS: f64 = 200.0;

pub async fn run(gate_bin: PathBuf, rows: i64, rounds: usize, days: i64) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let database_url = format!("sqlite://{}", dir.join("gate.db").display());
    let seeded = Instant::now();
    seed(&database_url, rows, days).await?;
    println!("seeded {rows} usage rows over {days} days in {:.1} s", seeded.elapsed().as_secs_f64());
    let (_mock, upstream) = procs::start_mock()?;
    let setup = GateSetup { bin: gate_bin, dir: dir.clone(), database_url, upstream, upstream_slots: None };
    let mut gate = procs::start_gate(&setup, "gate.log").await?;
    let cookie = log_in(gate.admin).await?;
    println!("{:<24} {:>12} {:>12} {:>12}", "page", "first byte", "whole", "bytes");
    let mut over = Vec::new();
    for path in ["/", "/usage", "/usage?group_by=day", "/usage.csv"] {
        let mut first = Vec::new();
        let mut whole = Vec::new();
        let mut size = 0;
        for _ in 0..rounds {
            let r = timed_get(gate.admin, path, &cookie).await?;
            if r.status != 200 {
                bail!("GET {path} answered {}", r.status);
            }
            first.push(r.first_byte);
            whole.push(r.whole);
            size = r.bytes;
        }
        let (first, whole) = (median(first), median(whole));
        println!("{path:<24} {first:>9.1} ms {whole:>9.1} ms {size:>12}");
        // The CSV is held to its first bytes: its whole body grows with the log.
        let measured = if path == "/usage.csv" { first } else { whole };
        if measured > TARGET_MS {
            over.push(format!("{path} took {measured:.1} ms"));
        }
    }
    gate.proc.stop();
    let _ = std::fs::remove_dir_all(&dir);
    if !over.is_empty() {
        println!("over the {TARGET_MS} ms target: {}", over.join(", "));
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("ollama-gate-bench-console-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("logs"))?;
    Ok(dir)
}

/// One key, and `rows` requests on it over the last `days` days, newest
/// last, in one transaction.
async fn seed(url: &str, rows: i64, days: i64) -> anyhow::Result<()> {
    let store = connect(
        &DatabaseUrl::parse(url).map_err(anyhow::Error::msg)?,
        &StoreOptions { max_connections: 4, busy_timeout: Duration::from_secs(5) },
    )
    .await?;
    let ops = KeyOps::offline(store.as_ref(), 0);
    let (_, key) = ops
        .create(new_fields(CreateKey { name: "bench".into(), ..CreateKey::default() }, chrono_tz::UTC)?)
        .await?;
    let now = chrono::Utc::now().timestamp();
    let span = days * 86_400;
    let batch: Vec<UsageRow> = (1..=rows)
        .map(|i| {
            let model = MODELS[(i as usize * 7 + i as usize / 13) % MODELS.len()];
            let (prompt, completion) = (20 + i % 400, 50 + i % 900);
            UsageRow {
                id: i,
                created_at: now - (rows - i) * span / rows.max(1),
                key_id: key.id,
                key_name: "bench".into(),
                model: model.into(),
                route: "/api/chat".into(),
                status: if i % 50 == 0 { "client_aborted".into() } else { "ok".into() },
                http_status: 200,
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: prompt + completion,
                estimated: false,
                latency_ms: 100 + i % 3000,
                user_id: None,
                team_id: None,
                weighted_tokens: prompt + completion,
                request_id: Some(format!("bench-{i:08}")),
            }
        })
        .collect();
    store.import_usage(&batch).await?;
    store.finish_import().await?;
    Ok(())
}

struct Timed {
    status: u16,
    first_byte: f64,
    whole: f64,
    bytes: usize,
    head: String,
    body: Vec<u8>,
}

/// One request on a fresh connection, read to its end (`Connection: close`).
async fn exchange(admin: SocketAddr, request: String) -> anyhow::Result<Timed> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(admin).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut data = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    let mut first_byte = None;
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        first_byte.get_or_insert_with(|| started.elapsed());
        data.extend_from_slice(&chunk[..n]);
    }
    let whole = started.elapsed();
    let end = memchr::memmem::find(&data, b"\r\n\r\n").context("a response without a head")?;
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).context("a status line")?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(Timed {
        status,
        first_byte: ms(first_byte.unwrap_or(whole)),
        whole: ms(whole),
        bytes: data.len() - end - 4,
        head,
        body: data[end + 4..].to_vec(),
    })
}

async fn timed_get(admin: SocketAddr, path: &str, cookie: &str) -> anyhow::Result<Timed> {
    exchange(
        admin,
        format!("GET {path} HTTP/1.1\r\nHost: {admin}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    )
    .await
}

fn set_cookie(head: &str) -> Option<String> {
    head.lines()
        .find_map(|l| l.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie")))
        .and_then(|(_, v)| v.trim().split(';').next().map(str::to_owned))
}

/// The login form's session and CSRF token, then the logged-in session.
async fn log_in(admin: SocketAddr) -> anyhow::Result<String> {
    let form =
        exchange(admin, format!("GET /login HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n")).await?;
    let cookie = set_cookie(&form.head).context("the login form set no cookie")?;
    let body = String::from_utf8_lossy(&form.body);
    let marker = "name=\"csrf_token\" value=\"";
    let at = body.find(marker).context("no CSRF token on the login form")? + marker.len();
    let csrf = &body[at..at + body[at..].find('"').context("an unterminated CSRF token")?];
    let fields = format!("csrf_token={csrf}&password={ADMIN_PASSWORD}");
    let post = format!(
        "POST /login HTTP/1.1\r\nHost: {admin}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{fields}",
        fields.len()
    );
    let done = exchange(admin, post).await?;
    if done.status != 303 {
        bail!("logging in answered {}", done.status);
    }
    set_cookie(&done.head).context("logging in set no cookie")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
