//! The `[realtime]` configuration section: the Pusher app, timeouts, the replay buffer, the
//! watchers and the webhooks. Persisted config record, so it carries serde derives.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::webhook::WebhookTarget;
use super::{
    ACTIVITY_TIMEOUT_S_MAX, Error, REPLAY_EVENTS_MAX, Result, SSE_KEEPALIVE_MS_MIN, WATCHERS_MAX,
    WEBHOOK_BATCH_MS_MAX, WEBHOOKS_MAX, Watcher,
};

/// The default Pusher app id.
pub const DEFAULT_APP_ID: &str = "streamcache";
/// The default Pusher app key.
pub const DEFAULT_KEY: &str = "streamcache-key";
/// The default Pusher app secret; public knowledge, so a warning is logged when the HTTP
/// listener is reachable beyond loopback while it is in use.
pub const DEFAULT_SECRET: &str = "streamcache-secret";

/// `[realtime]`: the Pusher app, connection timeouts, replay and watchers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealtimeConfig {
    /// Pusher app id, the `{app_id}` of `/apps/{app_id}/…`.
    pub app_id: String,
    /// Pusher app key, the `{key}` of `/app/{key}` and of channel auth strings.
    pub key: String,
    /// Pusher app secret: signs channel auth and HTTP API requests.
    pub secret: String,
    /// Seconds without client traffic before the server pings; the same again without a reply
    /// closes the connection with 4201. Sent to clients in `connection_established`.
    pub activity_timeout_s: u64,
    /// Events kept per channel for `Last-Event-ID` replay and lag recovery.
    pub replay_events: usize,
    /// Whether `client-*` events from WebSocket clients are relayed (off: answered with 4301).
    pub client_events: bool,
    /// The `retry:` reconnect delay sent once at the start of each SSE stream, in milliseconds
    /// (at least 1).
    pub sse_retry_ms: u64,
    /// Interval between SSE keep-alive comments, in milliseconds (at least
    /// [`SSE_KEEPALIVE_MS_MIN`]).
    pub sse_keepalive_ms: u64,
    /// Seed for socket ids; unset derives one from the clock at start.
    pub socket_id_seed: Option<u64>,
    /// Change-feed watchers that publish channel events.
    pub watchers: Vec<WatcherConfig>,
    /// Webhooks: where channel existence, presence and client events are posted.
    pub webhooks: Vec<WebhookConfig>,
    /// How long a webhook batch waits for more events after its first one, in milliseconds
    /// (Pusher's 250); a batch also goes as soon as it holds
    /// [`WEBHOOK_BATCH_EVENTS_MAX`](super::WEBHOOK_BATCH_EVENTS_MAX) events.
    pub webhook_batch_ms: u64,
}

/// One `realtime.webhooks` entry, as soketi's app `webhooks` spell it: the events of
/// `event_types` (optionally only on channels that pass `filter`) are posted to `url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// An `http://host[:port][/path][?query]` URL (no TLS client: `https://` is refused).
    pub url: String,
    /// Event names: `channel_occupied`, `channel_vacated`, `member_added`, `member_removed`,
    /// `client_event`.
    pub event_types: Vec<String>,
    /// Only events on channels whose names pass it; absent passes every channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<WebhookFilter>,
}

/// A webhook's channel filter; both parts must hold when both are given (soketi's `filter`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFilter {
    /// The channel name starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_name_starts_with: Option<String>,
    /// The channel name ends with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_name_ends_with: Option<String>,
}

/// One `[[realtime.watchers]]` entry: `watch db.collection` (with an optional `$match`) →
/// channel, event name and payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatcherConfig {
    /// The watched namespace, `db.collection`.
    pub watch: String,
    /// Channel the events go to.
    pub channel: String,
    /// Event name.
    pub event: String,
    /// A MongoDB `$match` filter applied to the change event (paths such as `operationType`
    /// or `fullDocument.status`); absent matches every change.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
    /// A MongoDB projection of the payload document (`{"a": 1}` keeps, `{"a": 0}` drops);
    /// absent sends the full document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<Value>,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            app_id: DEFAULT_APP_ID.to_owned(),
            key: DEFAULT_KEY.to_owned(),
            secret: DEFAULT_SECRET.to_owned(),
            activity_timeout_s: 30,
            replay_events: 4096,
            client_events: false,
            sse_retry_ms: 2000,
            sse_keepalive_ms: 15_000,
            socket_id_seed: None,
            watchers: vec![WatcherConfig::default_orders()],
            webhooks: Vec::new(),
            webhook_batch_ms: 250,
        }
    }
}

impl WatcherConfig {
    /// The reference system's watcher: `shop.orders` inserts, replacements and updates that
    /// carry the full order (`fullDocument.orderNumber` exists; an update stream opened without
    /// `fullDocument: updateLookup` has none) → channel `orders`, event `NewOrder`, the document.
    #[must_use]
    pub fn default_orders() -> Self {
        Self {
            watch: "shop.orders".to_owned(),
            channel: "orders".to_owned(),
            event: "NewOrder".to_owned(),
            filter: Some(json!({
                "operationType": {"$in": ["insert", "replace", "update"]},
                "fullDocument.orderNumber": {"$exists": true},
            })),
            projection: None,
        }
    }
}

impl RealtimeConfig {
    /// Whether the well-known default secret is in use.
    #[must_use]
    pub fn uses_default_secret(&self) -> bool {
        self.secret == DEFAULT_SECRET
    }

    /// Checks every webhook (count, URL, event types, filter) and the batch window.
    ///
    /// # Errors
    /// [`Error::Config`] naming `webhooks` (with the entry's index) or `webhook_batch_ms`.
    pub fn check_webhooks(&self) -> Result<Vec<WebhookTarget>> {
        if self.webhook_batch_ms > WEBHOOK_BATCH_MS_MAX {
            return Err(Error::Config {
                setting: "webhook_batch_ms",
                reason: format!(
                    "{} is outside 0..={WEBHOOK_BATCH_MS_MAX}",
                    self.webhook_batch_ms
                ),
            });
        }
        if self.webhooks.len() > WEBHOOKS_MAX {
            return Err(Error::Config {
                setting: "webhooks",
                reason: format!("{} webhooks, at most {WEBHOOKS_MAX}", self.webhooks.len()),
            });
        }
        self.webhooks
            .iter()
            .enumerate()
            .map(|(index, w)| WebhookTarget::new(index, w))
            .collect()
    }

    /// Checks ranges, the webhooks, and compiles every watcher.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting, or [`Error::Watcher`] for a bad watcher.
    pub fn check(&self) -> Result<Vec<Watcher>> {
        let bad = |setting: &'static str, reason: String| Error::Config { setting, reason };
        for (setting, value) in [
            ("app_id", &self.app_id),
            ("key", &self.key),
            ("secret", &self.secret),
        ] {
            if value.is_empty() || value.contains(':') || value.contains('/') {
                return Err(bad(setting, "must be non-empty without `:` or `/`".into()));
            }
        }
        if !(1..=ACTIVITY_TIMEOUT_S_MAX).contains(&self.activity_timeout_s) {
            return Err(bad(
                "activity_timeout_s",
                format!(
                    "{} is outside 1..={ACTIVITY_TIMEOUT_S_MAX}",
                    self.activity_timeout_s
                ),
            ));
        }
        if !(1..=REPLAY_EVENTS_MAX).contains(&self.replay_events) {
            return Err(bad(
                "replay_events",
                format!("{} is outside 1..={REPLAY_EVENTS_MAX}", self.replay_events),
            ));
        }
        if self.sse_retry_ms == 0 {
            return Err(bad("sse_retry_ms", "must be at least 1 (ms)".into()));
        }
        if self.sse_keepalive_ms < SSE_KEEPALIVE_MS_MIN {
            return Err(bad(
                "sse_keepalive_ms",
                format!(
                    "{} is below {SSE_KEEPALIVE_MS_MIN} (ms)",
                    self.sse_keepalive_ms
                ),
            ));
        }
        self.check_webhooks()?;
        if self.watchers.len() > WATCHERS_MAX {
            return Err(bad(
                "watchers",
                format!("{} watchers, at most {WATCHERS_MAX}", self.watchers.len()),
            ));
        }
        self.watchers
            .iter()
            .enumerate()
            .map(|(index, w)| Watcher::new(index, w))
            .collect()
    }
}

/// The commented `[realtime]` section of `streamcache config default`; parsing it gives
/// [`RealtimeConfig::default`].
#[must_use]
pub fn default_toml_section() -> String {
    use super::WEBHOOK_BATCH_EVENTS_MAX;
    let d = RealtimeConfig::default();
    format!(
        "\n[realtime]\n\
         # Pusher app: WebSocket /app/{{key}}, HTTP API /apps/{{app_id}}/…; the secret signs channel auth and\n\
         # API requests. Change it before listening beyond loopback (a warning is logged otherwise).\n\
         app_id = \"{}\"\n\
         key = \"{}\"\n\
         secret = \"{}\"\n\
         # Seconds of client silence before the server pings; as long again without a reply closes the\n\
         # connection with 4201 (1..={ACTIVITY_TIMEOUT_S_MAX}).\n\
         activity_timeout_s = {}\n\
         # Events kept per channel for SSE Last-Event-ID replay and slow-subscriber recovery (1..={REPLAY_EVENTS_MAX}).\n\
         replay_events = {}\n\
         # Relay client-* events between WebSocket clients on private-/presence- channels.\n\
         client_events = {}\n\
         # SSE: reconnect delay sent once per stream, and the keep-alive comment interval, in milliseconds.\n\
         sse_retry_ms = {}\n\
         sse_keepalive_ms = {}\n\
         # Fixed seed for socket ids; unset derives one from the clock at start.\n\
         # socket_id_seed = 42\n\
         \n\
         # Webhooks, in Pusher's format: a POST of {{\"time_ms\":…,\"events\":[…]}} with X-Pusher-Key and\n\
         # X-Pusher-Signature = hex HMAC-SHA256(secret, body). event_types: channel_occupied, channel_vacated,\n\
         # member_added, member_removed, client_event; an optional filter keeps channels by name prefix/suffix.\n\
         # http:// URLs only (there is no TLS client; point https endpoints at a local TLS proxy). At most {WEBHOOKS_MAX}.\n\
         # webhooks = [{{ url = \"http://127.0.0.1:8000/pusher/webhook\", event_types = [\"member_added\", \"member_removed\"], filter = {{ channel_name_starts_with = \"presence-\" }} }}]\n\
         webhooks = []\n\
         # How long a webhook batch (at most {WEBHOOK_BATCH_EVENTS_MAX} events) waits for more after its first event, in ms (0..={WEBHOOK_BATCH_MS_MAX}).\n\
         webhook_batch_ms = {}\n\
         \n\
         # Watchers: change events on `watch` (db.collection) that pass `match` (MongoDB $match on the\n\
         # change event) are published as `event` on `channel`; the payload is fullDocument, reduced by\n\
         # an optional `projection` such as {{ orderNumber = 1, status = 1 }}.\n\
         [[realtime.watchers]]\n\
         watch = \"shop.orders\"\n\
         channel = \"orders\"\n\
         event = \"NewOrder\"\n\
         match = {{ operationType = {{ \"$in\" = [\"insert\", \"replace\", \"update\"] }}, \"fullDocument.orderNumber\" = {{ \"$exists\" = true }} }}\n",
        d.app_id,
        d.key,
        d.secret,
        d.activity_timeout_s,
        d.replay_events,
        d.client_events,
        d.sse_retry_ms,
        d.sse_keepalive_ms,
        d.webhook_batch_ms,
    )
}
