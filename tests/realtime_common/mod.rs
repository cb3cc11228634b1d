//! Shared helpers for the real-time tests: an in-process server on 127.0.0.1:0 with its own
//! shutdown trigger.
#![allow(
    dead_code,
    reason = "each test file uses a different subset of the helpers"
)]

pub(crate) mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use streamcache::config::Config;
use streamcache::engine::Engine;
use streamcache::realtime::RealtimeConfig;
use streamcache::shutdown::Shutdown;

/// A running server.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) engine: Arc<Engine>,
    pub(crate) shutdown: Shutdown,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

/// The realtime config the tests use: fixed socket-id seed, small replay buffer.
pub(crate) fn realtime_config() -> RealtimeConfig {
    RealtimeConfig {
        socket_id_seed: Some(7),
        replay_events: 8,
        ..RealtimeConfig::default()
    }
}

/// Starts a server with `realtime` and otherwise default, ephemeral settings.
pub(crate) async fn start(realtime: RealtimeConfig) -> Server {
    start_with(Config {
        ephemeral: true,
        realtime,
        ..Config::default()
    })
    .await
}

/// Starts a server with `config` (made ephemeral).
pub(crate) async fn start_with(config: Config) -> Server {
    start_with_clock(config, streamcache::clock::SystemClock::shared()).await
}

/// Starts a server with `config` (made ephemeral) on `clock`.
pub(crate) async fn start_with_clock(
    config: Config,
    clock: streamcache::clock::SharedClock,
) -> Server {
    let config = Config {
        ephemeral: true,
        ..config
    };
    let engine = Arc::new(Engine::open_with_clock(config, clock).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let app = streamcache::api::router_with_shutdown(engine.clone(), shutdown.signal());
    let mut signal = shutdown.signal();
    let task = tokio::spawn(async move {
        // As `streamcache::server` serves it: one shared route table for every connection.
        axum::serve(listener, app.into_make_service())
            .with_graceful_shutdown(async move { signal.wait().await })
            .await
            .unwrap();
    });
    Server {
        addr,
        engine,
        shutdown,
        task,
    }
}
