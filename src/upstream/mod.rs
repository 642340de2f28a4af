//! The upstream Ollama servers: which one to call next, with which bearer key,
//! and the one place requests to them are built.

pub mod catalog;
pub mod probe;

use crate::config::Settings;
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, Connector as TcpConnector, Resolver};
use actix_web::http::{Method, Uri};
use awc::ClientRequest;
use futures_util::future::LocalBoxFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use url::Url;

pub struct Upstreams {
    urls: RwLock<Arc<Vec<Url>>>,
    next: AtomicUsize,
    api_keys: Vec<String>,
    key_index: AtomicUsize,
    /// What the upstreams have; forgotten when the URLs change.
    catalog: catalog::Catalog,
    probe: probe::Probe,
}

impl Upstreams {
    pub fn new(urls: Vec<Url>, api_keys: Vec<String>) -> Self {
        Upstreams {
            urls: RwLock::new(Arc::new(urls)),
            next: AtomicUsize::new(0),
            api_keys,
            key_index: AtomicUsize::new(0),
            catalog: Default::default(),
            probe: Default::default(),
        }
    }

    pub fn urls(&self) -> Arc<Vec<Url>> {
        self.urls.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// New upstreams: what was known of the old ones is forgotten.
    pub fn set_urls(&self, urls: Vec<Url>) {
        *self.urls.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(urls);
        self.catalog.clear();
        self.probe.clear();
    }

    /// All backends, starting with the next in round-robin order; later ones
    /// are tried when an earlier one cannot be reached.
    pub fn in_turn(&self) -> Vec<Url> {
        let urls = self.urls();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..urls.len()).map(|i| urls[(start + i) % urls.len()].clone()).collect()
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

impl Upstreams {
    /// A GET of the first upstream, as JSON.
    pub async fn get_json(&self, client: &awc::Client, path: &str) -> Result<serde_json::Value, String> {
        let url = self.urls()[0].clone();
        let request =
            request(self, client, Method::GET, &url, path).timeout(std::time::Duration::from_secs(10));
        let mut response =
            request.send().await.map_err(|e| format!("upstream Ollama is unreachable: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("upstream Ollama answered {}", response.status()));
        }
        response
            .json()
            .limit(16 * 1024 * 1024)
            .await
            .map_err(|e| format!("upstream model list is not JSON: {e}"))
    }
}
