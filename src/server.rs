//! Binding the listeners and running the HTTP and RESP servers until shutdown.
//!
//! `serve` calls [`bind`] (a port in use is a configuration error naming the setting),
//! [`serve_http_while_starting`] (probes get answers while the engine starts), starts the engine,
//! [`Serving::open`]s every route, prints [`Bound::ready_line`], then [`Serving::run`]s until its
//! [`Shutdown`] trigger fires: stop accepting, give in-flight requests `shutdown_drain_ms` to
//! finish, then return so the caller can flush storage. [`run`] is the last three at once, for
//! an engine already started.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;

use crate::engine::Engine;
use crate::shutdown::Shutdown;

/// A listener that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} (setting `{setting}`): {source}")]
pub struct BindError {
    /// The setting that named the address (`http` or `resp`).
    pub setting: &'static str,
    /// The address.
    pub addr: SocketAddr,
    /// What the OS said (e.g. address in use).
    #[source]
    pub source: std::io::Error,
}

/// The bound listeners, before serving.
#[derive(Debug)]
pub struct Bound {
    /// HTTP listener.
    http: TcpListener,
    /// RESP listener.
    resp: TcpListener,
    /// Actual HTTP address (port 0 resolved).
    http_addr: SocketAddr,
    /// Actual RESP address (port 0 resolved).
    resp_addr: SocketAddr,
    /// The Pusher app key, announced on the ready line.
    pusher_key: String,
}

impl Bound {
    /// The HTTP address actually bound.
    #[must_use]
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The RESP address actually bound.
    #[must_use]
    pub fn resp_addr(&self) -> SocketAddr {
        self.resp_addr
    }

    /// The one line `serve` prints on stdout when ready. Later fields are appended as
    /// `key=value`; the first three never move.
    #[must_use]
    pub fn ready_line(&self) -> String {
        format!(
            "streamcache ready http=http://{h} resp={r} dashboard=http://{h}/ pusher_key={k}",
            h = self.http_addr,
            r = self.resp_addr,
            k = self.pusher_key
        )
    }
}

/// Binds the HTTP and RESP listeners named by the engine's configuration.
///
/// # Errors
/// [`BindError`] naming the setting whose address cannot be bound.
pub async fn bind(engine: &Engine) -> Result<Bound, BindError> {
    let config = engine.config();
    let http = listen("http", config.http).await?;
    let resp = listen("resp", config.resp).await?;
    let local = |setting, l: &TcpListener, addr| {
        l.local_addr().map_err(|source| BindError {
            setting,
            addr,
            source,
        })
    };
    let http_addr = local("http", &http, config.http)?;
    let resp_addr = local("resp", &resp, config.resp)?;
    if !http_addr.ip().is_loopback() && config.realtime.uses_default_secret() {
        tracing::warn!(
            http = %http_addr,
            "the HTTP listener is reachable beyond loopback while realtime.secret is the public default; \
             anyone can publish to and authorise Pusher channels: set realtime.secret"
        );
    }
    Ok(Bound {
        http,
        resp,
        http_addr,
        resp_addr,
        pusher_key: config.realtime.key.clone(),
    })
}

async fn listen(setting: &'static str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| BindError {
        setting,
        addr,
        source,
    })
}

/// The open-file limit asked for when the hard limit is unlimited (Linux's default
/// `fs.nr_open`, above which the kernel refuses any soft limit).
const OPEN_FILES_WANTED: u64 = 1 << 20;

/// Raises the soft open-file limit to the hard one, as Redis and Kafka's start scripts do: every
/// log segment keeps its file open and every client holds a socket, so the common soft limit of
/// 1024 runs out long before the connection limits (10 000 RESP, 10 000 WebSocket) do. A limit
/// that cannot be raised is logged and left as it is.
pub fn raise_open_files_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let target = limit.maximum.map_or(OPEN_FILES_WANTED, |hard| hard);
    let Some(current) = limit.current else {
        return;
    };
    if current >= target {
        return;
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: limit.maximum,
        },
    ) {
        Ok(()) => tracing::info!(from = current, to = target, "raised the open-file limit"),
        Err(e) => tracing::warn!(limit = current, wanted = target, error = %e,
            "cannot raise the open-file limit; segments and connections share what there is"),
    }
}

/// Serves HTTP and RESP until `trigger` fires (a RESP client's SHUTDOWN fires it too), then
/// drains in-flight HTTP requests for at most `shutdown_drain_ms` and returns.
///
/// # Errors
/// An I/O error from the HTTP server itself.
pub async fn run(engine: Arc<Engine>, bound: Bound, trigger: Shutdown) -> std::io::Result<()> {
    let serving = serve_http_while_starting(engine, bound, trigger);
    serving.open();
    serving.run().await
}

/// The paths answered while the engine starts: liveness, readiness (503 until the engine is
/// ready) and metrics.
const PATHS_WHILE_STARTING: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// HTTP served from before the engine starts; RESP not yet (its clients wait in the listen
/// backlog, as they would for a server still loading).
#[derive(Debug)]
pub struct Serving {
    engine: Arc<Engine>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    resp: TcpListener,
    trigger: Shutdown,
    /// Whether every route is served; before, only [`PATHS_WHILE_STARTING`].
    opened: Arc<AtomicBool>,
}

/// Starts serving HTTP on `bound` at once, before [`Engine::start`] (which rebuilds the cache from
/// the log and may take a while): `/healthz`, `/readyz` (503 `starting` until the engine is
/// ready) and `/metrics` answer, and every other request gets 503 `{"status": "starting"}` with
/// `Retry-After: 1` until [`Serving::open`], so a probe or a client gets an answer instead of a
/// connection that hangs. Call inside a Tokio runtime.
#[must_use]
pub fn serve_http_while_starting(engine: Arc<Engine>, bound: Bound, trigger: Shutdown) -> Serving {
    let shutdown = trigger.signal();
    let opened = Arc::new(AtomicBool::new(false));
    let app = crate::api::router_with_shutdown(engine.clone(), shutdown.clone()).layer(
        axum::middleware::from_fn_with_state(opened.clone(), while_starting),
    );

    let mut http_signal = shutdown.clone();
    // TCP_NODELAY: WebSocket and SSE frames are small and latency-bound; without it Nagle's
    // algorithm and delayed ACKs stall them for tens of milliseconds.
    let listener = bound.http.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    // `into_make_service`: each accepted connection gets a clone of the router (a reference
    // count). Serving the `Router` itself would rebuild its route table for every connection
    // (`with_state` clones every route's boxed service): about 40 KB of memory per connection
    // (docs/benchmarks.md, "Memory per HTTP connection").
    let http = tokio::spawn(
        axum::serve(listener, app.into_make_service())
            .with_graceful_shutdown(async move { http_signal.wait().await })
            .into_future(),
    );
    Serving {
        engine,
        http,
        resp: bound.resp,
        trigger,
        opened,
    }
}

/// Answers 503 `starting` for every path but [`PATHS_WHILE_STARTING`] until `opened`.
async fn while_starting(
    axum::extract::State(opened): axum::extract::State<Arc<AtomicBool>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if opened.load(Ordering::Acquire) || PATHS_WHILE_STARTING.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "1")],
        axum::Json(serde_json::json!({"status": "starting"})),
    )
        .into_response()
}

impl Serving {
    /// Serves every route from now on: call once the engine is started.
    pub fn open(&self) {
        self.opened.store(true, Ordering::Release);
    }

    /// Serves RESP too until the trigger fires (a RESP client's SHUTDOWN fires it too), then
    /// drains in-flight HTTP requests for at most `shutdown_drain_ms` and returns.
    ///
    /// # Errors
    /// An I/O error from the HTTP server itself.
    pub async fn run(self) -> std::io::Result<()> {
        let Self {
            engine,
            http,
            resp,
            trigger,
            opened: _,
        } = self;
        let shutdown = trigger.signal();
        let drain = Duration::from_millis(engine.config().shutdown_drain_ms);
        let resp_config = crate::cache::RespConfig::from_cache(
            engine.cache(),
            engine.config().auth_token.clone(),
        );
        let resp = tokio::spawn(crate::cache::serve_resp(
            resp,
            engine.cache().clone(),
            resp_config,
            trigger,
        ));

        let mut signal = shutdown;
        signal.wait().await;
        tracing::info!(
            drain_ms = drain.as_millis(),
            "shutting down: draining in-flight requests"
        );
        let deadline = tokio::time::sleep(drain);
        tokio::pin!(deadline);
        let mut http = http;
        let mut resp = resp;
        let http_result = tokio::select! {
            r = &mut http => r.ok(),
            () = &mut deadline => { http.abort(); tracing::warn!("HTTP drain timed out; open connections closed"); None }
        };
        tokio::select! {
            _ = &mut resp => {}
            () = &mut deadline => { resp.abort(); tracing::warn!("RESP drain timed out; open connections closed"); }
        }
        match http_result {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }
}
