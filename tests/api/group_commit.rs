//! Group commit: admissions and settlements that arrive together share
//! transactions, on several keys at once, and every limit still holds exactly.

use crate::helpers::*;
use futures_util::future::join_all;
use ollama_gate::store::{Admission, Admitted, Settlement};
use serde_json::json;

#[actix_web::test]
async fn many_keys_admitted_and_settled_at_once_each_get_exactly_their_limit() {
    let app = spawn_app().await;
    let mut keys = Vec::new();
    for n in 0..4 {
        let (_, v) = app
            .create_key(
                json!({"name": format!("k{n}"), "limits": {"daily_requests": 15, "daily_tokens": 1000}}),
            )
            .await;
        let id = v["id"].as_i64().unwrap();
        let hash = app.state.store.get_key(id).await.unwrap().unwrap().key_hash;
        keys.push((id, hash));
    }
    let windows = app.state.windows();
    // 40 for each key, interleaved, all at once: far more than one transaction.
    let admissions: Vec<Admission> = (0..160)
        .map(|i| {
            let (key_id, key_hash) = keys[i % keys.len()].clone();
            Admission {
                key_id,
                key_hash,
                windows,
                counts_in_request_quotas: true,
                reserve_tokens: 10,
                prompt_estimate: 3,
                model: "llama3".into(),
                route: "/api/generate",
                instance_id: app.state.instance_id.to_string(),
                budgets: vec![],
                user_id: None,
                team_id: None,
                weighted_prompt: 3,
            }
        })
        .collect();
    let results = join_all(admissions.iter().map(|a| app.state.store.admit(a))).await;
    let mut admitted = Vec::new();
    for (a, result) in admissions.iter().zip(results) {
        match result.unwrap() {
            Admitted::Yes { reservation_id, usage } => {
                assert!(usage.day.requests <= 15 && usage.day.tokens <= 150, "{usage:?}");
                admitted.push((a.key_id, reservation_id));
            }
            Admitted::Refused { .. } => {}
            Admitted::KeyGone => panic!("key {} taken for gone", a.key_id),
        }
    }
    for (id, _) in &keys {
        assert_eq!(
            admitted.iter().filter(|(k, _)| k == id).count(),
            15,
            "key {id}: exactly its daily_requests"
        );
    }
    let now = app.state.clock.now().timestamp();
    let settlements: Vec<Settlement> = admitted
        .iter()
        .map(|&(key_id, reservation_id)| Settlement {
            reservation_id,
            key_id,
            prompt_tokens: 3,
            completion_tokens: 4,
            estimated: false,
            status: "ok",
            http_status: 200,
            latency_ms: 1,
            refund_request: false,
            now,
            weighted_tokens: 7,
            budgets: vec![],
            request_id: Some(format!("batched-{reservation_id}")),
        })
        .collect();
    let settled = join_all(settlements.iter().map(|s| app.state.store.settle(s))).await;
    assert!(settled.into_iter().all(|s| s.unwrap()), "each reservation settled once");
    let again = join_all(settlements.iter().take(5).map(|s| app.state.store.settle(s))).await;
    assert!(again.into_iter().all(|s| !s.unwrap()), "a second settlement changes nothing");
    for (id, _) in &keys {
        let key = app.key(&json!(id)).await;
        assert_eq!(key["usage"]["day"]["requests"], 15);
        assert_eq!(
            key["usage"]["day"]["tokens"],
            15 * 7,
            "the reservations were replaced by the real counts"
        );
        assert_eq!(key["usage"]["in_flight"], 0);
        let rows = app.usage_rows(&json!(id)).await;
        assert_eq!(rows.len(), 15);
        assert!(
            rows.iter().all(|r| r["request_id"].as_str().is_some_and(|s| s.starts_with("batched-"))),
            "each row has its own settlement's request id"
        );
    }
}
