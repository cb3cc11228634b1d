//! Real-time fan-out: the channel hub, change-feed watchers and the Pusher protocol 7 logic.
//!
//! - [`Hub`]: one monotonic event id per channel, a bounded replay buffer, and fan-out to any
//!   number of [`Subscription`]s with explicit lag handling (recover from the replay buffer, or
//!   tell the subscriber to resync). Presence membership, signed-in users (`pusher:signin`, for
//!   `terminate_connections`) and socket ids live here too.
//! - Pusher protocol pieces without any HTTP framework: channel names and kinds, client message
//!   parsing, server frames, channel authorisation and user authentication (HMAC-SHA256, checked
//!   in constant time) and HTTP API request signing.
//! - [`Watcher`]: a pure function from a MongoDB-shaped change event to a channel event.
//! - Webhooks: the events the hub emits for them ([`WebhookKind`]), the bounded queues between
//!   the hub and the engine's sender tasks ([`WebhookSink`], [`WebhookQueue`]), the body and
//!   its signature.
//!
//! What does not live here: sockets, axum, the history change feed. The API layer
//! (`api::pusher`, `api::realtime`) drives the hub; the pipeline feeds watchers.
//!
//! ```
//! use streamcache::clock::SystemClock;
//! use streamcache::realtime::{Delivery, Hub, RealtimeConfig};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let hub = Hub::new(&RealtimeConfig::default(), 7, SystemClock::shared());
//! let mut sub = hub.subscribe("orders", None)?;
//! let id = hub.publish("orders", "NewOrder", serde_json::json!({"orderNumber": 1}), None)?;
//! let Delivery::Event(event) = sub.recv().await else { unreachable!() };
//! assert_eq!((event.id(), event.name(), event.data()), (id, "NewOrder", r#"{"orderNumber":1}"#));
//! # Ok::<(), streamcache::realtime::Error>(())
//! # }).unwrap();
//! ```

mod config;
mod error;
mod filter;
mod hub;
mod presence;
mod protocol;
mod rate;
mod signing;
mod watcher;
mod webhook;

pub use config::{
    DEFAULT_APP_ID, DEFAULT_KEY, DEFAULT_SECRET, RealtimeConfig, WatcherConfig, WebhookConfig,
    WebhookFilter, default_toml_section,
};
pub use error::{Error, Result};
pub use hub::{
    ConnectionGuard, Delivery, EVENT_ID_NOT_KEPT, Event, EventId, Hub, IDS_PER_MS, Start,
    Subscription, UserGuard,
};
pub use presence::{Member, PresenceSnapshot};
pub use protocol::{
    ChannelKind, ClientMessage, ErrorCode, EventData, SERVER_TO_USER_PREFIX, SocketId,
    check_channel_name, check_event_name, check_published_event_name, frame_connection_established,
    frame_error, frame_error_without_code, frame_member_added, frame_member_removed, frame_ping,
    frame_pong, frame_signin_success, frame_subscription_error, frame_subscription_succeeded,
    parse_client_message, parse_presence_data, parse_signed_in_user, parse_user_data,
    server_to_user_id,
};
pub use rate::RateWindow;
pub use signing::{
    SignedRequest, body_md5, channel_auth, check_channel_auth, check_request, check_user_auth,
    hmac_sha256_hex, sign_request, user_auth, webhook_signature,
};
pub use watcher::{PayloadField, Watcher};
pub use webhook::{
    WebhookEvent, WebhookKind, WebhookQueue, WebhookSink, WebhookTarget, encode_webhook_body,
    webhook_labels, webhook_retry_backoff_ms,
};

// ---- Limits ------------------------------------------------------------------------------

/// Longest channel name, in characters, prefix (`private-`, `presence-`, `#server-to-user-`)
/// included (Pusher's limit).
pub const CHANNEL_NAME_CHARS_MAX: usize = 164;
/// Longest event name, in characters (Pusher's limit).
pub const EVENT_NAME_CHARS_MAX: usize = 200;
/// Largest event payload, in bytes of JSON text (Pusher's 10 KB limit; beyond it the HTTP API
/// answers 413).
pub const EVENT_DATA_BYTES_MAX: usize = 10 * 1024;
/// Most channels one HTTP API publish may name (Pusher's limit).
pub const PUBLISH_CHANNELS_MAX: usize = 100;
/// Most events in one `batch_events` request (Pusher's limit).
pub const BATCH_EVENTS_MAX: usize = 10;
/// Most channels the hub keeps at once besides the pinned ones ([`PINNED_CHANNELS_MAX`]); beyond
/// it an idle channel (no subscriber) is dropped to make room. If none is idle, a subscribe
/// fails ([`Error::HubFull`]) and a publish to a channel the hub does not hold is delivered to
/// no one and not kept, as nobody can be subscribed to it ([`EVENT_ID_NOT_KEPT`]). With
/// [`REPLAY_BYTES_MAX`] this bounds client channels' replay memory to 1 GiB in the worst case.
pub const HUB_CHANNELS_MAX: usize = 1024;
/// Most channels the hub keeps for the server's own publishers (`Hub::pin`: one per watcher
/// channel), outside [`HUB_CHANNELS_MAX`]: clients cannot crowd them out.
pub const PINNED_CHANNELS_MAX: usize = WATCHERS_MAX;
/// Most bytes of event data one channel's replay buffer keeps; older events are dropped first.
pub const REPLAY_BYTES_MAX: usize = 1024 * 1024;
/// Ceiling for `realtime.replay_events`: events kept per channel for `Last-Event-ID` replay and
/// lag recovery.
pub const REPLAY_EVENTS_MAX: usize = 100_000;
/// Events a live subscriber may fall behind before it must recover from the replay buffer:
/// the live ring of every channel, whatever `replay_events` is.
pub const SUBSCRIBER_QUEUE_EVENTS_MAX: usize = 256;
/// Most channels one WebSocket connection may be subscribed to at once.
pub const CONNECTION_CHANNELS_MAX: usize = 100;
/// Most WebSocket connections and SSE streams at once; the next WebSocket is refused with 4100
/// (over capacity, pusher-js reconnects after a backoff), the next SSE stream is ended at once
/// with `retry:` [`SSE_OVER_CAPACITY_RETRY_MS`] (`EventSource` reconnects after it; a non-200
/// status would stop it for good).
pub const CONNECTIONS_MAX: usize = 10_000;
/// The reconnect delay (`retry:`, milliseconds) of an SSE stream refused over
/// [`CONNECTIONS_MAX`].
pub const SSE_OVER_CAPACITY_RETRY_MS: u64 = 10_000;
/// Largest WebSocket message accepted from a client, in bytes.
pub const WS_MESSAGE_BYTES_MAX: usize = 32 * 1024;
/// Most client events one connection may send per second (Pusher's limit); more get 4301.
pub const CLIENT_EVENTS_PER_SECOND_MAX: u32 = 10;
/// Most distinct users on one presence channel (Pusher's limit).
pub const PRESENCE_MEMBERS_MAX: usize = 100;
/// Longest presence `user_id`, in characters (Pusher's limit).
pub const USER_ID_CHARS_MAX: usize = 128;
/// Largest presence `channel_data`, in bytes (Pusher limits `user_info` to 1 KB).
pub const CHANNEL_DATA_BYTES_MAX: usize = 1024;
/// Largest sign-in `user_data`, in bytes: the same 1 KB as presence data.
pub const USER_DATA_BYTES_MAX: usize = 1024;
/// Deepest nesting of a watcher `match` filter.
pub const MATCH_DEPTH_MAX: usize = 16;
/// Longest `$regex` pattern of a watcher `match` filter, in bytes (as the pipeline's routes).
pub const MATCH_REGEX_BYTES_MAX: usize = 1024;
/// Largest compiled `$regex` of a watcher `match` filter, in bytes (the `regex` crate's size
/// limit), so a short pattern cannot blow up memory either.
pub const MATCH_REGEX_COMPILED_BYTES_MAX: usize = 1024 * 1024;
/// Most values of one `$in` or `$nin` of a watcher `match` filter (each is compared with every
/// change event's field).
pub const MATCH_IN_VALUES_MAX: usize = 1024;
/// Most watchers in the configuration.
pub const WATCHERS_MAX: usize = 64;
/// Longest and shortest `activity_timeout_s`; pusher-js uses min(120, server value).
pub const ACTIVITY_TIMEOUT_S_MAX: u64 = 120;
/// Shortest `sse_keepalive_ms`: a keep-alive comment at most once a second per stream.
pub const SSE_KEEPALIVE_MS_MIN: u64 = 1000;
/// How far `auth_timestamp` of a signed HTTP API request may be from the server's clock, in
/// seconds (Pusher's window).
pub const AUTH_TIMESTAMP_SKEW_S_MAX: u64 = 600;

/// Most webhooks in the configuration; each has its own queue and sender task.
pub const WEBHOOKS_MAX: usize = 16;
/// Longest webhook URL, in bytes.
pub const WEBHOOK_URL_BYTES_MAX: usize = 2048;
/// Most entries in one webhook's `event_types` (Pusher names six event types).
pub const WEBHOOK_EVENT_TYPES_MAX: usize = 6;
/// Events one webhook's queue holds while its sender is busy (a POST in flight or waiting to be
/// retried); beyond it new events are dropped and counted. With client events of at most
/// [`EVENT_DATA_BYTES_MAX`] this bounds a queue to about 10 MiB.
pub const WEBHOOK_QUEUE_EVENTS_MAX: usize = 1024;
/// Most events in one webhook POST (Pusher batches up to 20).
pub const WEBHOOK_BATCH_EVENTS_MAX: usize = 20;
/// Ceiling for `realtime.webhook_batch_ms`, the time a batch waits for more events.
pub const WEBHOOK_BATCH_MS_MAX: u64 = 1000;
/// How long one webhook POST may take, from connecting to the response's status, in
/// milliseconds (Pusher expects the answer within 4 s).
pub const WEBHOOK_REQUEST_TIMEOUT_MS: u64 = 4000;
/// Retries of a failed webhook POST (an error, a timeout or a non-2xx status) before its events
/// are given up.
pub const WEBHOOK_RETRIES_MAX: u32 = 8;
/// Wait before the first retry, in milliseconds; doubled for each next one, so the retries
/// span about 4 minutes (Pusher retries for 5).
pub const WEBHOOK_RETRY_BACKOFF_MS_MIN: u64 = 1000;

const _: () = assert!(SUBSCRIBER_QUEUE_EVENTS_MAX <= REPLAY_EVENTS_MAX);
const _: () = assert!(WEBHOOK_BATCH_EVENTS_MAX <= WEBHOOK_QUEUE_EVENTS_MAX);
const _: () = assert!(WEBHOOK_EVENT_TYPES_MAX >= webhook::KIND_COUNT);
const _: () = assert!(CHANNEL_DATA_BYTES_MAX <= WS_MESSAGE_BYTES_MAX);
const _: () = assert!(USER_DATA_BYTES_MAX <= WS_MESSAGE_BYTES_MAX);
// A signed-in user's channel name, prefix and id, must pass `check_channel_name`.
const _: () =
    assert!(protocol::SERVER_TO_USER_PREFIX.len() + USER_ID_CHARS_MAX <= CHANNEL_NAME_CHARS_MAX);
const _: () = assert!(EVENT_DATA_BYTES_MAX < WS_MESSAGE_BYTES_MAX);
const _: () = assert!(EVENT_DATA_BYTES_MAX <= REPLAY_BYTES_MAX);
