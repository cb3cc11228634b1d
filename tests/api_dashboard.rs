//! Capability: the embedded dashboard (`/`, `/dashboard/app.js`, `/dashboard/style.css`).
//!
//! Method: requests through the router with no socket; checks content types, the
//! Content-Security-Policy that keeps the page to its own origin, and that no asset refers to
//! another origin (nothing is fetched from the internet).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns unwrap on setup"
)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

async fn get(path: &str) -> (StatusCode, String, String, String) {
    let engine = std::sync::Arc::new(streamcache::engine::Engine::temporary().unwrap());
    let resp = streamcache::api::router(engine)
        .oneshot(Request::builder().uri(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (ct, csp) = (header("content-type"), header("content-security-policy"));
    let body = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    (status, ct, csp, body)
}

#[tokio::test]
async fn page_and_assets_are_served_from_the_binary() {
    for (path, ct) in [
        ("/", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
    ] {
        let (status, content_type, csp, body) = get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(content_type.starts_with(ct), "{path}: {content_type}");
        assert!(csp.starts_with("default-src 'self'"), "{path}: {csp}");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} refers to another origin"
        );
    }
    let (_, _, _, html) = get("/").await;
    assert!(html.contains("/dashboard/app.js") && html.contains("/dashboard/style.css"));
    let (_, _, _, js) = get("/dashboard/app.js").await;
    for needle in [
        "/realtime/orders",
        "/redis/get/",
        "/kafka/topics/orders",
        "application/vnd.kafka.json.v2+json",
    ] {
        assert!(js.contains(needle), "app.js uses {needle}");
    }
}
