//! The upstream Ollama servers (backends): which one takes a request, the
//! fair queue when all are busy, their health, with which bearer key, and the
//! one place requests to them are built.

pub mod catalog;
pub mod health;
pub mod pool;
pub mod queue;
pub mod slots;

use crate::config::Settings;
use crate::domain::backend::BackendSpec;
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, Connector as TcpConnector, Resolver};
use actix_web::http::{Method, Uri};
use awc::ClientRequest;
use futures_util::future::LocalBoxFuture;
use pool::Pool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use url::Url;

/// How long a request may wait in the gate, and how many one key may have waiting.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub max_wait: Duration,
    pub max_per_key: u32,
}

pub struct Upstreams {
    pool: RwLock<Arc<Pool>>,
    /// Slots and the fair queue; taken after the pool, before a backend's health.
    queue: Mutex<queue::Sched<tokio::sync::oneshot::Sender<slots::Grant>>>,
    pub queue_limits: QueueLimits,
    /// Slots of a backend saved or typed without `slots=`.
    pub default_slots: u32,
    next: AtomicUsize,
    api_keys: Vec<String>,
    key_index: AtomicUsize,
}

impl Upstreams {
    pub fn new(
        specs: Vec<BackendSpec>,
        api_keys: Vec<String>,
        queue_limits: QueueLimits,
        default_slots: u32,
    ) -> Self {
        Upstreams {
            default_slots,
            pool: RwLock::new(Arc::new(Pool::new(specs, None))),
            queue: Mutex::new(Default::default()),
            queue_limits,
            next: AtomicUsize::new(0),
            api_keys,
            key_index: AtomicUsize::new(0),
        }
    }

    pub fn pool(&self) -> Arc<Pool> {
        self.pool.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn specs(&self) -> Vec<BackendSpec> {
        self.pool().specs()
    }

    fn lock_queue(&self) -> MutexGuard<'_, queue::Sched<tokio::sync::oneshot::Sender<slots::Grant>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// New backends: those whose URL stays keep their health and running
    /// requests; waiting requests may go to the new ones at once.
    pub fn set_backends(&self, specs: Vec<BackendSpec>) {
        {
            let mut pool = self.pool.write().unwrap_or_else(|e| e.into_inner());
            *pool = Arc::new(Pool::new(specs, Some(&pool)));
        }
        self.serve_all_waiting();
    }

    /// The backends that take work, starting with the next in round-robin
    /// order; later ones are tried when an earlier one cannot be reached.
    pub fn in_turn(&self, backends: Vec<Arc<pool::Backend>>) -> Vec<Arc<pool::Backend>> {
        if backends.is_empty() {
            return backends;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..backends.len()).map(|i| backends[(start + i) % backends.len()].clone()).collect()
    }

    pub fn api_key_count(&self) -> usize {
        self.api_keys.len()
    }

    pub fn api_key(&self) -> Option<&str> {
        if self.api_keys.is_empty() {
            return None;
        }
        let i = self.key_index.load(Ordering::Relaxed) % self.api_keys.len();
        Some(&self.api_keys[i])
    }

    /// The upstream said 429 to the current key: move on to the next.
    pub fn rotate_api_key(&self) {
        self.key_index.fetch_add(1, Ordering::Relaxed);
    }
}

/// One upstream client per worker thread (awc's client is not `Send`).
pub fn build_client(settings: &Settings) -> awc::Client {
    let tcp = TcpConnector::new(Resolver::default()).service();
    let connector = awc::Connector::new()
        .connector(NoDelay(tcp))
        .timeout(settings.connect_timeout)
        // Streams are long-lived; the default cap of 100 connections would queue the 101st.
        .limit(0);
    awc::Client::builder()
        .connector(connector)
        .timeout(settings.first_byte_timeout)
        .disable_redirects()
        .no_default_headers()
        .finish()
}

/// Sets `TCP_NODELAY` on every upstream connection. Without it a request
/// written as head then body can sit in Nagle's buffer until the upstream's
/// delayed ACK, 40 ms later on Linux.
#[derive(Clone)]
pub struct NoDelay<S>(pub S);

impl<S> Service<ConnectInfo<Uri>> for NoDelay<S>
where
    S: Service<ConnectInfo<Uri>, Response = Connection<Uri, tokio::net::TcpStream>, Error = ConnectError>,
    S::Future: 'static,
{
    type Response = Connection<Uri, tokio::net::TcpStream>;
    type Error = ConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, ConnectError>>;

    fn poll_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), ConnectError>> {
        self.0.poll_ready(cx)
    }

    fn call(&self, req: ConnectInfo<Uri>) -> Self::Future {
        let connecting = self.0.call(req);
        Box::pin(async move {
            let connection = connecting.await?;
            // A socket that refuses the option still works, only slower.
            let _ = connection.io_ref().set_nodelay(true);
            Ok(connection)
        })
    }
}

/// Ollama refuses Host names it does not know when it listens on loopback, so
/// plain-HTTP upstreams are addressed as `localhost:<port>`. HTTPS upstreams
/// (Ollama Cloud) keep their real name.
pub fn host_header(url: &Url) -> String {
    let port = url.port_or_known_default().unwrap_or(11434);
    if url.scheme() == "https" {
        match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        }
    } else {
        format!("localhost:{port}")
    }
}

pub fn join(base: &Url, path_and_query: &str) -> String {
    let base = base.as_str().trim_end_matches('/');
    format!("{base}{path_and_query}")
}

/// A request to one upstream, addressed as it expects (`Host`) and with the
/// upstream's bearer key when one is set: every call to Ollama is built here.
pub fn request(
    upstreams: &Upstreams,
    client: &awc::Client,
    method: Method,
    url: &Url,
    path: &str,
) -> ClientRequest {
    let mut request = client.request(method, join(url, path)).insert_header(("host", host_header(url)));
    if let Some(key) = upstreams.api_key() {
        request = request.insert_header(("authorization", format!("Bearer {key}")));
    }
    request
}

/// What the gate's own requests to a backend say they are: probes tell
/// themselves apart in the backend's logs.
pub const PROBE_AGENT: &str = concat!("ollama-gate/", env!("CARGO_PKG_VERSION"), " (health probe)");

/// A GET of one backend, as JSON; `probe` marks a health probe.
pub async fn get_json(
    upstreams: &Upstreams,
    client: &awc::Client,
    url: &Url,
    path: &str,
    timeout: Duration,
    probe: bool,
) -> Result<serde_json::Value, String> {
    let mut request = request(upstreams, client, Method::GET, url, path).timeout(timeout);
    if probe {
        request = request.insert_header(("user-agent", PROBE_AGENT));
    }
    let mut response = request.send().await.map_err(|e| format!("unreachable: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    response.json().limit(16 * 1024 * 1024).await.map_err(|e| format!("{path} is not JSON: {e}"))
}
