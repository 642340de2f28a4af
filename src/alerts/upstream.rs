//! Backend down and back up, as alerts. The probes and the request path
//! decide a backend's state (two failed probes or a refused connection take
//! it out, a probe that answers brings it back: `upstream::pool`); this
//! watches those decisions, not single probes.
//!
//! Each change is one alert, with flapping damped: a backend that goes out
//! again within `FLAP_GAP` of its last down alert is reported down only once
//! that gap has passed and it is still out (and then back up when it is).
//! Every down alert is followed by one up alert when the backend is back.
//! Each process probes for itself, so each replica reports what it sees.

use super::Alerts;
use crate::upstream::pool::State;
use crate::upstream::Upstreams;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// The least time between two down alerts of one backend.
pub const FLAP_GAP: Duration = Duration::from_secs(60);
/// How often the backends' states are looked at (the probes run every second or two).
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// What was last reported of one backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reported {
    /// `None` until first seen up or down.
    state: Option<State>,
    last_down: Option<Instant>,
}

/// The alert to raise, if any, for a backend now in `state`.
pub fn decide(reported: &mut Reported, state: State, now: Instant) -> Option<&'static str> {
    match (reported.state, state) {
        (_, State::Unknown) => None,
        (Some(before), after) if before == after => None,
        // Up at the start is what is expected: nothing to say.
        (None, State::Up) => {
            reported.state = Some(State::Up);
            None
        }
        (_, State::Down) => {
            if reported.last_down.is_some_and(|at| now.duration_since(at) < FLAP_GAP) {
                return None;
            }
            *reported = Reported { state: Some(State::Down), last_down: Some(now) };
            Some("upstream_down")
        }
        (_, State::Up) => {
            reported.state = Some(State::Up);
            Some("upstream_up")
        }
    }
}

/// A backend's URL without credentials, query or fragment.
pub fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Runs for the life of the process.
pub async fn watch(upstreams: Arc<Upstreams>, alerts: Alerts) {
    let mut reported: HashMap<String, Reported> = HashMap::new();
    loop {
        let pool = upstreams.pool();
        for backend in pool.backends.iter().filter(|b| b.spec.enabled) {
            let health = backend.health();
            let entry = reported.entry(backend.spec.url.to_string()).or_default();
            if let Some(kind) = decide(entry, health.state, Instant::now()) {
                let mut reason = health.error.unwrap_or_default();
                if let Some(password) = backend.spec.url.password() {
                    reason = reason.replace(password, "***");
                }
                if kind == "upstream_up" {
                    reason = "a health probe answered".into();
                }
                alerts.raise_now(json!({
                    "kind": kind,
                    "backend": backend.spec.name,
                    "url": shown_url(&backend.spec.url),
                    "reason": reason,
                }));
            }
        }
        // Backends no longer listed are forgotten.
        reported.retain(|url, _| pool.backends.iter().any(|b| b.spec.url.as_str() == url));
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_change_is_one_alert_and_flapping_is_damped() {
        let mut r = Reported::default();
        let t0 = Instant::now();
        assert_eq!(decide(&mut r, State::Unknown, t0), None);
        assert_eq!(decide(&mut r, State::Up, t0), None, "up at the start");
        assert_eq!(decide(&mut r, State::Down, t0), Some("upstream_down"));
        assert_eq!(decide(&mut r, State::Down, t0), None, "still down");
        assert_eq!(decide(&mut r, State::Up, t0), Some("upstream_up"));
        let soon = t0 + Duration::from_secs(5);
        assert_eq!(decide(&mut r, State::Down, soon), None, "out again within the gap");
        assert_eq!(decide(&mut r, State::Up, soon), None, "and back: nothing was said");
        assert_eq!(decide(&mut r, State::Down, soon), None);
        let later = t0 + FLAP_GAP;
        assert_eq!(decide(&mut r, State::Down, later), Some("upstream_down"), "still out past the gap");
        assert_eq!(decide(&mut r, State::Up, later), Some("upstream_up"));
    }

    #[test]
    fn a_backend_down_at_the_start_is_reported() {
        let mut r = Reported::default();
        assert_eq!(decide(&mut r, State::Down, Instant::now()), Some("upstream_down"));
    }

    #[test]
    fn urls_lose_their_credentials() {
        let url = Url::parse("https://user:pa55@ollama.example:11434/base?name=x#f").unwrap();
        assert_eq!(shown_url(&url), "https://ollama.example:11434/base");
    }
}
