//! Quota windows only move forward: an admission carrying an older window, a
//! body that took minutes to arrive, or a change of `APP_TZ` never moves a
//! window back or hands out fresh counters before the open window has ended.

use crate::helpers::*;
use awc::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use ollama_gate::clock::ManualClock;
use ollama_gate::domain::windows::Windows;
use ollama_gate::store::{Admission, Admitted, Counters, Settlement};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn utc_windows(s: &str) -> Windows {
    Windows::at(at(s), chrono_tz::UTC)
}

async fn app_at(time: &str, zone: &str, database_url: Option<&str>) -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(at(time)));
    let mut env = vec![("APP_TZ", zone.to_owned())];
    if let Some(url) = database_url {
        env.push(("DATABASE_URL", url.to_owned()));
    }
    let app = spawn_app_with(Options { env, clock: Some(clock.clone()), ..Options::default() }).await;
    (app, clock)
}

/// Admissions made straight on the store, as a replica or a slow request would.
struct Admitter<'a> {
    app: &'a TestApp,
    key_id: i64,
    key_hash: String,
}

impl<'a> Admitter<'a> {
    async fn new(app: &'a TestApp, key: &Value) -> Admitter<'a> {
        let key_id = key["id"].as_i64().unwrap();
        let key_hash = app.state.store.get_key(key_id).await.unwrap().unwrap().key_hash;
        Admitter { app, key_id, key_hash }
    }

    async fn admit(&self, windows: Windows, counts_in_request_quotas: bool) -> Admitted {
        let admission = Admission {
            key_id: self.key_id,
            key_hash: self.key_hash.clone(),
            windows,
            counts_in_request_quotas,
            reserve_tokens: 10,
            prompt_estimate: 4,
            model: "llama3".into(),
            route: "/api/generate",
            instance_id: self.app.state.instance_id.to_string(),
            budgets: vec![],
            user_id: None,
            team_id: None,
            weighted_prompt: 4,
        };
        self.app.state.store.admit(&admission).await.unwrap()
    }

    async fn settle(&self, reservation_id: i64, tokens: i64, refund_request: bool) {
        let settlement = Settlement {
            reservation_id,
            key_id: self.key_id,
            prompt_tokens: tokens,
            completion_tokens: 0,
            estimated: false,
            status: "ok",
            http_status: 200,
            latency_ms: 1,
            refund_request,
            now: self.app.state.clock.now().timestamp(),
            weighted_tokens: tokens,
            budgets: vec![],
            request_id: None,
        };
        assert!(self.app.state.store.settle(&settlement).await.unwrap());
    }

    async fn counters(&self) -> Counters {
        self.app.state.store.get_key(self.key_id).await.unwrap().unwrap().counters
    }

    /// Requests counted per minute, day, month and lifetime, and in flight.
    async fn requests(&self) -> [i64; 5] {
        let c = self.counters().await;
        [c.minute_requests, c.day_requests, c.month_requests, c.total_requests, c.in_flight]
    }
}

fn admitted(a: Admitted) -> (i64, ollama_gate::domain::limits::Usage) {
    match a {
        Admitted::Yes { reservation_id, usage } => (reservation_id, usage),
        other => panic!("expected an admission, got {other:?}"),
    }
}

#[actix_web::test]
async fn admissions_with_windows_a_minute_a_day_or_a_month_old_never_move_a_window_back() {
    let now = "2026-05-01T00:00:30Z";
    let (app, _clock) = app_at(now, "UTC", None).await;
    let (_, key) = app.create_key(json!({"name": "replicas", "limits": {"daily_requests": 3}})).await;
    let store = Admitter::new(&app, &key).await;
    let current = utc_windows(now);
    admitted(store.admit(current, true).await);

    // A minute, a day and a month before: each older in every window.
    let mut reservations = Vec::new();
    for (n, older) in ["2026-04-30T23:59:30Z", "2026-04-30T00:00:30Z"].into_iter().enumerate() {
        let (reservation, usage) = admitted(store.admit(utc_windows(older), true).await);
        reservations.push(reservation);
        let expected = n as i64 + 2;
        assert_eq!(
            (usage.minute.requests, usage.day.requests, usage.month.requests),
            (expected, expected, expected)
        );
    }
    let at = utc_windows("2026-04-01T00:00:30Z");
    let refused = store.admit(at, true).await;
    let Admitted::Refused(refused_key) = refused else {
        panic!("a month-old window reset the day: {refused:?}")
    };
    let usage = refused_key.usage_at(&at);
    assert_eq!(usage.day.requests, 3);

    let c = store.counters().await;
    assert_eq!((c.minute_start, c.minute_end), (current.minute.start, current.minute.end));
    assert_eq!((c.day_start, c.day_end), (current.day.start, current.day.end));
    assert_eq!((c.month_start, c.month_end), (current.month.start, current.month.end));
    assert_eq!((c.minute_requests, c.day_requests, c.month_requests), (3, 3, 3));
    assert_eq!((c.minute_tokens, c.day_tokens, c.month_tokens), (30, 30, 30));

    // The reservation of an older admission sits in the window it counted into.
    store.settle(reservations[1], 3, false).await;
    let c = store.counters().await;
    assert_eq!((c.minute_tokens, c.day_tokens, c.month_tokens), (23, 23, 23), "{c:?}");
    let shown = app.key(&key["id"]).await;
    assert_eq!(shown["usage"]["day"]["requests"], 3);
    assert_eq!(shown["usage"]["day"]["tokens"], 23);
}

#[actix_web::test]
async fn a_window_moves_on_only_once_the_admissions_window_begins_at_its_end() {
    let (app, _clock) = app_at("2026-05-01T12:00:59Z", "UTC", None).await;
    let (_, key) = app.create_key(json!({"name": "turnover", "limits": {"requests_per_minute": 1}})).await;
    let store = Admitter::new(&app, &key).await;
    admitted(store.admit(utc_windows("2026-05-01T12:00:59Z"), true).await);
    assert!(matches!(store.admit(utc_windows("2026-05-01T12:00:59Z"), true).await, Admitted::Refused { .. }));
    let (_, usage) = admitted(store.admit(utc_windows("2026-05-01T12:01:00Z"), true).await);
    assert_eq!((usage.minute.requests, usage.day.requests), (1, 2));
    let c = store.counters().await;
    assert_eq!(c.minute_start, at("2026-05-01T12:01:00Z").timestamp());
    assert_eq!(c.minute_end, at("2026-05-01T12:02:00Z").timestamp());
}

#[actix_web::test]
async fn listings_count_against_requests_per_minute_and_max_concurrent_but_not_daily_requests() {
    let now = "2026-05-01T12:00:00Z";
    let (app, _clock) = app_at(now, "UTC", None).await;
    let limits =
        json!({"requests_per_minute": 4, "max_concurrent": 2, "daily_requests": 1, "monthly_requests": 1});
    let (_, key) = app.create_key(json!({"name": "lister", "limits": limits})).await;
    let store = Admitter::new(&app, &key).await;
    let w = utc_windows(now);
    let (generation, _) = admitted(store.admit(w, true).await);
    assert!(matches!(store.admit(w, true).await, Admitted::Refused { .. }), "the daily limit is spent");

    // A listing still goes through, and takes the second concurrency slot.
    let (listing, usage) = admitted(store.admit(w, false).await);
    assert_eq!((usage.minute.requests, usage.day.requests, usage.month.requests), (2, 1, 1));
    assert_eq!((usage.total.requests, usage.in_flight), (1, 2));
    assert!(matches!(store.admit(w, false).await, Admitted::Refused { .. }), "max_concurrent is 2");

    // Given back (the upstream never answered): only what it counted.
    store.settle(listing, 0, true).await;
    assert_eq!(store.requests().await, [1, 1, 1, 1, 1]);

    for _ in 0..3 {
        let (listing, _) = admitted(store.admit(w, false).await);
        store.settle(listing, 0, false).await;
    }
    let refused = store.admit(w, false).await;
    let Admitted::Refused(key) = refused else { panic!("requests_per_minute is 4: {refused:?}") };
    let usage = key.usage_at(&w);
    assert_eq!(usage.minute.requests, 4);
    store.settle(generation, 0, false).await;
    assert_eq!(store.requests().await, [4, 1, 1, 1, 0]);

    // A listing left by a dead process is swept like any reservation.
    let dead = Admission {
        key_id: store.key_id,
        key_hash: store.key_hash.clone(),
        windows: utc_windows("2026-05-01T12:01:00Z"),
        counts_in_request_quotas: false,
        reserve_tokens: 0,
        prompt_estimate: 0,
        model: "".into(),
        route: "/api/tags",
        instance_id: "dead-process".into(),
        budgets: vec![],
        user_id: None,
        team_id: None,
        weighted_prompt: 0,
    };
    admitted(app.state.store.admit(&dead).await.unwrap());
    let swept = app.state.store.settle_stale(dead.windows.now - 5, dead.windows.now).await.unwrap();
    assert_eq!(swept, 1);
    let c = store.counters().await;
    assert_eq!((c.minute_requests, c.day_requests, c.total_requests, c.in_flight), (1, 1, 1, 0), "{c:?}");
}

/// A request whose headers are sent now and whose body follows when told.
struct HeldRequest {
    stream: TcpStream,
    body: Vec<u8>,
}

impl HeldRequest {
    async fn open(app: &TestApp, key: &str, body: Value) -> HeldRequest {
        let body = body.to_string().into_bytes();
        let address = app.proxy.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let head = format!(
            "POST /api/generate HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        // Time for the gate to authenticate and start waiting for the body.
        actix_web::rt::time::sleep(std::time::Duration::from_millis(500)).await;
        HeldRequest { stream, body }
    }

    /// Sends the body and returns the response's status. The socket is read on
    /// a blocking thread: the test's own runtime runs some of the gate's tasks.
    async fn finish(mut self) -> u16 {
        let response = actix_web::rt::task::spawn_blocking(move || {
            self.stream.write_all(&self.body).unwrap();
            let mut response = Vec::new();
            let _ = self.stream.read_to_end(&mut response);
            response
        })
        .await
        .unwrap();
        let text = String::from_utf8_lossy(&response);
        text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {text}"))
    }
}

fn generation() -> Value {
    json!({"model": "llama3", "prompt": "one two three", "stream": false})
}

/// Headers before `after`, then the clock set to `after`, a request that
/// spends the new window's one request, then the held body: refused, and so
/// is the next request.
async fn across_a_boundary_the_spent_window_stays_spent(
    app: &TestApp,
    clock: &ManualClock,
    key: &str,
    after: &str,
) {
    let held = HeldRequest::open(app, key, generation()).await;
    clock.set(at(after));
    assert_eq!(app.generate(key, "llama3", false).await.status, StatusCode::OK);
    assert_eq!(held.finish().await, 429, "the window open at its admission is spent");
    assert_eq!(app.generate(key, "llama3", false).await.status, StatusCode::TOO_MANY_REQUESTS);
}

#[actix_web::test]
async fn a_body_held_open_across_a_minute_counts_in_the_minute_of_its_admission() {
    let (app, clock) = app_at("2026-05-01T12:00:50Z", "UTC", None).await;
    let (key, record) = app.create_key(json!({"name": "slow", "limits": {"requests_per_minute": 1}})).await;
    across_a_boundary_the_spent_window_stays_spent(&app, &clock, &key, "2026-05-01T12:01:10Z").await;
    let shown = app.settled(&record["id"]).await;
    assert_eq!(shown["usage"]["minute"]["requests"], 1);
    let c = app.state.store.get_key(record["id"].as_i64().unwrap()).await.unwrap().unwrap().counters;
    assert_eq!(c.minute_start, at("2026-05-01T12:01:00Z").timestamp());
}

#[actix_web::test]
async fn a_body_held_open_across_midnight_resets_nothing_and_the_spent_day_stays_refused() {
    // Midnight at the end of a month: the day and the month turn over together.
    let (app, clock) = app_at("2026-05-31T23:59:50Z", "UTC", None).await;
    let limits = json!({"daily_requests": 1, "monthly_requests": 5});
    let (key, record) = app.create_key(json!({"name": "slow", "limits": limits})).await;
    let id = record["id"].as_i64().unwrap();
    across_a_boundary_the_spent_window_stays_spent(&app, &clock, &key, "2026-06-01T00:00:10Z").await;
    let shown = app.settled(&record["id"]).await;
    assert_eq!(shown["usage"]["day"]["requests"], 1);
    assert_eq!(shown["usage"]["month"]["requests"], 1);
    let c = app.state.store.get_key(id).await.unwrap().unwrap().counters;
    assert_eq!(c.day_start, at("2026-06-01T00:00:00Z").timestamp());
    assert_eq!(c.month_start, at("2026-06-01T00:00:00Z").timestamp());

    // Admitted before midnight, its body after it: it counts in the day of its admission.
    let (key, record) = app.create_key(json!({"name": "slower", "limits": {"daily_requests": 1}})).await;
    clock.set(at("2026-06-01T23:59:50Z"));
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    let held = HeldRequest::open(&app, &key, generation()).await;
    clock.set(at("2026-06-02T00:00:10Z"));
    assert_eq!(held.finish().await, 200, "June 2nd has its own request");
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.settled(&record["id"]).await["usage"]["day"]["requests"], 1);
}

/// The daily limit spent at 12:00Z under UTC, then the gate started again
/// under another zone on the same database.
#[actix_web::test]
async fn a_change_of_app_tz_hands_out_no_fresh_day_before_the_open_one_ends() {
    let (first, _clock) = app_at("2026-01-01T12:00:00Z", "UTC", None).await;
    let mut keys = Vec::new();
    for zone in ["Pacific/Kiritimati", "America/Los_Angeles"] {
        let (key, record) = first.create_key(json!({"name": zone, "limits": {"daily_requests": 1}})).await;
        assert_eq!(first.generate(&key, "llama3", false).await.status, StatusCode::OK);
        assert_eq!(first.generate(&key, "llama3", false).await.status, StatusCode::TOO_MANY_REQUESTS);
        first.settled(&record["id"]).await;
        keys.push((zone, key, record));
    }

    // Kiritimati (UTC+14) is already on January 2nd; Los Angeles (UTC-8) still
    // on the 1st. Either way the UTC day runs to its end, stretched to the end
    // of the new zone's day that lies mostly inside it.
    let ends = ["2026-01-02T10:00:00Z", "2026-01-02T08:00:00Z"];
    for ((zone, key, record), end) in keys.iter().zip(ends) {
        let (app, clock) = app_at("2026-01-01T12:00:00Z", zone, Some(&first.database_url)).await;
        let end = at(end);
        for time in [at("2026-01-01T12:00:00Z"), at("2026-01-02T00:00:00Z"), end - Duration::seconds(1)] {
            clock.set(time);
            let reply = app.generate(key, "llama3", false).await;
            assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{zone} at {time}: a fresh day");
            assert!(reply.text().contains("daily_requests"), "{}", reply.text());
            assert_eq!(app.key(&record["id"]).await["usage"]["day"]["requests"], 1, "{zone} at {time}");
        }
        clock.set(end);
        assert_eq!(app.generate(key, "llama3", false).await.status, StatusCode::OK, "{zone} at {end}");
        let shown = app.settled(&record["id"]).await;
        assert_eq!(shown["usage"]["day"]["requests"], 1, "{zone}: the new zone's day counts from zero");
        let c = app.state.store.get_key(record["id"].as_i64().unwrap()).await.unwrap().unwrap().counters;
        let tomorrow = Windows::at(end, zone.parse().unwrap()).day;
        assert_eq!((c.day_start, c.day_end), (tomorrow.start, tomorrow.end), "{zone}");
    }
}
