//! Capability: SSE on hub channels (`GET /realtime/{channel}`, `POST /realtime/{channel}`).
//!
//! Method: a real server on 127.0.0.1:0 and a streaming reqwest client reading raw SSE frames:
//! `retry:` first, `id:`/`event:`/`data:` per event, `Last-Event-ID` replay or `resync`,
//! keep-alive comments (tokio paused time), refusals, and the stream ending at shutdown.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns unwrap and panic on failure"
)]

mod realtime_common;

use std::time::Duration;

use futures::StreamExt as _;
use realtime_common::{Server, realtime_config, start};
use serde_json::{Value, json};

/// A parsed SSE frame: its fields in order (comments as `("", text)`).
type Frame = Vec<(String, String)>;

struct Reader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
    /// Longest wait for a chunk.
    timeout: Duration,
}

impl Reader {
    async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..end + 2).collect();
                let frame = raw
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| match l.split_once(':') {
                        Some((k, v)) => (k.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned()),
                        None => (l.to_owned(), String::new()),
                    })
                    .collect();
                return Some(frame);
            }
            let chunk = tokio::time::timeout(self.timeout, self.body.next())
                .await
                .expect("frame in time")?;
            self.buf
                .push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    }

    /// The next frame that is not a keep-alive comment.
    async fn event(&mut self) -> Frame {
        loop {
            let f = self.frame().await.expect("stream still open");
            if f.first().is_some_and(|(k, _)| !k.is_empty()) {
                return f;
            }
        }
    }
}

fn field<'a>(frame: &'a Frame, name: &str) -> Option<&'a str> {
    frame
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn open(
    server: &Server,
    channel: &str,
    last_event_id: Option<&str>,
) -> (reqwest::Response, Reader) {
    open_path(server, &format!("/realtime/{channel}"), last_event_id).await
}

/// Opens the SSE stream at `path`.
async fn open_path(
    server: &Server,
    path: &str,
    last_event_id: Option<&str>,
) -> (reqwest::Response, Reader) {
    let mut req = reqwest::Client::new().get(format!("http://{}{path}", server.addr));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let resp = req.send().await.unwrap();
    let headers = resp.headers().clone();
    let status = resp.status();
    let reader = Reader {
        body: resp.bytes_stream().boxed(),
        buf: String::new(),
        timeout: Duration::from_secs(5),
    };
    let fake = http_response(status, &headers);
    (fake, reader)
}

/// Keeps status and headers for assertions after the body moved into the reader.
fn http_response(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> reqwest::Response {
    let mut b = axum::http::Response::builder().status(status.as_u16());
    for (k, v) in headers {
        b = b.header(k.as_str(), v.as_bytes());
    }
    reqwest::Response::from(b.body(Vec::<u8>::new()).unwrap())
}

#[tokio::test]
async fn stream_sends_retry_then_events_with_id_name_and_one_line_json() {
    let server = start(realtime_config()).await;
    let (resp, mut r) = open(&server, "orders", None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    assert_eq!(resp.headers()["x-accel-buffering"], "no");
    let first = r.event().await;
    assert_eq!(first, vec![("retry".to_owned(), "2000".to_owned())]);

    let hub = server.engine.realtime();
    // The stream made the channel: its first event gets the id after its base.
    let base = hub.head("orders");
    for n in 1..=3 {
        hub.publish(
            "orders",
            "NewOrder",
            json!({"orderNumber": n, "note": "multi\nline"}),
            None,
        )
        .unwrap();
    }
    for n in 1..=3u64 {
        let f = r.event().await;
        assert_eq!(field(&f, "id"), Some((base + n).to_string().as_str()));
        assert_eq!(field(&f, "event"), Some("NewOrder"));
        assert_eq!(
            f.iter().filter(|(k, _)| k == "data").count(),
            1,
            "data is one line"
        );
        let data: Value = serde_json::from_str(field(&f, "data").unwrap()).unwrap();
        assert_eq!(data, json!({"orderNumber": n, "note": "multi\nline"}));
    }
    assert!(f_has_no_retry(&mut r, hub).await);
    let metrics = reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("streamcache_realtime_sse_streams 1"),
        "{metrics}"
    );
    server.shutdown.trigger();
}

/// `retry:` is sent once only: a later event carries none.
async fn f_has_no_retry(r: &mut Reader, hub: &streamcache::realtime::Hub) -> bool {
    hub.publish("orders", "NewOrder", json!(4), None).unwrap();
    field(&r.event().await, "retry").is_none()
}

#[tokio::test]
async fn last_event_id_replays_buffered_events() {
    let server = start(realtime_config()).await;
    let hub = server.engine.realtime();
    let ids: Vec<u64> = (1..=5)
        .map(|n| hub.publish("orders", "NewOrder", json!(n), None).unwrap())
        .collect();
    assert_eq!(ids, (ids[0]..ids[0] + 5).collect::<Vec<_>>());
    let (_, mut r) = open(&server, "orders", Some(&ids[1].to_string())).await;
    r.event().await; // retry
    for n in 3..=5 {
        let f = r.event().await;
        assert_eq!(field(&f, "id"), Some(ids[n - 1].to_string().as_str()));
        assert_eq!(field(&f, "data"), Some(n.to_string().as_str()));
    }
    let sixth = hub.publish("orders", "NewOrder", json!(6), None).unwrap();
    assert_eq!(sixth, ids[4] + 1);
    assert_eq!(
        field(&r.event().await, "id"),
        Some(sixth.to_string().as_str())
    );
}

#[tokio::test]
async fn aged_out_or_unreadable_last_event_id_sends_resync_first() {
    let server = start(realtime_config()).await; // replay buffer of 8
    let hub = server.engine.realtime();
    let ids: Vec<u64> = (1..=20)
        .map(|n| hub.publish("orders", "NewOrder", json!(n), None).unwrap())
        .collect();
    let head = ids[19];
    // Aged out of the buffer; below the channel's base (from before a restart); unreadable;
    // beyond u64; ahead of the head.
    for last in [
        ids[2].to_string(),
        "3".to_owned(),
        "not-a-number".to_owned(),
        "99999999999999999999999".to_owned(),
        (head + 979).to_string(),
    ] {
        let (_, mut r) = open(&server, "orders", Some(&last)).await;
        r.event().await; // retry
        let f = r.event().await;
        assert_eq!(field(&f, "event"), Some("resync"), "Last-Event-ID {last}");
        assert_eq!(
            field(&f, "id"),
            Some(head.to_string().as_str()),
            "resync carries the head so the next reconnect resumes"
        );
        let data: Value = serde_json::from_str(field(&f, "data").unwrap()).unwrap();
        assert_eq!(data["head"], json!(head));
    }
}

#[tokio::test]
async fn private_presence_and_bad_names_are_refused() {
    let server = start(realtime_config()).await;
    let client = reqwest::Client::new();
    for (path, status) in [
        ("private-x", 403),
        ("presence-x", 403),
        ("%23server-to-user-u1", 403),
        ("%23other", 400),
        ("a%20b", 400),
    ] {
        let resp = client
            .get(format!("http://{}/realtime/{path}", server.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{path}");
        // Publishing needs the same authorisation as subscribing.
        let resp = client
            .post(format!("http://{}/realtime/{path}", server.addr))
            .json(&json!({"event": "NewOrder", "data": {"a": 1}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "POST {path}");
    }
    // The Pusher protocol's own events cannot be published (a subscriber would act on a fake
    // `member_added`); names that only contain the prefix elsewhere can.
    for (event, status) in [
        ("pusher_internal:member_added", 400),
        ("pusher:error", 400),
        ("NewOrder:pusher:x", 200),
        ("pusher-order", 200),
    ] {
        let resp = client
            .post(format!("http://{}/realtime/orders", server.addr))
            .json(&json!({"event": event, "data": {"user_id": "admin"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{event}");
    }
    let long = "c".repeat(streamcache::realtime::CHANNEL_NAME_CHARS_MAX + 1);
    let resp = client
        .get(format!("http://{}/realtime/{long}", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn publish_helper_reaches_stream_and_checks_limits() {
    let server = start(realtime_config()).await;
    let (_, mut r) = open(&server, "orders", None).await;
    r.event().await;
    let base = server.engine.realtime().head("orders");
    let client = reqwest::Client::new();
    let url = format!("http://{}/realtime/orders", server.addr);
    let resp = client
        .post(&url)
        .json(&json!({"event": "NewOrder", "data": {"a": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"id": base + 1}));
    let f = r.event().await;
    assert_eq!(
        (field(&f, "event"), field(&f, "data")),
        (Some("NewOrder"), Some(r#"{"a":1}"#))
    );

    let max = streamcache::realtime::EVENT_DATA_BYTES_MAX;
    let ok = client
        .post(&url)
        .json(&json!({"event": "E", "data": "x".repeat(max - 2)}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let big = client
        .post(&url)
        .json(&json!({"event": "E", "data": "x".repeat(max - 1)}))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
}

#[tokio::test(start_paused = true)]
async fn idle_stream_gets_keep_alive_comments() {
    let mut config = realtime_config();
    config.sse_keepalive_ms = 15_000;
    let server = start(config).await;
    let (_, mut r) = open(&server, "orders", None).await;
    r.event().await; // retry
    r.timeout = Duration::from_secs(60);
    // Paused time jumps to the keep-alive deadline once everything is idle.
    let f = r.frame().await.unwrap();
    assert_eq!(f, vec![(String::new(), "keepalive".to_owned())]);
}

#[tokio::test]
async fn streams_end_when_the_server_shuts_down() {
    let server = start(realtime_config()).await;
    let (_, mut r) = open(&server, "orders", None).await;
    r.event().await;
    server.shutdown.trigger();
    assert!(
        r.frame().await.is_none(),
        "the stream ends instead of holding shutdown up"
    );
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn recent_query_fills_a_fresh_page_and_last_event_id_wins_over_it() {
    let server = start(realtime_config()).await;
    let hub = server.engine.realtime();
    let ids: Vec<String> = (1..=5)
        .map(|n| {
            let id = hub.publish("orders", "NewOrder", json!(n), None).unwrap();
            id.to_string()
        })
        .collect();
    let (_, mut r) = open(&server, "orders?recent=2", None).await;
    r.event().await; // retry
    assert_eq!(field(&r.event().await, "id"), Some(ids[3].as_str()));
    assert_eq!(field(&r.event().await, "id"), Some(ids[4].as_str()));

    let (_, mut r) = open(&server, "orders?recent=2", Some(&ids[0])).await;
    r.event().await; // retry
    assert_eq!(
        field(&r.event().await, "id"),
        Some(ids[1].as_str()),
        "a reconnect resumes after Last-Event-ID"
    );
}

/// Over the hub's connection limit a stream gets 200, `retry:` with the longer delay and a
/// comment, then ends, so an `EventSource` reconnects later instead of stopping for good (as a
/// non-200 status would); once a connection is free, a stream opens as usual.
#[tokio::test]
async fn a_stream_over_the_connection_limit_ends_with_a_longer_retry() {
    use streamcache::realtime::{CONNECTIONS_MAX, SSE_OVER_CAPACITY_RETRY_MS};

    let server = start(realtime_config()).await;
    let hub = server.engine.realtime();
    let mut held: Vec<_> = (0..CONNECTIONS_MAX)
        .map(|_| hub.try_connect().unwrap())
        .collect();
    let (resp, mut r) = open(&server, "orders", None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let retry = SSE_OVER_CAPACITY_RETRY_MS.to_string();
    assert_eq!(
        r.frame().await.unwrap(),
        vec![
            ("retry".to_owned(), retry),
            (
                String::new(),
                "over capacity: too many open SSE streams and WebSocket connections".to_owned()
            ),
        ]
    );
    assert!(r.frame().await.is_none(), "the stream ends");

    held.pop();
    let (resp, mut r) = open(&server, "orders", None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        r.event().await,
        vec![("retry".to_owned(), "2000".to_owned())]
    );
    hub.publish("orders", "NewOrder", json!(1), None).unwrap();
    assert_eq!(field(&r.event().await, "data"), Some("1"));
    server.shutdown.trigger();
}

/// A stream to a new channel while every one of the hub's channels has subscribers ends the
/// same way as one over the connection limit (200, `retry:`, a comment, the end), where a 503
/// would stop an `EventSource` for good; once a channel frees up, it opens.
#[tokio::test]
async fn a_stream_to_a_new_channel_of_a_full_hub_ends_with_a_longer_retry() {
    use streamcache::realtime::{HUB_CHANNELS_MAX, SSE_OVER_CAPACITY_RETRY_MS};

    let server = start(realtime_config()).await;
    let hub = server.engine.realtime();
    let mut held: Vec<_> = (0..HUB_CHANNELS_MAX)
        .map(|i| hub.subscribe(&format!("busy-{i}"), None).unwrap())
        .collect();
    let (resp, mut r) = open(&server, "orders", None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(
        r.frame().await.unwrap(),
        vec![
            ("retry".to_owned(), SSE_OVER_CAPACITY_RETRY_MS.to_string()),
            (
                String::new(),
                "over capacity: the hub holds as many channels as it can".to_owned()
            ),
        ]
    );
    assert!(r.frame().await.is_none(), "the stream ends");

    held.pop();
    let (resp, mut r) = open(&server, "orders", None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        r.event().await,
        vec![("retry".to_owned(), "2000".to_owned())]
    );
    server.shutdown.trigger();
}

/// Kafka topic streams and change streams count against the same limit as the realtime streams
/// and WebSockets, and past it end the same way; each holds its place until it ends.
#[tokio::test]
async fn topic_and_change_streams_count_against_the_connection_limit() {
    use streamcache::realtime::{CONNECTIONS_MAX, SSE_OVER_CAPACITY_RETRY_MS};

    let server = start(realtime_config()).await;
    let hub = server.engine.realtime();
    let mut held: Vec<_> = (0..CONNECTIONS_MAX)
        .map(|_| hub.try_connect().unwrap())
        .collect();
    server
        .engine
        .log()
        .create_topic("limited", Some(1), &[], false)
        .unwrap();
    let topic = "/kafka/topics/limited/stream?from=earliest";
    let change_stream = "/mongo/watch?db=shop&coll=orders&heartbeatMs=100";
    let over_capacity = vec![
        ("retry".to_owned(), SSE_OVER_CAPACITY_RETRY_MS.to_string()),
        (
            String::new(),
            "over capacity: too many open SSE streams and WebSocket connections".to_owned(),
        ),
    ];
    for path in [topic, change_stream] {
        let (resp, mut r) = open_path(&server, path, None).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(r.frame().await.unwrap(), over_capacity, "{path}");
        assert!(r.frame().await.is_none(), "{path}: the stream ends");
    }

    // With one place free, a topic stream takes it, and a change stream finds none...
    held.pop();
    let (resp, tail) = open_path(&server, topic, None).await;
    assert_eq!(resp.status(), 200);
    let (_, mut refused) = open_path(&server, change_stream, None).await;
    assert_eq!(refused.frame().await.unwrap(), over_capacity);
    // ...until the topic stream ends.
    drop(tail);
    // The server notices the closed connection on its own time: ask until it has.
    let mut opened = None;
    for _ in 0..1000 {
        let (_, mut r) = open_path(&server, change_stream, None).await;
        let first = r.frame().await.unwrap();
        if first != over_capacity {
            opened = Some((first, r));
            break;
        }
        tokio::task::yield_now().await;
    }
    let (first, mut r) = opened.expect("a change stream opens once the topic stream has ended");
    // `retry:` first, as on every SSE stream, then the idle stream's heartbeat.
    let retry_ms = server.engine.config().realtime.sse_retry_ms;
    assert_eq!(first, vec![("retry".to_owned(), retry_ms.to_string())]);
    let beat = r.frame().await.unwrap();
    assert!(
        beat.iter()
            .any(|(k, v)| k.is_empty() && v.starts_with("heartbeat")),
        "{beat:?}"
    );
    server.shutdown.trigger();
}
