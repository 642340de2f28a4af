//! Alerts: soft limits on keys, users and teams fire once per window, a
//! backend going down and coming back is told, and the webhook is retried,
//! signed, and never in the way of a request. A small receiver on loopback
//! stands in for the webhook.

use crate::helpers::*;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use awc::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use ollama_gate::clock::ManualClock;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// One POST the receiver got.
#[derive(Debug)]
struct Got {
    body: Value,
    raw: Vec<u8>,
    signature: Option<String>,
    user_agent: Option<String>,
}

/// A webhook receiver: answers each POST with the next status of its script
/// (200 once the script is used up) and hands every body to the test.
struct Receiver {
    url: String,
    got: mpsc::UnboundedReceiver<Got>,
}

impl Receiver {
    async fn start(script: &[u16]) -> Receiver {
        let (tx, got) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<u16>>()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}/hook/t0ken", listener.local_addr().unwrap().port());
        let server = HttpServer::new(move || {
            let (tx, script) = (tx.clone(), script.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (tx, script) = (tx.clone(), script.clone());
                async move {
                    let header =
                        |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                    let _ = tx.send(Got {
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        raw: body.to_vec(),
                        signature: header("x-ollama-gate-signature"),
                        user_agent: header("user-agent"),
                    });
                    let status = script.lock().unwrap().pop_front().unwrap_or(200);
                    HttpResponse::build(StatusCode::from_u16(status).unwrap()).finish()
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        Receiver { url, got }
    }

    /// The next alert the receiver got.
    async fn next(&mut self) -> Got {
        tokio::time::timeout(std::time::Duration::from_secs(60), self.got.recv())
            .await
            .expect("an alert within a minute")
            .expect("the receiver runs")
    }

    /// The next alert's body.
    async fn next_body(&mut self) -> Value {
        self.next().await.body
    }
}

async fn app_with_hook(
    hook: &str,
    extra: Vec<(&'static str, String)>,
    clock: Option<Arc<ManualClock>>,
) -> TestApp {
    let mut env = vec![("ALERT_WEBHOOK_URL", hook.to_owned())];
    env.extend(extra);
    spawn_app_with(Options { env, clock, ..Options::default() }).await
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn ok(app: &TestApp, key: &str) {
    let reply = app.generate(key, "llama3", false).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

/// Sends requests until the key has made `n` today, each settled before the next.
async fn requests(app: &TestApp, key: &str, id: &Value, n: usize) {
    for _ in 0..n {
        ok(app, key).await;
        app.settled(id).await;
    }
}

#[actix_web::test]
async fn a_keys_soft_limit_alerts_once_per_window_and_again_in_the_next() {
    let mut hook = Receiver::start(&[]).await;
    let clock = Arc::new(ManualClock::new(at("2026-03-10T12:00:00Z")));
    let app = app_with_hook(&hook.url, vec![], Some(clock.clone())).await;
    let (key, record) = app
        .create_key(json!({"name": "ci-bot", "limits": {"daily_requests": 10, "monthly_requests": 20},
                           "alerts": {"daily_requests": 50, "monthly_requests": 40}}))
        .await;
    assert_eq!(record["alerts"], json!({"daily_requests": 50, "monthly_requests": 40}));
    let id = &record["id"];
    // 4 of 10 is under 50%; the fifth reaches it.
    requests(&app, &key, id, 5).await;
    let daily = hook.next().await;
    assert_eq!(daily.user_agent.as_deref(), Some(concat!("ollama-gate/", env!("CARGO_PKG_VERSION"))));
    let daily = daily.body;
    assert_eq!(daily["kind"], "soft_limit");
    assert_eq!(
        (daily["level"].clone(), daily["id"].clone(), daily["name"].clone()),
        (json!("key"), id.clone(), json!("ci-bot"))
    );
    assert_eq!((daily["limit"].clone(), daily["percent"].clone()), (json!("daily_requests"), json!(50)));
    assert_eq!(
        (daily["used"].clone(), daily["threshold"].clone(), daily["limit_value"].clone()),
        (json!(5), json!(5), json!(10))
    );
    assert_eq!(daily["window_start"], "2026-03-10T00:00:00Z");
    assert_eq!(daily["at"], "2026-03-10T12:00:00Z");
    // Past it, nothing more today; the monthly one (8 of 20) comes next, and only it.
    requests(&app, &key, id, 3).await;
    let monthly = hook.next_body().await;
    assert_eq!((monthly["limit"].clone(), monthly["used"].clone()), (json!("monthly_requests"), json!(8)));
    assert_eq!(monthly["window_start"], "2026-03-01T00:00:00Z");
    // A new day: the daily one again, once; the monthly one stays sent.
    clock.advance(Duration::days(1));
    requests(&app, &key, id, 5).await;
    let again = hook.next_body().await;
    assert_eq!((again["limit"].clone(), again["used"].clone()), (json!("daily_requests"), json!(5)));
    assert_eq!(again["window_start"], "2026-03-11T00:00:00Z");
    let recorded = app.admin("GET", "/alerts", None).await.json();
    let kinds: Vec<&str> = recorded["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["payload"]["limit"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["daily_requests", "monthly_requests", "daily_requests"], "newest first: {recorded}");
    assert!(hook.got.try_recv().is_err(), "nothing else was sent");
}

#[actix_web::test]
async fn a_users_and_a_teams_soft_limits_alert_once_each() {
    let mut hook = Receiver::start(&[]).await;
    let app = app_with_hook(&hook.url, vec![], None).await;
    let team = app
        .admin(
            "POST",
            "/teams",
            Some(json!({"name": "physics", "limits": {"daily_requests": 10},
                                               "alerts": {"daily_requests": 30}})),
        )
        .await;
    assert_eq!(team.status, StatusCode::CREATED, "{}", team.text());
    let team = team.json();
    assert_eq!(team["alerts"], json!({"daily_requests": 30}));
    let user = app
        .admin(
            "POST",
            "/users",
            Some(json!({"name": "ana", "team_id": team["id"],
              "limits": {"daily_requests": 10}, "alerts": {"daily_requests": 50}})),
        )
        .await
        .json();
    assert_eq!(user["alerts"], json!({"daily_requests": 50}));
    // Two keys of hers share her count and her team's.
    let (one, first) = app.create_key(json!({"name": "one", "user_id": user["id"]})).await;
    let (two, second) = app
        .create_key(json!({"name": "two", "user_id": user["id"], "limits": {"daily_requests": 10},
                           "alerts": {"daily_requests": 40}}))
        .await;
    requests(&app, &one, &first["id"], 2).await;
    requests(&app, &two, &second["id"], 1).await;
    let team_alert = hook.next_body().await;
    assert_eq!((team_alert["level"].clone(), team_alert["name"].clone()), (json!("team"), json!("physics")));
    assert_eq!((team_alert["used"].clone(), team_alert["threshold"].clone()), (json!(3), json!(3)));
    requests(&app, &one, &first["id"], 1).await;
    requests(&app, &two, &second["id"], 1).await;
    let user_alert = hook.next_body().await;
    assert_eq!((user_alert["level"].clone(), user_alert["id"].clone()), (json!("user"), user["id"].clone()));
    assert_eq!(user_alert["used"], 5);
    // Key two's own 40% (4 of 10) is the last to come: nothing repeated before it.
    requests(&app, &one, &first["id"], 2).await;
    requests(&app, &two, &second["id"], 2).await;
    let key_alert = hook.next_body().await;
    assert_eq!((key_alert["level"].clone(), key_alert["name"].clone()), (json!("key"), json!("two")));
    assert_eq!(key_alert["used"], 4);
    assert!(hook.got.try_recv().is_err(), "each level once");
}

#[actix_web::test]
async fn a_request_that_jumps_past_the_whole_limit_alerts_and_usage_below_says_nothing() {
    let mut hook = Receiver::start(&[]).await;
    let app = app_with_hook(&hook.url, vec![], None).await;
    let (quiet, quiet_record) = app
        .create_key(
            json!({"name": "quiet", "limits": {"total_tokens": 1000000}, "alerts": {"total_tokens": 90}}),
        )
        .await;
    requests(&app, &quiet, &quiet_record["id"], 2).await;
    let (key, record) = app
        .create_key(json!({"name": "big", "limits": {"total_tokens": 4}, "alerts": {"total_tokens": 10}}))
        .await;
    requests(&app, &key, &record["id"], 1).await;
    let used = app.key(&record["id"]).await["usage"]["total"]["tokens"].as_i64().unwrap();
    assert!(used >= 4, "one request used the whole limit: {used}");
    let alert = hook.next_body().await;
    assert_eq!((alert["name"].clone(), alert["limit"].clone()), (json!("big"), json!("total_tokens")));
    assert_eq!((alert["used"].clone(), alert["threshold"].clone()), (json!(used), json!(1)));
    assert_eq!(alert["window_start"], Value::Null, "a lifetime limit's window never starts over");
    assert!(hook.got.try_recv().is_err(), "the quiet key stayed under 90% and said nothing");
}

#[actix_web::test]
async fn a_backend_going_down_and_coming_back_is_told_once_each() {
    let mut hook = Receiver::start(&[]).await;
    let app = app_with_hook(&hook.url, vec![], None).await;
    // The first probe finds it up: nothing to say.
    let (key, _) = app.create_key(json!({"name": "k"})).await;
    ok(&app, &key).await;
    app.mock.stop().await;
    let down = hook.next_body().await;
    assert_eq!(down["kind"], "upstream_down", "{down}");
    assert_eq!(down["url"], app.mock.url.trim_end_matches('/').to_owned() + "/");
    assert!(down["backend"].as_str().is_some_and(|b| !b.is_empty()), "{down}");
    assert!(down["reason"].as_str().is_some_and(|r| !r.is_empty()), "{down}");
    assert!(down["at"].is_string());
    app.mock.restart();
    let up = hook.next_body().await;
    assert_eq!((up["kind"].clone(), up["backend"].clone()), (json!("upstream_up"), down["backend"].clone()));
    assert!(hook.got.try_recv().is_err());
}

#[actix_web::test]
async fn a_failing_receiver_gets_the_alert_again_and_a_signature_that_verifies() {
    let mut hook = Receiver::start(&[500]).await;
    let app = app_with_hook(&hook.url, vec![("ALERT_WEBHOOK_SECRET", "shared-secret".into())], None).await;
    let (key, record) = app
        .create_key(json!({"name": "k", "limits": {"daily_requests": 2}, "alerts": {"daily_requests": 50}}))
        .await;
    requests(&app, &key, &record["id"], 1).await;
    let first = hook.next().await;
    let second = hook.next().await;
    assert_eq!(first.raw, second.raw, "the same alert, tried again after the 500");
    for got in [&first, &second] {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"shared-secret").unwrap();
        mac.update(&got.raw);
        let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got.signature.as_deref(), Some(format!("sha256={expected}").as_str()));
    }
    // Marked delivered once the receiver took it.
    for _ in 0..500 {
        let alerts = app.admin("GET", "/alerts", None).await.json();
        if alerts["alerts"][0]["delivered"] == true {
            return;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the alert was never marked delivered");
}

#[actix_web::test]
async fn a_receiver_that_is_down_costs_requests_nothing_and_the_alert_is_kept() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = app_with_hook(&format!("http://127.0.0.1:{port}/hook"), vec![], None).await;
    let (key, record) = app
        .create_key(json!({"name": "k", "limits": {"daily_requests": 100}, "alerts": {"daily_requests": 1}}))
        .await;
    requests(&app, &key, &record["id"], 20).await;
    for _ in 0..500 {
        let alerts = app.admin("GET", "/alerts", None).await.json();
        if let Some(alert) = alerts["alerts"].as_array().and_then(|a| a.first()) {
            assert_eq!(alerts["alerts"].as_array().unwrap().len(), 1, "{alerts}");
            assert_eq!(alert["delivered"], false);
            assert_eq!(alert["payload"]["used"], 1);
            return;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the alert was never recorded");
}

#[actix_web::test]
async fn bad_soft_limits_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let (_, key) = app.create_key(json!({"name": "k", "alerts": {"daily_tokens": 80}})).await;
    let team = app.admin("POST", "/teams", Some(json!({"name": "t"}))).await.json();
    let user = app.admin("POST", "/users", Some(json!({"name": "u"}))).await.json();
    assert_eq!((team["alerts"].clone(), user["alerts"].clone()), (json!({}), json!({})));
    let bad = [
        json!({"daily_tokens": 0}),
        json!({"daily_tokens": 101}),
        json!({"daily_tokens": -1}),
        json!({"daily_tokens": 1.5}),
        json!({"daily_tokens": "80"}),
        json!({"daily_tokens": 1e300}),
        json!({"weekly_tokens": 80}),
        json!({"requests_per_minute": 80}),
        json!({"max_concurrent": 50}),
        json!({"x".repeat(10_000): 50}),
        json!([80]),
        json!("daily_tokens=80"),
        json!(80),
    ];
    for alerts in &bad {
        let attempts = [
            ("POST", "/api-keys".to_owned(), json!({"name": "new", "alerts": alerts})),
            ("PATCH", format!("/api-keys/{}", key["id"]), json!({"name": "renamed", "alerts": alerts})),
            ("POST", "/users".to_owned(), json!({"name": "new", "alerts": alerts})),
            ("PATCH", format!("/users/{}", user["id"]), json!({"name": "renamed", "alerts": alerts})),
            ("POST", "/teams".to_owned(), json!({"name": "new", "alerts": alerts})),
            ("PATCH", format!("/teams/{}", team["id"]), json!({"name": "renamed", "alerts": alerts})),
        ];
        for (method, path, body) in attempts {
            let reply = app.admin(method, &path, Some(body)).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {path} {alerts}: {}", reply.text());
            let message = reply.json()["error"].as_str().unwrap_or_default().to_owned();
            assert!(message.contains("alerts"), "{message}");
            assert!(message.len() < 400, "a name the caller chose is cut short: {message}");
        }
    }
    assert_eq!(app.key(&key["id"]).await["name"], "k", "a refused patch changes nothing");
    assert_eq!(app.key(&key["id"]).await["alerts"], json!({"daily_tokens": 80}));
    assert_eq!(app.admin("GET", "/api-keys", None).await.json().as_array().unwrap().len(), 1);
    assert_eq!(app.admin("GET", "/users", None).await.json().as_array().unwrap().len(), 1);
    assert_eq!(app.admin("GET", &format!("/teams/{}", team["id"]), None).await.json()["name"], "t");
    // null and {} clear them; an absent field leaves them.
    let kept =
        app.admin("PATCH", &format!("/api-keys/{}", key["id"]), Some(json!({"name": "k2"}))).await.json();
    assert_eq!(kept["alerts"], json!({"daily_tokens": 80}));
    let cleared =
        app.admin("PATCH", &format!("/api-keys/{}", key["id"]), Some(json!({"alerts": null}))).await.json();
    assert_eq!(cleared["alerts"], json!({}));
    let set = app
        .admin("PATCH", &format!("/teams/{}", team["id"]), Some(json!({"alerts": {"monthly_tokens": 75}})))
        .await
        .json();
    assert_eq!(set["alerts"], json!({"monthly_tokens": 75}));
}

#[actix_web::test]
async fn two_processes_on_one_database_send_a_soft_limits_alert_once() {
    let mut hook = Receiver::start(&[]).await;
    let first = app_with_hook(&hook.url, vec![], None).await;
    let second = app_with_hook(&hook.url, vec![("DATABASE_URL", first.database_url.clone())], None).await;
    let (key, record) = first
        .create_key(json!({"name": "shared", "limits": {"daily_requests": 10, "monthly_requests": 20},
                           "alerts": {"daily_requests": 30, "monthly_requests": 40}}))
        .await;
    // Both see the daily 30% (3 of 10) reached: the first at request 3, the
    // second at 4; the monthly 40% (8 of 20): the second at 8, the first at 9.
    for n in 0..9 {
        let app = if n % 2 == 0 { &first } else { &second };
        ok(app, &key).await;
        app.settled(&record["id"]).await;
    }
    let daily = hook.next_body().await;
    assert_eq!((daily["limit"].clone(), daily["used"].clone()), (json!("daily_requests"), json!(3)));
    let monthly = hook.next_body().await;
    assert_eq!((monthly["limit"].clone(), monthly["used"].clone()), (json!("monthly_requests"), json!(8)));
    assert!(hook.got.try_recv().is_err(), "the other process found each claimed");
    let recorded = first.admin("GET", "/alerts", None).await.json();
    assert_eq!(recorded["alerts"].as_array().unwrap().len(), 2, "{recorded}");
}

#[actix_web::test]
async fn upkeep_deletes_old_alerts_and_the_claims_of_windows_long_over() {
    use ollama_gate::domain::people::Owner;
    let app =
        spawn_app_with(Options { env: vec![("AUDIT_RETENTION_DAYS", "30".into())], ..Options::default() })
            .await;
    let store = app.state.store.as_ref();
    let now = app.state.clock.now().timestamp();
    let day = 86_400;
    store.record_alert("soft_limit", "{}", now - 31 * day).await.unwrap();
    store.record_alert("soft_limit", "{}", now - 29 * day).await.unwrap();
    // A daily window of 70 days ago, one of yesterday, and a lifetime limit's (window 0) of long ago.
    assert!(store.claim_alert(Owner::Key, 1, "daily_tokens", now - 70 * day, now - 70 * day).await.unwrap());
    assert!(store.claim_alert(Owner::Key, 1, "daily_tokens", now - day, now - day).await.unwrap());
    assert!(store.claim_alert(Owner::Key, 1, "total_tokens", 0, now - 400 * day).await.unwrap());

    ollama_gate::upkeep::once(&app.state).await.unwrap();

    let kept = store.recent_alerts(0, 100, false).await.unwrap();
    assert_eq!(kept.len(), 1, "only the alert inside the retention stays: {kept:?}");
    assert_eq!(kept[0].created_at, now - 29 * day);
    // The old window's claim is gone (it could be claimed again, harmlessly: it never recurs);
    // yesterday's and the lifetime one stay claimed, so they never fire twice.
    assert!(store.claim_alert(Owner::Key, 1, "daily_tokens", now - 70 * day, now).await.unwrap());
    assert!(!store.claim_alert(Owner::Key, 1, "daily_tokens", now - day, now).await.unwrap());
    assert!(!store.claim_alert(Owner::Key, 1, "total_tokens", 0, now).await.unwrap());
}
