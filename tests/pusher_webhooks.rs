//! Capability: Pusher webhooks — `channel_occupied`/`channel_vacated`, `member_added`/
//! `member_removed` and `client_event` posted in Pusher's signed, batched format; retries with
//! backoff, the request timeout, queue overflow and the delivery metrics.
//!
//! Method: a real server on 127.0.0.1:0 (engine started, so the sender tasks run) on a
//! `ManualClock`, real WebSocket clients, and an in-test HTTP receiver (axum on 127.0.0.1:0)
//! that records every POST and answers as each test scripts it. Time moves only when a test
//! advances the clock; the tests wait on the receiver's channel, with a timeout as a hang guard
//! only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns unwrap and panic on failure"
)]

mod realtime_common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, KeyInit as _, Mac as _};
use realtime_common::ws::{Client, KEY, SECRET, connect};
use realtime_common::{Server, realtime_config, start_with_clock};
use serde_json::{Value, json};
use sha2::Sha256;
use streamcache::clock::{Clock as _, ManualClock};
use streamcache::config::Config;
use streamcache::realtime::{
    RealtimeConfig, WEBHOOK_QUEUE_EVENTS_MAX, WEBHOOK_REQUEST_TIMEOUT_MS, WEBHOOK_RETRIES_MAX,
    WebhookConfig, webhook_retry_backoff_ms,
};
use tokio::sync::{mpsc, oneshot};

/// How long a test waits for a POST before it fails (a hang guard, never a delay).
const HANG_GUARD: Duration = Duration::from_secs(20);

/// One recorded POST.
struct Post {
    headers: HeaderMap,
    body: Bytes,
}

impl Post {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn events(&self) -> Vec<Value> {
        self.json()["events"].as_array().unwrap().clone()
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }
}

/// How the receiver answers one POST.
enum Reply {
    Status(StatusCode),
    /// 200 once the sender side of the channel fires (or is dropped).
    Hold(oneshot::Receiver<()>),
    /// Never answers.
    Hang,
}

#[derive(Clone)]
struct ReceiverState {
    posts: mpsc::UnboundedSender<Post>,
    replies: Arc<Mutex<VecDeque<Reply>>>,
}

/// The webhook endpoint: records POSTs, answers from `replies` (200 once they run out).
struct Receiver {
    url: String,
    posts: mpsc::UnboundedReceiver<Post>,
    replies: Arc<Mutex<VecDeque<Reply>>>,
}

async fn record(State(s): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let reply = s.replies.lock().unwrap().pop_front();
    s.posts.send(Post { headers, body }).unwrap();
    match reply {
        None => StatusCode::OK,
        Some(Reply::Status(status)) => status,
        Some(Reply::Hold(release)) => {
            let _ = release.await;
            StatusCode::OK
        }
        Some(Reply::Hang) => std::future::pending().await,
    }
}

async fn receiver() -> Receiver {
    let (tx, posts) = mpsc::unbounded_channel();
    let replies = Arc::new(Mutex::new(VecDeque::new()));
    let state = ReceiverState {
        posts: tx,
        replies: replies.clone(),
    };
    let app = Router::new()
        .route("/pusher/webhook", post(record))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/pusher/webhook?app=test",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver {
        url,
        posts,
        replies,
    }
}

impl Receiver {
    fn reply(&self, reply: Reply) {
        self.replies.lock().unwrap().push_back(reply);
    }

    async fn next(&mut self) -> Post {
        tokio::time::timeout(HANG_GUARD, self.posts.recv())
            .await
            .expect("a webhook POST in time")
            .unwrap()
    }

    /// The next `n` events, however they were batched; every POST's signature is checked.
    async fn events(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            let post = self.next().await;
            check_signed(&post);
            out.extend(post.events());
        }
        assert_eq!(out.len(), n, "more events than expected: {out:?}");
        out
    }
}

/// hex HMAC-SHA256(secret, body), computed here independently of the server.
fn hmac_hex(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn check_signed(post: &Post) {
    assert_eq!(post.header("content-type"), "application/json");
    assert_eq!(post.header("x-pusher-key"), KEY);
    assert_eq!(post.header("x-pusher-signature"), hmac_hex(&post.body));
}

fn webhook(url: &str, types: &[&str]) -> WebhookConfig {
    WebhookConfig {
        url: url.to_owned(),
        event_types: types.iter().map(|&t| t.to_owned()).collect(),
        filter: None,
    }
}

/// The wall-clock time the manual clock starts at.
const T0_MS: u64 = 1_700_000_000_000;

/// A started server on a manual clock whose realtime settings are `realtime`.
async fn server(realtime: RealtimeConfig) -> (Server, Arc<ManualClock>) {
    let clock = ManualClock::shared(T0_MS);
    let config = Config {
        realtime: RealtimeConfig {
            replay_events: 256,
            ..realtime
        },
        ..Config::default()
    };
    let server = start_with_clock(config, clock.clone()).await;
    server.engine.start(server.shutdown.signal()).await.unwrap();
    (server, clock)
}

/// Realtime settings with one webhook to `url` for `types`, sent without a batch window.
fn hooked(url: &str, types: &[&str]) -> RealtimeConfig {
    RealtimeConfig {
        webhooks: vec![webhook(url, types)],
        webhook_batch_ms: 0,
        ..realtime_config()
    }
}

async fn subscribed(c: &mut Client, channel: &str) {
    let ok = c.subscribe(channel, None, None).await;
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
}

async fn join(c: &mut Client, channel: &str, user_id: &str) {
    let data = json!({"user_id": user_id, "user_info": {"name": user_id}}).to_string();
    let ok = c.subscribe_signed(channel, Some(&data)).await;
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
}

async fn unsubscribe(c: &mut Client, channel: &str) {
    c.send(json!({"event": "pusher:unsubscribe", "data": {"channel": channel}}))
        .await;
    // A ping answered means the server has handled the unsubscribe before it (frames already
    // queued for the connection come first).
    c.send(json!({"event": "pusher:ping", "data": {}})).await;
    while c.recv().await["event"] != "pusher:pong" {}
}

async fn metrics(server: &Server) -> String {
    reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn metric(text: &str, name: &str) -> u64 {
    let prefix = format!("{name}{{webhook=\"0\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{name} not on /metrics"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_public_channel_posts_occupied_once_and_vacated_when_the_last_subscriber_leaves() {
    let mut hook = receiver().await;
    let (server, _clock) =
        server(hooked(&hook.url, &["channel_occupied", "channel_vacated"])).await;
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    subscribed(&mut a, "room").await;
    let post = hook.next().await;
    check_signed(&post);
    assert_eq!(
        post.json(),
        json!({"time_ms": T0_MS, "events": [{"name": "channel_occupied", "channel": "room"}]})
    );
    // Neither a second subscriber nor the first one leaving changes occupancy; the next event
    // in the queue is therefore the vacated one.
    subscribed(&mut b, "room").await;
    unsubscribe(&mut a, "room").await;
    drop(b);
    assert_eq!(
        hook.events(1).await,
        [json!({"name": "channel_vacated", "channel": "room"})]
    );
}

#[tokio::test]
async fn presence_posts_member_events_per_user_not_per_connection() {
    let mut hook = receiver().await;
    let types = [
        "channel_occupied",
        "channel_vacated",
        "member_added",
        "member_removed",
    ];
    let (server, _clock) = server(hooked(&hook.url, &types)).await;
    let room = "presence-room";
    let (mut a, mut b, mut c) = (
        connect(&server).await,
        connect(&server).await,
        connect(&server).await,
    );
    join(&mut a, room, "u1").await;
    join(&mut b, room, "u1").await;
    join(&mut c, room, "u2").await;
    assert_eq!(
        hook.events(3).await,
        [
            json!({"name": "channel_occupied", "channel": room}),
            json!({"name": "member_added", "channel": room, "user_id": "u1"}),
            json!({"name": "member_added", "channel": room, "user_id": "u2"}),
        ]
    );
    // u1 keeps a connection: nothing. Then its last one goes.
    unsubscribe(&mut b, room).await;
    drop(a);
    assert_eq!(
        hook.events(1).await,
        [json!({"name": "member_removed", "channel": room, "user_id": "u1"})]
    );
    drop(c);
    assert_eq!(
        hook.events(2).await,
        [
            json!({"name": "member_removed", "channel": room, "user_id": "u2"}),
            json!({"name": "channel_vacated", "channel": room}),
        ]
    );
}

#[tokio::test]
async fn client_events_post_channel_event_data_and_sender() {
    let mut hook = receiver().await;
    let (server, _clock) = server(RealtimeConfig {
        client_events: true,
        ..hooked(&hook.url, &["client_event"])
    })
    .await;
    let (mut a, mut b) = (connect(&server).await, connect(&server).await);
    join(&mut a, "presence-chat", "u1").await;
    join(&mut b, "presence-chat", "u2").await;
    assert_eq!(a.recv().await["event"], "pusher_internal:member_added");
    a.send(json!({"event": "client-typing", "channel": "presence-chat", "data": {"x": 1}}))
        .await;
    let relayed = b.recv().await;
    let posted = hook.events(1).await;
    assert_eq!(
        posted,
        [json!({
            "name": "client_event",
            "channel": "presence-chat",
            "event": "client-typing",
            "data": relayed["data"],
            "socket_id": a.socket_id,
            "user_id": "u1",
        })]
    );
    assert_eq!(posted[0]["data"], r#"{"x":1}"#);
    // On a private channel there is no user id.
    let auth = |c: &Client| {
        streamcache::realtime::channel_auth(KEY, SECRET, &c.socket_id, "private-x", None)
    };
    let (auth_a, auth_b) = (auth(&a), auth(&b));
    assert_eq!(
        a.subscribe("private-x", Some(auth_a), None).await["event"],
        "pusher_internal:subscription_succeeded"
    );
    assert_eq!(
        b.subscribe("private-x", Some(auth_b), None).await["event"],
        "pusher_internal:subscription_succeeded"
    );
    a.send(json!({"event": "client-go", "channel": "private-x", "data": "\"text\""}))
        .await;
    assert_eq!(
        hook.events(1).await,
        [json!({
            "name": "client_event",
            "channel": "private-x",
            "event": "client-go",
            "data": b.recv().await["data"],
            "socket_id": a.socket_id,
        })]
    );
}

#[tokio::test]
async fn a_batch_gathers_the_events_of_its_window_on_the_clock() {
    let mut hook = receiver().await;
    let (server, clock) = server(RealtimeConfig {
        webhook_batch_ms: 250,
        ..hooked(&hook.url, &["channel_occupied"])
    })
    .await;
    let mut a = connect(&server).await;
    subscribed(&mut a, "one").await;
    subscribed(&mut a, "two").await;
    clock.advance(Duration::from_millis(250));
    let post = hook.next().await;
    check_signed(&post);
    assert_eq!(
        post.json(),
        json!({"time_ms": T0_MS + 250, "events": [
            {"name": "channel_occupied", "channel": "one"},
            {"name": "channel_occupied", "channel": "two"},
        ]})
    );
}

#[tokio::test]
async fn events_queued_behind_a_slow_post_go_in_batches_of_at_most_twenty() {
    let mut hook = receiver().await;
    let (server, _clock) = server(hooked(&hook.url, &["channel_occupied"])).await;
    let (release, held) = oneshot::channel();
    hook.reply(Reply::Hold(held));
    let mut a = connect(&server).await;
    subscribed(&mut a, "first").await;
    assert_eq!(hook.next().await.events().len(), 1);
    for n in 0..25 {
        subscribed(&mut a, &format!("c{n}")).await;
    }
    release.send(()).unwrap();
    let (second, third) = (hook.next().await, hook.next().await);
    check_signed(&second);
    check_signed(&third);
    let names = |p: &Post| -> Vec<String> {
        p.events()
            .iter()
            .map(|e| e["channel"].as_str().unwrap().to_owned())
            .collect()
    };
    let expected: Vec<String> = (0..25).map(|n| format!("c{n}")).collect();
    assert_eq!(names(&second), expected[..20]);
    assert_eq!(names(&third), expected[20..]);
}

#[tokio::test]
async fn a_failed_post_is_retried_after_the_backoff_with_the_same_signed_body() {
    let mut hook = receiver().await;
    let (server, clock) = server(hooked(&hook.url, &["channel_occupied", "channel_vacated"])).await;
    hook.reply(Reply::Status(StatusCode::INTERNAL_SERVER_ERROR));
    hook.reply(Reply::Status(StatusCode::OK));
    // The last POST is never answered, so the counters below cannot move meanwhile.
    hook.reply(Reply::Hang);
    let mut a = connect(&server).await;
    subscribed(&mut a, "room").await;
    let first = hook.next().await;
    clock.advance(Duration::from_millis(webhook_retry_backoff_ms(0)));
    let again = hook.next().await;
    check_signed(&again);
    assert_eq!(again.body, first.body);
    // The next event's POST comes after the retried batch was counted.
    unsubscribe(&mut a, "room").await;
    assert_eq!(hook.events(1).await[0]["name"], "channel_vacated");
    let text = metrics(&server).await;
    assert_eq!(
        metric(&text, "streamcache_realtime_webhook_requests_failed_total"),
        1
    );
    assert_eq!(
        metric(&text, "streamcache_realtime_webhook_events_sent_total"),
        1
    );
    assert_eq!(
        metric(&text, "streamcache_realtime_webhook_events_failed_total"),
        0
    );
}

#[tokio::test]
async fn a_post_without_an_answer_times_out_on_the_clock_and_is_retried() {
    let mut hook = receiver().await;
    let (server, clock) = server(hooked(&hook.url, &["channel_occupied"])).await;
    hook.reply(Reply::Hang);
    let mut a = connect(&server).await;
    subscribed(&mut a, "room").await;
    let first = hook.next().await;
    // The timeout is longer than the first backoff, so the retry follows it at once.
    clock.advance(Duration::from_millis(WEBHOOK_REQUEST_TIMEOUT_MS));
    assert_eq!(hook.next().await.body, first.body);
}

#[tokio::test]
async fn events_are_given_up_after_the_last_retry_and_counted() {
    let mut hook = receiver().await;
    let (server, clock) = server(hooked(&hook.url, &["channel_occupied", "channel_vacated"])).await;
    for _ in 0..=WEBHOOK_RETRIES_MAX {
        hook.reply(Reply::Status(StatusCode::SERVICE_UNAVAILABLE));
    }
    hook.reply(Reply::Hang);
    let mut a = connect(&server).await;
    subscribed(&mut a, "room").await;
    for retry in 0..=WEBHOOK_RETRIES_MAX {
        assert_eq!(hook.next().await.events()[0]["name"], "channel_occupied");
        if retry < WEBHOOK_RETRIES_MAX {
            clock.advance(Duration::from_millis(webhook_retry_backoff_ms(retry)));
        }
    }
    unsubscribe(&mut a, "room").await;
    assert_eq!(hook.events(1).await[0]["name"], "channel_vacated");
    let text = metrics(&server).await;
    assert_eq!(
        metric(&text, "streamcache_realtime_webhook_requests_failed_total"),
        u64::from(WEBHOOK_RETRIES_MAX) + 1
    );
    assert_eq!(
        metric(&text, "streamcache_realtime_webhook_events_failed_total"),
        1
    );
}

#[tokio::test]
async fn a_full_queue_drops_new_events_and_counts_them_at_max_and_max_plus_one() {
    let mut hook = receiver().await;
    let (server, _clock) =
        server(hooked(&hook.url, &["channel_occupied", "channel_vacated"])).await;
    let (release, held) = oneshot::channel();
    hook.reply(Reply::Hold(held));
    let hub = server.engine.realtime().clone();
    let first = hub.subscribe("first", None).unwrap();
    assert_eq!(hook.next().await.events().len(), 1);
    // The sender is inside the held POST; each subscribe-and-drop queues two events.
    for n in 0..WEBHOOK_QUEUE_EVENTS_MAX / 2 {
        drop(hub.subscribe(&format!("c{n}"), None).unwrap());
    }
    let dropped = || metric_now(&server, "streamcache_realtime_webhook_events_dropped_total");
    assert_eq!(
        dropped(),
        0,
        "a queue of exactly its capacity drops nothing"
    );
    drop(first);
    assert_eq!(dropped(), 1, "one more event is dropped");
    release.send(()).unwrap();
    let mut delivered = 0;
    while delivered < WEBHOOK_QUEUE_EVENTS_MAX {
        delivered += hook.next().await.events().len();
    }
    assert_eq!(delivered, WEBHOOK_QUEUE_EVENTS_MAX);
    let text = metrics(&server).await;
    assert_eq!(
        metric(&text, "streamcache_realtime_webhook_events_dropped_total"),
        1
    );
}

/// A webhook counter read straight from the registry (no request in between).
fn metric_now(server: &Server, name: &'static str) -> u64 {
    server
        .engine
        .metrics()
        .counter(name, "", vec![("webhook".to_owned(), "0".to_owned())])
        .get()
}

#[tokio::test]
async fn sse_streams_count_towards_occupancy_like_the_http_api() {
    let mut hook = receiver().await;
    let (server, clock) = server(RealtimeConfig {
        // The server notices the closed stream when its next keep-alive fails to go out.
        sse_keepalive_ms: 1000,
        ..hooked(&hook.url, &["channel_occupied", "channel_vacated"])
    })
    .await;
    let stream = reqwest::get(format!("http://{}/realtime/feed", server.addr))
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let post = hook.next().await;
    assert_eq!(
        post.json(),
        json!({"time_ms": clock.now_ms(), "events": [{"name": "channel_occupied", "channel": "feed"}]})
    );
    drop(stream);
    assert_eq!(
        hook.events(1).await,
        [json!({"name": "channel_vacated", "channel": "feed"})]
    );
}

#[tokio::test]
async fn a_stuck_webhook_does_not_hold_back_another_and_filters_pick_channels() {
    let mut stuck = receiver().await;
    let mut rooms = receiver().await;
    stuck.reply(Reply::Hang);
    let (server, _clock) = server(RealtimeConfig {
        webhooks: vec![
            webhook(&stuck.url, &["channel_occupied"]),
            WebhookConfig {
                filter: Some(streamcache::realtime::WebhookFilter {
                    channel_name_starts_with: Some("room-".into()),
                    channel_name_ends_with: None,
                }),
                ..webhook(&rooms.url, &["channel_occupied"])
            },
        ],
        webhook_batch_ms: 0,
        ..realtime_config()
    })
    .await;
    let mut a = connect(&server).await;
    subscribed(&mut a, "lobby").await;
    assert_eq!(stuck.next().await.events()[0]["channel"], "lobby");
    subscribed(&mut a, "room-1").await;
    assert_eq!(
        rooms.events(1).await,
        [json!({"name": "channel_occupied", "channel": "room-1"})],
        "the filtered webhook gets room-1 only, while the other one's POST hangs"
    );
}
