//! The load client's scenarios. Each runs against one target (the mock
//! directly, the gate, or a peer) and returns raw figures; the runner
//! alternates targets and compares.

use crate::client::{now_ns, post, Conn, Splitter};
use crate::mock::Shape;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Somewhere to send requests: the mock itself, the gate or a peer.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub key: Option<String>,
}

/// Which API the requests speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// Ollama's `/api/chat`: NDJSON when streamed.
    Ollama,
    /// OpenAI's `/v1/chat/completions`: SSE when streamed.
    OpenAi,
}

impl Lane {
    pub fn name(self) -> &'static str {
        match self {
            Lane::Ollama => "ollama /api/chat",
            Lane::OpenAi => "openai /v1/chat/completions",
        }
    }

    pub fn request(self, target: &Target, shape: &Shape, stream: bool) -> Vec<u8> {
        let (path, model) = match self {
            Lane::Ollama => ("/api/chat", shape.model()),
            Lane::OpenAi => ("/v1/chat/completions", shape.model()),
        };
        let body = format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"Say hello in one word, please."}}],"stream":{stream}}}"#
        );
        post(target.addr, path, target.key.as_deref(), &body)
    }
}

/// The one-chunk answer the latency and throughput scenarios ask for.
pub const INSTANT: Shape = Shape { chunks: 1, gap: Duration::ZERO, first: Duration::ZERO, slots: 0 };

/// Request latencies in nanoseconds, ascending, and how many failed.
#[derive(Default)]
pub struct Latencies {
    pub ns: Vec<u64>,
    pub errors: u64,
}

/// `n` requests one after another on one keep-alive connection.
pub async fn latency(target: &Target, lane: Lane, n: usize) -> Latencies {
    let request = lane.request(target, &INSTANT, false);
    let mut out = Latencies { ns: Vec::with_capacity(n), errors: 0 };
    let mut conn = None;
    for _ in 0..n {
        let started = Instant::now();
        match one(&mut conn, target.addr, &request).await {
            Ok(200) => out.ns.push(started.elapsed().as_nanos() as u64),
            _ => out.errors += 1,
        }
    }
    out.ns.sort_unstable();
    out
}

/// One request on `conn`, opening it first when needed and dropping it when
/// the server said it would close; returns the status.
async fn one(conn: &mut Option<Conn>, addr: SocketAddr, request: &[u8]) -> std::io::Result<u16> {
    if conn.is_none() {
        *conn = Some(Conn::open(addr).await?);
    }
    let result = conn.as_mut().expect("opened above").exchange(request, |_, _, _| {}).await;
    match result {
        Ok(head) => {
            if head.close {
                *conn = None;
            }
            Ok(head.status)
        }
        Err(e) => {
            *conn = None;
            Err(e)
        }
    }
}

pub struct Rate {
    pub per_second: f64,
    pub latencies: Latencies,
}

/// `concurrency` clients, each on its own connection, sending back to back
/// for `duration`.
pub async fn throughput(target: &Target, lane: Lane, concurrency: usize, duration: Duration) -> Rate {
    let request = lane.request(target, &INSTANT, false);
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (request, addr) = (request.clone(), target.addr);
            tokio::spawn(async move {
                let mut out = Latencies::default();
                let mut conn = None;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match one(&mut conn, addr, &request).await {
                        Ok(200) => out.ns.push(t.elapsed().as_nanos() as u64),
                        _ => out.errors += 1,
                    }
                }
                out
            })
        })
        .collect();
    let mut all = Latencies::default();
    for task in tasks {
        let part = task.await.unwrap_or_default();
        all.ns.extend(part.ns);
        all.errors += part.errors;
    }
    let seconds = started.elapsed().as_secs_f64();
    all.ns.sort_unstable();
    Rate { per_second: all.ns.len() as f64 / seconds, latencies: all }
}

/// What a batch of streams looked like from the client's side.
#[derive(Default)]
pub struct Streams {
    /// Request written to first chunk read, per stream.
    pub first_chunk_ns: Vec<u64>,
    /// Mock wrote a chunk to the client read it, per chunk.
    pub transit_ns: Vec<u64>,
    /// How much the gap between two chunks grew (or shrank) on the way, per pair.
    pub gap_change_ns: Vec<u64>,
    /// Chunks the mock wrote apart that arrived in one read.
    pub merged: u64,
    pub chunks_expected: u64,
    pub chunks_seen: u64,
    /// Streams that failed or ended without every chunk.
    pub errors: u64,
}

impl Streams {
    fn absorb(&mut self, other: Streams) {
        self.first_chunk_ns.extend(other.first_chunk_ns);
        self.transit_ns.extend(other.transit_ns);
        self.gap_change_ns.extend(other.gap_change_ns);
        self.merged += other.merged;
        self.chunks_expected += other.chunks_expected;
        self.chunks_seen += other.chunks_seen;
        self.errors += other.errors;
    }

    pub fn sort(&mut self) {
        self.first_chunk_ns.sort_unstable();
        self.transit_ns.sort_unstable();
        self.gap_change_ns.sort_unstable();
    }
}

/// Two chunks written at least this far apart should never share a read.
const APART: u128 = 500_000;

/// `count` streams of `shape`, `concurrency` at a time, each on its own connection.
pub async fn streams(target: &Target, lane: Lane, shape: Shape, count: usize, concurrency: usize) -> Streams {
    let request = lane.request(target, &shape, true);
    let per_task = count.div_ceil(concurrency.max(1));
    let tasks: Vec<_> = (0..concurrency.min(count))
        .map(|i| {
            let (request, addr) = (request.clone(), target.addr);
            let n = per_task.min(count.saturating_sub(i * per_task));
            tokio::spawn(async move {
                let mut out = Streams::default();
                let mut conn = None;
                for _ in 0..n {
                    out.absorb(one_stream(&mut conn, addr, &request, lane, shape).await);
                }
                out
            })
        })
        .collect();
    let mut all = Streams::default();
    for task in tasks {
        all.absorb(task.await.unwrap_or_default());
    }
    all.sort();
    all
}

async fn one_stream(
    conn: &mut Option<Conn>,
    addr: SocketAddr,
    request: &[u8],
    lane: Lane,
    shape: Shape,
) -> Streams {
    let mut out = Streams { chunks_expected: shape.chunks as u64, ..Streams::default() };
    if conn.is_none() {
        match Conn::open(addr).await {
            Ok(c) => *conn = Some(c),
            Err(_) => {
                out.errors = 1;
                return out;
            }
        }
    }
    let mut splitter = Splitter::new(lane == Lane::OpenAi);
    let started = now_ns();
    let result =
        conn.as_mut().expect("opened above").exchange(request, |d, r, at| splitter.feed(d, r, at)).await;
    match result {
        Ok(head) if head.status == 200 => {
            if head.close {
                *conn = None;
            }
        }
        _ => {
            *conn = None;
            out.errors = 1;
        }
    }
    let stamped: Vec<_> =
        splitter.chunks.iter().filter_map(|c| c.sent_ns.map(|s| (c.read, c.at_ns, s))).collect();
    out.chunks_seen = stamped.len() as u64;
    if out.chunks_seen < out.chunks_expected {
        out.errors = 1;
    }
    if let Some(first) = splitter.chunks.first() {
        out.first_chunk_ns.push(first.at_ns.saturating_sub(started) as u64);
    }
    for (i, &(read, at, sent)) in stamped.iter().enumerate() {
        out.transit_ns.push(at.saturating_sub(sent) as u64);
        if i > 0 {
            let (prev_read, prev_at, prev_sent) = stamped[i - 1];
            let arrival_gap = at as i128 - prev_at as i128;
            let sent_gap = sent as i128 - prev_sent as i128;
            out.gap_change_ns.push((arrival_gap - sent_gap).unsigned_abs() as u64);
            if read == prev_read && sent - prev_sent >= APART {
                out.merged += 1;
            }
        }
    }
    out
}
