//! Capability: HTTP answers while the engine starts (the cache rebuild from the log may take a
//! while): `/healthz` 200, `/readyz` 503 `starting`, `/metrics`, and 503 `starting` with
//! `Retry-After` for every other route, until the server opens them all.
//!
//! Method: a real server on 127.0.0.1:0 in-process over an engine that is opened but not yet
//! started, and a reqwest client; then the engine starts and the same requests are served.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::sync::Arc;

use serde_json::{Value, json};
use streamcache::config::Config;
use streamcache::engine::Engine;
use streamcache::shutdown::Shutdown;

/// Status, `Retry-After` and JSON body of `GET base + path`.
async fn get(base: &str, path: &str) -> (u16, Option<String>, Value) {
    let resp = reqwest::get(format!("{base}{path}")).await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.text().await.unwrap();
    (
        status,
        retry,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_while_the_engine_starts_and_serves_every_route_once_open() {
    let config = Config {
        ephemeral: true,
        http: "127.0.0.1:0".parse().unwrap(),
        resp: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    let engine = Arc::new(Engine::open(config).unwrap());
    let bound = streamcache::server::bind(&engine).await.unwrap();
    let base = format!("http://{}", bound.http_addr());
    let shutdown = Shutdown::new();
    let serving =
        streamcache::server::serve_http_while_starting(engine.clone(), bound, shutdown.clone());

    // Not started: liveness yes, readiness no, data routes refused with a retry hint.
    assert_eq!(get(&base, "/healthz").await.0, 200);
    let (status, _, body) = get(&base, "/readyz").await;
    assert_eq!((status, body), (503, json!({"status": "starting"})));
    assert_eq!(get(&base, "/metrics").await.0, 200);
    for path in ["/kafka/topics", "/pipeline/flows", "/", "/no/such/route"] {
        let (status, retry, body) = get(&base, path).await;
        assert_eq!(status, 503, "{path}");
        assert_eq!(retry.as_deref(), Some("1"), "{path}");
        assert_eq!(body, json!({"status": "starting"}), "{path}");
    }

    // Started and opened: everything is served.
    engine.start(shutdown.signal()).await.unwrap();
    serving.open();
    let (status, _, body) = get(&base, "/readyz").await;
    assert_eq!((status, body), (200, json!({"status": "ready"})));
    let (status, retry, body) = get(&base, "/kafka/topics").await;
    assert_eq!((status, retry), (200, None));
    assert!(body.is_array(), "{body}");
    assert_eq!(get(&base, "/no/such/route").await.0, 404);

    let task = tokio::spawn(serving.run());
    shutdown.trigger();
    task.await.unwrap().unwrap();
    engine.stop().await;
}
