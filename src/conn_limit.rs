//! Connections per client address and in total, and a deadline between requests.
//!
//! actix-web caps connections per worker only, has no per-address cap, and
//! times the request head of a connection's first request only: once a kept-
//! alive connection has sent one byte of its next request, the rest may
//! trickle in forever. Both are closed here.
//!
//! `HttpServer::on_connect` hands every accepted socket to [`ConnLimits::on_connect`]:
//! over a cap, a short 503 is written and the socket shut down at once; else
//! the connection takes a [`Slot`], kept in its extensions and given back when
//! actix drops the connection. The slot holds a duplicate of the socket's
//! descriptor, so the watchdog can shut down the very socket it means to (a
//! bare descriptor number could by then name another connection).
//!
//! [`track`] marks the time a connection has had no request in the service,
//! and since when it has been sending a response; the watchdog shuts down any
//! connection idle or between requests for longer than `KEEP_ALIVE_SECS +
//! REQUEST_HEADER_TIMEOUT_SECS`, and any still sending a response that long
//! after `MAX_STREAM_DURATION_SECS`: a client that stops reading stops actix
//! from polling the response stream, so the stream's own limits would never
//! run. Request bodies are paced where they are read.

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use std::any::Any;
use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// What a refused connection reads before the gate closes it.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
content-length: 58\r\nretry-after: 1\r\nconnection: close\r\n\r\n\
{\"error\":\"too many connections; close some and try again\"}";

pub struct ConnLimits {
    /// "proxy" or "admin", for log lines.
    listener: &'static str,
    total: usize,
    /// 0: no per-address cap.
    per_address: usize,
    between_requests: Duration,
    longest_response: Duration,
    epoch: Instant,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    by_address: HashMap<IpAddr, usize>,
    conns: HashMap<u64, Arc<Conn>>,
    next_id: u64,
}

struct Conn {
    id: u64,
    address: IpAddr,
    /// A duplicate of the connection's descriptor, closed with the slot.
    socket: OwnedFd,
    in_service: AtomicUsize,
    /// Milliseconds since `epoch` when the last request left the service
    /// (or the connection opened).
    idle_since_ms: AtomicU64,
    /// Milliseconds since `epoch` when the response being sent began; 0: none.
    responding_since_ms: AtomicU64,
    shut: AtomicBool,
}

/// A connection's place under the caps; dropping it gives the place back.
pub struct Slot {
    limits: Arc<ConnLimits>,
    conn: Arc<Conn>,
}

impl Slot {
    /// The client has closed its side of the connection (or it broke). A
    /// request waiting for a backend looks, since actix notices a hang-up
    /// only when it writes the answer.
    pub fn peer_gone(&self) -> bool {
        peer_gone(self.conn.socket.as_raw_fd())
    }
}

/// Whether the peer has hung up, without reading or waiting.
fn peer_gone(fd: std::os::fd::RawFd) -> bool {
    let mut poll = libc::pollfd { fd, events: libc::POLLRDHUP, revents: 0 };
    // SAFETY: poll(2) on one valid pollfd that lives across the call, with a
    // zero timeout: it never blocks and touches nothing else.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

/// Marks a connection refused over a cap, for a request that was already queued.
struct Refused;

impl ConnLimits {
    pub fn new(
        listener: &'static str,
        total: usize,
        per_address: usize,
        between_requests: Duration,
        longest_response: Duration,
    ) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            listener,
            total,
            per_address,
            between_requests,
            longest_response,
            epoch: Instant::now(),
            open: Mutex::new(Open::default()),
        })
    }

    /// Open connections now, for tests and health.
    pub fn open(&self) -> usize {
        self.lock().conns.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// For `HttpServer::on_connect`.
    pub fn on_connect(self: &Arc<Self>, io: &dyn Any, extensions: &mut Extensions) {
        let Some(stream) = io.downcast_ref::<actix_web::rt::net::TcpStream>() else { return };
        match self.admit(stream) {
            Ok(slot) => {
                extensions.insert(slot);
            }
            Err(why) => {
                log::debug!("{} listener refused a connection: {why}", self.listener);
                refuse(stream.as_raw_fd());
                extensions.insert(Refused);
            }
        }
    }

    fn admit(self: &Arc<Self>, stream: &actix_web::rt::net::TcpStream) -> Result<Slot, &'static str> {
        let address = stream.peer_addr().map_err(|_| "no peer address")?.ip().to_canonical();
        let mut open = self.lock();
        if open.conns.len() >= self.total {
            return Err("MAX_CONNECTIONS reached");
        }
        let from_address = open.by_address.get(&address).copied().unwrap_or(0);
        if self.per_address > 0 && from_address >= self.per_address {
            return Err("MAX_CONNECTIONS_PER_ADDRESS reached");
        }
        let socket = stream.as_fd().try_clone_to_owned().map_err(|_| "no descriptor left")?;
        open.next_id += 1;
        let conn = Arc::new(Conn {
            id: open.next_id,
            address,
            socket,
            in_service: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            responding_since_ms: AtomicU64::new(0),
            shut: AtomicBool::new(false),
        });
        open.conns.insert(conn.id, conn.clone());
        *open.by_address.entry(address).or_insert(0) += 1;
        Ok(Slot { limits: self.clone(), conn })
    }

    /// Shuts down every connection that has had no request in the service
    /// for too long, or has been sending one response for too long; actix
    /// then sees the end of the stream and drops it.
    fn sweep(&self) {
        let now = self.now_ms();
        let between = self.between_requests.as_millis() as u64;
        let longest = (self.longest_response + self.between_requests).as_millis() as u64;
        let open = self.lock();
        for conn in open.conns.values() {
            let why = if conn.in_service.load(Ordering::Acquire) == 0 {
                let idle_for = now.saturating_sub(conn.idle_since_ms.load(Ordering::Acquire));
                (idle_for > between).then_some("sent no whole request in time")
            } else {
                let since = conn.responding_since_ms.load(Ordering::Acquire);
                (since > 0 && now.saturating_sub(since) > longest).then_some("read its response too slowly")
            };
            if let Some(why) = why {
                if !conn.shut.swap(true, Ordering::AcqRel) {
                    log::debug!("{} listener closed a connection that {why}", self.listener);
                    shut_down(conn.socket.as_raw_fd());
                }
            }
        }
    }

    /// Runs for the life of the process.
    pub async fn watch(self: Arc<Self>) {
        let period = (self.between_requests / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.sweep();
        }
    }
}

/// Writes the refusal and shuts the socket down. Written with send(2) itself:
/// tokio's `try_write` declines before the reactor has seen the socket writable.
fn refuse(fd: std::os::fd::RawFd) {
    // SAFETY: send(2) reads REFUSAL, a static buffer of the length given, on a
    // descriptor actix lends for the call; MSG_DONTWAIT never blocks the worker.
    // A fresh socket's send buffer is empty, so the short refusal fits.
    unsafe {
        libc::send(fd, REFUSAL.as_ptr().cast(), REFUSAL.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
    }
    shut_down(fd);
}

fn shut_down(fd: std::os::fd::RawFd) {
    // SAFETY: shutdown(2) on a descriptor this process owns (the connection's
    // own, lent by actix for the call, or the slot's duplicate) touches no memory.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limits.lock();
        open.conns.remove(&self.conn.id);
        if let Some(n) = open.by_address.get_mut(&self.conn.address) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.conn.address);
            }
        }
    }
}

/// A request in the service; dropped with its response body, or with the
/// request if it never got one.
struct InService {
    conn: Arc<Conn>,
    epoch: Instant,
}

impl InService {
    fn new(slot: &Slot) -> InService {
        slot.conn.in_service.fetch_add(1, Ordering::AcqRel);
        InService { conn: slot.conn.clone(), epoch: slot.limits.epoch }
    }
}

impl InService {
    fn responding(&self) {
        // Never 0, which means "not responding".
        let now = (self.epoch.elapsed().as_millis() as u64).max(1);
        self.conn.responding_since_ms.store(now, Ordering::Release);
    }
}

impl Drop for InService {
    fn drop(&mut self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.conn.responding_since_ms.store(0, Ordering::Release);
        self.conn.idle_since_ms.store(now, Ordering::Release);
        self.conn.in_service.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Middleware on both listeners: refuses requests of refused connections
/// and tells the watchdog which connections are between requests.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.conn_data::<Refused>().is_some() {
        let refusal = HttpResponse::ServiceUnavailable()
            .insert_header(("connection", "close"))
            .json(serde_json::json!({"error": "too many connections; close some and try again"}));
        return Ok(req.into_response(refusal));
    }
    let in_service = req.conn_data::<Slot>().map(InService::new);
    let response = next.call(req).await?;
    let Some(in_service) = in_service else { return Ok(response.map_into_boxed_body()) };
    in_service.responding();
    Ok(response
        .map_body(|_, body| BoxBody::new(Tracked { body: BoxBody::new(body), _in_service: in_service })))
}

/// A response body that holds its request in the service until it is sent.
struct Tracked {
    body: BoxBody,
    _in_service: InService,
}

impl MessageBody for Tracked {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_declares_its_exact_length() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }
}
