//! The fairness lane: one model on a mock GPU with a few slots, a heavy key
//! that keeps many requests in flight and a light key that sends one at a
//! time. Straight to the mock, the light key's request waits behind the heavy
//! key's whole queue. Through a gate that holds the queue itself and serves
//! keys in turn, it should wait for no more than one slot to come free, while
//! the GPU stays just as busy.

use crate::client::{now_ns, Conn, Splitter};
use crate::load::{Lane, Target};
use crate::mock::Shape;
use crate::procs::{start_gate, GateSetup};
use crate::report::{us, verdict, Row, Table};
use crate::run::create_unlimited_key;
use crate::stats::percentile;
use anyhow::{anyhow, Context};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The light key's p99 wait for its first chunk, as a multiple of the service
/// time: a fair queue makes it wait for one slot at most.
const P99_OVER_SERVICE: f64 = 1.1;
/// The rate through the gate, as a share of the rate straight to the mock:
/// queueing in the gate must not leave slots idle.
const RATE_OVER_DIRECT: f64 = 0.95;

pub struct Plan {
    /// Requests the mock's GPU runs at once (`?slots=` on the gate's OLLAMA_URL).
    pub slots: u32,
    /// How long each request holds its slot.
    pub service: Duration,
    /// Requests the heavy key keeps in flight.
    pub heavy: usize,
    /// The heavy load alone, before the light key starts.
    pub warm: Duration,
    /// How long the light key keeps sending.
    pub measure: Duration,
}

impl Plan {
    /// About 50 s: two halves of about 25 s.
    pub fn full() -> Plan {
        Plan {
            slots: 4,
            service: Duration::from_millis(200),
            heavy: 32,
            warm: Duration::from_secs(1),
            measure: Duration::from_secs(20),
        }
    }

    /// About 20 s.
    pub fn quick() -> Plan {
        Plan {
            slots: 4,
            service: Duration::from_millis(100),
            heavy: 32,
            warm: Duration::from_millis(500),
            measure: Duration::from_secs(8),
        }
    }

    fn shape(&self) -> Shape {
        Shape::slot_limited(self.slots, self.service)
    }

    fn service_ns(&self) -> f64 {
        self.service.as_nanos() as f64
    }
}

/// What one half (direct or through the gate) measured.
#[derive(Default)]
struct Outcome {
    /// The light key's time from sending a request to its first chunk, ascending.
    light_first_ns: Vec<u64>,
    /// Requests of both keys that finished while the light key was sending.
    completed: u64,
    seconds: f64,
    errors: u64,
    first_error: Option<String>,
}

impl Outcome {
    fn p(&self, p: f64) -> f64 {
        percentile(&self.light_first_ns, p) as f64
    }

    fn per_second(&self) -> f64 {
        self.completed as f64 / self.seconds
    }

    fn json(&self, plan: &Plan) -> Value {
        json!({
            "light_first_chunk_ns": self.light_first_ns,
            "light_first_chunk_p50_ns": self.p(50.0), "light_first_chunk_p99_ns": self.p(99.0),
            "p99_over_service": self.p(99.0) / plan.service_ns(),
            "completed": self.completed, "seconds": self.seconds, "per_second": self.per_second(),
            "errors": self.errors, "first_error": self.first_error,
        })
    }
}

/// Both halves, their rows in `table` and `targets`, and the figures in `raw`.
/// The direct half is reported even when the gate's fails; the error is
/// returned after.
pub async fn lane(
    plan: &Plan,
    mock: SocketAddr,
    gate_bin: &Path,
    work: &Path,
    table: &mut Table,
    targets: &mut Table,
    raw: &mut BTreeMap<&str, Value>,
) -> anyhow::Result<()> {
    let what = format!(
        "{} slots, {} ms each; heavy key keeps {} in flight",
        plan.slots,
        plan.service.as_millis(),
        plan.heavy
    );
    eprintln!("fairness lane ({what}): straight to the mock");
    let direct = Target { name: "direct", addr: mock, key: None };
    let direct = match measure(plan, &direct, &direct).await {
        Ok(d) => d,
        Err(e) => {
            table.push(Row {
                scenario: format!("fairness ({what})"),
                direct: format!("failed: {e:#}"),
                ..Row::default()
            });
            return Err(e.context("the fairness lane, straight to the mock"));
        }
    };
    eprintln!("fairness lane: through the gate, OLLAMA_URL=http://{mock}?slots={}", plan.slots);
    let gate = through_gate(plan, mock, gate_bin, work).await;
    let mut lanes = serde_json::Map::new();
    lanes.insert("direct".into(), direct.json(plan));
    // The cause alone: the whole error, with the gate's URL and log, is in
    // the raw results and printed after the tables.
    let failed = |e: &anyhow::Error| format!("failed: {}", e.root_cause());
    let t = plan.service_ns();

    // The figures.
    let cell = |o: &Outcome, p: f64| us(o.p(p));
    let (gate_p50, gate_p99) = match &gate {
        Ok(g) => (cell(g, 50.0), cell(g, 99.0)),
        Err(e) => (failed(e), "failed".into()),
    };
    table.push(Row {
        scenario: format!("fairness: light key's time to first chunk, p50 ({what})"),
        direct: cell(&direct, 50.0),
        gate: gate_p50,
        added: gate.as_ref().map(|g| us(g.p(50.0) - direct.p(50.0))).unwrap_or_default(),
        ..Row::default()
    });
    table.push(Row {
        scenario: "fairness: light key's time to first chunk, p99".into(),
        direct: format!("{} ({:.1} × T)", cell(&direct, 99.0), direct.p(99.0) / t),
        gate: match &gate {
            Ok(g) => format!("{gate_p99} ({:.1} × T)", g.p(99.0) / t),
            Err(_) => gate_p99,
        },
        added: gate.as_ref().map(|g| us(g.p(99.0) - direct.p(99.0))).unwrap_or_default(),
        ..Row::default()
    });
    let rate = |o: &Outcome| format!("{:.1}/s, {} errors", o.per_second(), o.errors);
    table.push(Row {
        scenario: "fairness: requests/s, heavy + light key".into(),
        direct: rate(&direct),
        gate: gate.as_ref().map(rate).unwrap_or_else(|_| "failed".into()),
        added: gate
            .as_ref()
            .map(|g| format!("{:.0}% of direct", 100.0 * g.per_second() / direct.per_second()))
            .unwrap_or_default(),
        ..Row::default()
    });

    // The targets, as ratios.
    let mut figures = serde_json::Map::new();
    let (p99_cell, p99_met, rate_cell, rate_met) = match &gate {
        Ok(g) => {
            let (p99_ratio, rate_ratio) = (g.p(99.0) / t, g.per_second() / direct.per_second());
            figures.insert("gate_p99_over_service".into(), json!(p99_ratio));
            figures.insert("gate_rate_over_direct".into(), json!(rate_ratio));
            let clean = g.errors == 0;
            (
                format!("{p99_ratio:.2}"),
                Some(p99_ratio <= P99_OVER_SERVICE && clean),
                format!("{rate_ratio:.2}"),
                Some(rate_ratio >= RATE_OVER_DIRECT && clean),
            )
        }
        Err(_) => ("failed".into(), Some(false), "failed".into(), Some(false)),
    };
    targets.push(Row {
        scenario: "fairness: light key's p99 time to first chunk ÷ service time T".into(),
        direct: format!("{:.2}", direct.p(99.0) / t),
        gate: p99_cell,
        added: format!("T = {} ms, {} slots", plan.service.as_millis(), plan.slots),
        target: format!("≤ {P99_OVER_SERVICE}"),
        verdict: verdict(p99_met),
        ..Row::default()
    });
    targets.push(Row {
        scenario: "fairness: requests/s, gate ÷ direct (heavy + light key)".into(),
        direct: format!("{:.1}/s", direct.per_second()),
        gate: rate_cell,
        added: gate.as_ref().map(|g| format!("gate {:.1}/s", g.per_second())).unwrap_or_default(),
        target: format!("≥ {RATE_OVER_DIRECT}"),
        verdict: verdict(rate_met),
        ..Row::default()
    });

    lanes.insert(
        "gate".into(),
        match &gate {
            Ok(g) => g.json(plan),
            Err(e) => json!({"error": format!("{e:#}")}),
        },
    );
    raw.insert(
        "fairness",
        json!({
            "slots": plan.slots, "service_ms": plan.service.as_millis() as u64, "heavy_in_flight": plan.heavy,
            "warm_s": plan.warm.as_secs_f64(), "measure_s": plan.measure.as_secs_f64(),
            "model": plan.shape().model(), "lanes": lanes, "targets": figures,
        }),
    );
    gate.map(|_| ())
}

/// A gate of its own, told the mock has `plan.slots` slots, with a heavy and
/// a light key.
async fn through_gate(plan: &Plan, mock: SocketAddr, bin: &Path, work: &Path) -> anyhow::Result<Outcome> {
    let dir = work.join("fairness");
    std::fs::create_dir_all(&dir)?;
    let setup = GateSetup {
        bin: bin.to_path_buf(),
        dir: dir.clone(),
        database_url: "sqlite://data/gate.db".into(),
        upstream: mock,
        upstream_slots: Some(plan.slots),
    };
    let g = start_gate(&setup, "gate.log").await?;
    let key = |name| create_unlimited_key(g.admin, name);
    let heavy = Target { name: "gate", addr: g.proxy, key: Some(key("fairness-heavy").await?) };
    let light = Target { name: "gate", addr: g.proxy, key: Some(key("fairness-light").await?) };
    measure(plan, &heavy, &light).await.with_context(|| {
        format!(
            "through the gate with OLLAMA_URL=http://{mock}?slots={} (a gate without the fair queue \
             does not understand ?slots=); see {}",
            plan.slots,
            dir.join("gate.log").display()
        )
    })
}

/// A request on each key first, which must succeed, then the contention.
async fn measure(plan: &Plan, heavy: &Target, light: &Target) -> anyhow::Result<Outcome> {
    let shape = plan.shape();
    for (who, t) in [("heavy", heavy), ("light", light)] {
        let request = Lane::Ollama.request(t, &shape, true);
        one(&mut None, t.addr, &request, shape.chunks)
            .await
            .map_err(|e| anyhow!("the {who} key's warm-up request failed: {e}"))?;
    }
    Ok(contend(plan, heavy, light).await)
}

/// The heavy key's requests, `plan.heavy` at a time, each sent again as soon as
/// it finishes; after `plan.warm`, the light key's, one after another for
/// `plan.measure`.
async fn contend(plan: &Plan, heavy: &Target, light: &Target) -> Outcome {
    let shape = plan.shape();
    let completed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new((0u64, None::<String>)));
    let fail = |failures: &Mutex<(u64, Option<String>)>, e: String| {
        let mut f = failures.lock().unwrap_or_else(|e| e.into_inner());
        f.0 += 1;
        f.1.get_or_insert(e);
    };
    let request = Lane::Ollama.request(heavy, &shape, true);
    let tasks: Vec<_> = (0..plan.heavy)
        .map(|_| {
            let (request, addr) = (request.clone(), heavy.addr);
            let (completed, stop, failures) = (completed.clone(), stop.clone(), failures.clone());
            tokio::spawn(async move {
                let mut conn = None;
                while !stop.load(Ordering::Relaxed) {
                    match one(&mut conn, addr, &request, shape.chunks).await {
                        Ok(_) => {
                            completed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            fail(&failures, e);
                            // So that a target that fails at once is not hammered.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(plan.warm).await;

    let request = Lane::Ollama.request(light, &shape, true);
    let mut out = Outcome::default();
    let (before, started) = (completed.load(Ordering::Relaxed), Instant::now());
    let mut conn = None;
    while started.elapsed() < plan.measure {
        match one(&mut conn, light.addr, &request, shape.chunks).await {
            Ok(first) => {
                out.light_first_ns.push(first);
                completed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                fail(&failures, e);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    out.seconds = started.elapsed().as_secs_f64();
    out.completed = completed.load(Ordering::Relaxed) - before;
    // The heavy requests in flight finish, so the next half starts on an idle mock.
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    out.light_first_ns.sort_unstable();
    let (errors, first_error) = std::mem::take(&mut *failures.lock().unwrap_or_else(|e| e.into_inner()));
    (out.errors, out.first_error) = (errors, first_error);
    out
}

/// One streamed request on `conn` (opened first when needed): the time from
/// writing it to the first byte of its body, or what went wrong.
async fn one(conn: &mut Option<Conn>, addr: SocketAddr, request: &[u8], chunks: u32) -> Result<u64, String> {
    if conn.is_none() {
        *conn = Some(Conn::open(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?);
    }
    let mut splitter = Splitter::new(false);
    // The start of the body, for the error message when the status is not 200.
    let mut body = Vec::new();
    let mut first = None;
    let started = now_ns();
    let result = conn
        .as_mut()
        .expect("opened above")
        .exchange(request, |data, read, at| {
            first.get_or_insert(at);
            if body.len() < 200 {
                body.extend_from_slice(&data[..data.len().min(200)]);
            }
            splitter.feed(data, read, at);
        })
        .await;
    let head = match result {
        Ok(head) => head,
        Err(e) => {
            *conn = None;
            return Err(e.to_string());
        }
    };
    if head.close {
        *conn = None;
    }
    if head.status != 200 {
        return Err(format!("status {}: {}", head.status, String::from_utf8_lossy(&body).trim()));
    }
    if splitter.chunks.len() < chunks as usize {
        return Err(format!("{} of {chunks} chunks", splitter.chunks.len()));
    }
    Ok(first.unwrap_or(started).saturating_sub(started) as u64)
}
