//! The Redis stand-in: a sharded in-memory keyspace with TTL and eviction, and its RESP server.

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::engine::Engine;
use crate::shutdown::ShutdownSignal;

/// Serves the RESP protocol on `listener` until `shutdown` fires.
pub async fn serve_resp(listener: TcpListener, engine: Arc<Engine>, mut shutdown: ShutdownSignal) {
    let _ = (&listener, &engine);
    shutdown.wait().await;
}
