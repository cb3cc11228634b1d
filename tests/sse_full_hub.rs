//! Capability: `/realtime/{channel}` while the hub holds as many channels as it can, every one
//! with a subscriber: a publish to a channel the hub does not hold is accepted and kept nowhere
//! (`{"id": 0}`), and a stream that later resumes on that channel with `Last-Event-ID` is told
//! to resync, as the module documents.
//!
//! Method: requests through the router with no socket; the hub is filled in-process.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns unwrap and panic on failure"
)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use streamcache::config::Config;
use streamcache::engine::Engine;
use streamcache::realtime::{EVENT_ID_NOT_KEPT, HUB_CHANNELS_MAX, SSE_OVER_CAPACITY_RETRY_MS};
use tower::ServiceExt as _;

fn engine() -> Arc<Engine> {
    let config = Config {
        ephemeral: true,
        ..Config::default()
    };
    Arc::new(Engine::open(config).unwrap())
}

async fn publish(app: &Router, channel: &str) -> (StatusCode, Value) {
    let req = Request::post(format!("/realtime/{channel}"))
        .header("content-type", "application/json")
        .body(Body::from(json!({"event": "E", "data": 1}).to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// The first body chunk of `GET /realtime/{channel}` with `Last-Event-ID`. (Streams end when
/// `app`, which holds their shutdown trigger, is dropped.)
async fn first_chunk(app: &Router, channel: &str, last_event_id: u64) -> String {
    let req = Request::get(format!("/realtime/{channel}"))
        .header("last-event-id", last_event_id.to_string())
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let frame = resp.into_body().frame().await.unwrap().unwrap();
    String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
}

#[tokio::test]
async fn a_full_hub_accepts_a_publish_it_cannot_keep_and_a_later_resume_resyncs() {
    let engine = engine();
    let app = streamcache::api::router(engine.clone());
    let hub = engine.realtime();
    let mut subs: Vec<_> = (0..HUB_CHANNELS_MAX)
        .map(|i| hub.subscribe(&format!("busy-{i}"), None).unwrap())
        .collect();

    let (status, body) = publish(&app, "late").await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"id": EVENT_ID_NOT_KEPT}))
    );
    assert_eq!(hub.head("late"), 0);
    // A channel the hub holds publishes as before.
    let busy_base = hub.head("busy-0");
    assert_eq!(
        publish(&app, "busy-0").await.1,
        json!({"id": busy_base + 1})
    );

    // No room for a stream's channel: the stream ends with the longer retry.
    let chunk = first_chunk(&app, "late", 1).await;
    assert!(
        chunk.starts_with(&format!("retry: {SSE_OVER_CAPACITY_RETRY_MS}\n")),
        "{chunk}"
    );

    // Room again: the id the stream resumes after is not in the channel made now (below its
    // base), so it is told to resync, and carries the new head to resume from.
    subs.pop();
    let chunk = first_chunk(&app, "late", 1).await;
    let head = hub.head("late");
    assert!(head > 1, "{head}");
    assert!(
        chunk.starts_with(&format!("retry: 2000\n\nid: {head}\nevent: resync\ndata: ")),
        "{chunk}"
    );
    assert!(
        chunk.contains(r#""last_event_id":1"#) && chunk.contains(&format!(r#""head":{head}"#)),
        "{chunk}"
    );
}
