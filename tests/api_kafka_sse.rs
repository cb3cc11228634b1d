//! Capability: the SSE tail `GET /kafka/topics/{t}/stream` — one event per record with
//! `id: partition:offset`, `from=earliest|latest|OFFSET`, waking on append without polling, and
//! resuming right after `Last-Event-ID` on reconnect.
//!
//! Method: a real server on 127.0.0.1:0 in-process and a reqwest client reading the event
//! stream; waits are bounded by timeouts, never sleeps.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::Value;
use streamcache::config::Config;
use streamcache::engine::Engine;
use streamcache::log::{Record, Routing};
use streamcache::shutdown::Shutdown;

struct Server {
    engine: Arc<Engine>,
    base: String,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start() -> Server {
    start_with(Config::default().shutdown_drain_ms).await
}

/// A server whose shutdown drains in-flight requests for at most `shutdown_drain_ms`.
async fn start_with(shutdown_drain_ms: u64) -> Server {
    let config = Config {
        ephemeral: true,
        http: "127.0.0.1:0".parse().unwrap(),
        resp: "127.0.0.1:0".parse().unwrap(),
        shutdown_drain_ms,
        ..Config::default()
    };
    let engine = Arc::new(Engine::open(config).unwrap());
    let bound = streamcache::server::bind(&engine).await.unwrap();
    let base = format!("http://{}/kafka", bound.http_addr());
    let shutdown = Shutdown::new();
    let task = tokio::spawn(streamcache::server::run(
        engine.clone(),
        bound,
        shutdown.clone(),
    ));
    Server {
        engine,
        base,
        shutdown,
        task,
    }
}

fn append(engine: &Engine, values: &[&str]) {
    let records = values
        .iter()
        .map(|v| Record {
            value: Some((*v).to_owned().into()),
            ..Record::default()
        })
        .collect();
    engine
        .log()
        .append("t", Routing::Partition(0), records)
        .unwrap();
}

/// Reads SSE events (id, data) until `n` have arrived.
struct Events {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl Events {
    async fn open(url: &str, last_event_id: Option<&str>) -> (reqwest::StatusCode, Self) {
        let mut req = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (
            status,
            Self {
                stream: resp.bytes_stream().boxed(),
                buf: String::new(),
            },
        )
    }

    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut id = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(v) = line
                        .strip_prefix("id: ")
                        .or_else(|| line.strip_prefix("id:"))
                    {
                        id = Some(v.to_owned());
                    }
                    if let Some(v) = line
                        .strip_prefix("data: ")
                        .or_else(|| line.strip_prefix("data:"))
                    {
                        data = Some(serde_json::from_str(v).unwrap());
                    }
                }
                if let (Some(id), Some(data)) = (id, data) {
                    return (id, data);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.stream.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_point_outside_the_partition_is_announced_by_a_resync_event() {
    let s = start().await;
    s.engine
        .log()
        .create_topic("t", Some(1), &[], false)
        .unwrap();
    append(&s.engine, &["a", "b", "c"]);
    let url = format!("{}/topics/t/stream", s.base);
    // Offset 500 was never in this partition (a recreated topic, say): the tail goes on from
    // the end and says so, with an id that resumes there.
    let resp = reqwest::Client::new()
        .get(&url)
        .header("Last-Event-ID", "0:500")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-accel-buffering"], "no");
    let mut events = Events {
        stream: resp.bytes_stream().boxed(),
        buf: String::new(),
    };
    let (id, data) = events.next().await;
    assert_eq!(id, "0:2");
    assert_eq!(
        (data["requested"].as_u64(), data["next"].as_u64()),
        (Some(501), Some(3)),
        "{data}"
    );
    append(&s.engine, &["d"]);
    let (id, data) = events.next().await;
    assert_eq!((id.as_str(), data["value"].as_str()), ("0:3", Some("d")));
    s.shutdown.trigger();
    drop(events);
    let _ = tokio::time::timeout(Duration::from_secs(30), s.task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_starts_with_retry() {
    let s = start().await;
    s.engine
        .log()
        .create_topic("t", Some(1), &[], false)
        .unwrap();
    let resp = reqwest::get(format!("{}/topics/t/stream", s.base))
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let retry_ms = Config::default().realtime.sse_retry_ms;
    assert!(
        std::str::from_utf8(&first)
            .unwrap()
            .starts_with(&format!("retry: {retry_ms}\n")),
        "{first:?}"
    );
    s.shutdown.trigger();
    drop(stream);
    let _ = tokio::time::timeout(Duration::from_secs(30), s.task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_from_earliest_wakes_on_append_and_resumes_after_last_event_id() {
    let s = start().await;
    s.engine
        .log()
        .create_topic("t", Some(2), &[], false)
        .unwrap();
    append(&s.engine, &["a", "b", "c"]);
    let url = format!("{}/topics/t/stream?partition=0&from=earliest", s.base);
    let (status, mut events) = Events::open(&url, None).await;
    assert_eq!(status, 200);
    for (i, v) in ["a", "b", "c"].iter().enumerate() {
        let (id, data) = events.next().await;
        assert_eq!(id, format!("0:{i}"));
        assert_eq!(data["value"], *v);
        assert_eq!(data["offset"], i);
        assert_eq!(data["topic"], "t");
    }
    append(&s.engine, &["d"]);
    let (id, data) = events.next().await;
    assert_eq!((id.as_str(), data["value"].as_str()), ("0:3", Some("d")));
    drop(events);

    let (_, mut resumed) = Events::open(&url, Some("0:1")).await;
    let (id, data) = resumed.next().await;
    assert_eq!(
        (id.as_str(), data["value"].as_str()),
        ("0:2", Some("c")),
        "resumes right after Last-Event-ID"
    );

    let (_, mut latest) =
        Events::open(&format!("{}/topics/t/stream?partition=0", s.base), None).await;
    append(&s.engine, &["e"]);
    let (id, _) = latest.next().await;
    assert_eq!(id, "0:4", "from=latest skips what is already there");

    let (_, mut at) = Events::open(
        &format!("{}/topics/t/stream?partition=0&from=3", s.base),
        None,
    )
    .await;
    assert_eq!(at.next().await.0, "0:3");

    s.shutdown.trigger();
    drop((resumed, latest, at));
    let _ = tokio::time::timeout(Duration::from_secs(30), s.task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_rest_errors() {
    let s = start().await;
    s.engine
        .log()
        .create_topic("t", Some(1), &[], false)
        .unwrap();
    let client = reqwest::Client::new();
    let check = |status: reqwest::StatusCode, body: &Value, want: u16, code: u64| {
        assert_eq!(
            (status.as_u16(), body["error_code"].as_u64()),
            (want, Some(code)),
            "{body}"
        );
    };
    for (path, want, code) in [
        ("/topics/none/stream", 404, 40401),
        ("/topics/t/stream?partition=5", 404, 40402),
        ("/topics/t/stream?from=9", 400, 40002),
        ("/topics/t/stream?from=soon", 400, 40002),
    ] {
        let resp = client
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        check(status, &body, want, code);
    }
    s.shutdown.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_tail_ends_when_the_server_shuts_down() {
    // A drain far longer than the bound below: ending promptly must come from the stream.
    let Server {
        engine,
        base,
        shutdown,
        task,
    } = start_with(60_000).await;
    engine.log().create_topic("t", Some(1), &[], false).unwrap();
    let (status, mut events) =
        Events::open(&format!("{base}/topics/t/stream?from=earliest"), None).await;
    assert_eq!(status, 200);
    append(&engine, &["a"]);
    assert_eq!(events.next().await.0, "0:0", "the tail is live");
    shutdown.trigger();
    let end = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = events.stream.next().await {
            chunk.unwrap();
        }
    })
    .await;
    assert!(
        end.is_ok(),
        "the stream ends at shutdown, not after the drain timeout"
    );
    let served = tokio::time::timeout(Duration::from_secs(20), task).await;
    assert!(
        matches!(served, Ok(Ok(Ok(())))),
        "the server stops without waiting out its 60 s drain: {served:?}"
    );
}
