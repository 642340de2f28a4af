//! Users and teams: budgets that add up across keys, limits per model,
//! weights per model (API.md section 4.1), on the backend the suite runs on.

use crate::helpers::*;
use awc::http::StatusCode;
use futures_util::future::join_all;
use serde_json::{json, Value};

async fn team(app: &TestApp, body: Value) -> Value {
    let reply = app.admin("POST", "/teams", Some(body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    reply.json()
}

async fn user(app: &TestApp, body: Value) -> Value {
    let reply = app.admin("POST", "/users", Some(body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    reply.json()
}

/// A key of `user`, with its secret.
async fn key_of(app: &TestApp, user: &Value, extra: Value) -> (String, Value) {
    let mut body = json!({"name": format!("key of {}", user["name"]), "user_id": user["id"]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    app.create_key(body).await
}

/// Waits until nothing is in flight at `path` (a user or team) and returns it.
async fn settled_at(app: &TestApp, path: &str) -> Value {
    for _ in 0..300 {
        let v = app.admin("GET", path, None).await.json();
        if v["usage"]["in_flight"] == 0 {
            return v;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{path} still has requests in flight");
}

#[actix_web::test]
async fn a_team_limit_holds_exactly_across_its_users_and_their_keys() {
    let app = spawn_app().await;
    let physics = team(&app, json!({"name": "physics", "limits": {"daily_requests": 100}})).await;
    let mut keys = Vec::new();
    for n in 0..3 {
        let u = user(&app, json!({"name": format!("student {n}"), "team_id": physics["id"]})).await;
        for _ in 0..2 {
            keys.push(key_of(&app, &u, json!({})).await.0);
        }
    }
    let before = app.mock.count();
    let replies = join_all((0..200).map(|n| app.generate(&keys[n % keys.len()], "llama3", false))).await;
    let ok = replies.iter().filter(|r| r.status == StatusCode::OK).count();
    let refused: Vec<_> = replies.iter().filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS).collect();
    assert_eq!((ok, refused.len()), (100, 100));
    assert_eq!(app.mock.count() - before, 100, "the upstream saw exactly what was admitted");
    for r in refused {
        assert_eq!(
            r.json()["error"].as_str().unwrap(),
            "quota exhausted for team 'physics': daily requests (daily_requests)"
        );
        assert!(r.header("retry-after").is_some());
    }
    let after = settled_at(&app, &format!("/teams/{}", physics["id"])).await;
    assert_eq!(after["usage"]["day"]["requests"], 100);
    assert_eq!(after["remaining"]["daily_requests"], 0);
    let users = app.admin("GET", "/users", None).await.json();
    let total: i64 =
        users.as_array().unwrap().iter().map(|u| u["usage"]["day"]["requests"].as_i64().unwrap()).sum();
    assert_eq!(total, 100, "the users' counters add up to the team's");
}

#[actix_web::test]
async fn keys_alone_and_keys_of_a_team_stay_exact_in_the_same_batches() {
    // On SQLite the two kinds run different statements in one transaction.
    let app = spawn_app().await;
    let chem = team(&app, json!({"name": "chem", "limits": {"daily_requests": 40}})).await;
    let cy = user(&app, json!({"name": "cy", "team_id": chem["id"]})).await;
    let (team_key, tk) = key_of(&app, &cy, json!({})).await;
    let (lone_key, lk) = app.create_key(json!({"name": "lone", "limits": {"daily_requests": 30}})).await;
    let replies = join_all((0..160).map(|n| {
        let key = if n % 2 == 0 { &team_key } else { &lone_key };
        app.generate(key, "llama3", false)
    }))
    .await;
    let ok = |parity: usize| {
        replies.iter().enumerate().filter(|(n, r)| n % 2 == parity && r.status == StatusCode::OK).count()
    };
    assert_eq!((ok(0), ok(1)), (40, 30));
    assert_eq!(app.settled(&tk["id"]).await["usage"]["day"]["requests"], 40);
    assert_eq!(app.settled(&lk["id"]).await["usage"]["day"]["requests"], 30);
    let after = settled_at(&app, &format!("/teams/{}", chem["id"])).await;
    assert_eq!(
        (after["usage"]["day"]["requests"].as_i64(), after["usage"]["in_flight"].as_i64()),
        (Some(40), Some(0))
    );
}

#[actix_web::test]
async fn a_user_limit_holds_exactly_across_their_keys_and_tokens_add_up() {
    let app = spawn_app().await;
    let ana = user(&app, json!({"name": "ana", "limits": {"daily_tokens": 100}})).await;
    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.push(key_of(&app, &ana, json!({})).await.0);
    }
    // 3 prompt words + 4 output tokens = 7 reserved and 7 used: 14 fit in 100.
    let body =
        json!({"model": "llama3", "prompt": "one two three", "stream": false, "options": {"num_predict": 4}});
    let replies =
        join_all((0..45).map(|n| app.post("/api/generate", Some(&keys[n % 3]), body.clone()))).await;
    assert_eq!(replies.iter().filter(|r| r.status == StatusCode::OK).count(), 14);
    let refused = replies.iter().find(|r| r.status == StatusCode::TOO_MANY_REQUESTS).unwrap();
    assert!(refused.json()["error"].as_str().unwrap().contains("user 'ana'"), "{}", refused.text());
    let after = settled_at(&app, &format!("/users/{}", ana["id"])).await;
    assert_eq!(after["usage"]["day"]["tokens"], 98);
    assert_eq!(after["key_ids"].as_array().unwrap().len(), 3);
}

#[actix_web::test]
async fn every_level_must_admit_a_request_and_a_refusal_changes_no_level() {
    let app = spawn_app().await;
    let t = team(&app, json!({"name": "roomy", "limits": {"daily_requests": 1000}})).await;
    let u = user(&app, json!({"name": "bo", "team_id": t["id"], "limits": {"daily_requests": 3}})).await;
    let (key, record) = key_of(&app, &u, json!({"limits": {"daily_requests": 1000}})).await;
    for _ in 0..3 {
        assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    }
    let refused = app.generate(&key, "llama3", false).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.json()["error"], "quota exhausted for user 'bo': daily requests (daily_requests)");
    // The refused request counted nowhere: not on the key, not on the team.
    assert_eq!(app.settled(&record["id"]).await["usage"]["day"]["requests"], 3);
    assert_eq!(settled_at(&app, &format!("/teams/{}", t["id"])).await["usage"]["day"]["requests"], 3);
    // The key's own limit names the key, as before.
    let (small, _) = key_of(&app, &u, json!({"limits": {"daily_requests": 0}})).await;
    let refused = app.generate(&small, "llama3", false).await;
    assert_eq!(refused.json()["error"], "quota exhausted for this key (daily_requests)");
}

#[actix_web::test]
async fn limits_per_model_apply_by_name_and_pattern_first_match_first() {
    let app = spawn_app().await;
    let u = user(
        &app,
        json!({"name": "cy", "model_limits": [
            {"model": "qwen3:8b", "limits": {"daily_requests": 1}},
            {"model": "qwen3:*", "limits": {"daily_requests": 3}},
            {"model": "slow", "limits": {"max_concurrent": 1}}
        ]}),
    )
    .await;
    let (key, _) = key_of(&app, &u, json!({})).await;
    assert_eq!(app.generate(&key, "qwen3:8b", false).await.status, StatusCode::OK);
    let refused = app.generate(&key, "qwen3:8b", false).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.json()["error"],
        "quota exhausted for user 'cy' on model 'qwen3:8b': daily requests (daily_requests)"
    );
    // Only the first matching entry counts a request: qwen3:4b has its 3 of its own.
    for _ in 0..3 {
        assert_eq!(app.generate(&key, "qwen3:4b", false).await.status, StatusCode::OK);
    }
    let r = app.generate(&key, "QWEN3:1b", false).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Other models are untouched by the entries.
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    // One in flight on the slow model at a time (a name without a tag
    // matches its `:latest`); other models run beside it.
    let slow = app
        .proxy_request("POST", "/api/generate", Some(&key))
        .send_body(json!({"model": "slow", "prompt": "hi"}).to_string());
    let mut held = slow.await.unwrap();
    assert_eq!(held.status(), StatusCode::OK);
    let second = app.generate(&key, "slow:latest", false).await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        second.json()["error"],
        "too many requests in flight for user 'cy' on model 'slow': requests in flight (max_concurrent)"
    );
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    held.body().limit(1 << 20).await.unwrap();
    let shown = settled_at(&app, &format!("/users/{}", u["id"])).await;
    let entries = shown["model_limits"].as_array().unwrap();
    assert_eq!(entries[0]["model"], "qwen3:8b");
    assert_eq!(entries[0]["usage"]["day"]["requests"], 1);
    assert_eq!(entries[1]["usage"]["day"]["requests"], 3);
}

#[actix_web::test]
async fn a_keys_own_model_limits_apply_too() {
    let app = spawn_app().await;
    let (key, record) = app
        .create_key(
            json!({"name": "k", "model_limits": [{"model": "big*", "limits": {"daily_requests": 1}}]}),
        )
        .await;
    assert_eq!(record["model_limits"][0]["model"], "big*");
    assert_eq!(app.generate(&key, "big:1", false).await.status, StatusCode::OK);
    let refused = app.generate(&key, "big:2", false).await;
    assert_eq!(
        refused.json()["error"],
        "quota exhausted for this key on model 'big*': daily requests (daily_requests)"
    );
    assert_eq!(app.generate(&key, "small", false).await.status, StatusCode::OK);
    // Replacing the entries: an entry for the same pattern keeps its counters.
    let patched = app
        .admin(
            "PATCH",
            &format!("/api-keys/{}", record["id"]),
            Some(json!({"model_limits": [{"model": "other", "limits": {}}, {"model": "big*", "limits": {"daily_requests": 2}}]})),
        )
        .await
        .json();
    assert_eq!(patched["model_limits"][1]["usage"]["day"]["requests"], 1);
    assert_eq!(app.generate(&key, "big:3", false).await.status, StatusCode::OK);
    assert_eq!(app.generate(&key, "big:4", false).await.status, StatusCode::TOO_MANY_REQUESTS);
}

#[actix_web::test]
async fn weights_count_tokens_exactly_and_usage_keeps_both_counts() {
    let app = spawn_app().await;
    let put =
        app.admin("PUT", "/model-weights", Some(json!({"weights": {"heavy:70b": 10, "light*": 0.2}}))).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(
        app.admin("GET", "/model-weights", None).await.json()["weights"],
        json!({"heavy:70b": 10, "light*": 0.2})
    );
    let t = team(&app, json!({"name": "weighted", "limits": {"daily_tokens": 1000}})).await;
    let u = user(&app, json!({"name": "di", "team_id": t["id"]})).await;
    let (key, record) = key_of(&app, &u, json!({})).await;
    // 3 prompt words + 4 output tokens = 7 raw tokens per request.
    let ask = |model: &str| json!({"model": model, "prompt": "one two three", "stream": false, "options": {"num_predict": 4}});
    assert_eq!(app.post("/api/generate", Some(&key), ask("heavy:70b")).await.status, StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(app.post("/api/generate", Some(&key), ask("light:1b")).await.status, StatusCode::OK);
    }
    // 7 x 10 = 70; 7 x 0.2 = 1.4, rounded up per request to 2, five times: 10.
    let team_now = settled_at(&app, &format!("/teams/{}", t["id"])).await;
    assert_eq!(team_now["usage"]["day"]["tokens"], 80);
    assert_eq!(app.settled(&record["id"]).await["usage"]["day"]["tokens"], 80);
    let rows = app.usage_rows(&record["id"]).await;
    let heavy = rows.iter().find(|r| r["model"] == "heavy:70b").unwrap();
    assert_eq!((heavy["total_tokens"].as_i64(), heavy["weighted_tokens"].as_i64()), (Some(7), Some(70)));
    assert_eq!(heavy["user_id"], u["id"]);
    assert_eq!(heavy["team_id"], t["id"]);
    let light: i64 = rows
        .iter()
        .filter(|r| r["model"] == "light:1b")
        .map(|r| r["weighted_tokens"].as_i64().unwrap())
        .sum();
    assert_eq!(light, 10);
    // A weighted reservation that does not fit is refused: 920 left, a heavy
    // request asking for 100 output tokens reserves (3 + 100) x 10 = 1030,
    // so its output is lowered to what fits (92 - 3 = 89 tokens).
    let big = json!({"model": "heavy:70b", "prompt": "one two three", "stream": false, "options": {"num_predict": 100}});
    let reply = app.post("/api/generate", Some(&key), big).await;
    assert_eq!(reply.status, StatusCode::OK);
    let last = app.mock.requests().pop().unwrap();
    let sent: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(sent["options"]["num_predict"], 89);
    // The mock stops at 50 output tokens: (3 + 50) x 10 is charged.
    let team_now = settled_at(&app, &format!("/teams/{}", t["id"])).await;
    assert_eq!(team_now["usage"]["day"]["tokens"], 80 + 530);
    // Bad weights are refused and change nothing.
    for bad in
        [json!({"weights": {"x": -1}}), json!({"weights": {"x": "2"}}), json!({"weights": [1]}), json!({})]
    {
        assert_eq!(
            app.admin("PUT", "/model-weights", Some(bad.clone())).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(app.admin("GET", "/model-weights", None).await.json()["weights"]["heavy:70b"], 10);
    // The per-user and per-team views of usage.
    let by_team = app.admin("GET", "/usage?group_by=team", None).await.json();
    let row = by_team["rows"].as_array().unwrap().iter().find(|r| r["team_id"] == t["id"]).unwrap().clone();
    assert_eq!(row["team_name"], "weighted");
    assert_eq!(row["weighted_tokens"], 610);
    let of_user = app.admin("GET", &format!("/usage?user_id={}", u["id"]), None).await.json();
    assert_eq!(of_user["rows"].as_array().unwrap().len(), 7);
}

#[actix_web::test]
async fn deleting_a_team_or_a_user_keeps_the_keys_working_and_the_history() {
    let app = spawn_app().await;
    let t = team(&app, json!({"name": "tiny", "limits": {"daily_requests": 1}})).await;
    let u = user(&app, json!({"name": "ed", "team_id": t["id"], "limits": {"daily_requests": 2}})).await;
    let (key, record) = key_of(&app, &u, json!({})).await;
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        app.admin("DELETE", &format!("/teams/{}", t["id"]), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.admin("GET", &format!("/teams/{}", t["id"]), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.admin("GET", &format!("/users/{}", u["id"]), None).await.json()["team_id"], Value::Null);
    // Now only the user's 2 a day apply.
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    let refused = app.generate(&key, "llama3", false).await;
    assert!(refused.json()["error"].as_str().unwrap().contains("user 'ed'"));
    assert_eq!(
        app.admin("DELETE", &format!("/users/{}", u["id"]), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.key(&record["id"]).await["user_id"], Value::Null);
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    app.settled(&record["id"]).await;
    let rows = app.usage_rows(&record["id"]).await;
    assert_eq!(rows.iter().filter(|r| r["status"] == "ok").count(), 3);
    assert!(rows.iter().any(|r| r["team_id"] == t["id"]), "history keeps the team the request ran under");
    assert_eq!(app.admin("DELETE", &format!("/users/{}", u["id"]), None).await.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn v1_usage_shows_every_level_and_the_binding_limit_and_headers_the_tightest() {
    let app = spawn_app().await;
    let t = team(&app, json!({"name": "chem", "limits": {"daily_requests": 5}})).await;
    let u = user(&app, json!({"name": "fi", "team_id": t["id"], "limits": {"daily_requests": 50}})).await;
    let (key, _) = key_of(&app, &u, json!({"limits": {"daily_requests": 500}})).await;
    let reply = app.generate(&key, "llama3", false).await;
    assert_eq!(reply.header("x-ratelimit-limit-requests").as_deref(), Some("5"));
    assert_eq!(reply.header("x-ratelimit-remaining-requests").as_deref(), Some("4"));
    let usage = app.get("/v1/usage", Some(&key)).await.json();
    assert_eq!(usage["user"]["name"], "fi");
    assert_eq!(usage["team"]["name"], "chem");
    assert_eq!(usage["team"]["remaining"]["daily_requests"], 4);
    assert_eq!(usage["binding"]["level"], "team");
    assert_eq!(usage["binding"]["limit"], "daily_requests");
    assert_eq!(usage["binding"]["remaining"], 4);
    let (alone, _) = app.create_key(json!({"name": "alone"})).await;
    let usage = app.get("/v1/usage", Some(&alone)).await.json();
    assert_eq!(
        (usage["user"].clone(), usage["team"].clone(), usage["binding"].clone()),
        (Value::Null, Value::Null, Value::Null)
    );
}

#[actix_web::test]
async fn the_admin_api_refuses_what_is_not_a_user_or_a_team() {
    let app = spawn_app().await;
    team(&app, json!({"name": "dup"})).await;
    let again = app.admin("POST", "/teams", Some(json!({"name": "dup"}))).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.json()["error"].as_str().unwrap().contains("'dup'"));
    for (path, body) in [
        ("/users", json!({"name": "x", "team_id": 999})),
        ("/users", json!({"name": "x", "email": "not an address"})),
        ("/users", json!({"name": ""})),
        ("/users", json!({"name": "x", "limits": {"daily_tokens": -1}})),
        (
            "/users",
            json!({"name": "x", "model_limits": [{"model": "a", "limits": {}}, {"model": "A", "limits": {}}]}),
        ),
        ("/users", json!({"name": "x", "model_limits": [{"model": "", "limits": {}}]})),
        ("/users", json!({"name": "x", "unknown": 1})),
        ("/teams", json!({"name": "y", "limits": {"max_concurrent": -2}})),
        ("/api-keys", json!({"name": "z", "user_id": 999})),
    ] {
        let reply = app.admin("POST", path, Some(body.clone())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path} {body}: {}", reply.text());
    }
    assert_eq!(app.admin("GET", "/users", None).await.json(), json!([]));
    let u = user(&app, json!({"name": "gi", "email": "gi@example.org"})).await;
    let patched =
        app.admin("PATCH", &format!("/users/{}/quota", u["id"]), Some(json!({"daily_tokens": 10}))).await;
    assert_eq!(patched.json()["limits"]["daily_tokens"], 10);
    let cleared =
        app.admin("PATCH", &format!("/users/{}", u["id"]), Some(json!({"email": null}))).await.json();
    assert_eq!(
        (cleared["email"].clone(), cleared["limits"]["daily_tokens"].clone()),
        (Value::Null, json!(10))
    );
    assert_eq!(app.admin("PATCH", "/users/999/quota", Some(json!({}))).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.admin("GET", "/usage?group_by=teams", None).await.status, StatusCode::BAD_REQUEST);
}
