//! One run: start the mock and the gate (and a peer), then every scenario in
//! alternating rounds, then the table and the raw figures as JSON.

use crate::client::{call, post};
use crate::fairness;
use crate::load::{latency, streams, throughput, Lane, Target};
use crate::mock::Shape;
use crate::procs::{self, rss_kib, start_gate, start_mock, GateSetup, Proc, ADMIN_PASSWORD};
use crate::quota;
use crate::report::{mib, us, verdict, Row, Table};
use crate::stats::{median, percentile};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct Options {
    pub quick: bool,
    pub peer_litellm: bool,
    pub postgres: Option<String>,
    pub out: Option<PathBuf>,
    pub gate_bin: Option<PathBuf>,
    pub before_bin: Option<PathBuf>,
    /// The gate lane's key counts in its user's and team's limits too.
    pub people: bool,
    pub nginx: bool,
    /// Only the fairness lane (a full run without it includes the lane too).
    pub fairness: bool,
}

/// How much of each scenario a run does.
struct Plan {
    restarts: usize,
    latency_rounds: usize,
    latency_requests: usize,
    rate_levels: Vec<usize>,
    rate_rounds: usize,
    rate_duration: Duration,
    stream_rounds: usize,
    streams_per_round: usize,
    stream_shape: Shape,
    held: usize,
    held_shape: Shape,
    settle_wait: Duration,
    quota_duration: Duration,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            restarts: 5,
            latency_rounds: 5,
            latency_requests: 2000,
            rate_levels: vec![1, 8, 32, 64, 128, 256],
            rate_rounds: 3,
            rate_duration: Duration::from_secs(2),
            stream_rounds: 5,
            streams_per_round: 10,
            stream_shape: Shape {
                chunks: 50,
                gap: Duration::from_millis(2),
                first: Duration::ZERO,
                slots: 0,
            },
            held: 2000,
            held_shape: Shape {
                chunks: 200,
                gap: Duration::from_millis(100),
                first: Duration::ZERO,
                slots: 0,
            },
            settle_wait: Duration::from_secs(60),
            quota_duration: Duration::from_secs(3),
        }
    }

    /// Under a minute: enough to see a regression on the request path.
    fn quick() -> Plan {
        Plan {
            restarts: 3,
            latency_rounds: 3,
            latency_requests: 500,
            rate_levels: vec![32],
            rate_rounds: 2,
            rate_duration: Duration::from_secs(1),
            stream_rounds: 2,
            streams_per_round: 3,
            stream_shape: Shape {
                chunks: 30,
                gap: Duration::from_millis(2),
                first: Duration::ZERO,
                slots: 0,
            },
            held: 500,
            held_shape: Shape {
                chunks: 20,
                gap: Duration::from_millis(100),
                first: Duration::ZERO,
                slots: 0,
            },
            settle_wait: Duration::from_secs(12),
            quota_duration: Duration::from_secs(1),
        }
    }
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("bench/ sits in the workspace").to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// The release binary, built now unless one was named.
pub(crate) fn gate_binary(named: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(bin) = named {
        // The gate runs in the run's folder, so a relative path would miss.
        return std::fs::canonicalize(&bin).with_context(|| format!("no gate binary at {}", bin.display()));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "--locked", "--bin", "ollama-gate"])
        .current_dir(workspace_root())
        .status()
        .context("building the gate")?;
    if !status.success() {
        bail!("building the gate failed");
    }
    Ok(target_dir().join("release/ollama-gate"))
}

struct Targets {
    direct: Target,
    nginx: Option<Target>,
    gate: Target,
    /// An earlier gate binary, measured in the same rounds.
    before: Option<Target>,
    peer: Option<Target>,
}

impl Targets {
    /// The targets a lane is measured on: the peer only speaks OpenAI.
    fn for_lane(&self, lane: Lane) -> Vec<&Target> {
        let mut v = vec![&self.direct];
        v.extend(self.nginx.as_ref());
        v.push(&self.gate);
        v.extend(self.before.as_ref());
        if lane == Lane::OpenAi {
            v.extend(self.peer.as_ref());
        }
        v
    }
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let plan = if options.quick { Plan::quick() } else { Plan::full() };
    let bin = gate_binary(options.gate_bin.clone())?;
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
    let work = target_dir().join("bench").join(format!("run-{stamp}"));
    std::fs::create_dir_all(&work)?;
    eprintln!(
        "gate on core {}; mock and load client on core {} (taskset)",
        procs::GATE_CORE,
        procs::LOAD_CORE
    );
    eprintln!("work folder: {}", work.display());

    let (_mock, mock_addr) = start_mock()?;
    if options.fairness {
        return fairness_only(&options, &bin, &work, &stamp, mock_addr).await;
    }
    let setup = GateSetup {
        bin: bin.clone(),
        dir: work.clone(),
        database_url: "sqlite://data/gate.db".into(),
        upstream: mock_addr,
        upstream_slots: None,
    };
    let mut table = Table::default();
    let mut raw = BTreeMap::<&str, Value>::new();

    // Start to ready: once on a new database (migrations run), then restarts.
    let mut first = start_gate(&setup, "gate-first.log").await?;
    let fresh = first.ready_after;
    first.proc.stop();
    let mut restarts = Vec::new();
    for i in 0..plan.restarts {
        let mut g = start_gate(&setup, &format!("gate-restart-{i}.log")).await?;
        restarts.push(g.ready_after.as_secs_f64() * 1e3);
        g.proc.stop();
    }
    let restart_ms = median(&restarts);
    table.push(Row {
        scenario: "start to ready (restart, median)".into(),
        gate: format!("{restart_ms:.0} ms"),
        added: format!("new database: {:.0} ms", fresh.as_secs_f64() * 1e3),
        target: "≤ 300 ms".into(),
        verdict: verdict(Some(restart_ms <= 300.0)),
        ..Row::default()
    });
    raw.insert("start_to_ready_ms", json!({"new_database": fresh.as_secs_f64() * 1e3, "restarts": restarts}));

    let gate = start_gate(&setup, "gate.log").await?;
    let gate_pid = gate.proc.pid();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_start = rss_kib(gate_pid).unwrap_or(0);
    let key =
        if options.people { create_key_in_team(gate.admin).await? } else { create_key(gate.admin).await? };

    let mut nginx_proc: Option<Proc> = None;
    let mut nginx = None;
    if options.nginx {
        let Some(bin) = procs::find_nginx() else {
            bail!(
                "nginx is the plain-proxy lane every ratio is taken against: install it \
                 (Debian: apt-get install nginx-light), or pass --no-nginx to measure without it"
            );
        };
        let (proc, addr) = procs::start_nginx(&bin, &work, mock_addr).await?;
        nginx_proc = Some(proc);
        nginx = Some(Target { name: "nginx", addr, key: None });
    }
    let mut before_proc: Option<Proc> = None;
    let mut before = None;
    if let Some(bin) = options.before_bin.clone() {
        let dir = work.join("before");
        std::fs::create_dir_all(&dir)?;
        let setup = GateSetup {
            bin: gate_binary(Some(bin))?,
            dir,
            database_url: "sqlite://data/gate.db".into(),
            upstream: mock_addr,
            upstream_slots: None,
        };
        let g = start_gate(&setup, "gate.log").await?;
        let key = create_key(g.admin).await?;
        before = Some(Target { name: "before", addr: g.proxy, key: Some(key) });
        before_proc = Some(g.proc);
    }
    let mut peer_proc: Option<Proc> = None;
    let mut peer = None;
    if options.peer_litellm {
        let litellm = procs::install_litellm(&target_dir().join("bench"))?;
        let (proc, addr) = procs::start_litellm(&litellm, &work, mock_addr).await?;
        peer_proc = Some(proc);
        peer = Some(Target { name: "litellm", addr, key: Some(procs::LITELLM_KEY.into()) });
    }
    let targets = Targets {
        direct: Target { name: "direct", addr: mock_addr, key: None },
        nginx,
        gate: Target { name: "gate", addr: gate.proxy, key: Some(key) },
        before,
        peer,
    };

    for lane in [Lane::Ollama, Lane::OpenAi] {
        for t in targets.for_lane(lane) {
            let warm = latency(t, lane, 300).await;
            if warm.errors > 0 {
                bail!(
                    "{} answered {} of 300 warm-up requests with an error; see {}",
                    t.name,
                    warm.errors,
                    work.display()
                );
            }
        }
    }

    let mut anchors = Anchors::default();
    latency_section(&plan, &targets, &mut anchors, &mut table, &mut raw).await;
    rate_section(&plan, &targets, &mut anchors, &mut table, &mut raw).await;
    stream_section(&plan, &targets, &mut table, &mut raw).await;
    drop(nginx_proc);
    drop(before_proc);

    // Many streams held at once, and the gate's memory before, during and after.
    let rss_before = rss_kib(gate_pid).unwrap_or(0);
    let (held, peak) =
        with_peak_rss(gate_pid, streams(&targets.gate, Lane::Ollama, plan.held_shape, plan.held, plan.held))
            .await;
    tokio::time::sleep(plan.settle_wait).await;
    let rss_after = rss_kib(gate_pid).unwrap_or(0);
    let lost = held.chunks_expected - held.chunks_seen;
    let mut peer_held = String::new();
    if let (Some(p), Some(proc)) = (&targets.peer, &peer_proc) {
        let (s, peak) =
            with_peak_rss(proc.pid(), streams(p, Lane::OpenAi, plan.held_shape, plan.held, plan.held)).await;
        peer_held = format!(
            "{} of {} ok, {} chunks lost, peak {}",
            plan.held as u64 - s.errors,
            plan.held,
            s.chunks_expected - s.chunks_seen,
            mib(peak)
        );
        raw.insert("peer_held_streams", json!({"errors": s.errors, "lost_chunks": s.chunks_expected - s.chunks_seen, "peak_rss_kib": peak}));
    }
    table.push(Row {
        scenario: format!(
            "streams held at once ({} chunks, {} ms apart)",
            plan.held_shape.chunks,
            plan.held_shape.gap.as_millis()
        ),
        gate: format!("{} of {} ok, {lost} chunks lost", plan.held as u64 - held.errors, plan.held),
        added: format!("{} merged", held.merged),
        target: "2,000 held, none lost".into(),
        verdict: verdict(Some(held.errors == 0 && lost == 0 && (options.quick || plan.held >= 2000))),
        peer: peer_held,
        ..Row::default()
    });
    table.push(Row {
        scenario: "resident memory, idle after start (tokenizer loaded)".into(),
        gate: mib(rss_start),
        target: "≤ 40 MiB".into(),
        verdict: verdict(Some(rss_start <= 40 * 1024)),
        ..Row::default()
    });
    table.push(Row {
        scenario: format!("resident memory, peak at {} streams", plan.held),
        gate: mib(peak),
        added: format!("idle before: {}", mib(rss_before)),
        target: "≤ 120 MiB at 2,000".into(),
        verdict: verdict(Some(peak <= 120 * 1024)),
        ..Row::default()
    });
    let ratio = rss_after as f64 / rss_before.max(1) as f64;
    table.push(Row {
        scenario: format!("resident memory, {} s after the streams", plan.settle_wait.as_secs()),
        gate: mib(rss_after),
        added: format!("{:+.0}% of idle before", (ratio - 1.0) * 100.0),
        target: "within 20% of idle".into(),
        verdict: verdict(Some(ratio <= 1.2)),
        ..Row::default()
    });
    raw.insert(
        "held_streams",
        json!({
            "streams": plan.held, "chunks": plan.held_shape.chunks, "gap_ms": plan.held_shape.gap.as_millis() as u64,
            "errors": held.errors, "lost_chunks": lost, "merged": held.merged,
            "rss_kib": {"idle_after_start": rss_start, "idle_before": rss_before, "peak": peak, "after": rss_after},
            "settle_wait_s": plan.settle_wait.as_secs(),
        }),
    );
    drop(peer_proc);

    let quota = quota_section(&plan, &work, options.postgres.as_deref(), &mut table, &mut raw).await?;
    let mut targets_table = Table::default();
    targets_section(&anchors, &targets, &quota, &mut targets_table, &mut raw);
    if !options.quick {
        // Its failure (a gate that does not understand `?slots=`) is in the
        // table; the figures above still count.
        let fair = fairness::Plan::full();
        if let Err(e) =
            fairness::lane(&fair, mock_addr, &bin, &work, &mut table, &mut targets_table, &mut raw).await
        {
            eprintln!("the fairness lane failed: {e:#}");
        }
    }

    println!();
    println!(
        "ollama-gate benchmark{}: {} ; gate on core {}, mock and load client on core {} (taskset); SQLite; auth and quotas on{}",
        if options.quick { " (quick)" } else { "" },
        machine(),
        procs::GATE_CORE,
        procs::LOAD_CORE,
        if options.people { "; the gate's key counts in its user and team, each with a limit per model" } else { "" }
    );
    println!();
    table.print(targets.nginx.is_some(), targets.before.is_some(), targets.peer.as_ref().map(|p| p.name));
    println!();
    println!("targets: ratios between lanes of this run, the figures beside them");
    println!();
    targets_table.print(false, targets.before.is_some(), None);
    let out = options.out.unwrap_or_else(|| work.join("results.json"));
    let doc = json!({
        "when": stamp, "machine": machine(), "quick": options.quick, "people": options.people,
        "pinning": {"gate_core": procs::GATE_CORE, "load_core": procs::LOAD_CORE},
        "table": table.rows, "targets": targets_table.rows, "raw": raw,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&doc)?)?;
    println!();
    println!("raw results: {}", out.display());
    Ok(())
}

/// `--fairness`: that lane alone, its tables and raw figures as a full run
/// prints them; the gate half's failure is reported, then returned.
async fn fairness_only(
    options: &Options,
    bin: &std::path::Path,
    work: &std::path::Path,
    stamp: &str,
    mock: std::net::SocketAddr,
) -> anyhow::Result<()> {
    if options.before_bin.is_some() || options.peer_litellm || options.people {
        eprintln!(
            "--fairness measures the mock and the gate only; --before-bin, --peer and --people are left out"
        );
    }
    let plan = if options.quick { fairness::Plan::quick() } else { fairness::Plan::full() };
    let (mut table, mut targets_table) = (Table::default(), Table::default());
    let mut raw = BTreeMap::<&str, Value>::new();
    let result = fairness::lane(&plan, mock, bin, work, &mut table, &mut targets_table, &mut raw).await;
    println!();
    println!(
        "ollama-gate benchmark, fairness lane{}: {} ; gate on core {}, mock and load client on core {} (taskset); SQLite; keys without limits",
        if options.quick { " (quick)" } else { "" },
        machine(),
        procs::GATE_CORE,
        procs::LOAD_CORE
    );
    println!();
    table.print(false, false, None);
    println!();
    println!("targets: ratios between lanes of this run, the figures beside them");
    println!();
    targets_table.print(false, false, None);
    let out = options.out.clone().unwrap_or_else(|| work.join("results.json"));
    let doc = json!({
        "when": stamp, "machine": machine(), "quick": options.quick, "lanes": "fairness",
        "pinning": {"gate_core": procs::GATE_CORE, "load_core": procs::LOAD_CORE},
        "table": table.rows, "targets": targets_table.rows, "raw": raw,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&doc)?)?;
    println!();
    println!("raw results: {}", out.display());
    result
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{} cores of {model}", procs::online_cores())
}

/// Every limit, high enough never to bind.
fn every_limit() -> Value {
    let big = 1_000_000_000_000i64;
    json!({
        "requests_per_minute": big, "tokens_per_minute": big, "daily_requests": big, "daily_tokens": big,
        "monthly_requests": big, "monthly_tokens": big, "total_tokens": big, "max_concurrent": 100_000,
    })
}

/// Creates something on the admin API and returns its answer.
async fn admin_create(admin: std::net::SocketAddr, path: &str, body: Value) -> anyhow::Result<Value> {
    let request = post(admin, path, Some(ADMIN_PASSWORD), &body.to_string());
    let (status, answer) = call(admin, &request).await?;
    if status != 201 {
        bail!("creating {path} for the bench failed: {status} {}", String::from_utf8_lossy(&answer));
    }
    Ok(serde_json::from_slice(&answer)?)
}

fn secret(key: &Value) -> anyhow::Result<String> {
    key["key"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("no secret in {key}"))
}

/// A key with every limit set, so every request runs the whole quota check
/// and settlement.
async fn create_key(admin: std::net::SocketAddr) -> anyhow::Result<String> {
    secret(&admin_create(admin, "/api/api-keys", json!({"name": "bench", "limits": every_limit()})).await?)
}

/// A key with no limits at all, for the fairness lane: only the gate's queue
/// may hold its requests back.
pub(crate) async fn create_unlimited_key(admin: std::net::SocketAddr, name: &str) -> anyhow::Result<String> {
    secret(&admin_create(admin, "/api/api-keys", json!({"name": name})).await?)
}

/// A key of a user in a team; each of the three has every limit and a limit
/// for every model (`*`), so each request is counted in six rows.
async fn create_key_in_team(admin: std::net::SocketAddr) -> anyhow::Result<String> {
    let per_model = json!([{"model": "*", "limits": every_limit()}]);
    let team = admin_create(
        admin,
        "/api/teams",
        json!({"name": "bench", "limits": every_limit(), "model_limits": per_model}),
    )
    .await?;
    let user = admin_create(
        admin,
        "/api/users",
        json!({"name": "bench", "team_id": team["id"], "limits": every_limit(), "model_limits": per_model}),
    )
    .await?;
    let key =
        json!({"name": "bench", "user_id": user["id"], "limits": every_limit(), "model_limits": per_model});
    secret(&admin_create(admin, "/api/api-keys", key).await?)
}

async fn with_peak_rss<T>(pid: u32, work: impl std::future::Future<Output = T>) -> (T, u64) {
    let peak = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid).unwrap_or(0), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let out = work.await;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    (out, peak.load(Ordering::Relaxed))
}

/// Per target, per round: one figure.
type Rounds = BTreeMap<&'static str, Vec<f64>>;

fn med(r: &Rounds, name: &str) -> f64 {
    r.get(name).map(|v| median(v)).unwrap_or(f64::NAN)
}

/// Median over rounds of (gate − direct) for a figure measured in both.
fn added(r: &Rounds, who: &str) -> f64 {
    let (Some(g), Some(d)) = (r.get(who), r.get("direct")) else { return f64::NAN };
    median(&g.iter().zip(d).map(|(g, d)| g - d).collect::<Vec<_>>())
}

/// Another lane's figure and what it adds, beside the gate's.
fn lane_cell(r: &Rounds, lane: Option<&Target>) -> String {
    let Some(n) = lane else { return String::new() };
    format!("{} (adds {})", us(med(r, n.name)), us(added(r, n.name)))
}

fn peer_cell(r: &Rounds, peer: Option<&Target>, gate_added: f64) -> String {
    let Some(p) = peer else { return String::new() };
    let a = added(r, p.name);
    format!("{} (adds {}, {:.0}× the gate)", us(med(r, p.name)), us(a), a / gate_added)
}

async fn latency_section(
    plan: &Plan,
    targets: &Targets,
    anchors: &mut Anchors,
    table: &mut Table,
    raw: &mut BTreeMap<&str, Value>,
) {
    let mut json_lanes = serde_json::Map::new();
    for lane in [Lane::Ollama, Lane::OpenAi] {
        let (mut p50, mut p99, mut errors) = (Rounds::new(), Rounds::new(), BTreeMap::<&str, u64>::new());
        for _ in 0..plan.latency_rounds {
            for t in targets.for_lane(lane) {
                let l = latency(t, lane, plan.latency_requests).await;
                p50.entry(t.name).or_default().push(percentile(&l.ns, 50.0) as f64);
                p99.entry(t.name).or_default().push(percentile(&l.ns, 99.0) as f64);
                *errors.entry(t.name).or_default() += l.errors;
            }
        }
        let peer = if lane == Lane::OpenAi { targets.peer.as_ref() } else { None };
        for (label, r, limit) in [("p50", &p50, 300_000.0), ("p99", &p99, 600_000.0)] {
            let a = added(r, "gate");
            table.push(Row {
                scenario: format!("latency, one client, not streamed, {label} ({})", lane.name()),
                direct: us(med(r, "direct")),
                gate: us(med(r, "gate")),
                added: us(a),
                target: format!("adds ≤ {}", us(limit)),
                verdict: verdict(Some(a <= limit && errors["gate"] == 0)),
                nginx: lane_cell(r, targets.nginx.as_ref()),
                before: lane_cell(r, targets.before.as_ref()),
                peer: peer_cell(r, peer, a),
            });
        }
        json_lanes.insert(lane.name().into(), json!({"p50_ns": p50, "p99_ns": p99, "errors": errors}));
        anchors.p50.insert(lane, p50);
    }
    raw.insert("latency", json!({"requests_per_round": plan.latency_requests, "lanes": json_lanes}));
}

async fn rate_section(
    plan: &Plan,
    targets: &Targets,
    anchors: &mut Anchors,
    table: &mut Table,
    raw: &mut BTreeMap<&str, Value>,
) {
    let lanes: &[Lane] = if targets.peer.is_some() { &[Lane::Ollama, Lane::OpenAi] } else { &[Lane::Ollama] };
    let mut json_lanes = serde_json::Map::new();
    for &lane in lanes {
        let mut best: Option<(usize, f64, f64)> = None;
        let mut levels_json = Vec::new();
        for &level in &plan.rate_levels {
            let (mut rate, mut p99, mut errors) =
                (Rounds::new(), Rounds::new(), BTreeMap::<&str, u64>::new());
            for _ in 0..plan.rate_rounds {
                for t in targets.for_lane(lane) {
                    let r = throughput(t, lane, level, plan.rate_duration).await;
                    rate.entry(t.name).or_default().push(r.per_second);
                    p99.entry(t.name).or_default().push(percentile(&r.latencies.ns, 99.0) as f64);
                    *errors.entry(t.name).or_default() += r.latencies.errors;
                }
            }
            let (direct, gate) = (med(&rate, "direct"), med(&rate, "gate"));
            let gate_p99 = med(&p99, "gate");
            let mock_bound = direct < 3.0 * gate;
            let clean = errors["gate"] == 0 && gate_p99 < 20e6;
            if !mock_bound && clean && best.is_none_or(|(_, r, _)| gate > r) {
                best = Some((level, gate, gate_p99));
            }
            let peer = if lane == Lane::OpenAi { targets.peer.as_ref() } else { None };
            table.push(Row {
                scenario: format!("requests/s, {level} clients, instant mock ({})", lane.name()),
                direct: format!("{direct:.0}/s"),
                gate: if mock_bound {
                    "refused: the mock was the bottleneck".into()
                } else {
                    format!("{gate:.0}/s, p99 {}, {} errors", us(gate_p99), errors["gate"])
                },
                added: format!("{:.0}% of direct", 100.0 * gate / direct),
                nginx: targets
                    .nginx
                    .as_ref()
                    .map(|n| {
                        let nr = med(&rate, n.name);
                        format!("{nr:.0}/s, p99 {}; gate {:.2}×", us(med(&p99, n.name)), gate / nr)
                    })
                    .unwrap_or_default(),
                before: targets
                    .before
                    .as_ref()
                    .map(|b| {
                        let br = med(&rate, b.name);
                        format!("{br:.0}/s, p99 {}, {} errors", us(med(&p99, b.name)), errors[b.name])
                    })
                    .unwrap_or_default(),
                peer: peer
                    .map(|p| {
                        let pr = med(&rate, p.name);
                        format!(
                            "{pr:.0}/s, p99 {}, {} errors; gate {:.1}×",
                            us(med(&p99, p.name)),
                            errors[p.name],
                            gate / pr
                        )
                    })
                    .unwrap_or_default(),
                ..Row::default()
            });
            levels_json.push(json!({"clients": level, "per_second": rate, "p99_ns": p99, "errors": errors, "mock_bound": mock_bound}));
            if level == ANCHOR_CLIENTS {
                anchors.at_32.insert(lane, AtLevel { rate, p99, errors });
            }
        }
        let (scenario, gate, verdict_) = match best {
            Some((level, rate, p99)) => (
                format!("highest rate with p99 < 20 ms, no errors ({})", lane.name()),
                format!("{rate:.0}/s at {level} clients, p99 {}", us(p99)),
                verdict(Some(rate >= 5000.0)),
            ),
            None => (
                format!("highest rate with p99 < 20 ms, no errors ({})", lane.name()),
                "none qualified".into(),
                verdict(Some(false)),
            ),
        };
        table.push(Row { scenario, gate, target: "≥ 5,000/s".into(), verdict: verdict_, ..Row::default() });
        json_lanes.insert(lane.name().into(), json!(levels_json));
    }
    raw.insert(
        "requests_per_second",
        json!({"seconds_per_round": plan.rate_duration.as_secs_f64(), "lanes": json_lanes}),
    );
}

async fn stream_section(plan: &Plan, targets: &Targets, table: &mut Table, raw: &mut BTreeMap<&str, Value>) {
    let mut json_lanes = serde_json::Map::new();
    for lane in [Lane::Ollama, Lane::OpenAi] {
        let (mut first, mut transit, mut gap) = (Rounds::new(), Rounds::new(), Rounds::new());
        let (mut merged, mut lost, mut held, mut errors) = (
            BTreeMap::<&str, u64>::new(),
            BTreeMap::<&str, u64>::new(),
            BTreeMap::<&str, u64>::new(),
            BTreeMap::<&str, u64>::new(),
        );
        for _ in 0..plan.stream_rounds {
            for t in targets.for_lane(lane) {
                let s = streams(t, lane, plan.stream_shape, plan.streams_per_round, 1).await;
                first.entry(t.name).or_default().push(percentile(&s.first_chunk_ns, 99.0) as f64);
                transit.entry(t.name).or_default().push(percentile(&s.transit_ns, 99.0) as f64);
                gap.entry(t.name).or_default().push(percentile(&s.gap_change_ns, 99.0) as f64);
                *merged.entry(t.name).or_default() += s.merged;
                *lost.entry(t.name).or_default() += s.chunks_expected - s.chunks_seen;
                // A chunk more than 1 ms on its way over loopback was held somewhere.
                *held.entry(t.name).or_default() +=
                    s.transit_ns.iter().filter(|&&t| t > 1_000_000).count() as u64;
                *errors.entry(t.name).or_default() += s.errors;
            }
        }
        let peer = if lane == Lane::OpenAi { targets.peer.as_ref() } else { None };
        let kind = if lane == Lane::Ollama { "NDJSON" } else { "SSE" };
        for (label, r, limit) in [
            ("time to first chunk, p99", &first, 500_000.0),
            ("chunk transit, p99", &transit, f64::NAN),
            ("change in the gap between chunks, p99", &gap, 50_000.0),
        ] {
            let a = added(r, "gate");
            table.push(Row {
                scenario: format!("streaming {kind}: {label}"),
                direct: us(med(r, "direct")),
                gate: us(med(r, "gate")),
                added: us(a),
                target: if limit.is_nan() { String::new() } else { format!("adds ≤ {}", us(limit)) },
                verdict: if limit.is_nan() { String::new() } else { verdict(Some(a <= limit)) },
                nginx: lane_cell(r, targets.nginx.as_ref()),
                before: lane_cell(r, targets.before.as_ref()),
                peer: peer_cell(r, peer, a),
            });
        }
        let gate_bad = merged["gate"] + lost["gate"] + held["gate"] + errors["gate"];
        let counts = |t: Option<&Target>| {
            t.map(|t| format!("{} / {} / {}", merged[t.name], held[t.name], lost[t.name])).unwrap_or_default()
        };
        table.push(Row {
            scenario: format!("streaming {kind}: chunks merged / held > 1 ms / lost"),
            direct: counts(Some(&targets.direct)),
            gate: counts(Some(&targets.gate)),
            target: "none".into(),
            verdict: verdict(Some(gate_bad == 0)),
            nginx: counts(targets.nginx.as_ref()),
            before: counts(targets.before.as_ref()),
            peer: counts(peer),
            ..Row::default()
        });
        json_lanes.insert(
            kind.into(),
            json!({"first_chunk_p99_ns": first, "transit_p99_ns": transit, "gap_change_p99_ns": gap,
                   "merged": merged, "held_over_1ms": held, "lost": lost, "errors": errors}),
        );
    }
    raw.insert(
        "streaming",
        json!({"chunks": plan.stream_shape.chunks, "gap_us": plan.stream_shape.gap.as_micros() as u64,
               "streams_per_round": plan.streams_per_round, "lanes": json_lanes}),
    );
}

async fn quota_section(
    plan: &Plan,
    work: &std::path::Path,
    postgres: Option<&str>,
    table: &mut Table,
    raw: &mut BTreeMap<&str, Value>,
) -> anyhow::Result<BTreeMap<&'static str, f64>> {
    let sqlite = format!("sqlite://{}", work.join("quota.db").display());
    let mut dbs = vec![("SQLite", sqlite)];
    if let Some(url) = postgres {
        dbs.push(("PostgreSQL", url.to_string()));
    }
    let mut figures = serde_json::Map::new();
    let mut per_second = BTreeMap::new();
    for (name, url) in dbs {
        let rps = quota::requests_per_second(&url, 32, plan.quota_duration, quota::Level::Key).await?;
        table.push(Row {
            scenario: format!("quota transactions/s, {name}, one hot key, 32 tasks (no HTTP)"),
            gate: format!("{:.0}/s", 2.0 * rps),
            added: format!("{rps:.0} requests/s"),
            target: "reported".into(),
            ..Row::default()
        });
        figures
            .insert(name.into(), json!({"requests_per_second": rps, "transactions_per_second": 2.0 * rps}));
        per_second.insert(name, 2.0 * rps);
    }
    raw.insert("quota", Value::Object(figures));
    Ok(per_second)
}

/// The concurrency the rate targets are read at.
const ANCHOR_CLIENTS: usize = 32;

/// What the targets are read from, kept by the sections that measure it.
#[derive(Default)]
struct Anchors {
    /// Per lane: each target's p50 at one client, per round.
    p50: BTreeMap<Lane, Rounds>,
    /// Per lane: the figures at `ANCHOR_CLIENTS` clients.
    at_32: BTreeMap<Lane, AtLevel>,
}

struct AtLevel {
    rate: Rounds,
    p99: Rounds,
    errors: BTreeMap<&'static str, u64>,
}

/// The targets, each a ratio between lanes of this run (absolute figures on
/// this kind of machine move several-fold from day to day; ratios do not).
fn targets_section(
    anchors: &Anchors,
    targets: &Targets,
    quota: &BTreeMap<&'static str, f64>,
    table: &mut Table,
    raw: &mut BTreeMap<&str, Value>,
) {
    let mut figures = serde_json::Map::new();
    let lane = Lane::Ollama;
    let at = anchors.at_32.get(&lane);
    let gate_rate = at.map(|a| med(&a.rate, "gate")).unwrap_or(f64::NAN);
    let direct_rate = at.map(|a| med(&a.rate, "direct")).unwrap_or(f64::NAN);
    let before = targets.before.as_ref().map(|b| b.name);
    match (targets.nginx.as_ref(), at) {
        (Some(n), Some(a)) => {
            let nginx_rate = med(&a.rate, n.name);
            let ratio = gate_rate / nginx_rate;
            table.push(Row {
                scenario: format!(
                    "requests/s at {ANCHOR_CLIENTS} clients, not streamed: gate ÷ nginx ({})",
                    lane.name()
                ),
                direct: format!("{direct_rate:.0}/s"),
                gate: format!("{ratio:.2}"),
                added: format!(
                    "gate {gate_rate:.0}/s, nginx {nginx_rate:.0}/s ({:.0}% of direct)",
                    100.0 * nginx_rate / direct_rate
                ),
                target: "≥ 0.33".into(),
                verdict: verdict(Some(ratio >= 1.0 / 3.0)),
                before: before
                    .map(|b| {
                        let br = med(&a.rate, b);
                        figures.insert("rate_before_over_nginx".into(), json!(br / nginx_rate));
                        format!("{:.2} ({br:.0}/s)", br / nginx_rate)
                    })
                    .unwrap_or_default(),
                ..Row::default()
            });
            figures.insert("rate_gate_over_nginx".into(), json!(ratio));
        }
        _ => table.push(Row {
            scenario: format!("requests/s at {ANCHOR_CLIENTS} clients: gate ÷ nginx"),
            gate: "not measured (no nginx lane)".into(),
            target: "≥ 0.33".into(),
            ..Row::default()
        }),
    }
    if let (Some(n), Some(p50)) = (targets.nginx.as_ref(), anchors.p50.get(&lane)) {
        let (gate, nginx) = (added(p50, "gate"), added(p50, n.name));
        let ratio = gate / nginx;
        table.push(Row {
            scenario: format!("added latency at one client, p50: gate ÷ nginx ({})", lane.name()),
            direct: us(med(p50, "direct")),
            gate: format!("{ratio:.1}×"),
            added: format!("gate adds {}, nginx adds {}", us(gate), us(nginx)),
            target: "≤ 1.5×".into(),
            verdict: verdict(Some(ratio <= 1.5)),
            before: before
                .map(|b| {
                    let ba = added(p50, b);
                    figures.insert("added_p50_before_over_nginx".into(), json!(ba / nginx));
                    format!("{:.1}× (adds {})", ba / nginx, us(ba))
                })
                .unwrap_or_default(),
            ..Row::default()
        });
        figures.insert("added_p50_gate_over_nginx".into(), json!(ratio));
    }
    if let (Some(p), Some(a)) = (targets.peer.as_ref(), anchors.at_32.get(&Lane::OpenAi)) {
        let (gate, peer) = (med(&a.rate, "gate"), med(&a.rate, p.name));
        let ratio = gate / peer;
        table.push(Row {
            scenario: format!(
                "requests/s at {ANCHOR_CLIENTS} clients: gate ÷ {} ({})",
                p.name,
                Lane::OpenAi.name()
            ),
            gate: format!("{ratio:.0}×"),
            added: format!("gate {gate:.0}/s, {} {peer:.1}/s", p.name),
            target: "≥ 150×".into(),
            verdict: verdict(Some(ratio >= 150.0)),
            before: before
                .map(|b| {
                    let br = med(&a.rate, b);
                    format!("{:.0}× ({br:.0}/s)", br / peer)
                })
                .unwrap_or_default(),
            ..Row::default()
        });
        figures.insert(format!("rate_gate_over_{}", p.name), json!(ratio));
    }
    if let Some(a) = at {
        let (p99, errors) = (med(&a.p99, "gate"), a.errors.get("gate").copied().unwrap_or(0));
        table.push(Row {
            scenario: format!("p99 at {ANCHOR_CLIENTS} clients, not streamed ({})", lane.name()),
            gate: format!("{}, {errors} errors", us(p99)),
            added: format!("{gate_rate:.0}/s"),
            target: "< 20 ms, no errors".into(),
            verdict: verdict(Some(p99 < 20e6 && errors == 0)),
            before: before
                .map(|b| {
                    let e = a.errors.get(b).copied().unwrap_or(0);
                    format!("{}, {e} errors ({:.0}/s)", us(med(&a.p99, b)), med(&a.rate, b))
                })
                .unwrap_or_default(),
            ..Row::default()
        });
        figures.insert("p99_ns_at_32".into(), json!(p99));
    }
    let quota_cell = quota.iter().map(|(db, tps)| format!("{db} {tps:.0}/s")).collect::<Vec<_>>().join("; ");
    table.push(Row {
        scenario: "quota transactions/s, no HTTP, 32 tasks on one key".into(),
        gate: quota_cell,
        target: if quota.contains_key("PostgreSQL") {
            "reported".into()
        } else {
            "reported (add --postgres)".into()
        },
        ..Row::default()
    });
    raw.insert("targets", Value::Object(figures));
}
