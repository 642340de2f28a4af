//! The backends' gauges, read from the upstreams at each scrape rather than
//! kept up to date on the request path: a backend removed from the settings
//! disappears from the next scrape, and no request pays for them.

use crate::upstream::pool::State;
use crate::upstream::Upstreams;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};
use std::sync::Arc;

pub struct Backends {
    upstreams: Arc<Upstreams>,
    /// Empty vectors that only describe the gauges; each scrape fills new ones.
    templates: [IntGaugeVec; 3],
}

fn gauges() -> prometheus::Result<[IntGaugeVec; 3]> {
    let gauge = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &["backend"]);
    Ok([
        gauge("ollama_gate_in_flight", "Requests running on the backend now.")?,
        gauge(
            "ollama_gate_queue_length",
            "Requests waiting in the fair queue for a model the backend would take.",
        )?,
        gauge("ollama_gate_upstream_up", "1 when the backend is enabled and not down, as /health says ok.")?,
    ])
}

impl Backends {
    pub fn new(upstreams: Arc<Upstreams>) -> prometheus::Result<Backends> {
        Ok(Backends { upstreams, templates: gauges()? })
    }
}

impl Collector for Backends {
    fn desc(&self) -> Vec<&Desc> {
        self.templates.iter().flat_map(|g| g.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok([in_flight, queued, up]) = gauges() else { return Vec::new() };
        for backend in &self.upstreams.pool().backends {
            let name = [backend.spec.name.as_str()];
            let (busy, waiting) = self.upstreams.load_of(backend);
            in_flight.with_label_values(&name).set(i64::from(busy));
            queued.with_label_values(&name).set(waiting as i64);
            let serving = backend.spec.enabled && backend.health().state != State::Down;
            up.with_label_values(&name).set(i64::from(serving));
        }
        [in_flight, queued, up].iter().flat_map(|g| g.collect()).collect()
    }
}
