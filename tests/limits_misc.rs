//! Capability: input-controlled limits of the transform, realtime and load-generator modules at
//! max and max + 1 — `transform::REGEX_COMPILED_BYTES_MAX` (a `split` separator and a spec key's
//! star pattern), `transform::PAD_WIDTH_MAX` (JOLT's `leftPad`/`rightPad` width ceiling),
//! `realtime::MATCH_REGEX_COMPILED_BYTES_MAX` (a watcher's `$regex`) and
//! `loadgen::RESPONSE_BYTES_MAX` (a produce reply).
//!
//! Method: drive each public entry point — `Spec::parse`/`Spec::apply`, `Watcher::new`/
//! `Watcher::apply`, `loadgen::produce` against a tiny axum stub on 127.0.0.1:0 — with an input
//! exactly at the limit and one unit past it. Compiled regex sizes are not visible, so the
//! patterns grow 32 bytes per step and the step at the limit is found with the `regex` crate
//! under the same size limit; the refused pattern's error names the limit in bytes. The load
//! generator runs on a `ManualClock`; nothing sleeps.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns: a failed unwrap is a failed test"
)]

use serde_json::{Map, Value, json};
use streamcache::clock::ManualClock;
use streamcache::loadgen::{self, ProduceOptions, RESPONSE_BYTES_MAX};
use streamcache::realtime::{self, MATCH_REGEX_COMPILED_BYTES_MAX, Watcher, WatcherConfig};
use streamcache::shutdown::Shutdown;
use streamcache::transform::{self, PAD_WIDTH_MAX, Spec};

mod regex_common;

use regex_common::{REPEATS_AT_1_MIB, big_pattern, repeats_at_max, too_big};

// ---------------------------------------------------------------------------------------------
// transform::REGEX_COMPILED_BYTES_MAX

/// `split`'s separator comes from the input: at the compiled max it splits, one repetition
/// more and the function fails, leaving the target unwritten (as with an invalid pattern).
#[test]
fn split_separator_compiled_at_max_splits_and_one_step_more_fails() {
    let repeats = repeats_at_max(transform::REGEX_COMPILED_BYTES_MAX, REPEATS_AT_1_MIB);
    let spec = Spec::parse(&json!([{
        "operation": "modify-overwrite-beta",
        "spec": { "parts": "=split(@(1,sep),@(1,text))" }
    }]))
    .unwrap();
    let input = |repeats: usize| json!({ "sep": big_pattern(repeats), "text": "1x2" });
    let at_max = spec.apply(&input(repeats)).unwrap();
    assert_eq!(at_max["parts"], json!(["1", "2"]));
    let past = spec.apply(&input(repeats + 1)).unwrap();
    assert_eq!(past, input(repeats + 1), "nothing written");
}

/// A `shift` spec mapping keys that match `b…b*` (`literal` `b`s, then a star) to `out`.
fn star_spec(literal: usize) -> Value {
    let key = format!("{}*", "b".repeat(literal));
    let mut spec = Map::new();
    spec.insert(key, json!("out"));
    json!([{ "operation": "shift", "spec": spec }])
}

/// `b`s in [`star_spec`]'s key whose pattern compiles to just under 1 MiB with regex 1.13;
/// each `b` adds 32 bytes.
const STAR_LITERAL_AT_1_MIB: usize = 32_732;

/// A spec key's star pattern is compiled when the spec is parsed. The key's compiled size is
/// private, so the boundary is found through `Spec::parse` itself: the longest key accepted is
/// one `b` (32 bytes) short of being refused, and the refusal names the limit in bytes — so
/// the accepted key sits within 32 bytes of `REGEX_COMPILED_BYTES_MAX`.
#[test]
fn star_pattern_compiled_at_max_parses_and_one_literal_more_is_refused() {
    let max = transform::REGEX_COMPILED_BYTES_MAX;
    let parses = |literal: usize| Spec::parse(&star_spec(literal)).is_ok();
    let mut literal = STAR_LITERAL_AT_1_MIB;
    while !parses(literal) {
        literal -= 1;
    }
    while parses(literal + 1) {
        literal += 1;
    }

    // At the max: the spec parses and its key matches.
    let spec = Spec::parse(&star_spec(literal)).unwrap();
    let mut doc = Map::new();
    doc.insert(format!("{}XYZ", "b".repeat(literal)), json!(1));
    doc.insert("c".into(), json!(2));
    assert_eq!(spec.apply(&Value::Object(doc)).unwrap(), json!({"out": 1}));

    // One literal more: refused at the key, naming the limit.
    let key = format!("{}*", "b".repeat(literal + 1));
    match Spec::parse(&star_spec(literal + 1)) {
        Err(transform::Error::InvalidSpec { path, reason }) => {
            assert_eq!(path, format!("/0/spec/{key}"));
            assert_eq!(
                reason,
                format!("star pattern is too complex: {}", too_big(max))
            );
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// JOLT leftPad / rightPad width

#[test]
fn pad_width_at_max_pads_and_one_more_fails() {
    let spec = Spec::parse(&json!([{
        "operation": "modify-overwrite-beta",
        "spec": {
            "left": "=leftPad(@(1,s),@(1,width),'.')",
            "right": "=rightPad(@(1,s),@(1,width),'.')"
        }
    }]))
    .unwrap();
    let input = |width: usize| json!({ "s": "ab", "width": width });

    let at_max = spec.apply(&input(PAD_WIDTH_MAX)).unwrap();
    let dots = ".".repeat(PAD_WIDTH_MAX - 2);
    assert_eq!(at_max["left"], json!(format!("{dots}ab")));
    assert_eq!(at_max["right"], json!(format!("ab{dots}")));

    // Past the max both functions fail, leaving their targets unwritten.
    let past = spec.apply(&input(PAD_WIDTH_MAX + 1)).unwrap();
    assert_eq!(past, input(PAD_WIDTH_MAX + 1));
}

// ---------------------------------------------------------------------------------------------
// realtime::MATCH_REGEX_COMPILED_BYTES_MAX

fn regex_watcher(pattern: &str) -> WatcherConfig {
    WatcherConfig {
        filter: Some(json!({ "fullDocument.s": { "$regex": pattern } })),
        ..WatcherConfig::default_orders()
    }
}

fn insert_of(doc: &Value) -> Value {
    json!({
        "_id": {"_data": "0001"},
        "operationType": "insert",
        "ns": {"db": "shop", "coll": "orders"},
        "documentKey": {"_id": doc["_id"]},
        "fullDocument": doc,
    })
}

#[test]
fn watcher_regex_compiled_at_max_filters_and_one_step_more_is_refused() {
    let repeats = repeats_at_max(MATCH_REGEX_COMPILED_BYTES_MAX, REPEATS_AT_1_MIB);

    let watcher = Watcher::new(0, &regex_watcher(&big_pattern(repeats))).unwrap();
    let hit = json!({"_id": 1, "s": "x"});
    assert_eq!(
        watcher.apply(&insert_of(&hit)),
        Some(("NewOrder".to_owned(), hit))
    );
    assert_eq!(
        watcher.apply(&insert_of(&json!({"_id": 2, "s": "y"}))),
        None
    );

    match Watcher::new(4, &regex_watcher(&big_pattern(repeats + 1))) {
        Err(realtime::Error::Watcher { index, reason }) => {
            assert_eq!(index, 4);
            assert_eq!(
                reason,
                format!("$regex: {}", too_big(MATCH_REGEX_COMPILED_BYTES_MAX))
            );
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// loadgen::RESPONSE_BYTES_MAX

/// Starts a produce stub that acknowledges one record with a reply padded to exactly
/// `reply_bytes`; returns its base URL and the shutdown that stops it.
async fn padded_reply_stub(reply_bytes: usize) -> (String, Shutdown) {
    let reply = r#"{"offsets":[{"partition":0,"offset":0,"error_code":null,"error":null}]}"#;
    let body = format!("{reply}{}", " ".repeat(reply_bytes - reply.len()));
    assert_eq!(body.len(), reply_bytes);
    let app = axum::Router::new().route(
        "/kafka/topics/{topic}",
        axum::routing::post(move || {
            let body = body.clone();
            async move { ([("content-type", "application/vnd.kafka.v2+json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = Shutdown::new();
    let mut signal = shutdown.signal();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { signal.wait().await })
            .await
            .unwrap();
    });
    (url, shutdown)
}

/// Produces one order against a stub whose reply is `reply_bytes` long.
async fn produce_one(reply_bytes: usize) -> loadgen::Summary {
    let (url, server) = padded_reply_stub(reply_bytes).await;
    let options = ProduceOptions {
        url,
        count: 1,
        batch: 1,
        progress: false,
        ..ProduceOptions::default()
    };
    // Keep the trigger alive: a dropped trigger counts as a stop.
    let stop = Shutdown::new();
    let summary = loadgen::produce(&options, ManualClock::shared(0), stop.signal())
        .await
        .unwrap();
    server.trigger();
    summary
}

#[tokio::test]
async fn a_produce_reply_of_response_bytes_max_is_read() {
    let summary = produce_one(RESPONSE_BYTES_MAX).await;
    assert_eq!((summary.acknowledged, summary.failed), (1, 0), "{summary}");
    assert!(summary.is_clean(), "{summary}");
}

#[tokio::test]
async fn a_produce_reply_one_byte_past_response_bytes_max_fails_the_request() {
    let summary = produce_one(RESPONSE_BYTES_MAX + 1).await;
    assert_eq!((summary.acknowledged, summary.failed), (0, 1), "{summary}");
    assert_eq!(
        summary.last_error.as_deref(),
        Some("reading the response failed: length limit exceeded")
    );
}
