//! The HTTP API: routes, problem documents, OpenAPI, and the server loop.
//!
//! Architecture invariant: handlers translate HTTP to use cases (`commands`) or
//! store/projection reads and back; they hold no business rules, and the use cases' typed
//! errors become problem documents in `commanding.rs`. Only this crate and the binary know axum.

pub mod application;
pub mod auth;
pub mod bootstrap;
pub mod chat_commands;
pub mod commanding;

pub mod feed;
pub mod geo;
pub mod history;
pub mod mailer;
pub mod openapi;
pub mod problem;
pub mod query;
pub mod read_your_writes;
pub mod reports;
pub mod routes;
pub mod server;
pub mod signals;
pub mod throttle;
pub mod visitor;
pub mod written;

/// Time, injectable (it moved to `commands`; the path stays for callers).
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use commands::App;
use projections::Projector;
use store::{EventStore, ViewStore};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub use crate::application::Application;
use crate::problem::Problem;

/// A `--public-url`: `http(s)://host[:port][/path]`, without query, fragment or trailing
/// slash, and only characters that cannot leave the HTML attribute the snippet puts it in.
pub fn parse_public_url(raw: &str) -> Result<String, String> {
    let url = raw.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    let host = rest.split('/').next().unwrap_or_default();
    let safe = |c: char| c.is_ascii_alphanumeric() || "-._~/:[]%".contains(c);
    if host.is_empty() || host.starts_with(':') {
        return Err("has no host".into());
    }
    if url.len() > 500 || !rest.chars().all(safe) {
        return Err("may only hold a scheme, a host, a port and a path (no query, fragment or quotes)".into());
    }
    Ok(url.to_string())
}

/// Default of [`ApiConfig::request_timeout`] (`serve --request-timeout`): twice the store's
/// default call bound.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the HTTP API (the use cases' own are [`commands::Config`], in [`App`]).
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// `/readyz` fails when a projector's oldest unprocessed event is older than this.
    pub ready_max_lag: Duration,
    /// A request that has not answered after this long is answered 503 `deadline-exceeded`
    /// (its work is dropped). Keep it above the store's call bound, so that a stuck store
    /// answers first with the more precise `store-timeout`. WebSockets are bounded only
    /// until they are upgraded.
    pub request_timeout: Duration,
    /// Serve views as of a past point: no writes but logins (`serve --as-of`).
    pub read_only: bool,
    /// Key of the hash that stands for visitors' addresses in event metadata
    /// (`LIVECHAT_ADDRESS_KEY`; random per process when unset).
    pub address_key: String,
    /// The address visitors reach this server at (`--public-url`), for the snippet and the
    /// direct link; unset, they are built from the request's `Host` and `X-Forwarded-Proto`.
    pub public_url: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            ready_max_lag: Duration::from_secs(30),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            read_only: false,
            address_key: uuid::Uuid::new_v4().to_string(),
            public_url: None,
        }
    }
}

/// What handlers share: the use cases' [`App`] (reached through `Deref`: `state.events`,
/// `state.users`, `state.config`...) and what only HTTP needs.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub http: ApiConfig,
    pub projectors: Vec<Arc<dyn Projector>>,
    pub activity: Arc<auth::Activity>,
    pub geo: Arc<geo::CountryResolver>,
    /// The node's shared tail of the log, for WebSockets.
    pub feed: Arc<feed::Feed>,
    /// Failed logins, per login and address (in memory, per node).
    pub throttle: Arc<throttle::Throttle>,
    /// Live stream connections of this node: typing signals, limits, counters.
    pub signals: Arc<signals::Hub>,
    /// Report rows in memory, caught up with the `reports` view on each report request.
    pub reports: Arc<reports::Index>,
    /// The server stopped accepting and is draining (`/readyz` answers 503).
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut App {
        &mut self.app
    }
}

impl AppState {
    /// State over these stores with every projector, the system clock, no country source
    /// and the use cases' default settings (see [`AppState::with_config`]).
    pub fn new(events: Arc<dyn EventStore>, views: Arc<dyn ViewStore>, http: ApiConfig) -> Self {
        AppState {
            app: App::new(written::Recording::wrap(events), views, commands::Config::default()),
            http,
            projectors: projections::all(),
            activity: Arc::default(),
            geo: Arc::new(geo::CountryResolver::default()),
            feed: Arc::default(),
            throttle: Arc::default(),
            signals: Arc::default(),
            reports: Arc::default(),
            draining: Arc::default(),
        }
    }

    pub fn with_config(mut self, config: commands::Config) -> Self {
        self.app.config = config;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn commands::clock::Clock>) -> Self {
        self.app.clock = clock;
        self
    }

    pub fn with_geo(mut self, geo: geo::CountryResolver) -> Self {
        self.geo = Arc::new(geo);
        self
    }
}

async fn not_found() -> Problem {
    Problem::not_found("no such route")
}

fn panic_to_problem(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error").into_response()
}

/// Request header carrying the TCP peer's address to handlers (set by the server itself,
/// overwriting anything a client sent under that name).
pub const CLIENT_HEADER: &str = "x-livechat-client";

/// Puts the TCP peer's address in [`CLIENT_HEADER`] (removed when there is no peer, as
/// under `oneshot` in tests), so that commands can record it in metadata.
async fn client_address(mut req: axum::extract::Request) -> axum::extract::Request {
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    match peer.and_then(|ip| axum::http::HeaderValue::from_str(&ip.to_string()).ok()) {
        Some(v) => req.headers_mut().insert(CLIENT_HEADER, v),
        None => req.headers_mut().remove(CLIENT_HEADER),
    };
    req
}

/// In read-only mode, refuses every write but a login (405 problem document).
async fn read_only_guard(
    axum::extract::State(read_only): axum::extract::State<bool>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    use axum::response::IntoResponse;
    let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !read_only || reads || req.uri().path() == "/api/v1/auth/token" {
        return next.run(req).await;
    }
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "read-only",
        "this server shows the views as of a past point of the log and takes no writes",
    )
    .into_response()
}

/// Answers 503 `deadline-exceeded` when the request is not done within `bound` (dropping
/// its work; store calls it had started are cancelled as their own bound would), and
/// completes the problem documents of store failures with the request's outcome. Covers a
/// WebSocket until its upgrade answer only: the socket lives on in a task of its own.
async fn deadline(
    axum::extract::State(bound): axum::extract::State<Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    use axum::response::IntoResponse;
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    match tokio::time::timeout(bound, next.run(req)).await {
        Ok(res) => problem::settle_outcome(res, writes),
        Err(_) => {
            tracing::warn!(bound_ms = bound.as_millis() as u64, "request past its deadline");
            Problem::deadline(bound, writes).into_response()
        }
    }
}

/// The whole application as a `Router`, ready to serve or to test with `oneshot`.
pub fn router(state: AppState) -> Router {
    let timeout = state.http.request_timeout;
    let read_only = state.http.read_only;
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/api/v1/events", get(routes::events::list))
        .route("/api/v1/streams", get(routes::streams::list))
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .merge(routes::audit::routes())
        .merge(routes::auth::routes())
        .merge(routes::users::routes())
        .merge(routes::channels::routes())
        .merge(routes::public::routes())
        .merge(routes::sessions::routes())
        .merge(routes::ratings::routes())
        .merge(routes::reports::routes())
        .merge(routes::conversations::routes())
        .merge(routes::canned::routes())
        .merge(routes::chatbots::routes())
        .merge(routes::live::routes())
        .merge(routes::transcripts::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "this route does not accept that method")
        })
        .with_state(state)
        .layer(axum::middleware::from_fn(written::mark_written))
        // Outside `mark_written`: it reads the position a failed write may have left.
        .layer(axum::middleware::from_fn_with_state(timeout, deadline))
        .layer(axum::middleware::from_fn_with_state(read_only, read_only_guard))
        .layer(axum::middleware::map_request(client_address))
        .layer(CatchPanicLayer::custom(panic_to_problem))
        .layer(RequestBodyLimitLayer::new(1024 * 1024))
        // Spans name the path only: query strings may carry tokens (`?access_token=`).
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<axum::body::Body>| {
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
        }))
}

/// Serves until `shutdown` completes, then drains with the default linger (see [`serve_with`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, shutdown, server::DEFAULT_LINGER).await
}

/// Serves until `shutdown` completes, then stops accepting and answers every request of the
/// connections it accepted (see [`server`]): idle ones stay open for `linger`.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    linger: Duration,
) -> std::io::Result<()> {
    // Typing signals from the other nodes sharing the store (PostgreSQL).
    let relay = signals::relay(state.signals.clone(), state.events.as_ref());
    // Upgraded WebSockets are not HTTP connections any more: close them ourselves (1001).
    let signals = state.signals.clone();
    let on_drain = move || {
        signals.shut_down();
        if let Some(relay) = relay {
            relay.abort();
        }
    };
    // Report rows are read into memory once per node: start now rather than on the first report.
    let (reports, views) = (state.reports.clone(), state.views.clone());
    tokio::spawn(async move {
        if let Err(err) = reports.warm(views.as_ref()).await {
            tracing::warn!(%err, "could not read the report rows ahead of the first report");
        }
    });
    let draining = state.draining.clone();
    server::run(listener, router(state), shutdown, draining, linger, on_drain).await
}
