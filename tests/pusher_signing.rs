//! Capability: Pusher signing — channel authorisation for `private-`/`presence-` and HTTP API
//! request signing — and the HTTP API behind it (`/apps/{app_id}/events`, `/batch_events`,
//! `/channels…`), including its limits and its exemption from bearer auth; and that an HTTP
//! publish (`/events`, `/batch_events`, `POST /realtime/{channel}`) lets the subscribers it
//! woke run before it replies.
//!
//! Method: fixed vectors produced by the official `pusher` 5.3.4 Node SDK for the default app
//! (`authorizeChannel`, and its request-signing helper at auth_timestamp 1700000000); HTTP API
//! calls go through the router with no socket, on a `ManualClock` set to that timestamp.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns unwrap and panic on failure"
)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use streamcache::clock::ManualClock;
use streamcache::config::Config;
use streamcache::engine::Engine;
use streamcache::realtime::{
    BATCH_EVENTS_MAX, CHANNEL_NAME_CHARS_MAX, EVENT_DATA_BYTES_MAX, EVENT_NAME_CHARS_MAX,
    IDS_PER_MS, PUBLISH_CHANNELS_MAX, SignedRequest, SocketId, USER_ID_CHARS_MAX, body_md5,
    channel_auth, check_channel_auth, check_request, check_user_auth, sign_request, user_auth,
};
use tower::ServiceExt as _;

const KEY: &str = "streamcache-key";
const SECRET: &str = "streamcache-secret";
const NOW_S: u64 = 1_700_000_000;
/// The base of a channel the engine's hub creates on its clock (`NOW_S`): its first event gets
/// `BASE + 1`.
const BASE: u64 = NOW_S * 1000 * IDS_PER_MS;

#[test]
fn channel_auth_matches_the_official_sdk() {
    let socket: SocketId = "1234.5678".parse().unwrap();
    let private =
        "streamcache-key:31be18044af4ab1ca1ca81937792baa2b7ddcbd1007f9803db51aaca7032fe0d";
    assert_eq!(
        channel_auth(KEY, SECRET, "1234.5678", "private-orders", None),
        private
    );
    assert!(check_channel_auth(KEY, SECRET, &socket, "private-orders", None, private).is_ok());

    let data = r#"{"user_id":"u1","user_info":{"name":"A"}}"#;
    let presence =
        "streamcache-key:671386fb746a76104825c567d67af8eae42f3a9c327dc50474fda34ee7a9b8a5";
    assert_eq!(
        channel_auth(KEY, SECRET, "1234.5678", "presence-orders", Some(data)),
        presence
    );
    assert!(
        check_channel_auth(
            KEY,
            SECRET,
            &socket,
            "presence-orders",
            Some(data),
            presence
        )
        .is_ok()
    );
}

#[test]
fn channel_auth_rejects_anything_else() {
    let socket: SocketId = "1234.5678".parse().unwrap();
    let good = channel_auth(KEY, SECRET, "1234.5678", "private-orders", None);
    let other_socket: SocketId = "1234.5679".parse().unwrap();
    assert!(check_channel_auth(KEY, SECRET, &other_socket, "private-orders", None, &good).is_err());
    assert!(check_channel_auth(KEY, SECRET, &socket, "private-other", None, &good).is_err());
    assert!(
        check_channel_auth(KEY, "other-secret", &socket, "private-orders", None, &good).is_err()
    );
    assert!(
        check_channel_auth("other-key", SECRET, &socket, "private-orders", None, &good).is_err()
    );
    let mut flipped = good.clone();
    flipped.pop();
    flipped.push(if good.ends_with('0') { '1' } else { '0' });
    assert!(check_channel_auth(KEY, SECRET, &socket, "private-orders", None, &flipped).is_err());
    for bad in [
        "",
        "no-colon",
        "streamcache-key:",
        "streamcache-key:zz",
        "streamcache-key:abcd",
    ] {
        assert!(
            check_channel_auth(KEY, SECRET, &socket, "private-orders", None, bad).is_err(),
            "{bad}"
        );
    }
    // Presence: the channel_data is part of what is signed.
    let data = r#"{"user_id":"u1"}"#;
    let auth = channel_auth(KEY, SECRET, "1234.5678", "presence-a", Some(data));
    assert!(
        check_channel_auth(
            KEY,
            SECRET,
            &socket,
            "presence-a",
            Some(r#"{"user_id":"u2"}"#),
            &auth
        )
        .is_err()
    );
}

#[test]
fn user_signin_signature_is_hmac_of_socket_user_and_data() {
    // Expected value from `openssl dgst -sha256 -hmac 7ad3773142a6692b25b8` over
    // `1234.1234::user::{"id":"12345"}`.
    let (key, secret, data) = (
        "278d425bdf160c739803",
        "7ad3773142a6692b25b8",
        r#"{"id":"12345"}"#,
    );
    let auth = user_auth(key, secret, "1234.1234", data);
    assert_eq!(
        auth,
        "278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
    );
    let socket: SocketId = "1234.1234".parse().unwrap();
    assert!(check_user_auth(key, secret, &socket, data, &auth).is_ok());
    assert!(check_user_auth(key, secret, &socket, r#"{"id":"12346"}"#, &auth).is_err());
    let other: SocketId = "1234.1235".parse().unwrap();
    assert!(check_user_auth(key, secret, &other, data, &auth).is_err());
    // A channel signature over the same bytes is not a user signature.
    let channel = channel_auth(key, secret, "1234.1234", "private-a", None);
    assert!(check_user_auth(key, secret, &socket, data, &channel).is_err());
}

fn sdk_params(body: Option<&str>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p = vec![
        ("auth_key".to_owned(), KEY.to_owned()),
        ("auth_timestamp".to_owned(), NOW_S.to_string()),
        ("auth_version".to_owned(), "1.0".to_owned()),
    ];
    if let Some(b) = body {
        p.push(("body_md5".to_owned(), body_md5(b.as_bytes())));
    }
    p.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    p
}

#[test]
fn request_signature_matches_the_official_sdk() {
    let body = r#"{"name":"NewOrder","data":"{\"a\":1}","channels":["orders"]}"#;
    assert_eq!(
        body_md5(body.as_bytes()),
        "e35be58ba2983e060037a71ca52d0463"
    );
    let params = sdk_params(Some(body), &[]);
    let sig = "3bd50afa9d512c1b0b690da8df97fd023bc65745c525a4306da045222501c5ec";
    assert_eq!(
        sign_request(SECRET, "POST", "/apps/streamcache/events", &params),
        sig
    );

    let get = sdk_params(
        None,
        &[("info", "user_count"), ("filter_by_prefix", "presence-")],
    );
    let sig_get = "98ab8380fbc8554f06bee6adc2eaa799d9fc9f404f368c141c15b7086cccf30f";
    assert_eq!(
        sign_request(SECRET, "GET", "/apps/streamcache/channels", &get),
        sig_get
    );

    let mut signed = params.clone();
    signed.push(("auth_signature".to_owned(), sig.to_owned()));
    let req = SignedRequest {
        method: "POST",
        path: "/apps/streamcache/events",
        params: &signed,
        body: body.as_bytes(),
    };
    assert!(check_request(&req, KEY, SECRET, NOW_S).is_ok());
    assert!(
        check_request(&req, KEY, SECRET, NOW_S + 600).is_ok(),
        "600 s of skew is allowed"
    );
    assert!(
        check_request(&req, KEY, SECRET, NOW_S + 601).is_err(),
        "stale timestamp"
    );
    let tampered = SignedRequest {
        body: br#"{"name":"Other"}"#,
        ..req
    };
    assert!(
        check_request(&tampered, KEY, SECRET, NOW_S).is_err(),
        "body_md5 is recomputed"
    );
    let other_path = SignedRequest {
        path: "/apps/streamcache/batch_events",
        ..req
    };
    assert!(check_request(&other_path, KEY, SECRET, NOW_S).is_err());
    assert!(check_request(&req, KEY, "wrong", NOW_S).is_err());
}

// ---- HTTP API through the router ---------------------------------------------------------

fn engine(auth_token: Option<&str>) -> Arc<Engine> {
    let config = Config {
        ephemeral: true,
        auth_token: auth_token.map(str::to_owned),
        ..Config::default()
    };
    Arc::new(Engine::open_with_clock(config, ManualClock::shared(NOW_S * 1000)).unwrap())
}

/// Signs like the SDK: the path, then the query with `auth_signature` appended.
fn signed_uri(method: &str, path: &str, body: Option<&str>, extra: &[(&str, &str)]) -> String {
    let params = sdk_params(body, extra);
    let sig = sign_request(SECRET, method, path, &params);
    let q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{path}?{}&auth_signature={sig}", q.join("&"))
}

async fn call(
    engine: &Arc<Engine>,
    method: &str,
    uri: &str,
    body: Option<String>,
) -> (StatusCode, Value) {
    let app = streamcache::api::router(engine.clone());
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, Body::from))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn post(engine: &Arc<Engine>, path: &str, body: &Value) -> (StatusCode, Value) {
    let text = body.to_string();
    let uri = signed_uri("POST", path, Some(&text), &[]);
    call(engine, "POST", &uri, Some(text)).await
}

#[tokio::test]
async fn signed_publish_reaches_subscribers_with_key_order_kept() {
    let engine = engine(None);
    let mut sub = engine.realtime().subscribe("orders", None).unwrap();
    let data = r#"{"seq":1,"b":2,"a":"✓"}"#;
    let (status, body) = post(
        &engine,
        "/apps/streamcache/events",
        &json!({"name": "NewOrder", "data": data, "channels": ["orders"]}),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let streamcache::realtime::Delivery::Event(e) = sub.recv().await else {
        panic!()
    };
    assert_eq!(e.data(), data);
    assert_eq!(e.exclude(), None);

    let (status, body) = post(
        &engine,
        "/apps/streamcache/events",
        &json!({"name": "NewOrder", "data": "x", "channel": "orders", "socket_id": "1.1", "info": "subscription_count"}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"channels": {"orders": {"subscription_count": 1}}})
        )
    );
    let streamcache::realtime::Delivery::Event(e) = sub.recv().await else {
        panic!()
    };
    assert_eq!(e.exclude().map(SocketId::as_str), Some("1.1"));
    assert_eq!(e.data(), r#""x""#);
}

/// Records, on this test's single-threaded runtime, whether a subscriber task woken by a publish
/// ran before the publish's HTTP reply came back.
async fn delivered_before_reply(
    engine: &Arc<Engine>,
    publish: impl std::future::Future<Output = StatusCode>,
) -> bool {
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut sub = engine.realtime().subscribe("orders", None).unwrap();
    let seen = order.clone();
    let subscriber = tokio::spawn(async move {
        let delivery = sub.recv().await;
        assert!(matches!(
            delivery,
            streamcache::realtime::Delivery::Event(_)
        ));
        seen.lock().unwrap().push("delivered");
    });
    // Let the subscriber wait on the channel first.
    tokio::task::yield_now().await;
    assert_eq!(publish.await, StatusCode::OK);
    order.lock().unwrap().push("replied");
    subscriber.await.unwrap();
    let order = order.lock().unwrap();
    order.first() == Some(&"delivered")
}

#[tokio::test]
async fn subscribers_run_before_the_publish_reply() {
    let engine = engine(None);
    let one = json!({"name": "NewOrder", "data": "{}", "channel": "orders"});
    let publish = async { post(&engine, "/apps/streamcache/events", &one).await.0 };
    assert!(delivered_before_reply(&engine, publish).await, "events");
    let batch = json!({"batch": [{"channel": "orders", "name": "NewOrder", "data": "{}"}]});
    let publish = async {
        post(&engine, "/apps/streamcache/batch_events", &batch)
            .await
            .0
    };
    assert!(
        delivered_before_reply(&engine, publish).await,
        "batch_events"
    );
    let publish = async {
        let body = json!({"event": "NewOrder", "data": {}}).to_string();
        call(&engine, "POST", "/realtime/orders", Some(body))
            .await
            .0
    };
    assert!(delivered_before_reply(&engine, publish).await, "/realtime");
}

#[tokio::test]
async fn terminate_connections_is_signed_and_checks_the_user_id() {
    let engine = engine(None);
    let path = |user: &str| format!("/apps/streamcache/users/{user}/terminate_connections");
    let (status, body) = post(&engine, &path("u1"), &json!({})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let longest = "u".repeat(USER_ID_CHARS_MAX);
    assert_eq!(
        post(&engine, &path(&longest), &json!({})).await.0,
        StatusCode::OK
    );
    let too_long = "u".repeat(USER_ID_CHARS_MAX + 1);
    assert_eq!(
        post(&engine, &path(&too_long), &json!({})).await.0,
        StatusCode::BAD_REQUEST
    );
    let (status, _) = call(&engine, "POST", &path("u1"), Some("{}".to_owned())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "unsigned");
    let other = "/apps/other/users/u1/terminate_connections";
    assert_eq!(
        post(&engine, other, &json!({})).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_signatures_and_apps_are_refused() {
    let engine = engine(None);
    let body = json!({"name": "E", "data": "{}", "channel": "orders"}).to_string();
    let uri = signed_uri("POST", "/apps/streamcache/events", Some(&body), &[]);
    let (status, _) = call(
        &engine,
        "POST",
        &uri,
        Some(body.replace("orders", "others")),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "body changed after signing"
    );
    let (status, _) = call(
        &engine,
        "POST",
        &uri.replace("auth_signature=", "auth_signature=00"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &engine,
        "POST",
        "/apps/streamcache/events",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "unsigned");
    let other = signed_uri("POST", "/apps/other/events", Some(&body), &[]);
    let (status, _) = call(&engine, "POST", &other, Some(body)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn publish_limits_at_max_and_max_plus_one() {
    let engine = engine(None);
    let path = "/apps/streamcache/events";
    let event = |name: String, data: String, channels: Vec<String>| json!({"name": name, "data": data, "channels": channels});
    let one = || vec!["orders".to_owned()];

    // The limit counts the data as sent, not the JSON string it is kept as: text of quotes at
    // the limit is stored escaped, twice as long, and still accepted.
    for text in [
        "x".repeat(EVENT_DATA_BYTES_MAX),
        "\"".repeat(EVENT_DATA_BYTES_MAX),
    ] {
        let (s, body) = post(&engine, path, &event("E".into(), text, one())).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let (s, _) = post(
        &engine,
        path,
        &event("E".into(), "x".repeat(EVENT_DATA_BYTES_MAX + 1), one()),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let json_at_max = format!("[{}]", "1,".repeat((EVENT_DATA_BYTES_MAX - 3) / 2) + "1");
    assert!(json_at_max.len() <= EVENT_DATA_BYTES_MAX);
    let (s, _) = post(&engine, path, &event("E".into(), json_at_max, one())).await;
    assert_eq!(s, StatusCode::OK);

    let many = |n: usize| (0..n).map(|i| format!("c{i}")).collect::<Vec<_>>();
    let (s, _) = post(
        &engine,
        path,
        &event("E".into(), "{}".into(), many(PUBLISH_CHANNELS_MAX)),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = post(
        &engine,
        path,
        &event("E".into(), "{}".into(), many(PUBLISH_CHANNELS_MAX + 1)),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, _) = post(
        &engine,
        path,
        &event("e".repeat(EVENT_NAME_CHARS_MAX), "{}".into(), one()),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = post(
        &engine,
        path,
        &event("e".repeat(EVENT_NAME_CHARS_MAX + 1), "{}".into(), one()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, _) = post(
        &engine,
        path,
        &event(
            "E".into(),
            "{}".into(),
            vec!["c".repeat(CHANNEL_NAME_CHARS_MAX)],
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = post(
        &engine,
        path,
        &event(
            "E".into(),
            "{}".into(),
            vec!["c".repeat(CHANNEL_NAME_CHARS_MAX + 1)],
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, _) = post(
        &engine,
        path,
        &json!({"name": "E", "data": "{}", "channel": "a", "socket_id": "nope"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn batch_at_max_and_max_plus_one() {
    let engine = engine(None);
    let path = "/apps/streamcache/batch_events";
    let batch = |n: usize| json!({"batch": (0..n).map(|i| json!({"channel": "orders", "name": "E", "data": format!("{{\"i\":{i}}}")})).collect::<Vec<_>>()});
    let (s, body) = post(&engine, path, &batch(BATCH_EVENTS_MAX)).await;
    assert_eq!((s, body), (StatusCode::OK, json!({})));
    assert_eq!(engine.realtime().head("orders"), BASE + 10);
    let (s, _) = post(&engine, path, &batch(BATCH_EVENTS_MAX + 1)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        engine.realtime().head("orders"),
        BASE + 10,
        "nothing of a refused batch is published"
    );
    // An item over the data limit refuses the whole batch before the first item goes out.
    let (s, _) = post(
        &engine,
        path,
        &json!({"batch": [
            {"channel": "orders", "name": "First", "data": "{}"},
            {"channel": "orders", "name": "Second", "data": "x".repeat(EVENT_DATA_BYTES_MAX + 1)},
        ]}),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(engine.realtime().head("orders"), BASE + 10);
}

#[tokio::test]
async fn pusher_frames_carry_string_data_as_it_was_sent() {
    let engine = engine(None);
    let mut sub = engine.realtime().subscribe("orders", None).unwrap();
    // (data field as sent, the `data` string pusher-js receives). A string that is itself
    // JSON text — a JSON string literal too, as pusher-http-php's json_encode sends a string —
    // arrives as sent; a JSON value that is not a string arrives as its text.
    for (data, framed) in [
        (json!("\"123\""), "\"123\""),
        (json!("123"), "123"),
        (json!("hello"), "hello"),
        (json!("{\"a\":1}"), "{\"a\":1}"),
        (json!({"a": 1}), "{\"a\":1}"),
    ] {
        let (status, _) = post(
            &engine,
            "/apps/streamcache/events",
            &json!({"name": "E", "data": data, "channel": "orders"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let streamcache::realtime::Delivery::Event(e) = sub.recv().await else {
            panic!()
        };
        let frame: Value = serde_json::from_str(e.pusher_frame()).unwrap();
        assert_eq!(frame["data"], framed, "{data}");
    }
}

#[tokio::test]
async fn channel_queries() {
    let engine = engine(None);
    let hub = engine.realtime();
    let _a = hub.subscribe("orders", None).unwrap();
    let _b = hub.subscribe("presence-room", None).unwrap();
    hub.presence_join("presence-room", "u1", &json!({}))
        .unwrap();
    hub.publish("idle", "E", json!(1), None).unwrap();

    let (s, body) = call(
        &engine,
        "GET",
        &signed_uri("GET", "/apps/streamcache/channels", None, &[]),
        None,
    )
    .await;
    assert_eq!(
        (s, body),
        (
            StatusCode::OK,
            json!({"channels": {"orders": {}, "presence-room": {}}})
        )
    );
    let uri = signed_uri(
        "GET",
        "/apps/streamcache/channels",
        None,
        &[("filter_by_prefix", "presence-"), ("info", "user_count")],
    );
    let (s, body) = call(&engine, "GET", &uri, None).await;
    assert_eq!(
        (s, body),
        (
            StatusCode::OK,
            json!({"channels": {"presence-room": {"user_count": 1}}})
        )
    );
    let uri = signed_uri(
        "GET",
        "/apps/streamcache/channels",
        None,
        &[("info", "user_count")],
    );
    assert_eq!(
        call(&engine, "GET", &uri, None).await.0,
        StatusCode::BAD_REQUEST
    );

    let uri = signed_uri("GET", "/apps/streamcache/channels/orders", None, &[]);
    let (s, body) = call(&engine, "GET", &uri, None).await;
    assert_eq!(
        (s, body),
        (
            StatusCode::OK,
            json!({"occupied": true, "subscription_count": 1})
        )
    );
    // user_count is a presence channel's attribute: asked of another channel, it is 400.
    let info = |channel: &str, info: &str| {
        let path = format!("/apps/streamcache/channels/{channel}");
        signed_uri("GET", &path, None, &[("info", info)])
    };
    let (s, body) = call(&engine, "GET", &info("presence-room", "user_count"), None).await;
    assert_eq!(
        (s, body),
        (
            StatusCode::OK,
            json!({"occupied": true, "subscription_count": 1, "user_count": 1})
        )
    );
    for asked in ["user_count", "subscription_count,user_count"] {
        let (s, body) = call(&engine, "GET", &info("orders", asked), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{asked}: {body}");
    }
    let (s, _) = call(&engine, "GET", &info("orders", "subscription_count"), None).await;
    assert_eq!(s, StatusCode::OK);

    let uri = signed_uri(
        "GET",
        "/apps/streamcache/channels/presence-room/users",
        None,
        &[],
    );
    let (s, body) = call(&engine, "GET", &uri, None).await;
    assert_eq!(
        (s, body),
        (StatusCode::OK, json!({"users": [{"id": "u1"}]}))
    );
    let uri = signed_uri("GET", "/apps/streamcache/channels/orders/users", None, &[]);
    assert_eq!(
        call(&engine, "GET", &uri, None).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn pusher_routes_skip_bearer_auth_but_keep_pusher_signing() {
    let engine = engine(Some("token"));
    let (s, _) = post(
        &engine,
        "/apps/streamcache/events",
        &json!({"name": "E", "data": "{}", "channel": "orders"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "signed, no bearer token");
    let (s, body) = call(&engine, "GET", "/apps/streamcache/channels", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "unsigned is still refused");
    assert!(
        body["error"].as_str().unwrap().contains("auth_key"),
        "by Pusher signing: {body}"
    );
    let (s, _) = call(&engine, "GET", "/realtime/orders", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "SSE keeps bearer auth");
}

/// The HTTP API refuses the protocol's own event names, as `POST /realtime` does: a
/// subscriber's library would act on a published `pusher_internal:member_added`. Names that
/// only contain the prefixes elsewhere are events like any other.
#[tokio::test]
async fn the_protocols_own_event_names_are_not_published() {
    let engine = engine(None);
    for (name, want) in [
        ("pusher:ping", StatusCode::BAD_REQUEST),
        ("pusher_internal:member_added", StatusCode::BAD_REQUEST),
        ("my-pusher:event", StatusCode::OK),
        ("pusher-like", StatusCode::OK),
    ] {
        let one = json!({"name": name, "data": "{}", "channel": "orders"});
        let (s, body) = post(&engine, "/apps/streamcache/events", &one).await;
        assert_eq!(s, want, "{name}: {body}");
        let batch = json!({"batch": [{"name": name, "data": "{}", "channel": "orders"}]});
        let (s, body) = post(&engine, "/apps/streamcache/batch_events", &batch).await;
        assert_eq!(s, want, "batch {name}: {body}");
    }
}

/// An event without data is refused, as Pusher and soketi refuse it, rather than published as
/// `null`; nothing of a batch with such an item is published.
#[tokio::test]
async fn events_without_data_are_refused() {
    let engine = engine(None);
    let mut sub = engine.realtime().subscribe("orders", None).unwrap();
    for one in [
        json!({"name": "E", "channel": "orders"}),
        json!({"name": "E", "channel": "orders", "data": null}),
    ] {
        let (s, body) = post(&engine, "/apps/streamcache/events", &one).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{one}");
        assert_eq!(body["code"], 400, "{body}");
        assert!(body["error"].as_str().unwrap().contains("data"), "{body}");
        let mut item = one.clone();
        let batch = json!({"batch": [
            {"name": "First", "channel": "orders", "data": "{}"},
            item.take(),
        ]});
        let (s, body) = post(&engine, "/apps/streamcache/batch_events", &batch).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{batch}");
        assert_eq!(body["code"], 400, "{body}");
    }
    assert_eq!(engine.realtime().head("orders"), BASE, "nothing published");
    // Data present, as a string or another JSON value, is published.
    for data in [json!("{}"), json!({"a": 1})] {
        let one = json!({"name": "E", "channel": "orders", "data": data});
        let (s, body) = post(&engine, "/apps/streamcache/events", &one).await;
        assert_eq!((s, body), (StatusCode::OK, json!({})));
    }
    for want in ["{}", "{\"a\":1}"] {
        let streamcache::realtime::Delivery::Event(e) = sub.recv().await else {
            panic!()
        };
        assert_eq!(e.data(), want);
    }
}

/// A full hub (every channel with a subscriber) cannot create a channel, but nobody can be
/// subscribed to a channel it does not hold: an event to one is accepted and reaches no one,
/// as Pusher accepts an event to an empty channel.
#[tokio::test]
async fn a_full_hub_accepts_events_to_channels_nobody_is_on() {
    use streamcache::realtime::HUB_CHANNELS_MAX;

    let engine = engine(None);
    let hub = engine.realtime();
    let mut subs: Vec<_> = (0..HUB_CHANNELS_MAX)
        .map(|i| hub.subscribe(&format!("busy-{i}"), None).unwrap())
        .collect();
    let path = "/apps/streamcache/events";
    let (s, body) = post(
        &engine,
        path,
        &json!({"name": "E", "data": "{}", "channel": "nobody"}),
    )
    .await;
    assert_eq!((s, body), (StatusCode::OK, json!({})));
    let (s, body) = post(
        &engine,
        path,
        &json!({"name": "E", "data": "{}", "channels": ["nobody", "busy-0"], "info": "subscription_count"}),
    )
    .await;
    assert_eq!(
        (s, body),
        (
            StatusCode::OK,
            json!({"channels": {"nobody": {"subscription_count": 0}, "busy-0": {"subscription_count": 1}}})
        )
    );
    assert_eq!(hub.head("nobody"), 0, "no channel was made for it");
    assert_eq!(hub.head("busy-0"), BASE + 1);
    let streamcache::realtime::Delivery::Event(e) = subs[0].recv().await else {
        panic!()
    };
    assert_eq!(e.id(), BASE + 1);
}

/// A batch is published whole: an item to a channel a full hub does not hold no longer stops
/// it half-way (which made a retrying client publish the first items twice).
#[tokio::test]
async fn a_batch_is_published_whole_when_the_hub_is_full() {
    use streamcache::realtime::HUB_CHANNELS_MAX;

    let engine = engine(None);
    let hub = engine.realtime();
    let _subs: Vec<_> = (0..HUB_CHANNELS_MAX)
        .map(|i| hub.subscribe(&format!("busy-{i}"), None).unwrap())
        .collect();
    let batch = json!({"batch": [
        {"channel": "busy-0", "name": "E", "data": "1"},
        {"channel": "nobody", "name": "E", "data": "2"},
        {"channel": "busy-1", "name": "E", "data": "3", "info": "subscription_count"},
    ]});
    let (s, body) = post(&engine, "/apps/streamcache/batch_events", &batch).await;
    assert_eq!(
        (s, body),
        (
            StatusCode::OK,
            json!({"batch": [{}, {}, {"subscription_count": 1}]})
        )
    );
    assert_eq!(
        (hub.head("busy-0"), hub.head("busy-1")),
        (BASE + 1, BASE + 1)
    );
    assert_eq!(hub.head("nobody"), 0);
}
