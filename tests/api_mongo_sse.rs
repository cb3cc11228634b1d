//! Capability: change streams over SSE at `GET /mongo/watch` — MongoDB-shaped events whose SSE
//! `id:` is the resume token, resume with `Last-Event-ID`, idle heartbeats carrying the
//! post-batch token, history lost (286, also for a token after the last event) as an `error`
//! event that ends the stream, and the stream's own `pipeline`.
//!
//! Method: a real server on 127.0.0.1:0 and a streaming reqwest client that parses the SSE
//! wire format; writes go through the engine. Every wait is bounded by a timeout on the next
//! SSE frame, never a sleep.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use std::sync::Arc;
use std::time::Duration;

use bson::doc;
use futures::StreamExt;
use serde_json::Value;
use streamcache::config::Config;
use streamcache::engine::Engine;
use streamcache::history::HistoryConfig;
use streamcache::shutdown::Shutdown;

struct Server {
    engine: Arc<Engine>,
    base: String,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

async fn start(history: HistoryConfig) -> Server {
    let config = Config {
        ephemeral: true,
        http: "127.0.0.1:0".parse().unwrap(),
        resp: "127.0.0.1:0".parse().unwrap(),
        history,
        ..Config::default()
    };
    let engine = Arc::new(Engine::open(config).unwrap());
    let bound = streamcache::server::bind(&engine).await.unwrap();
    let base = format!("http://{}", bound.http_addr());
    let shutdown = Shutdown::new();
    let trigger = shutdown.clone();
    let e = engine.clone();
    let task = tokio::spawn(async move {
        let _ = streamcache::server::run(e, bound, trigger).await;
    });
    Server {
        engine,
        base,
        shutdown,
        task,
    }
}

impl Server {
    async fn stop(self) {
        self.shutdown.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// One parsed SSE frame.
#[derive(Debug, Default, Clone)]
struct Frame {
    id: Option<String>,
    event: Option<String>,
    data: String,
    comment: Option<String>,
    retry: Option<String>,
}

struct SseClient {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl SseClient {
    async fn open(url: &str, last_event_id: Option<&str>) -> Self {
        let mut req = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        assert_eq!(resp.headers()["x-accel-buffering"], "no");
        Self {
            body: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next frame, or `None` when the stream ended.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(pos) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..pos + 2).collect();
                let mut f = Frame::default();
                for line in raw.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        f.comment = Some(c.trim().to_owned());
                    } else if let Some((k, v)) = line.split_once(':') {
                        let v = v.strip_prefix(' ').unwrap_or(v);
                        match k {
                            "id" => f.id = Some(v.to_owned()),
                            "event" => f.event = Some(v.to_owned()),
                            "data" => f.data.push_str(v),
                            "retry" => f.retry = Some(v.to_owned()),
                            _ => {}
                        }
                    }
                }
                return Some(f);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an SSE frame within 10 s");
            match chunk {
                Some(Ok(b)) => self.buf.push_str(&String::from_utf8_lossy(&b)),
                _ => return None,
            }
        }
    }

    async fn next_event(&mut self) -> (String, Value) {
        loop {
            let f = self.next().await.expect("stream open");
            if f.data.is_empty() {
                continue;
            }
            return (f.id.unwrap(), serde_json::from_str(&f.data).unwrap());
        }
    }
}

async fn insert(engine: &Arc<Engine>, id: i32) {
    let h = engine.history().clone();
    tokio::task::spawn_blocking(move || {
        h.insert_one("shop", "orders", doc! {"_id": id, "total": id * 10})
            .unwrap()
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn events_resume_with_last_event_id() {
    let server = start(HistoryConfig::default()).await;
    let url = format!(
        "{}/mongo/watch?db=shop&coll=orders&fullDocument=updateLookup",
        server.base
    );
    let mut client = SseClient::open(&url, None).await;
    insert(&server.engine, 1).await;
    insert(&server.engine, 2).await;
    let (id1, ev1) = client.next_event().await;
    assert_eq!(ev1["operationType"], "insert");
    assert_eq!(ev1["_id"]["_data"], Value::String(id1.clone()));
    assert_eq!(
        ev1["ns"],
        serde_json::json!({"db": "shop", "coll": "orders"})
    );
    assert_eq!(
        ev1["fullDocument"],
        serde_json::json!({"_id": 1, "total": 10})
    );
    assert_eq!(ev1["documentKey"], serde_json::json!({"_id": 1}));
    assert!(ev1["clusterTime"]["$timestamp"].is_object());
    let (id2, _) = client.next_event().await;
    assert!(id1 < id2);
    drop(client);
    insert(&server.engine, 3).await;
    // Reconnect as EventSource does: Last-Event-ID resumes right after event 1.
    let mut again = SseClient::open(&url, Some(&id1)).await;
    let (rid2, ev) = again.next_event().await;
    assert_eq!((rid2, ev["documentKey"]["_id"].as_i64()), (id2, Some(2)));
    let (_, ev) = again.next_event().await;
    assert_eq!(ev["documentKey"]["_id"], 3);
    server.stop().await;
}

#[tokio::test]
async fn idle_streams_send_heartbeats_with_the_post_batch_token() {
    let server = start(HistoryConfig::default()).await;
    insert(&server.engine, 1).await;
    // A stream on another collection scans the shop insert but does not deliver it. The oplog:
    // the collection's create (1), insert 1 (2), insert 2 (3).
    let url = format!(
        "{}/mongo/watch?db=shop&coll=other&heartbeatMs=20",
        server.base
    );
    let mut client = SseClient::open(&url, None).await;
    insert(&server.engine, 2).await;
    let beat = loop {
        let f = client.next().await.unwrap();
        if f.comment
            .as_deref()
            .is_some_and(|c| c.starts_with("heartbeat"))
            && f.id
                .as_deref()
                .is_some_and(|id| id.ends_with("0000000000000300"))
        {
            break f;
        }
        assert!(f.data.is_empty(), "no events for another collection: {f:?}");
    };
    assert_eq!(
        beat.comment.unwrap(),
        format!("heartbeat {}", beat.id.clone().unwrap())
    );
    // heartbeatMs within WATCH_HEARTBEAT_MS_MIN..=WATCH_HEARTBEAT_MS_MAX opens a stream; one
    // past either end is refused.
    use streamcache::api::{WATCH_HEARTBEAT_MS_MAX, WATCH_HEARTBEAT_MS_MIN};
    for (ms, status) in [
        (WATCH_HEARTBEAT_MS_MIN - 1, 400),
        (WATCH_HEARTBEAT_MS_MIN, 200),
        (WATCH_HEARTBEAT_MS_MAX, 200),
        (WATCH_HEARTBEAT_MS_MAX + 1, 400),
    ] {
        let resp = reqwest::get(format!("{}/mongo/watch?heartbeatMs={ms}", server.base))
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "heartbeatMs={ms}");
    }
    server.stop().await;
}

/// Reads the one `error` event of a stream that cannot resume (286 with the
/// `NonResumableChangeStreamError` label) and the end after it; returns its `errmsg`.
async fn history_lost(client: &mut SseClient) -> String {
    // Every stream starts with `retry:`, the reconnection delay.
    let f = client.next().await.unwrap();
    assert!(f.retry.is_some() && f.data.is_empty(), "{f:?}");
    let f = client.next().await.unwrap();
    assert_eq!(f.event.as_deref(), Some("error"), "{f:?}");
    let body: Value = serde_json::from_str(&f.data).unwrap();
    assert_eq!(body["code"], 286);
    assert_eq!(body["codeName"], "ChangeStreamHistoryLost");
    assert_eq!(
        body["errorLabels"],
        serde_json::json!(["NonResumableChangeStreamError"])
    );
    assert!(
        client.next().await.is_none(),
        "the stream ends after the error"
    );
    body["errmsg"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn history_lost_is_an_error_event_then_the_end() {
    let server = start(HistoryConfig {
        oplog_bytes_max: 1,
        ..HistoryConfig::default()
    })
    .await;
    for i in 0..5 {
        insert(&server.engine, i).await;
    }
    let url = format!(
        "{}/mongo/watch?db=shop&resumeAfter=01{:016X}00",
        server.base, 1u64
    );
    let mut client = SseClient::open(&url, None).await;
    assert_eq!(
        history_lost(&mut client).await,
        "Resume of change stream was not possible, as the resume point may no longer be in the oplog."
    );
    server.stop().await;
}

/// After an ephemeral restart the oplog starts over, and a browser reconnects with the
/// `Last-Event-ID` of the old one: that token names an event after the last one and is
/// refused with an `error` event, instead of silently skipping the events up to it.
#[tokio::test]
async fn a_last_event_id_after_the_last_event_is_an_error_event() {
    let server = start(HistoryConfig::default()).await;
    // The oplog: the collection's create (1), then the inserts (2 to 4).
    for i in 0..3 {
        insert(&server.engine, i).await;
    }
    let url = format!("{}/mongo/watch?db=shop&coll=orders", server.base);
    let ahead = format!("01{:016X}00", 6u64);
    for (url, last_event_id) in [
        (url.clone(), Some(ahead.as_str())),
        (format!("{url}&resumeAfter={ahead}"), None),
        (format!("{url}&startAfter=01FFFFFFFFFFFFFFFF00"), None),
    ] {
        let mut client = SseClient::open(&url, last_event_id).await;
        let errmsg = history_lost(&mut client).await;
        assert!(
            errmsg.ends_with("after the last event 4"),
            "{url}: {errmsg}"
        );
    }
    // The last event's own token still resumes, and sees the next insert.
    let last = format!("01{:016X}00", 4u64);
    let mut client = SseClient::open(&url, Some(&last)).await;
    insert(&server.engine, 3).await;
    let (id, event) = client.next_event().await;
    assert_eq!(id, format!("01{:016X}00", 5u64));
    assert_eq!(event["documentKey"]["_id"], 3);
    server.stop().await;
}

#[tokio::test]
async fn invalidate_ends_the_stream_and_last_event_id_starts_after_it() {
    let server = start(HistoryConfig::default()).await;
    let url = format!("{}/mongo/watch?db=shop&coll=orders", server.base);
    let mut client = SseClient::open(&url, None).await;
    insert(&server.engine, 1).await;
    let h = server.engine.history().clone();
    tokio::task::spawn_blocking(move || h.drop_collection("shop", "orders").unwrap())
        .await
        .unwrap();
    let (_, ev) = client.next_event().await;
    assert_eq!(ev["operationType"], "insert");
    let (_, ev) = client.next_event().await;
    assert_eq!(ev["operationType"], "drop");
    let (inv_id, ev) = client.next_event().await;
    assert_eq!(ev["operationType"], "invalidate");
    assert!(
        client.next().await.is_none(),
        "the stream ends after invalidate"
    );
    insert(&server.engine, 2).await;
    let mut again = SseClient::open(&url, Some(&inv_id)).await;
    let (_, ev) = again.next_event().await;
    assert_eq!(
        (
            ev["operationType"].as_str(),
            ev["documentKey"]["_id"].as_i64()
        ),
        (Some("insert"), Some(2))
    );
    server.stop().await;
}

/// A stream on one collection that resumes before more than one read of other collections'
/// entries (`OPLOG_READ_BATCH_MAX`) reads on past them to its own event, with no commit after
/// it to wake the stream.
#[tokio::test]
async fn a_stream_reads_past_a_long_run_of_other_collections_entries() {
    let server = start(HistoryConfig::default()).await;
    let url = format!("{}/mongo/watch?db=shop&coll=orders", server.base);
    let mut client = SseClient::open(&url, None).await;
    insert(&server.engine, 1).await;
    let (first, _) = client.next_event().await;
    drop(client);
    let h = server.engine.history().clone();
    let others = streamcache::history::OPLOG_READ_BATCH_MAX + 10;
    tokio::task::spawn_blocking(move || {
        let docs = (0..others)
            .map(|i| doc! {"_id": i as i64})
            .collect::<Vec<_>>();
        for chunk in docs.chunks(500) {
            h.insert_many("shop", "other", chunk.to_vec()).unwrap();
        }
        h.insert_one("shop", "orders", doc! {"_id": 2, "total": 20})
            .unwrap();
    })
    .await
    .unwrap();
    let mut again = SseClient::open(&url, Some(&first)).await;
    let (_, ev) = again.next_event().await;
    assert_eq!(ev["documentKey"]["_id"], 2);
    server.stop().await;
}

/// Commits to other collections that keep waking a stream do not hold its heartbeat back: it
/// comes `heartbeatMs` after the last frame, as on an idle store.
#[tokio::test]
async fn heartbeats_continue_while_other_collections_take_writes() {
    let server = start(HistoryConfig::default()).await;
    let url = format!(
        "{}/mongo/watch?db=shop&coll=orders&heartbeatMs=200",
        server.base
    );
    let mut client = SseClient::open(&url, None).await;
    let h = server.engine.history().clone();
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let writing = writing.clone();
        tokio::task::spawn_blocking(move || {
            let mut i = 0_i64;
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                h.insert_one("shop", "other", doc! {"_id": i}).unwrap();
                i += 1;
            }
            i
        })
    };
    let beat = loop {
        let f = client.next().await.expect("stream open");
        if f.comment
            .as_deref()
            .is_some_and(|c| c.starts_with("heartbeat"))
        {
            break f;
        }
        assert!(f.data.is_empty(), "no events for another collection: {f:?}");
    };
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(written > 0, "the other collection took writes meanwhile");
    assert!(beat.id.is_some());
    server.stop().await;
}

/// `pipeline` is the stream's stages as JSON: they shape each event; when its `$match` drops
/// the invalidate, the stream still ends with the invalidate's token as the last `id:` (an
/// `: end` comment), so a reconnect with `Last-Event-ID` starts after it. A stage that may
/// not run in a change stream is an `error` event (20); JSON that is not an array of objects
/// is a 400.
#[tokio::test]
async fn a_pipeline_shapes_the_events_and_a_dropped_invalidate_still_moves_the_id() {
    let server = start(HistoryConfig::default()).await;
    let url = |pipeline: &str| {
        reqwest::Url::parse_with_params(
            &format!("{}/mongo/watch", server.base),
            &[("db", "shop"), ("coll", "orders"), ("pipeline", pipeline)],
        )
        .unwrap()
        .to_string()
    };
    let inserts = url(
        r#"[{"$match": {"operationType": "insert"}}, {"$project": {"documentKey": 1, "total": "$fullDocument.total"}}]"#,
    );
    let mut client = SseClient::open(&inserts, None).await;
    insert(&server.engine, 1).await;
    let h = server.engine.history().clone();
    tokio::task::spawn_blocking(move || h.drop_collection("shop", "orders").unwrap())
        .await
        .unwrap();
    let (id, ev) = client.next_event().await;
    assert_eq!(
        ev,
        serde_json::json!({"_id": {"_data": id}, "documentKey": {"_id": 1}, "total": 10})
    );
    let end = loop {
        let f = client
            .next()
            .await
            .expect("an end frame before the stream closes");
        assert!(
            f.data.is_empty(),
            "neither the drop nor the invalidate: {f:?}"
        );
        if f.comment.as_deref().is_some_and(|c| c.starts_with("end ")) {
            break f;
        }
    };
    let end_id = end.id.unwrap();
    assert!(
        streamcache::history::is_invalidate_token(&end_id),
        "{end_id}"
    );
    assert_eq!(end.comment.unwrap(), format!("end {end_id}"));
    assert!(client.next().await.is_none(), "the stream ends");
    insert(&server.engine, 2).await;
    let mut again = SseClient::open(&inserts, Some(&end_id)).await;
    let (_, ev) = again.next_event().await;
    assert_eq!(ev["documentKey"]["_id"], 2);
    drop(again);

    let mut refused = SseClient::open(&url(r#"[{"$group": {"_id": 1}}]"#), None).await;
    let f = loop {
        let f = refused.next().await.unwrap();
        if f.event.is_some() {
            break f;
        }
    };
    assert_eq!(f.event.as_deref(), Some("error"));
    let body: Value = serde_json::from_str(&f.data).unwrap();
    assert_eq!(
        (body["code"].as_i64(), body["errmsg"].as_str()),
        (
            Some(20),
            Some("$group is not permitted in a $changeStream pipeline")
        )
    );
    for bad in ["[{", r#"{"$match": {}}"#, "[1]"] {
        let resp = reqwest::get(url(bad)).await.unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
    server.stop().await;
}

#[tokio::test]
async fn show_expanded_events_adds_the_commands_and_the_collection_uuid_of_list_collections() {
    let server = start(HistoryConfig::default()).await;
    let url = format!(
        "{}/mongo/watch?db=shop&showExpandedEvents=true",
        server.base
    );
    let mut client = SseClient::open(&url, None).await;
    insert(&server.engine, 1).await;
    let (_, create) = client.next_event().await;
    let (_, inserted) = client.next_event().await;
    assert_eq!(create["operationType"], "create");
    assert_eq!(
        create["operationDescription"],
        serde_json::json!({"idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}})
    );
    assert_eq!(inserted["operationType"], "insert");
    let listed: Value = reqwest::Client::new()
        .post(format!("{}/mongo/action/listCollections", server.base))
        .json(
            &serde_json::json!({"dataSource": "local", "database": "shop", "collection": "orders"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The Data API's JSON writes binary data as `{Subtype, Data}`; the stream's relaxed
    // Extended JSON as `{$binary: {base64, subType}}`: the same 16 bytes.
    let info = &listed["collections"][0]["info"];
    assert_eq!(info["readOnly"], false);
    assert_eq!(info["uuid"]["Subtype"], 4);
    let uuid = &create["collectionUUID"]["$binary"];
    assert_eq!(uuid["subType"], "04");
    assert_eq!(uuid["base64"], info["uuid"]["Data"]);
    assert_eq!(inserted["collectionUUID"], create["collectionUUID"]);

    let plain = reqwest::get(format!(
        "{}/mongo/watch?db=shop&showExpandedEvents=yes",
        server.base
    ))
    .await
    .unwrap();
    assert_eq!(plain.status(), 400);
    let body: Value = plain.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("showExpandedEvents must be true or false"),
        "{body}"
    );
    server.stop().await;
}

/// A NaN in an event is `{"$numberDouble": "NaN"}` whatever its sign bit (x86 makes
/// `inf - inf` a NaN with it set), the one spelling Extended JSON parsers take.
#[tokio::test]
async fn a_nan_with_its_sign_bit_set_is_written_nan() {
    let server = start(HistoryConfig::default()).await;
    let url = format!("{}/mongo/watch?db=shop&coll=orders", server.base);
    let mut client = SseClient::open(&url, None).await;
    let h = server.engine.history().clone();
    let signed_nan = f64::from_bits(0xFFF8_0000_0000_0000);
    assert!(signed_nan.is_nan() && signed_nan.is_sign_negative());
    tokio::task::spawn_blocking(move || {
        h.insert_one("shop", "orders", doc! {"_id": 1, "x": [signed_nan]})
            .unwrap()
    })
    .await
    .unwrap();
    let (_, ev) = client.next_event().await;
    assert_eq!(
        ev["fullDocument"]["x"],
        serde_json::json!([{"$numberDouble": "NaN"}]),
        "{ev}"
    );
    server.stop().await;
}
