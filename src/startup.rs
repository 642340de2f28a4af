//! Building the application: shared state, two listeners with their own, background upkeep.

use crate::admin;
use crate::admin::password::{self, AdminPassword};
use crate::admin::AdminState;
use crate::clock::{Clock, SystemClock};
use crate::config::{CookieSecure, Settings};
use crate::conn_limit::{self, ConnLimits};
use crate::key_cache::KeyCache;
use crate::proxy::ProxyState;
use crate::proxy::{handler, info};
use crate::runtime::{Runtime, SettingName};
use crate::state::Shared;
use crate::store::{self, Store, StoreOptions};
use crate::upstream::{build_client, QueueLimits, Upstreams};
use crate::usage_log::UsageLog;
use actix_session::{storage::CookieSessionStore, SessionMiddleware};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{Server, ServerHandle};
use actix_web::web::{self, Data};
use actix_web::{App, HttpResponse, HttpServer};
use anyhow::Context;
use rand::Rng;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

/// Starts one listener with what both share: the connection caps, the
/// timeouts, no signal handling of its own (see `run_until_stopped`). A macro
/// because `HttpServer`'s type parameters carry actix-http's own bounds.
macro_rules! serve {
    ($server:expr, $listener:expr, $limits:expr, $settings:expr, $workers:expr) => {{
        let limits = $limits.clone();
        $server
            .on_connect(move |io, ext| limits.on_connect(io, ext))
            .listen($listener)?
            .disable_signals()
            .workers($workers)
            .keep_alive($settings.keep_alive)
            .client_request_timeout($settings.request_header_timeout)
            .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
            .max_connections($settings.max_connections)
            .shutdown_timeout($settings.shutdown_timeout.as_secs())
            .run()
    }};
}

pub struct Application {
    proxy_port: u16,
    admin_port: u16,
    proxy: Server,
    admin: Server,
    shared: Arc<Shared>,
    proxy_state: Data<ProxyState>,
    admin_state: Data<AdminState>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Application::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Binds both listeners (port 0 picks a free port) and starts the upkeep tasks.
    pub async fn build_with_clock(
        mut settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Application> {
        let backlog = settings.listen_backlog;
        let proxy_listener =
            bind("PROXY_HOST/PROXY_PORT", &settings.proxy_host, settings.proxy_port, backlog)?;
        let admin_listener =
            bind("ADMIN_HOST/ADMIN_PORT", &settings.admin_host, settings.admin_port, backlog)?;
        // With port 0 the system picked one; everything after this uses the real one.
        settings.proxy_port = proxy_listener.local_addr()?.port();
        settings.admin_port = admin_listener.local_addr()?.port();
        let store = open_store(&settings).await?;
        let admin_password = admin_password(&settings, store.as_ref()).await?;
        let env_model = settings.anthropic_default_model.as_deref();
        let (backends, runtime) =
            Runtime::load(store.as_ref(), (&settings.backends, env_model), settings.backend_default_slots)
                .await?;
        let usage_log = match &settings.log_file {
            Some(path) => UsageLog::start(path, settings.log_max_bytes, settings.log_keep)
                .with_context(|| format!("invalid LOG_FILE: cannot open {}", path.display()))?,
            None => UsageLog::disabled(),
        };
        let instance_id = crate::instance::new_instance_id();
        let shared = Arc::new(Shared {
            keys: KeyCache::new(settings.key_cache_ttl),
            upstreams: Arc::new(Upstreams::new(
                backends,
                settings.ollama_api_keys.iter().map(|k| k.expose().clone()).collect(),
                QueueLimits { max_wait: settings.queue_max_wait, max_per_key: settings.queue_max_per_key },
                settings.backend_default_slots,
            )),
            usage_log,
            instance_id,
            runtime,
            refusals: Default::default(),
            alerts: crate::alerts::Alerts::new(clock.clone()),
            store,
            clock,
            metrics: Arc::new(crate::metrics::Metrics::new(settings.metrics_key_label)?),
            settings,
        });
        shared.metrics.watch_backends(shared.upstreams.clone())?;
        let batches = shared.metrics.clone();
        shared.store.observe_batches(Arc::new(move |took| batches.db(crate::metrics::DbOp::Batch, took)));
        let settings = &shared.settings;
        let proxy_state = Data::new(ProxyState {
            shared: shared.clone(),
            tokenizer: std::sync::Arc::new(crate::tokens::Tokenizer::start(
                settings.tokenizer_threads,
                settings.tokenizer_queue,
                settings.tokenizer_queue_per_key,
            )),
            streams: Default::default(),
            tracer: settings.otel.as_ref().map(crate::telemetry::Tracer::start),
        });
        let admin_state = Data::new(AdminState {
            shared: shared.clone(),
            password: admin_password,
            login_throttle: admin::throttle::LoginThrottle::new(admin::throttle::ThrottleSettings {
                max_failures: settings.login_max_failures,
                lockout: settings.login_lockout,
                global_max_failures: settings.login_global_max_failures,
                global_interval: settings.login_global_interval,
            }),
        });
        crate::upkeep::once(&admin_state)
            .await
            .context("cannot settle reservations left by an earlier run")?;

        let (proxy_port, admin_port) = (settings.proxy_port, settings.admin_port);
        let workers = if settings.workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            settings.workers
        };

        let proxy_limits = connection_limits("proxy", settings);
        let admin_limits = connection_limits("admin", settings);
        let image_slots = crate::proxy::policy::images::FetchSlots::new(settings);
        let proxy_data = proxy_state.clone();
        let proxy = HttpServer::new(move || {
            let proxy_state = &proxy_data;
            App::new()
                .app_data(proxy_state.clone())
                .app_data(Data::new(build_client(&proxy_state.settings)))
                .app_data(Data::new(crate::proxy::policy::images::build_client(
                    &proxy_state.settings,
                    &image_slots,
                )))
                .wrap(actix_web::middleware::from_fn(crate::proxy::cors::cors))
                .wrap(actix_web::middleware::from_fn(crate::proxy::request_id::tag))
                .wrap(actix_web::middleware::from_fn(conn_limit::track))
                // HEAD too, as Ollama answers it on `/` (clients probe with it).
                .route("/", get_or_head().to(info::service_info))
                .route("/health", get_or_head().to(info::health))
                .route("/v1/usage", web::get().to(info::key_usage))
                .route("/v1/usage/summary", web::get().to(info::key_usage_summary))
                .default_service(web::to(handler::proxy))
        })
        // Each chunk of a stream leaves at once rather than waiting in Nagle's
        // buffer for the client's delayed ACK.
        .tcp_nodelay(true);
        let proxy = serve!(proxy, proxy_listener, proxy_limits, settings, workers);

        let session_key = session_key(&shared).await?;
        let admin_data = admin_state.clone();
        let admin = HttpServer::new(move || {
            let admin_state = &admin_data;
            let cookie_secure = admin_state.settings.cookie_secure == CookieSecure::Always;
            let sessions = SessionMiddleware::builder(CookieSessionStore::default(), session_key.clone())
                .cookie_name("ollama_gate_admin".into())
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Strict)
                .cookie_secure(cookie_secure)
                .build();
            App::new()
                .app_data(admin_state.clone())
                .app_data(Data::new(build_client(&admin_state.settings)))
                .app_data(web::JsonConfig::default().limit(1024 * 1024).error_handler(|err, _| {
                    admin::error::AdminError::BadRequest(format!("invalid JSON body: {err}")).into()
                }))
                .app_data(web::QueryConfig::default().error_handler(|err, _| {
                    admin::error::AdminError::BadRequest(format!("invalid query: {err}")).into()
                }))
                .app_data(web::PathConfig::default().error_handler(|err, _| {
                    admin::error::AdminError::NotFound(format!("no such resource: {err}")).into()
                }))
                .wrap(actix_web::middleware::from_fn(admin::headers::security_headers))
                .wrap(sessions)
                // A foreign Host gets nothing else, not even a session; only the
                // connection count (outermost) sees it first.
                .wrap(actix_web::middleware::from_fn(admin::hosts::only_allowed_hosts))
                .wrap(actix_web::middleware::from_fn(conn_limit::track))
                .service(web::scope("/api").configure(admin::api::routes))
                .route("/metrics", web::get().to(admin::metrics::metrics))
                .route("/static/{name}", web::get().to(admin::assets::asset))
                .configure(admin::pages::routes)
                .default_service(web::to(|| async {
                    HttpResponse::NotFound().json(serde_json::json!({"error": "not found"}))
                }))
        });
        let admin = serve!(admin, admin_listener, admin_limits, settings, workers.min(2));

        actix_web::rt::spawn(crate::upkeep::run(admin_state.clone()));
        actix_web::rt::spawn(crate::upkeep::flush_refusals(shared.clone()));
        actix_web::rt::spawn(proxy_limits.watch());
        actix_web::rt::spawn(admin_limits.watch());
        actix_web::rt::spawn(crate::proxy::stream_watch::recheck(proxy_state.clone()));
        actix_web::rt::spawn(crate::upkeep::return_freed_memory());
        actix_web::rt::spawn(shared.upstreams.clone().watch(build_client(settings)));
        start_alerts(&shared);
        Ok(Application { proxy_port, admin_port, proxy, admin, shared, proxy_state, admin_state })
    }

    pub fn proxy_port(&self) -> u16 {
        self.proxy_port
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// The admin listener's state, which reaches the shared parts too (for tests).
    pub fn state(&self) -> Data<AdminState> {
        self.admin_state.clone()
    }

    /// The proxy listener's state (for tests).
    pub fn proxy_state(&self) -> Data<ProxyState> {
        self.proxy_state.clone()
    }

    pub fn handles(&self) -> (ServerHandle, ServerHandle) {
        (self.proxy.handle(), self.admin.handle())
    }

    /// Serves until SIGTERM / SIGINT: new connections are refused, running
    /// streams drain up to `SHUTDOWN_TIMEOUT_SECS`, then it returns.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        // actix's own signal handling stops the whole process as soon as one
        // server is done, which would cut the proxy's running streams when the
        // idle admin listener finishes first; both are stopped together here.
        let (proxy_handle, admin_handle) = self.handles();
        actix_web::rt::spawn(async move {
            if wait_for_shutdown_signal().await.is_ok() {
                log::info!(
                    "shutting down: no new connections; running requests may finish (SHUTDOWN_TIMEOUT_SECS)"
                );
                futures_util::future::join(proxy_handle.stop(true), admin_handle.stop(true)).await;
            }
        });
        let (proxy, admin) = futures_util::future::join(self.proxy, self.admin).await;
        proxy?;
        admin?;
        if let Err(e) = self.shared.refusals.flush(self.shared.store.as_ref()).await {
            log::warn!("could not save the last refused-request counts: {e}");
        }
        if let Some(tracer) = &self.proxy_state.tracer {
            tracer.flush(TRACE_FLUSH_WAIT).await;
        }
        // Our reservations, if any are left, become stale for the next start at once.
        if let Err(e) = self.shared.store.remove_instance(&self.shared.instance_id).await {
            log::warn!("could not unregister this instance: {e}");
        }
        Ok(())
    }
}

/// The alerts' background tasks: recording, the webhook, the backends' watch.
fn start_alerts(shared: &Shared) {
    let hook = shared.settings.alert_webhook_url.as_ref().map(|url| crate::alerts::webhook::Webhook {
        url: url.expose().clone(),
        secret: shared.settings.alert_webhook_secret.as_ref().map(|s| s.expose().clone()),
    });
    actix_web::rt::spawn(shared.alerts.clone().record(shared.store.clone(), hook.is_some()));
    if let Some(hook) = hook {
        actix_web::rt::spawn(shared.alerts.clone().send(shared.store.clone(), hook));
    }
    actix_web::rt::spawn(crate::alerts::upstream::watch(shared.upstreams.clone(), shared.alerts.clone()));
}

/// The key that signs and encrypts admin cookies (kept out of the database).
async fn session_key(state: &Shared) -> anyhow::Result<Key> {
    let bytes = admin::session_key::load(&state.settings, state.store.as_ref()).await?;
    Key::try_from(&bytes[..]).map_err(|e| anyhow::anyhow!("invalid SESSION_KEY: {e}"))
}

async fn wait_for_shutdown_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let options =
        StoreOptions { max_connections: settings.db_max_connections, busy_timeout: settings.db_busy_timeout };
    store::connect(&settings.database_url, &options)
        .await
        .map_err(|e| anyhow::anyhow!("DATABASE_URL: cannot open the database: {e}"))
}

/// How long the last spans may take to leave on shutdown.
const TRACE_FLUSH_WAIT: Duration = Duration::from_secs(5);

/// How long a closing connection may take to say goodbye (actix's own default).
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Caps and the between-requests deadline for one listener.
fn connection_limits(listener: &'static str, settings: &Settings) -> Arc<ConnLimits> {
    ConnLimits::new(
        listener,
        settings.max_connections,
        settings.max_connections_per_address,
        settings.keep_alive + settings.request_header_timeout,
        settings.max_stream_duration,
    )
}

fn bind(setting: &str, host: &str, port: u16, backlog: u32) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind((host, port))
        .with_context(|| format!("invalid {setting}: cannot listen on {host}:{port}"))?;
    // std listens with a backlog of 128; listening again sets LISTEN_BACKLOG.
    // SAFETY: listen(2) on the socket just bound, which this function owns.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog as libc::c_int) } != 0 {
        return Err(std::io::Error::last_os_error()).context("invalid LISTEN_BACKLOG");
    }
    Ok(listener)
}

/// The admin password: from the environment, or the hash kept in the
/// database, or (first start) generated, printed once and stored as a hash.
async fn admin_password(settings: &Settings, store: &dyn Store) -> anyhow::Result<AdminPassword> {
    if let Some(plain) = &settings.admin_password {
        return Ok(AdminPassword::plaintext(plain.expose()));
    }
    if let Some(phc) = &settings.admin_password_hash {
        return Ok(AdminPassword::hashed(Some(phc.clone())));
    }
    if let Some(phc) = store.get_setting(SettingName::AdminPasswordHash.as_str()).await? {
        return Ok(AdminPassword::hashed(Some(phc)));
    }
    let generated: String = {
        let mut rng = rand::thread_rng();
        const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
        (0..24).map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())])).collect()
    };
    let to_hash = generated.clone();
    let phc =
        tokio::task::spawn_blocking(move || password::hash(&to_hash)).await?.map_err(anyhow::Error::msg)?;
    // Several replicas may start at once: only the one whose hash was stored prints.
    let stored = store.init_setting(SettingName::AdminPasswordHash.as_str(), &phc).await?;
    if stored == phc {
        eprintln!("ollama-gate: generated admin password: {generated}");
        eprintln!("ollama-gate: it is shown only this once; set ADMIN_PASSWORD to choose your own.");
    }
    Ok(AdminPassword::hashed(Some(stored)))
}

/// A route for GET and HEAD; actix sends a HEAD's answer without its body.
fn get_or_head() -> actix_web::Route {
    use actix_web::guard;
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}
