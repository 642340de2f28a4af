use crate::helpers::*;
use awc::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use ollama_gate::clock::ManualClock;
use serde_json::json;
use std::sync::Arc;

const ROUNDS: usize = 5;

#[actix_web::test]
async fn two_hundred_clients_on_a_daily_limit_of_100_get_exactly_100_through() {
    let app = spawn_app().await;
    for round in 0..ROUNDS {
        let (key, record) = app
            .create_key(json!({"name": format!("round {round}"), "limits": {"daily_requests": 100}}))
            .await;
        let before = app.mock.count();
        let replies = join_all((0..200).map(|_| app.generate(&key, "llama3", false))).await;
        let ok = replies.iter().filter(|r| r.status == StatusCode::OK).count();
        let limited: Vec<_> = replies.iter().filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS).collect();
        assert_eq!(ok, 100, "round {round}");
        assert_eq!(limited.len(), 100, "round {round}");
        for r in &limited {
            let retry: i64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
            assert!(retry > 0);
            assert_eq!(r.json()["error"].as_str().unwrap(), "quota exhausted for this key (daily_requests)");
        }
        assert_eq!(app.mock.count() - before, 100, "round {round}: the mock saw more or less than 100");
        let settled = app.settled(&record["id"]).await;
        assert_eq!(settled["usage"]["day"]["requests"], 100, "round {round}");
    }
}

#[actix_web::test]
async fn concurrent_requests_never_push_a_token_counter_past_its_limit() {
    let app = spawn_app().await;
    for round in 0..ROUNDS {
        let (key, record) = app.create_key(json!({"name": "tokens", "limits": {"daily_tokens": 100}})).await;
        // Each request reserves 3 prompt tokens + 4 output tokens and really uses 7.
        let body = json!({"model": "llama3", "prompt": "one two three", "stream": false, "options": {"num_predict": 4}});
        let replies = join_all((0..40).map(|_| app.post("/api/generate", Some(&key), body.clone()))).await;
        let ok = replies.iter().filter(|r| r.status == StatusCode::OK).count();
        assert_eq!(ok, 14, "round {round}: 14 x 7 = 98 fits in 100, a 15th would not");
        let settled = app.settled(&record["id"]).await;
        let used = settled["usage"]["day"]["tokens"].as_i64().unwrap();
        assert!(used <= 100, "round {round}: used {used} > limit");
        assert_eq!(used, 98);
        assert!(replies.iter().filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS).all(|r| r.json()
            ["error"]
            .as_str()
            .unwrap()
            .contains("daily_tokens")));
    }
}

#[actix_web::test]
async fn a_limit_of_zero_refuses_the_first_request() {
    let app = spawn_app().await;
    for limits in [json!({"daily_requests": 0}), json!({"daily_tokens": 0}), json!({"total_tokens": 0})] {
        let (key, _) = app.create_key(json!({"name": "zero", "limits": limits})).await;
        let reply = app.generate(&key, "llama3", false).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{limits}");
        assert!(reply.header("retry-after").is_some());
    }
    assert_eq!(app.mock.count(), 0);
}

#[actix_web::test]
async fn openai_callers_get_openai_shaped_429s_with_the_right_code() {
    let app = spawn_app().await;
    let (key, _) = app.create_key(json!({"name": "rpm", "limits": {"requests_per_minute": 0}})).await;
    let reply =
        app.post("/v1/chat/completions", Some(&key), json!({"model": "llama3", "messages": []})).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.json()["error"]["code"], "rate_limit_exceeded");
    let (key, _) = app.create_key(json!({"name": "monthly", "limits": {"monthly_requests": 0}})).await;
    let reply =
        app.post("/v1/chat/completions", Some(&key), json!({"model": "llama3", "messages": []})).await;
    assert_eq!(reply.json()["error"]["code"], "insufficient_quota");
    let reply = app.post("/v1/messages", Some(&key), json!({"model": "llama3", "messages": []})).await;
    assert_eq!(reply.json()["type"], "error");
    assert_eq!(reply.json()["error"]["type"], "rate_limit_error");
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[actix_web::test]
async fn the_daily_window_turns_over_at_local_midnight_across_a_dst_change() {
    // 2026-03-29 is the day Berlin moves from CET (+1) to CEST (+2).
    let clock = Arc::new(ManualClock::new(at("2026-03-28T22:59:30Z"))); // 23:59:30 local
    let app = spawn_app_with(Options {
        env: vec![("APP_TZ", "Europe/Berlin".into())],
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    let (key, record) = app.create_key(json!({"name": "daily", "limits": {"daily_requests": 1}})).await;
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    let refused = app.generate(&key, "llama3", false).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after").as_deref(), Some("30"), "30 s to local midnight");

    clock.set(at("2026-03-28T23:00:00Z")); // 00:00 local on the short day
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    let refused = app.generate(&key, "llama3", false).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    // The short day has 23 hours: the next midnight is 22:00 UTC.
    let expected = (at("2026-03-29T22:00:00Z") - at("2026-03-28T23:00:00Z")).num_seconds().to_string();
    assert_eq!(refused.header("retry-after"), Some(expected));
    clock.set(at("2026-03-29T21:59:59Z"));
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::TOO_MANY_REQUESTS);
    clock.set(at("2026-03-29T22:00:00Z"));
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    assert_eq!(app.settled(&record["id"]).await["usage"]["day"]["requests"], 1);
}

#[actix_web::test]
async fn the_monthly_window_turns_over_on_the_first_in_app_tz() {
    let clock = Arc::new(ManualClock::new(at("2026-04-30T14:59:00Z"))); // 23:59 in Tokyo
    let app = spawn_app_with(Options {
        env: vec![("APP_TZ", "Asia/Tokyo".into())],
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    let (key, _) = app.create_key(json!({"name": "monthly", "limits": {"monthly_requests": 2}})).await;
    for _ in 0..2 {
        assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    }
    let refused = app.generate(&key, "llama3", false).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.json()["error"].as_str().unwrap(), "quota exhausted for this key (monthly_requests)");
    clock.advance(Duration::seconds(60)); // May 1st, 00:00 in Tokyo
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn monthly_and_lifetime_limits_bind_independently_of_daily_ones() {
    let clock = Arc::new(ManualClock::new(at("2026-06-10T12:00:00Z")));
    let app = spawn_app_with(Options { clock: Some(clock.clone()), ..Options::default() }).await;
    let (key, record) = app
        .create_key(json!({"name": "layers", "limits": {"daily_requests": 2, "monthly_requests": 3, "total_tokens": 1000}}))
        .await;
    // Each request reserves 3 + 512 tokens until it settles: wait for that, so
    // the lifetime limit of 1000 does not refuse the next one while it runs.
    let settled_status = |reply: Reply| {
        let app = &app;
        let id = record["id"].clone();
        async move {
            app.settled(&id).await;
            reply.status
        }
    };
    assert_eq!(settled_status(app.generate(&key, "llama3", false).await).await, StatusCode::OK);
    assert_eq!(settled_status(app.generate(&key, "llama3", false).await).await, StatusCode::OK);
    assert_eq!(
        settled_status(app.generate(&key, "llama3", false).await).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    clock.advance(Duration::days(1));
    assert_eq!(settled_status(app.generate(&key, "llama3", false).await).await, StatusCode::OK);
    let refused = app.generate(&key, "llama3", false).await;
    assert!(refused.json()["error"].as_str().unwrap().contains("monthly_requests"), "{}", refused.text());
    // A new month frees the monthly quota, but the lifetime one keeps counting.
    clock.set(at("2026-07-01T00:00:01Z"));
    app.admin("PATCH", &format!("/api-keys/{}/quota", record["id"]), Some(json!({"total_tokens": 20}))).await;
    let used = app.settled(&record["id"]).await["usage"]["total"]["tokens"].as_i64().unwrap();
    assert_eq!(used, 18, "three requests of 3 prompt + 3 output tokens");
    let refused = app.generate(&key, "llama3", false).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.json()["error"].as_str().unwrap().contains("total_tokens"));
}

#[actix_web::test]
async fn max_concurrent_caps_requests_in_flight() {
    let app = spawn_app().await;
    let (key, record) =
        app.create_key(json!({"name": "one at a time", "limits": {"max_concurrent": 1}})).await;
    let slow = app
        .proxy_request("POST", "/api/generate", Some(&key))
        .send_body(json!({"model": "slow", "prompt": "hi"}).to_string());
    let mut first = slow.await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second = app.generate(&key, "llama3", false).await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.header("retry-after").as_deref(), Some("1"));
    assert_eq!(
        second.json()["error"].as_str().unwrap(),
        "too many requests in flight for this key (max_concurrent)"
    );
    first.body().limit(1 << 20).await.unwrap();
    app.settled(&record["id"]).await;
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn responses_carry_the_tightest_limits_in_openai_headers() {
    let app = spawn_app().await;
    let (key, _) = app.create_key(json!({"name": "h", "limits": {"daily_requests": 10, "requests_per_minute": 5, "monthly_tokens": 1000}})).await;
    let reply = app.generate(&key, "llama3", false).await;
    assert_eq!(reply.header("x-ratelimit-limit-requests").as_deref(), Some("5"));
    assert_eq!(reply.header("x-ratelimit-remaining-requests").as_deref(), Some("4"));
    assert!(reply.header("x-ratelimit-reset-requests").unwrap().ends_with('s'));
    assert_eq!(reply.header("x-ratelimit-limit-tokens").as_deref(), Some("1000"));
    assert!(reply.header("x-ratelimit-remaining-tokens").is_some());
    let (unlimited, _) = app.create_key(json!({"name": "free"})).await;
    assert!(app.generate(&unlimited, "llama3", false).await.header("x-ratelimit-limit-requests").is_none());
}

#[actix_web::test]
async fn listings_and_count_tokens_count_against_the_per_minute_limit_but_not_the_daily_quota() {
    let app = spawn_app().await;
    let (key, record) = app
        .create_key(json!({"name": "poller", "limits": {"requests_per_minute": 4, "daily_requests": 1, "daily_tokens": 1000}}))
        .await;
    let count = json!({"model": "llama3", "messages": [{"role": "user", "content": "how many tokens"}]});
    assert_eq!(app.get("/api/tags", Some(&key)).await.status, StatusCode::OK);
    assert_eq!(app.get("/v1/models", Some(&key)).await.status, StatusCode::OK);
    let counted = app.post("/v1/messages/count_tokens", Some(&key), count.clone()).await;
    assert_eq!(counted.status, StatusCode::OK);
    assert!(counted.json()["input_tokens"].as_i64().unwrap() > 0);
    // The one daily request is still there for inference.
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    // The fifth request in the minute is refused, whatever the route.
    for refused in [
        app.get("/api/tags", Some(&key)).await,
        app.post("/v1/messages/count_tokens", Some(&key), count).await,
    ] {
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.text());
        assert!(refused.text().contains("requests_per_minute"), "{}", refused.text());
    }
    let key = app.settled(&record["id"]).await;
    assert_eq!(key["usage"]["day"]["requests"], 1, "only the generation counts in the daily quota");
    let rows = app.usage_rows(&record["id"]).await;
    let listing: Vec<&serde_json::Value> = rows.iter().filter(|r| r["route"] != "/api/generate").collect();
    assert_eq!(listing.len(), 3);
    for row in listing {
        assert_eq!(
            (row["total_tokens"].as_i64(), row["estimated"].as_bool()),
            (Some(0), Some(false)),
            "{row}"
        );
        assert_eq!(row["status"], "ok", "{row}");
    }
}

#[actix_web::test]
async fn a_listing_holds_a_concurrency_slot_while_it_runs() {
    let app = spawn_app().await;
    let (key, record) =
        app.create_key(json!({"name": "one at a time", "limits": {"max_concurrent": 1}})).await;
    let slow = app.post(
        "/api/chat",
        Some(&key),
        json!({"model": "slow", "messages": [{"role": "user", "content": "x"}]}),
    );
    let tags = async {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
        app.get("/api/tags", Some(&key)).await
    };
    let (chat, tags) = futures_util::future::join(slow, tags).await;
    assert_eq!(chat.status, StatusCode::OK);
    assert_eq!(tags.status, StatusCode::TOO_MANY_REQUESTS, "{}", tags.text());
    assert!(tags.text().contains("max_concurrent"));
    app.settled(&record["id"]).await;
    assert_eq!(app.get("/api/tags", Some(&key)).await.status, StatusCode::OK);
}
