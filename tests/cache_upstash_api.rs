//! Capability: the Upstash-compatible REST surface under `/redis` — single commands, the path
//! form, pipelines, transactions, base64 encoding and Upstash's error shape.
//! Method: requests through the axum router in-process (no socket), over a temporary engine.
#![allow(
    clippy::unwrap_used,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
    base64: bool,
) -> (StatusCode, Value) {
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    call_raw(app, method, uri, body, base64).await
}

#[tokio::test]
async fn upstash_rest_surface() {
    let engine = Arc::new(streamcache::engine::Engine::temporary().unwrap());
    let app = streamcache::api::router(engine);

    let (s, v) = call(
        &app,
        "POST",
        "/redis",
        Some(json!(["SET", "k", "v", "EX", "60"])),
        false,
    )
    .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"result": "OK"})));
    let (_, v) = call(&app, "GET", "/redis/get/k", None, false).await;
    assert_eq!(v, json!({"result": "v"}));
    let (_, v) = call(&app, "GET", "/redis/get/k", None, true).await;
    assert_eq!(v, json!({"result": "dg=="}));
    let (_, v) = call(&app, "POST", "/redis/ttl/k", None, false).await;
    assert_eq!(v, json!({"result": 60}));

    let (s, v) = call(&app, "POST", "/redis", Some(json!(["INCR", "k"])), false).await;
    assert_eq!(
        (s, v),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "ERR value is not an integer or out of range"})
        )
    );

    let (_, v) = call(
        &app,
        "POST",
        "/redis/pipeline",
        Some(json!([["SET", "a", 1], ["INCR", "a"], ["NOPE"]])),
        false,
    )
    .await;
    assert_eq!(v[0], json!({"result": "OK"}));
    assert_eq!(v[1], json!({"result": 2}));
    assert!(
        v[2]["error"]
            .as_str()
            .unwrap()
            .starts_with("ERR unknown command 'NOPE'")
    );

    let (_, v) = call(
        &app,
        "POST",
        "/redis/multi-exec",
        Some(json!([["RPUSH", "l", "x", "y"], ["LRANGE", "l", 0, -1]])),
        false,
    )
    .await;
    assert_eq!(v, json!([{"result": 2}, {"result": ["x", "y"]}]));

    let (s, _) = call(
        &app,
        "POST",
        "/redis",
        Some(json!({"not": "an array"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn path_form_decodes_each_segment_after_splitting() {
    let engine = Arc::new(streamcache::engine::Engine::temporary().unwrap());
    let app = streamcache::api::router(engine);

    // An encoded `/` belongs to its argument: this is `SET k foo/EX/1`, not `SET k foo EX 1`.
    let (s, v) = call(&app, "GET", "/redis/set/k/foo%2FEX%2F1", None, false).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"result": "OK"})));
    let (_, v) = call(&app, "GET", "/redis/get/k", None, false).await;
    assert_eq!(v, json!({"result": "foo/EX/1"}));
    let (_, v) = call(&app, "GET", "/redis/ttl/k", None, false).await;
    assert_eq!(v, json!({"result": -1}));

    let (s, v) = call(&app, "GET", "/redis/set/a%2Fb/v%20w", None, false).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"result": "OK"})));
    let (_, v) = call(&app, "GET", "/redis/get/a%2fb", None, false).await;
    assert_eq!(v, json!({"result": "v w"}));
    // A non-UTF-8 byte is a byte of the argument.
    let (_, v) = call(&app, "GET", "/redis/set/bin/%FF%00", None, false).await;
    assert_eq!(v, json!({"result": "OK"}));
    let (_, v) = call(&app, "GET", "/redis/strlen/bin", None, false).await;
    assert_eq!(v, json!({"result": 2}));

    // A malformed escape is refused, not guessed at.
    for bad in [
        "/redis/get/%",
        "/redis/get/%4",
        "/redis/get/%zz",
        "/redis/get/a%g1",
    ] {
        let (s, v) = call(&app, "GET", bad, None, false).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            v["error"].as_str().unwrap().starts_with("ERR"),
            "{bad}: {v}"
        );
    }
}

#[tokio::test]
async fn multi_exec_over_maxmemory_is_refused_whole() {
    let engine = Arc::new(streamcache::engine::Engine::temporary().unwrap());
    let app = streamcache::api::router(engine);
    for cmd in [
        json!(["CONFIG", "SET", "maxmemory-policy", "noeviction"]),
        json!(["SET", "a", "b"]),
        json!(["CONFIG", "SET", "maxmemory", "1"]),
    ] {
        let (s, _) = call(&app, "POST", "/redis", Some(cmd), false).await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, v) = call(
        &app,
        "POST",
        "/redis/multi-exec",
        Some(json!([["SET", "x", "y"], ["GET", "a"]])),
        false,
    )
    .await;
    assert_eq!(
        (s, v),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'."})
        )
    );
    let (_, v) = call(&app, "GET", "/redis/exists/x", None, false).await;
    assert_eq!(v, json!({"result": 0}));
}

#[tokio::test]
async fn sorted_set_commands_pass_through() {
    let engine = Arc::new(streamcache::engine::Engine::temporary().unwrap());
    let app = streamcache::api::router(engine);
    let (s, v) = call(
        &app,
        "POST",
        "/redis",
        Some(json!(["ZADD", "board", 0.1, "ann", 2, "bob"])),
        false,
    )
    .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"result": 2})));
    let (_, v) = call(
        &app,
        "GET",
        "/redis/zrange/board/0/-1/WITHSCORES",
        None,
        false,
    )
    .await;
    assert_eq!(
        v,
        json!({"result": ["ann", "0.10000000000000001", "bob", "2"]})
    );
    let (_, v) = call(&app, "GET", "/redis/zscore/board/bob", None, false).await;
    assert_eq!(v, json!({"result": "2"}));
    let (_, v) = call(&app, "GET", "/redis/zrevrank/board/ann", None, false).await;
    assert_eq!(v, json!({"result": 1}));
}

/// A pipeline or transaction request carries at most `UPSTASH_PIPELINE_LEN_MAX` commands.
#[tokio::test]
async fn a_pipeline_holds_at_most_upstash_pipeline_len_max_commands() {
    use streamcache::api::UPSTASH_PIPELINE_LEN_MAX;
    let engine = Arc::new(streamcache::engine::Engine::temporary().unwrap());
    let app = streamcache::api::router(engine);
    let commands = |n: usize| Value::Array(vec![json!(["PING"]); n]);
    for path in ["/redis/pipeline", "/redis/multi-exec"] {
        let (s, v) = call(
            &app,
            "POST",
            path,
            Some(commands(UPSTASH_PIPELINE_LEN_MAX)),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert_eq!(
            v.as_array().map(Vec::len),
            Some(UPSTASH_PIPELINE_LEN_MAX),
            "{path}"
        );
        let (s, v) = call(
            &app,
            "POST",
            path,
            Some(commands(UPSTASH_PIPELINE_LEN_MAX + 1)),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            v["error"],
            format!(
                "ERR pipeline of {} commands exceeds {UPSTASH_PIPELINE_LEN_MAX}",
                UPSTASH_PIPELINE_LEN_MAX + 1
            ),
            "{path}"
        );
    }
}

/// A request with `body` as it is (a JSON command, or the path form's value).
async fn call_raw(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Vec<u8>,
    base64: bool,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if base64 {
        req = req.header("Upstash-Encoding", "base64");
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn a_transaction_with_a_command_it_cannot_queue_is_discarded_whole() {
    let engine = Arc::new(streamcache::engine::Engine::temporary().unwrap());
    let app = streamcache::api::router(engine.clone());
    for bad in [json!(["NOPE"]), json!(["GET"]), json!(["WATCH", "a"])] {
        let (s, v) = call(
            &app,
            "POST",
            "/redis/multi-exec",
            Some(json!([["SET", "a", "1"], bad])),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(
            v["error"].as_str().unwrap().starts_with("ERR "),
            "{bad}: {v}"
        );
        assert_eq!(
            engine.cache().get(0, b"a"),
            None,
            "{bad}: nothing of the transaction ran"
        );
    }
    // A command that fails when it runs does not discard the others, as in Redis.
    let (s, v) = call(
        &app,
        "POST",
        "/redis/multi-exec",
        Some(json!([["SET", "a", "x"], ["INCR", "a"], ["GET", "a"]])),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[2], json!({"result": "x"}));
    assert!(v[1]["error"].is_string(), "{v}");
}

#[tokio::test]
async fn the_path_form_takes_the_arguments_after_the_body_from_the_query() {
    let engine = Arc::new(streamcache::engine::Engine::temporary().unwrap());
    let app = streamcache::api::router(engine.clone());
    let (s, v) = call_raw(
        &app,
        "POST",
        "/redis/set/k?EX=100",
        b"a value".to_vec(),
        false,
    )
    .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"result": "OK"})));
    let (_, v) = call(&app, "GET", "/redis/ttl/k", None, false).await;
    assert_eq!(v, json!({"result": 100}));
    let (_, v) = call(&app, "GET", "/redis/get/k", None, false).await;
    assert_eq!(v, json!({"result": "a value"}));
    // A flag without a value, and `+` and escapes decoded.
    let (_, v) = call_raw(&app, "PUT", "/redis/set/k?NX", b"other".to_vec(), false).await;
    assert_eq!(v, json!({"result": null}), "NX: the key exists");
    let (_, v) = call_raw(&app, "POST", "/redis/echo?a+b%21", Vec::new(), false).await;
    assert_eq!(v, json!({"result": "a b!"}));
}

#[tokio::test]
async fn base64_leaves_the_ok_status_as_it_is() {
    let engine = Arc::new(streamcache::engine::Engine::temporary().unwrap());
    let app = streamcache::api::router(engine);
    let (_, v) = call(&app, "POST", "/redis", Some(json!(["SET", "k", "v"])), true).await;
    assert_eq!(v, json!({"result": "OK"}));
    let (_, v) = call(&app, "POST", "/redis", Some(json!(["PING"])), true).await;
    assert_eq!(
        v,
        json!({"result": "UE9ORw=="}),
        "other statuses are encoded"
    );
}

#[tokio::test]
async fn methods_upstash_does_not_serve_and_framework_rejections_have_the_error_body() {
    let engine = Arc::new(streamcache::engine::Engine::temporary().unwrap());
    let app = streamcache::api::router(engine.clone());
    engine.cache().set(0, b"k", b"v", None);
    for method in ["DELETE", "PATCH"] {
        let (s, v) = call_raw(&app, method, "/redis/del/k", Vec::new(), false).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert!(v["error"].is_string(), "{method}: {v}");
    }
    assert_eq!(engine.cache().get(0, b"k").as_deref(), Some(&b"v"[..]));
    let (s, v) = call(&app, "PUT", "/redis", Some(json!(["GET", "k"])), false).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"result": "v"})));
    let (s, v) = call(&app, "GET", "/redis/pipeline", None, false).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(v["error"].is_string(), "{v}");
}

#[tokio::test]
async fn the_token_may_come_as_the_token_query_parameter() {
    let engine = Arc::new(
        streamcache::engine::Engine::open(streamcache::config::Config {
            ephemeral: true,
            auth_token: Some("s3cret".into()),
            ..streamcache::config::Config::default()
        })
        .unwrap(),
    );
    let app = streamcache::api::router(engine);
    let (s, v) = call(&app, "GET", "/redis/echo/hi?_token=s3cret", None, false).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"result": "hi"})));
    let (s, v) = call(&app, "GET", "/redis/echo/hi?_token=wrong", None, false).await;
    assert_eq!(
        (s, v),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "WRONGPASS invalid or missing auth token"})
        )
    );
    // Outside `/redis` the parameter is no credential.
    let (s, _) = call(&app, "GET", "/kafka/topics?_token=s3cret", None, false).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
