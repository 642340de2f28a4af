//! Alerts: a soft limit reached, a backend down or back up. Raising one
//! never waits: it goes into a bounded queue, and background tasks claim it
//! (a soft limit's alert goes out once per window, across replicas), record
//! it for the console and POST it to `ALERT_WEBHOOK_URL`.
//!
//! Failure paths: with the database away, a soft-limit alert cannot be
//! claimed or recorded and is sent all the same (better twice than never;
//! this process raises it once per window). With the webhook away or
//! failing, each alert is tried four times (`webhook::BACKOFF`) and then
//! left, marked undelivered in the console. With alerts coming faster than
//! the receiver takes them, the oldest waiting ones are dropped, counted,
//! and logged.

pub mod queue;
pub mod soft;
pub mod upstream;
pub mod webhook;

use crate::clock::Clock;
use crate::domain::alerts::Reached;
use crate::domain::time::rfc3339;
use crate::store::Store;
use queue::Bounded;
use serde_json::{json, Value};
use soft::{ClaimKey, Level, Memory, Watch};
use std::sync::Arc;
use webhook::Webhook;

/// Alerts waiting to be recorded, and recorded ones waiting for the webhook.
const QUEUE: usize = 256;

/// One alert on its way.
#[derive(Debug)]
pub struct Alert {
    pub kind: String,
    /// The webhook's body, with `at` set.
    pub payload: Value,
    /// For a soft limit: its claim in `alerts_sent`.
    pub claim: Option<ClaimKey>,
}

/// A recorded alert for the webhook.
struct Delivery {
    id: Option<i64>,
    body: String,
}

struct Inner {
    raised: Bounded<Alert>,
    outbox: Bounded<Delivery>,
    memory: Memory,
    clock: Arc<dyn Clock>,
}

/// The handle the proxy and the probes raise alerts with; cheap to clone.
#[derive(Clone)]
pub struct Alerts(Arc<Inner>);

impl Alerts {
    pub fn new(clock: Arc<dyn Clock>) -> Alerts {
        Alerts(Arc::new(Inner {
            raised: Bounded::new(QUEUE),
            outbox: Bounded::new(QUEUE),
            memory: Memory::default(),
            clock,
        }))
    }

    /// Queues an alert; never waits.
    pub fn raise(&self, alert: Alert) {
        if let Some(old) = self.0.raised.push(alert) {
            log::warn!(
                "alerts are raised faster than they are recorded: dropped a {} alert ({} dropped so far)",
                old.kind,
                self.0.raised.dropped()
            );
        }
    }

    /// Queues an alert without a claim, stamped now.
    pub fn raise_now(&self, mut payload: Value) {
        payload["at"] = json!(rfc3339(self.0.clock.now().timestamp()));
        let kind = payload["kind"].as_str().unwrap_or("alert").to_owned();
        self.raise(Alert { kind, payload, claim: None });
    }

    /// After a settlement: raises the soft limits `watch`'s request reached
    /// (charged `tokens`, as the limits count them) that this process has not
    /// raised yet in their window. Only those cost anything beyond arithmetic.
    pub fn settled(&self, watch: &Watch, tokens: i64, refunded: bool) {
        let at = rfc3339(self.0.clock.now().timestamp());
        for (level, hit) in self.0.memory.settled(watch, tokens, refunded) {
            let claim = (level.owner, level.id, hit.kind.field(), hit.window_start);
            self.raise(Alert {
                kind: "soft_limit".into(),
                payload: soft_limit_json(&level, &hit, &at),
                claim: Some(claim),
            });
        }
    }

    /// Alerts dropped since the start because the queues were full.
    pub fn dropped(&self) -> u64 {
        self.0.raised.dropped() + self.0.outbox.dropped()
    }

    /// Claims and records raised alerts, for the life of the process.
    pub async fn record(self, store: Arc<dyn Store>, webhook: bool) {
        loop {
            let alert = self.0.raised.pop().await;
            let now = self.0.clock.now().timestamp();
            if let Some((owner, id, limit, window_start)) = alert.claim {
                match store.claim_alert(owner, id, limit, window_start, now).await {
                    Ok(true) => {}
                    // Sent already, by this process before a restart or by another.
                    Ok(false) => continue,
                    Err(e) => log::warn!("could not claim a {} alert, sending it unclaimed: {e}", alert.kind),
                }
            }
            let body = alert.payload.to_string();
            let id = match store.record_alert(&alert.kind, &body, now).await {
                Ok(id) => Some(id),
                Err(e) => {
                    log::warn!("could not record a {} alert for the console: {e}", alert.kind);
                    None
                }
            };
            log::info!("alert: {body}");
            if webhook {
                if let Some(old) = self.0.outbox.push(Delivery { id, body }) {
                    log::warn!(
                        "the alert webhook is behind: dropped alert {:?} unsent ({} dropped so far)",
                        old.id,
                        self.0.outbox.dropped()
                    );
                }
            }
        }
    }

    /// Posts recorded alerts to the webhook, one at a time, for the life of
    /// the process (on the thread that started it: the HTTP client is not `Send`).
    pub async fn send(self, store: Arc<dyn Store>, hook: Webhook) {
        let client = webhook::client();
        loop {
            let delivery = self.0.outbox.pop().await;
            if hook.deliver(&client, &delivery.body).await {
                if let Some(id) = delivery.id {
                    let now = self.0.clock.now().timestamp();
                    if let Err(e) = store.alert_delivered(id, now).await {
                        log::warn!("could not mark alert {id} delivered: {e}");
                    }
                }
            }
        }
    }
}

/// The webhook's body for a soft limit reached.
fn soft_limit_json(level: &Level, hit: &Reached, at: &str) -> Value {
    json!({
        "kind": "soft_limit",
        "level": level.owner.as_str(),
        "id": level.id,
        "name": level.name,
        "limit": hit.kind.field(),
        "percent": hit.percent,
        "used": hit.used,
        "threshold": hit.threshold,
        "limit_value": hit.limit,
        // A lifetime limit's window never starts over.
        "window_start": (hit.window_start > 0).then(|| rfc3339(hit.window_start)),
        "at": at,
    })
}
