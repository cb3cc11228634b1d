//! Capability: the Pusher protocol 7 WebSocket `/app/{key}` — handshake, ping/pong, public,
//! private and presence subscriptions, event delivery and `socket_id` exclusion, client events,
//! error codes, limits, the activity timeout and shutdown.
//!
//! Method: a real server on 127.0.0.1:0 and tokio-tungstenite clients speaking the protocol as
//! pusher-js does; events are published through the engine's hub. The activity timeout runs on
//! tokio's paused clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns unwrap and panic on failure"
)]

mod realtime_common;

use std::time::Duration;

use futures::SinkExt as _;
use realtime_common::ws::{Client, KEY, SECRET, connect, connect_raw};
use realtime_common::{realtime_config, start, start_with_clock};
use serde_json::{Value, json};
use streamcache::clock::ManualClock;
use streamcache::config::Config;
use streamcache::realtime::{
    CONNECTION_CHANNELS_MAX, RealtimeConfig, SUBSCRIBER_QUEUE_EVENTS_MAX, SocketId,
    USER_DATA_BYTES_MAX, WS_MESSAGE_BYTES_MAX, body_md5, channel_auth, sign_request, user_auth,
};
use tokio_tungstenite::tungstenite::Message;

/// A replay buffer large enough that a burst of test events never needs a resync.
fn ws_config() -> RealtimeConfig {
    RealtimeConfig {
        replay_events: 256,
        ..realtime_config()
    }
}

/// [`ws_config`] with client events on.
fn client_events_config() -> RealtimeConfig {
    RealtimeConfig {
        client_events: true,
        ..ws_config()
    }
}

fn data_of(frame: &Value) -> Value {
    match &frame["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        other => other.clone(),
    }
}

#[tokio::test]
async fn handshake_gives_a_well_formed_socket_id_and_ping_gets_pong() {
    let server = start(ws_config()).await;
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    assert!(a.socket_id.parse::<SocketId>().is_ok(), "{}", a.socket_id);
    assert_ne!(a.socket_id, b.socket_id);
    a.send(json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(a.recv().await["event"], "pusher:pong");
    b.send(json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(b.recv().await["event"], "pusher:pong");
}

#[tokio::test]
async fn public_events_arrive_in_order_and_socket_id_exclusion_holds() {
    let server = start(ws_config()).await;
    let mut c = connect(&server).await;
    let ok = c.subscribe("orders", None, None).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(ok["channel"], "orders");
    let hub = server.engine.realtime();
    let me: SocketId = c.socket_id.parse().unwrap();
    for n in 1..=20 {
        hub.publish("orders", "NewOrder", json!({"n": n}), None)
            .unwrap();
    }
    hub.publish("orders", "NewOrder", json!({"n": "excluded"}), Some(me))
        .unwrap();
    hub.publish("orders", "NewOrder", json!({"n": "sentinel"}), None)
        .unwrap();
    for n in 1..=20 {
        let f = c.recv().await;
        assert_eq!(
            (f["event"].as_str(), f["channel"].as_str()),
            (Some("NewOrder"), Some("orders"))
        );
        assert!(
            f["data"].is_string(),
            "server → client data is a JSON string"
        );
        assert_eq!(data_of(&f), json!({"n": n}));
    }
    assert_eq!(
        data_of(&c.recv().await),
        json!({"n": "sentinel"}),
        "the excluded event never came"
    );

    c.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "orders"}}))
        .await;
    c.send(json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(c.recv().await["event"], "pusher:pong");
    hub.publish("orders", "NewOrder", json!(1), None).unwrap();
    c.send(json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(
        c.recv().await["event"],
        "pusher:pong",
        "nothing delivered after unsubscribe"
    );
}

#[tokio::test]
async fn private_channels_need_a_valid_signature() {
    let server = start(ws_config()).await;
    let mut c = connect(&server).await;
    let refused = c.subscribe("private-orders", None, None).await;
    assert_eq!(refused["event"], "pusher:subscription_error");
    assert_eq!(refused["channel"], "private-orders");
    assert_eq!(
        (
            refused["data"]["type"].as_str(),
            refused["data"]["status"].as_u64()
        ),
        (Some("AuthError"), Some(401))
    );

    let wrong = channel_auth(KEY, "not-the-secret", &c.socket_id, "private-orders", None);
    assert_eq!(
        c.subscribe("private-orders", Some(wrong), None).await["event"],
        "pusher:subscription_error"
    );
    let other_socket = channel_auth(KEY, SECRET, "1.1", "private-orders", None);
    assert_eq!(
        c.subscribe("private-orders", Some(other_socket), None)
            .await["event"],
        "pusher:subscription_error"
    );

    let ok = c.subscribe_signed("private-orders", None).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    server
        .engine
        .realtime()
        .publish("private-orders", "NewOrder", json!({"a": 1}), None)
        .unwrap();
    assert_eq!(data_of(&c.recv().await), json!({"a": 1}));
}

#[tokio::test]
async fn presence_tracks_members_across_connections() {
    let server = start(ws_config()).await;
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    let ua = r#"{"user_id":"u1","user_info":{"name":"A"}}"#;
    let ub = r#"{"user_id":"u2","user_info":{"name":"B"}}"#;
    let ok = a.subscribe_signed("presence-room", Some(ua)).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(
        data_of(&ok),
        json!({"presence": {"ids": ["u1"], "hash": {"u1": {"name": "A"}}, "count": 1}})
    );

    let ok = b.subscribe_signed("presence-room", Some(ub)).await;
    assert_eq!(data_of(&ok)["presence"]["count"], 2);
    let added = a.recv().await;
    assert_eq!(added["event"], "pusher_internal:member_added");
    assert_eq!(
        data_of(&added),
        json!({"user_id": "u2", "user_info": {"name": "B"}})
    );

    // Signed channel_data cannot be swapped for another user's.
    let mut c = connect(&server).await;
    let auth = channel_auth(KEY, SECRET, &c.socket_id, "presence-room", Some(ua));
    assert_eq!(
        c.subscribe("presence-room", Some(auth), Some(ub)).await["event"],
        "pusher:subscription_error"
    );

    drop(b);
    let removed = a.recv().await;
    assert_eq!(removed["event"], "pusher_internal:member_removed");
    assert_eq!(data_of(&removed), json!({"user_id": "u2"}));
}

#[tokio::test]
async fn a_second_subscribe_and_an_unsubscribe_without_subscription_get_pushers_uncoded_errors() {
    let server = start(ws_config()).await;
    let hub = server.engine.realtime();
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    let notice = |message: &str| json!({"event": "pusher:error", "data": {"code": null, "message": message}});

    a.subscribe("orders", None, None).await;
    assert_eq!(
        a.subscribe("orders", None, None).await,
        notice("Existing subscription to channel orders")
    );
    hub.publish("orders", "NewOrder", json!(1), None).unwrap();
    assert_eq!(data_of(&a.recv().await), json!(1), "still subscribed, once");

    // A second presence subscription, signed for another user, leaves the member as it was.
    let ua = r#"{"user_id":"u1","user_info":{}}"#;
    let ub = r#"{"user_id":"u2","user_info":{}}"#;
    b.subscribe_signed("presence-room", Some(ua)).await;
    assert_eq!(
        b.subscribe_signed("presence-room", Some(ub)).await,
        notice("Existing subscription to channel presence-room")
    );
    assert_eq!(hub.presence_user_count("presence-room"), 1);

    b.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "orders"}}))
        .await;
    assert_eq!(
        b.recv().await,
        notice("No current subscription to channel orders, or subscription in progress")
    );
    b.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-room"}}))
        .await;
    b.send(json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(
        b.recv().await["event"],
        "pusher:pong",
        "a real unsubscribe has no reply"
    );
    assert_eq!(hub.presence_user_count("presence-room"), 0);
}

#[tokio::test]
async fn client_events_are_off_by_default_and_relayed_to_others_when_on() {
    let server = start(ws_config()).await;
    let mut c = connect(&server).await;
    c.subscribe_signed("private-chat", None).await;
    c.send(json!({"event": "client-typing", "channel": "private-chat", "data": {"x": 1}}))
        .await;
    let err = c.recv().await;
    assert_eq!(err["event"], "pusher:error");
    assert_eq!(err["data"]["code"], 4301);

    let server = start(client_events_config()).await;
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    a.subscribe_signed("private-chat", None).await;
    b.subscribe_signed("private-chat", None).await;
    a.send(json!({"event": "client-typing", "channel": "private-chat", "data": {"x": 1}}))
        .await;
    let got = b.recv().await;
    assert_eq!(
        (got["event"].as_str(), data_of(&got)),
        (Some("client-typing"), json!({"x": 1}))
    );
    a.send(json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(
        a.recv().await["event"],
        "pusher:pong",
        "never echoed to the sender"
    );
    a.send(json!({"event": "client-x", "channel": "public", "data": {}}))
        .await;
    assert_eq!(
        a.recv().await["data"]["code"],
        4301,
        "public channels take no client events"
    );
    // Data at the limit is relayed; one byte over is a rejected client event (4301).
    let max = streamcache::realtime::EVENT_DATA_BYTES_MAX;
    a.send(json!({"event": "client-big", "channel": "private-chat", "data": "x".repeat(max)}))
        .await;
    assert_eq!(b.recv().await["event"], "client-big");
    a.send(json!({"event": "client-big", "channel": "private-chat", "data": "x".repeat(max + 1)}))
        .await;
    assert_eq!(a.recv().await["data"]["code"], 4301);
}

#[tokio::test]
async fn unknown_key_and_bad_protocol_close_with_pusher_codes() {
    let server = start(ws_config()).await;
    for (path, code) in [
        ("/app/wrong-key?protocol=7", 4001),
        (&format!("/app/{KEY}") as &str, 4008),
        (&format!("/app/{KEY}?protocol=3") as &str, 4007),
        (&format!("/app/{KEY}?protocol=abc") as &str, 4006),
        (&format!("/app/{KEY}?protocol=") as &str, 4006),
    ] {
        let ws = connect_raw(&server, path).await;
        let mut c = Client {
            ws,
            socket_id: String::new(),
            timeout: Duration::from_secs(5),
        };
        let err = c.recv().await;
        assert_eq!(
            (err["event"].as_str(), err["data"]["code"].as_u64()),
            (Some("pusher:error"), Some(code)),
            "{path}"
        );
        assert_eq!(u64::from(c.close_code().await), code, "{path}");
    }
}

#[tokio::test]
async fn malformed_messages_get_an_error_without_closing() {
    let server = start(ws_config()).await;
    let mut c = connect(&server).await;
    c.ws.send(Message::Text("not json".into())).await.unwrap();
    assert_eq!(c.recv().await["data"]["code"], 4302);
    let bad = c.subscribe("bad channel", None, None).await;
    assert_eq!(bad["event"], "pusher:subscription_error");
    c.send(json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(c.recv().await["event"], "pusher:pong");
}

#[tokio::test]
async fn subscriptions_per_connection_at_max_and_max_plus_one() {
    let server = start(ws_config()).await;
    let mut c = connect(&server).await;
    for i in 0..CONNECTION_CHANNELS_MAX {
        let ok = c.subscribe(&format!("c{i}"), None, None).await;
        assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    }
    let over = c.subscribe("one-more", None, None).await;
    assert_eq!(over["event"], "pusher:subscription_error");
}

#[tokio::test]
async fn messages_at_max_size_pass_and_larger_ones_close_the_connection() {
    let server = start(ws_config()).await;
    let mut c = connect(&server).await;
    let ping = json!({"event": "pusher:ping", "data": {}}).to_string();
    let padded = format!("{}{}", ping, " ".repeat(WS_MESSAGE_BYTES_MAX - ping.len()));
    assert_eq!(padded.len(), WS_MESSAGE_BYTES_MAX);
    c.ws.send(Message::Text(padded.into())).await.unwrap();
    assert_eq!(c.recv().await["event"], "pusher:pong");
    let over = format!(
        "{}{}",
        ping,
        " ".repeat(WS_MESSAGE_BYTES_MAX + 1 - ping.len())
    );
    c.ws.send(Message::Text(over.into())).await.unwrap();
    assert_eq!(c.close_code().await, 1009, "RFC 6455: message too big");
}

#[tokio::test]
async fn a_signed_in_connection_joins_presence_as_its_user_without_channel_data() {
    let server = start(ws_config()).await;
    let mut a = connect(&server).await;
    a.signin(r#"{"id":"u7","user_info":{"name":"Seven"}}"#)
        .await;
    assert_eq!(a.recv().await["event"], "pusher:signin_success");
    // What pusher-js sends when the authorizer returns only `auth` (signed socket_id:channel).
    let ok = a.subscribe_signed("presence-room", None).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(
        data_of(&ok),
        json!({"presence": {"ids": ["u7"], "hash": {"u7": {"name": "Seven"}}, "count": 1}})
    );

    // Not signed in, the member is unknown: refused.
    let mut b = connect(&server).await;
    let refused = b.subscribe_signed("presence-room", None).await;
    assert_eq!(refused["event"], "pusher:subscription_error");
    assert_eq!(refused["channel"], "presence-room");
    let ub = r#"{"user_id":"u2","user_info":{}}"#;
    let ok = b.subscribe_signed("presence-room", Some(ub)).await;
    assert_eq!(data_of(&ok)["presence"]["ids"], json!(["u2", "u7"]));
    let added = a.recv().await;
    assert_eq!(added["event"], "pusher_internal:member_added");
    assert_eq!(data_of(&added), json!({"user_id": "u2", "user_info": {}}));

    drop(a);
    let removed = b.recv().await;
    assert_eq!(removed["event"], "pusher_internal:member_removed");
    assert_eq!(data_of(&removed), json!({"user_id": "u7"}));
}

#[tokio::test]
async fn signin_opens_the_users_own_channel_and_no_other() {
    let server = start(ws_config()).await;
    let mut c = connect(&server).await;
    let before = c
        .subscribe("#server-to-user-u1", Some(String::new()), None)
        .await;
    assert_eq!(
        before["event"], "pusher:subscription_error",
        "not signed in"
    );
    let user_data = r#"{"id":"u1","user_info":{"name":"Ann"}}"#;
    c.signin(user_data).await;
    let ok = c.recv().await;
    assert_eq!(ok["event"], "pusher:signin_success");
    assert_eq!(
        data_of(&ok)["user_data"],
        user_data,
        "pusher-js reads the id from it"
    );
    assert_eq!(server.engine.realtime().user_connection_count("u1"), 1);
    // pusher-js subscribes with an empty auth, as for any public channel.
    let own = c
        .subscribe("#server-to-user-u1", Some(String::new()), None)
        .await;
    assert_eq!(own["event"], "pusher_internal:subscription_succeeded");
    let other = c
        .subscribe("#server-to-user-u2", Some(String::new()), None)
        .await;
    assert_eq!(other["event"], "pusher:subscription_error");
    let reserved = c.subscribe("#other", None, None).await;
    assert_eq!(reserved["event"], "pusher:subscription_error");
    server
        .engine
        .realtime()
        .publish("#server-to-user-u1", "note", json!({"n": 1}), None)
        .unwrap();
    let ev = c.recv().await;
    assert_eq!(
        (ev["event"].as_str(), ev["channel"].as_str(), data_of(&ev)),
        (Some("note"), Some("#server-to-user-u1"), json!({"n": 1}))
    );
}

#[tokio::test]
async fn a_bad_signin_closes_with_4009() {
    let server = start(ws_config()).await;
    let user_data = r#"{"id":"u1"}"#;
    let cases = [
        // Signed for another socket.
        (
            user_data.to_owned(),
            user_auth(KEY, SECRET, "1.1", user_data),
        ),
        // Signed, but no id.
        (r#"{"name":"x"}"#.to_owned(), String::new()),
        // Signed, but the id cannot name a channel.
        (r#"{"id":"a b"}"#.to_owned(), String::new()),
        // Signed, one byte over the limit.
        (
            format!(
                r#"{{"id":"u1","pad":"{}"}}"#,
                "x".repeat(USER_DATA_BYTES_MAX - 19)
            ),
            String::new(),
        ),
    ];
    for (data, auth) in cases {
        let mut c = connect(&server).await;
        if auth.is_empty() {
            c.signin(&data).await;
        } else {
            c.signin_with(&data, &auth).await;
        }
        let err = c.recv().await;
        assert_eq!(
            (err["event"].as_str(), err["data"]["code"].as_u64()),
            (Some("pusher:error"), Some(4009)),
            "{data}"
        );
        assert_eq!(c.close_code().await, 4009);
    }
    // At the limit it passes.
    let at_max = format!(
        r#"{{"id":"u1","pad":"{}"}}"#,
        "x".repeat(USER_DATA_BYTES_MAX - 20)
    );
    assert_eq!(at_max.len(), USER_DATA_BYTES_MAX);
    let mut c = connect(&server).await;
    c.signin(&at_max).await;
    assert_eq!(c.recv().await["event"], "pusher:signin_success");
}

#[tokio::test]
async fn terminate_connections_closes_every_connection_of_that_user_only() {
    const NOW_S: u64 = 1_700_000_000;
    let config = Config {
        realtime: ws_config(),
        ..Config::default()
    };
    let server = start_with_clock(config, ManualClock::shared(NOW_S * 1000)).await;
    let mut a1 = connect(&server).await;
    let mut a2 = connect(&server).await;
    let mut b = connect(&server).await;
    for (c, data) in [
        (&mut a1, r#"{"id":"a"}"#),
        (&mut a2, r#"{"id":"a"}"#),
        (&mut b, r#"{"id":"b"}"#),
    ] {
        c.signin(data).await;
        assert_eq!(c.recv().await["event"], "pusher:signin_success");
    }
    let path = "/apps/streamcache/users/a/terminate_connections";
    let body = "{}";
    let mut params = vec![
        ("auth_key".to_owned(), KEY.to_owned()),
        ("auth_timestamp".to_owned(), NOW_S.to_string()),
        ("auth_version".to_owned(), "1.0".to_owned()),
        ("body_md5".to_owned(), body_md5(body.as_bytes())),
    ];
    let sig = sign_request(SECRET, "POST", path, &params);
    params.push(("auth_signature".to_owned(), sig));
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let resp = reqwest::Client::new()
        .post(format!("http://{}{path}?{}", server.addr, query.join("&")))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for c in [&mut a1, &mut a2] {
        let err = c.recv().await;
        assert_eq!(
            (err["event"].as_str(), err["data"]["code"].as_u64()),
            (Some("pusher:error"), Some(4009))
        );
        assert_eq!(c.close_code().await, 4009, "pusher-js does not reconnect");
    }
    b.send(json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(b.recv().await["event"], "pusher:pong", "user b stays");
}

#[tokio::test(start_paused = true)]
async fn idle_connection_is_pinged_then_closed_with_4201() {
    let server = start(ws_config()).await;
    let mut c = connect(&server).await;
    c.timeout = Duration::from_secs(120);
    // Paused time jumps to the 30 s activity deadline once everything is idle.
    assert_eq!(c.recv().await["event"], "pusher:ping");
    let err = c.recv().await;
    assert_eq!(
        (err["event"].as_str(), err["data"]["code"].as_u64()),
        (Some("pusher:error"), Some(4201))
    );
    assert_eq!(c.close_code().await, 4201);

    // A client that answers stays connected.
    let mut d = connect(&server).await;
    d.timeout = Duration::from_secs(120);
    assert_eq!(d.recv().await["event"], "pusher:ping");
    d.send(json!({"event": "pusher:pong", "data": {}})).await;
    assert_eq!(
        d.recv().await["event"],
        "pusher:ping",
        "pinged again a full period later, not closed"
    );
}

#[tokio::test]
async fn shutdown_closes_connections_with_reconnect_code() {
    let server = start(ws_config()).await;
    let mut c = connect(&server).await;
    server.shutdown.trigger();
    let err = c.recv().await;
    assert_eq!(err["data"]["code"], 4200);
    assert_eq!(c.close_code().await, 4200);
}

#[tokio::test]
async fn subscriber_behind_the_replay_buffer_is_told_to_reconnect() {
    let server = start(realtime_config()).await; // a replay buffer of 8
    let mut c = connect(&server).await;
    c.subscribe("orders", None, None).await;
    // Past the live ring and the replay buffer both.
    for n in 0..SUBSCRIBER_QUEUE_EVENTS_MAX + 30 {
        server
            .engine
            .realtime()
            .publish("orders", "NewOrder", json!(n), None)
            .unwrap();
    }
    // Single-threaded runtime: all are published before the connection task runs again.
    let err = c.recv().await;
    assert_eq!(
        (err["event"].as_str(), err["data"]["code"].as_u64()),
        (Some("pusher:error"), Some(4200))
    );
    assert_eq!(c.close_code().await, 4200);
}

#[tokio::test]
async fn client_events_at_the_rate_limit_and_one_over() {
    let clock = streamcache::clock::ManualClock::shared(1_000);
    let config = streamcache::config::Config {
        realtime: RealtimeConfig {
            client_events: true,
            ..ws_config()
        },
        ..streamcache::config::Config::default()
    };
    let server = realtime_common::start_with_clock(config, clock.clone()).await;
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    a.subscribe_signed("private-chat", None).await;
    b.subscribe_signed("private-chat", None).await;
    let max = streamcache::realtime::CLIENT_EVENTS_PER_SECOND_MAX;
    for i in 0..=max {
        a.send(json!({"event": "client-n", "channel": "private-chat", "data": {"i": i}}))
            .await;
    }
    let refused = a.recv().await;
    assert_eq!(
        refused["data"]["code"], 4301,
        "the event over the limit is refused"
    );
    for i in 0..max {
        assert_eq!(data_of(&b.recv().await), json!({"i": i}));
    }
    clock.advance(Duration::from_secs(1));
    a.send(json!({"event": "client-n", "channel": "private-chat", "data": {"i": "next second"}}))
        .await;
    assert_eq!(data_of(&b.recv().await), json!({"i": "next second"}));
}

#[tokio::test]
async fn client_events_on_presence_channels_name_their_sender() {
    let server = start(client_events_config()).await;
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    a.subscribe_signed("presence-room", Some(r#"{"user_id":"alice"}"#))
        .await;
    b.subscribe_signed("presence-room", Some(r#"{"user_id":"bob"}"#))
        .await;
    assert_eq!(a.recv().await["event"], "pusher_internal:member_added");
    a.send(json!({"event": "client-wave", "channel": "presence-room", "data": {"hi": 1}}))
        .await;
    let got = b.recv().await;
    assert_eq!(got["event"], "client-wave");
    assert_eq!(got["user_id"], "alice");
    assert_eq!(data_of(&got), json!({"hi": 1}));
}

/// RFC 6455 §8.1: a text message that is not UTF-8 closes the connection with 1007.
#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let server = start(ws_config()).await;
    let mut c = connect(&server).await;
    let ping = json!({"event": "pusher:ping", "data": {}}).to_string();
    c.ws.send(Message::Text(ping.into())).await.unwrap();
    assert_eq!(c.recv().await["event"], "pusher:pong");
    let bad = b"{\"event\":\"pusher:ping\",\"data\":\"\xff\"}".to_vec();
    c.ws.send(Message::Frame(Frame::message(
        bad,
        OpCode::Data(Data::Text),
        true,
    )))
    .await
    .unwrap();
    assert_eq!(c.close_code().await, 1007);
}
