//! The backends in use and what is known of each: health, version, models.

use super::queue::Offer;
use crate::domain::backend::BackendSpec;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One backend: what the operator set, and what the probes found.
pub struct Backend {
    pub spec: BackendSpec,
    /// Kept across a change of the settings while the URL stays.
    live: Arc<Mutex<Health>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not probed yet: used, so a fresh start serves at once.
    Unknown,
    Up,
    /// Out of use until a probe answers.
    Down,
}

#[derive(Debug, Clone)]
pub struct Health {
    pub state: State,
    /// Probe failures in a row.
    pub failures: u32,
    pub version: Option<String>,
    /// Normalised names from `/api/tags`; `None` until listed.
    pub models: Option<Arc<HashSet<String>>>,
    /// Normalised names from `/api/ps`.
    pub loaded: Arc<HashSet<String>>,
    /// Why it is down, in words for the console.
    pub error: Option<String>,
    pub since: Instant,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            state: State::Unknown,
            failures: 0,
            version: None,
            models: None,
            loaded: Default::default(),
            error: None,
            since: Instant::now(),
        }
    }
}

/// Probe failures in a row that take a backend out. A refused connection on
/// the request path takes it out at once.
const FAILURES_TO_TRIP: u32 = 2;

impl Backend {
    pub fn health(&self) -> Health {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, change: impl FnOnce(&mut Health)) -> (State, State) {
        let mut health = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let before = health.state;
        change(&mut health);
        if health.state != before {
            health.since = Instant::now();
        }
        (before, health.state)
    }

    /// A probe answered: up, with what it listed. Returns whether it came back.
    pub fn probed(&self, version: Option<String>, models: HashSet<String>, loaded: HashSet<String>) -> bool {
        let (before, _) = self.update(|h| {
            h.state = State::Up;
            h.failures = 0;
            h.version = version;
            h.models = Some(Arc::new(models));
            h.loaded = Arc::new(loaded);
            h.error = None;
        });
        before == State::Down
    }

    /// A probe failed. Returns whether this took the backend out.
    pub fn probe_failed(&self, why: String) -> bool {
        let (before, after) = self.update(|h| {
            h.failures += 1;
            if h.failures >= FAILURES_TO_TRIP {
                h.state = State::Down;
            }
            h.error = Some(why);
        });
        before != State::Down && after == State::Down
    }

    /// A request could not connect: out at once, until a probe answers.
    pub fn unreachable(&self, why: String) -> bool {
        let (before, _) = self.update(|h| {
            h.state = State::Down;
            h.failures = h.failures.max(FAILURES_TO_TRIP);
            h.error = Some(why);
        });
        before != State::Down
    }

    pub fn is_down(&self) -> bool {
        self.health().state == State::Down
    }

    /// Takes new requests for the model: enabled, not draining, not down,
    /// and lists the model (or has not listed anything yet).
    pub fn serves(&self, model: &str) -> bool {
        if !self.spec.takes_work() {
            return false;
        }
        let health = self.live.lock().unwrap_or_else(|e| e.into_inner());
        health.state != State::Down
            && (model.is_empty() || health.models.as_ref().is_none_or(|m| m.contains(model)))
    }

    /// Its last listing names the model (normalised).
    pub fn lists(&self, model: &str) -> bool {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).models.as_ref().is_some_and(|m| m.contains(model))
    }

    pub fn has_loaded(&self, model: &str) -> bool {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).loaded.contains(model)
    }

    pub fn url(&self) -> &url::Url {
        &self.spec.url
    }
}

/// The backends, in the order the operator listed them.
pub struct Pool {
    pub backends: Vec<Arc<Backend>>,
}

impl Pool {
    /// A new pool; backends whose URL stays keep what was known of them.
    pub fn new(specs: Vec<BackendSpec>, old: Option<&Pool>) -> Pool {
        let backends = specs
            .into_iter()
            .map(|spec| {
                let live = old
                    .and_then(|p| p.backends.iter().find(|b| b.spec.url == spec.url))
                    .map(|b| b.live.clone())
                    .unwrap_or_default();
                Arc::new(Backend { spec, live })
            })
            .collect();
        Pool { backends }
    }

    pub fn specs(&self) -> Vec<BackendSpec> {
        self.backends.iter().map(|b| b.spec.clone()).collect()
    }

    pub fn named(&self, name: &str) -> Option<&Arc<Backend>> {
        self.backends.iter().find(|b| b.spec.name == name)
    }

    /// Backends that can take a request for the model. A model no backend
    /// lists may still be a name Ollama resolves (or one it will answer 404
    /// for, in its own words): then every backend that takes work is asked.
    pub fn for_model(&self, model: &str) -> Vec<Arc<Backend>> {
        let listing: Vec<_> = self.backends.iter().filter(|b| b.serves(model)).cloned().collect();
        if !listing.is_empty() {
            return listing;
        }
        self.backends.iter().filter(|b| b.serves("")).cloned().collect()
    }

    /// Up, or not probed yet: listings and manage routes go there.
    pub fn reachable(&self) -> Vec<Arc<Backend>> {
        self.backends.iter().filter(|b| b.spec.enabled && !b.is_down()).cloned().collect()
    }
}

/// What the queue needs of a backend.
pub fn offer<'a>(backend: &'a Backend, model: &str) -> Offer<'a> {
    Offer {
        url: backend.spec.url.as_str(),
        slots: backend.spec.slots,
        weight: backend.spec.weight,
        loaded: backend.has_loaded(model),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(urls: &[&str]) -> Pool {
        Pool::new(crate::domain::backend::parse_list(urls.iter().copied(), 1).unwrap(), None)
    }

    fn names(list: &[Arc<Backend>]) -> Vec<&str> {
        list.iter().map(|b| b.spec.name.as_str()).collect()
    }

    #[test]
    fn a_model_goes_where_it_is_listed_and_unlisted_ones_anywhere() {
        let p = pool(&["http://a?name=a", "http://b?name=b", "http://c?name=c&draining=true"]);
        p.backends[0].probed(None, ["x".to_owned()].into(), Default::default());
        p.backends[1].probed(None, ["y".to_owned()].into(), Default::default());
        p.backends[2].probed(None, ["x".to_owned()].into(), Default::default());
        assert_eq!(names(&p.for_model("x")), ["a"], "draining takes no new work");
        assert_eq!(names(&p.for_model("y")), ["b"]);
        assert_eq!(names(&p.for_model("nowhere")), ["a", "b"]);
    }

    #[test]
    fn a_backend_trips_after_failures_and_comes_back_on_a_probe() {
        let p = pool(&["http://a?name=a", "http://b?name=b"]);
        assert!(!p.backends[0].probe_failed("timeout".into()), "one failure is not enough");
        assert!(p.backends[0].probe_failed("timeout".into()));
        assert_eq!(names(&p.for_model("m")), ["b"]);
        assert!(p.backends[1].unreachable("refused".into()));
        assert!(p.for_model("m").is_empty());
        assert!(p.backends[0].probed(None, Default::default(), Default::default()));
        assert_eq!(names(&p.reachable()), ["a"]);
    }

    #[test]
    fn what_is_known_survives_a_change_of_settings() {
        let old = pool(&["http://a?name=a", "http://b?name=b"]);
        old.backends[1].unreachable("refused".into());
        let new = Pool::new(
            crate::domain::backend::parse_list(["http://b?name=renamed&slots=3"], 1).unwrap(),
            Some(&old),
        );
        assert!(new.backends[0].is_down());
        assert_eq!(new.backends[0].spec.slots, 3);
    }
}
