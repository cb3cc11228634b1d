//! Shared helper for tests that talk to an in-process RESP server over TCP.
#![allow(
    clippy::unwrap_used,
    reason = "test helper: a server that cannot start fails the test"
)]
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these fields"
)]

use std::net::SocketAddr;

use streamcache::cache::{Cache, RespConfig, serve_resp};
use streamcache::shutdown::Shutdown;

/// A RESP server on 127.0.0.1 (an ephemeral port) in its own runtime, shut down on drop.
pub(crate) struct Server {
    /// The runtime serving the listener (kept alive with the server).
    pub(crate) rt: tokio::runtime::Runtime,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Triggered on drop.
    pub(crate) shutdown: Shutdown,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// Serves `cache` with `config`.
pub(crate) fn serve(cache: Cache, config: RespConfig) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    rt.spawn(serve_resp(listener, cache, config, shutdown.signal()));
    Server { rt, addr, shutdown }
}
