//! Storage faults made for real: a full disk (a small tmpfs), another
//! connection holding SQLite's write lock past the busy timeout, the database
//! file removed under the running gate. Each must fail closed (503, health
//! down with the reason) and, once the cause is gone, every write path works
//! again without a restart.

use crate::helpers::*;
use awc::http::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A small tmpfs, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (with the reason printed) where mounting is not permitted.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(SmallDisk { dir }),
            Ok(out) => {
                eprintln!("skipped: cannot mount a tmpfs: {}", String::from_utf8_lossy(&out.stderr).trim());
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk refuses more.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![7u8; 4096];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: the test's gate may still hold its files open.
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn sqlite_only() -> bool {
    if postgres_backend().is_some() {
        eprintln!("skipped: a SQLite file fault; PostgreSQL runs its own outage tests");
        return false;
    }
    true
}

async fn health(app: &TestApp) -> (StatusCode, Value) {
    let reply = app.get("/health", None).await;
    (reply.status, reply.json())
}

/// Polls `/health` until `done` holds of it, for up to `within`.
async fn health_until(app: &TestApp, within: Duration, done: impl Fn(StatusCode, &Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = health(app).await;
        if done(status, &body) {
            return body;
        }
        assert!(started.elapsed() < within, "health never became as expected: {status} {body}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every write path once: admin changes, admission and settlement, sessions,
/// settings, heartbeats. Each is expected to work.
async fn every_write_path_works(app: &TestApp, revoke: &Value, revoked_secret: &str) {
    let reply = app.admin("PUT", &format!("/api-keys/{}/deactivate", revoke["id"]), None).await;
    assert_eq!(reply.status, StatusCode::OK, "deactivate: {}", reply.text());
    assert_eq!(app.generate(revoked_secret, "llama3", false).await.status, StatusCode::UNAUTHORIZED);
    let (secret, created) = app.create_key(json!({"name": "after"})).await;
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK);
    assert_eq!(app.settled(&created["id"]).await["usage"]["day"]["requests"], 1, "admitted and settled");
    let store = &app.state.store;
    let now = app.state.clock.now().timestamp();
    store.revoke_session("fault-test-session", now + 60, now).await.expect("session write");
    assert!(store.is_session_revoked("fault-test-session").await.unwrap());
    store.put_setting("fault_test", "1").await.expect("settings write");
    store.heartbeat(&app.state.instance_id, now).await.expect("heartbeat");
    let (status, body) = health(app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["database"], "ok");
    assert!(body.get("database_error").is_none(), "{body}");
}

#[actix_web::test]
async fn a_full_disk_fails_writes_closed_and_every_write_path_recovers_once_space_is_back() {
    if !sqlite_only() {
        return;
    }
    let Some(disk) = SmallDisk::mount("2m") else { return };
    let url = format!("sqlite://{}", disk.path().join("gate.db").display());
    let app = spawn_app_with(Options { env: vec![("DATABASE_URL", url)], ..Options::default() }).await;
    let (revoked_secret, revoke) = app.create_key(json!({"name": "to-revoke"})).await;
    let (secret, user) = app.create_key(json!({"name": "user", "limits": {"max_concurrent": 1}})).await;
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK);
    app.settled(&user["id"]).await;

    let filler = disk.fill();
    let forwarded = app.mock.count();
    // Several writes, as an admin would retry: each fails, none wedges the next.
    for _ in 0..3 {
        let reply = app.admin("PUT", &format!("/api-keys/{}/deactivate", revoke["id"]), None).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text());
        let reply = app.admin("POST", "/api-keys", Some(json!({"name": "while-full"}))).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text());
        let reply = app.generate(&secret, "llama3", false).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "admission fails closed: {}", reply.text());
    }
    assert_eq!(app.mock.count(), forwarded, "nothing is forwarded without an admission");
    assert!(app.state.store.heartbeat(&app.state.instance_id, 0).await.is_err());
    let (status, body) = health(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["database"], "down");
    assert_eq!(body["database_error"]["operation"], "write", "{body}");
    assert_eq!(body["database_error"]["reason"], "the disk is full", "{body}");
    assert!(body["database_error"]["since"].is_string(), "{body}");
    assert!(!body.to_string().contains(&disk.path().display().to_string()), "no path in health: {body}");

    std::fs::remove_file(filler).unwrap();
    every_write_path_works(&app, &revoke, &revoked_secret).await;
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK, "no slot left held");
}

#[actix_web::test]
async fn a_write_lock_held_past_the_busy_timeout_gives_503_then_writes_work_again() {
    if !sqlite_only() {
        return;
    }
    let app =
        spawn_app_with(Options { env: vec![("DB_BUSY_TIMEOUT_MS", "300".into())], ..Options::default() })
            .await;
    let (revoked_secret, revoke) = app.create_key(json!({"name": "to-revoke"})).await;
    let (secret, _) = app.create_key(json!({"name": "user"})).await;

    let mut holder = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
    let reply = app.admin("PUT", &format!("/api-keys/{}/deactivate", revoke["id"]), None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text());
    let reply = app.generate(&secret, "llama3", false).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text());
    let (status, body) = health(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["database_error"]["operation"], "write", "{body}");
    assert_eq!(body["database_error"]["reason"], "the database is locked", "{body}");

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK);
    every_write_path_works(&app, &revoke, &revoked_secret).await;
}

#[actix_web::test]
async fn the_database_file_deleted_under_the_gate_is_noticed_and_refused() {
    if !sqlite_only() {
        return;
    }
    let app = spawn_app().await;
    let (secret, _) = app.create_key(json!({"name": "user"})).await;
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK);
    let path = app.database_url.strip_prefix("sqlite://").unwrap().to_owned();
    std::fs::remove_file(&path).unwrap();

    let body = health_until(&app, Duration::from_secs(5), |s, _| s == StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["database"], "down");
    assert_eq!(body["database_error"]["reason"], "the database file was deleted", "{body}");
    let forwarded = app.mock.count();
    let reply = app.generate(&secret, "llama3", false).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text());
    assert_eq!(app.mock.count(), forwarded);
    let reply = app.admin("POST", "/api-keys", Some(json!({"name": "lost"}))).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text());
    assert_eq!(app.admin("GET", "/api-keys", None).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!Path::new(&path).exists(), "the gate does not make a new, empty database in its place");
}

#[actix_web::test]
async fn the_database_file_replaced_under_the_gate_is_noticed_and_refused() {
    if !sqlite_only() {
        return;
    }
    let app = spawn_app().await;
    let (secret, _) = app.create_key(json!({"name": "user"})).await;
    let path = PathBuf::from(app.database_url.strip_prefix("sqlite://").unwrap());
    // A copy restored over it, as a backup tool would: a new file at the same path.
    let copy = path.with_extension("copy");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::rename(&copy, &path).unwrap();

    let body = health_until(&app, Duration::from_secs(5), |s, _| s == StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["database_error"]["reason"], "the database file was replaced", "{body}");
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::SERVICE_UNAVAILABLE);
}
