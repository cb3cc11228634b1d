//! Capability: a Pusher WebSocket client that stops reading cannot hold its connection. Every
//! write to a client is bounded by one activity period (`realtime.activity_timeout_s`); a client
//! that takes no frame in that time is dropped (no close frame can reach it) and leaves its
//! channels as any closed connection does: presence members hear `member_removed`, subscription
//! counts fall, the connection slot is freed.
//!
//! Method: a real server on 127.0.0.1:0 and a tokio-tungstenite client with a small socket
//! receive buffer that subscribes, then never reads again while events are published until the
//! server's socket buffer is full. The clock is paused for that part (tokio's paused time):
//! publishing advances no time, and the wait for the dropped connection jumps straight to the
//! write deadline, which the test checks to within a second.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns unwrap and panic on failure"
)]

mod realtime_common;

use std::time::Duration;

use realtime_common::ws::{Client, KEY, connect, established};
use realtime_common::{Server, realtime_config, start};
use serde_json::{Value, json};
use streamcache::realtime::{Delivery, EVENT_DATA_BYTES_MAX};
use tokio_tungstenite::MaybeTlsStream;

/// Bytes the client socket asks the kernel to buffer for reading (the kernel rounds it up to its
/// minimum); small, so the server's send buffer is what fills.
const CLIENT_RECV_BUFFER_BYTES: u32 = 4096;

/// The largest send buffer the kernel grows a TCP socket to (`tcp_wmem`'s maximum), or 4 MiB,
/// Linux's default, where that cannot be read.
fn kernel_send_buffer_max() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 * 1024 * 1024)
}

/// Connects as pusher-js does, over a socket with a small receive buffer.
async fn connect_small_buffer(server: &Server) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .set_recv_buffer_size(CLIENT_RECV_BUFFER_BYTES)
        .unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let url = format!(
        "ws://{}/app/{KEY}?protocol=7&client=js&version=8.6.0&flash=false",
        server.addr
    );
    let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
        .await
        .unwrap();
    established(ws).await.0
}

/// The next frame that is not the server's `pusher:ping`.
async fn recv_skipping_pings(c: &mut Client) -> Value {
    loop {
        let frame = c.recv().await;
        if frame["event"] != "pusher:ping" {
            return frame;
        }
    }
}

fn data_of(frame: &Value) -> Value {
    serde_json::from_str(frame["data"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_leaves_its_channels() {
    let config = realtime_config();
    let activity = Duration::from_secs(config.activity_timeout_s);
    let server = start(config).await;
    let hub = server.engine.realtime().clone();
    let ws_connections = server.engine.metrics().gauge(
        "streamcache_realtime_ws_connections",
        "Open Pusher WebSocket connections",
        Vec::new(),
    );

    let mut watcher = connect(&server).await;
    let ok = watcher
        .subscribe_signed("presence-room", Some(r#"{"user_id":"watcher"}"#))
        .await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    let mut stuck = connect_small_buffer(&server).await;
    let ok = stuck
        .subscribe_signed("presence-room", Some(r#"{"user_id":"stuck"}"#))
        .await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    let ok = stuck.subscribe("flood", None, None).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    let added = watcher.recv().await;
    assert_eq!(added["event"], "pusher_internal:member_added");
    assert_eq!(data_of(&added)["user_id"], "stuck");
    assert_eq!(ws_connections.get(), 2);
    // The room's events as the hub delivers them, read in this task: no socket in between, so
    // the time of `member_removed` is the time the connection left.
    let mut room = hub.subscribe("presence-room", None).unwrap();

    // From here on `stuck` reads nothing, and time moves only when every task waits. Each event
    // is written before the next is published (the yields let the connection task run), until
    // the server's socket buffer is full and a write waits; twice the largest send buffer is
    // sure to get there.
    tokio::time::pause();
    let payload = json!("x".repeat(EVENT_DATA_BYTES_MAX - 16));
    let flood = 2 * kernel_send_buffer_max() / EVENT_DATA_BYTES_MAX + 1;
    for _ in 0..flood {
        hub.publish("flood", "Big", payload.clone(), None).unwrap();
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(hub.subscriber_count("flood"), 1);

    // The blocked write gives up after one activity period, not before, and the connection
    // leaves its channels; a write that waited for TCP to give up would take many minutes.
    // (`watcher` answers no pings meanwhile: from two periods on, it is closed for that.)
    let removed = async {
        loop {
            if let Delivery::Event(e) = room.recv().await
                && e.name() == "pusher_internal:member_removed"
                && e.data().contains("stuck")
            {
                return e;
            }
        }
    };
    tokio::pin!(removed);
    let early = activity - Duration::from_millis(10);
    assert!(
        tokio::time::timeout(early, &mut removed).await.is_err(),
        "dropped before the write deadline"
    );
    let removed = tokio::time::timeout(Duration::from_secs(1), &mut removed)
        .await
        .expect("the connection that stopped reading leaves when its write deadline passes");
    assert_eq!(removed.data(), r#"{"user_id":"stuck"}"#);
    assert_eq!(hub.subscriber_count("flood"), 0);
    assert_eq!(hub.presence_user_count("presence-room"), 1);
    assert_eq!(ws_connections.get(), 1, "the connection task ended");
    tokio::time::resume();

    // The other member hears it as a Pusher client.
    let removed = recv_skipping_pings(&mut watcher).await;
    assert_eq!(removed["event"], "pusher_internal:member_removed");
    assert_eq!(data_of(&removed), json!({"user_id": "stuck"}));
    watcher
        .send(json!({"event": "pusher:ping", "data": {}}))
        .await;
    assert_eq!(
        recv_skipping_pings(&mut watcher).await["event"],
        "pusher:pong"
    );

    // What the kernel had buffered still arrives, then the connection ends with no close frame
    // (none could be written).
    assert_eq!(stuck.close_code().await, 1006);
}
