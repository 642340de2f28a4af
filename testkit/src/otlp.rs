//! A small OTLP/HTTP receiver on loopback: it takes `POST /v1/traces` in the
//! JSON encoding and keeps what it received, as a collector would, or
//! answers with a chosen failure status.

use actix_web::web::{self, Bytes, Data};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// One export as it arrived.
#[derive(Debug, Clone)]
pub struct Export {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Export {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    exports: Mutex<Vec<Export>>,
    arrived: Notify,
    /// Answer every export with this status instead of 200, when set.
    failing: AtomicU16,
}

pub struct Receiver {
    /// `http://127.0.0.1:<port>`: the base URL, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub url: String,
    state: Arc<State>,
    _server: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(State::default());
        let data = Data::from(state.clone());
        let server =
            HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(receive)))
                .workers(1)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .expect("the receiver binds");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver { url: format!("http://127.0.0.1:{port}"), state, _server: handle }
    }

    /// From now on every export is answered with `status` (0: accepted again).
    pub fn fail_with(&self, status: u16) {
        self.state.failing.store(status, Ordering::SeqCst);
    }

    pub fn exports(&self) -> Vec<Export> {
        self.state.exports.lock().unwrap().clone()
    }

    /// Every span received so far, flattened, each with its resource's
    /// attributes under `"resource"`.
    pub fn spans(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for export in self.exports() {
            for rs in export.body["resourceSpans"].as_array().into_iter().flatten() {
                for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                    for span in ss["spans"].as_array().into_iter().flatten() {
                        let mut span = span.clone();
                        span["resource"] = rs["resource"]["attributes"].clone();
                        span["scope"] = ss["scope"].clone();
                        out.push(span);
                    }
                }
            }
        }
        out
    }

    /// Waits until `done` holds for the exports received, up to `within`.
    pub async fn until(&self, within: Duration, done: impl Fn(&Receiver) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.state.arrived.notified();
            if done(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return done(self);
            }
        }
    }
}

async fn receive(req: HttpRequest, body: Bytes, state: Data<State>) -> HttpResponse {
    let export = Export {
        path: req.path().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    state.exports.lock().unwrap().push(export);
    state.arrived.notify_waiters();
    match state.failing.load(Ordering::SeqCst) {
        0 => HttpResponse::Ok().json(serde_json::json!({})),
        status => HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish(),
    }
}

/// The attribute `key` of a span, as its JSON value (`{"stringValue": ..}` or `{"intValue": ..}`).
pub fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"].as_array()?.iter().find(|a| a["key"] == key).map(|a| &a["value"])
}

/// A string attribute.
pub fn text<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    attribute(span, key)?["stringValue"].as_str()
}

/// An integer attribute (OTLP/JSON writes 64-bit integers as strings).
pub fn int(span: &Value, key: &str) -> Option<i64> {
    attribute(span, key)?["intValue"].as_str()?.parse().ok()
}
