//! The `[realtime]` configuration section: the Pusher app, timeouts, the replay buffer and the
//! watchers. Persisted config record, so it carries serde derives.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ACTIVITY_TIMEOUT_S_MAX, Error, REPLAY_EVENTS_MAX, Result, WATCHERS_MAX, Watcher};

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
    /// The `retry:` reconnect delay sent once at the start of each SSE stream, in milliseconds.
    pub sse_retry_ms: u64,
    /// Interval between SSE keep-alive comments, in milliseconds.
    pub sse_keepalive_ms: u64,
    /// Seed for socket ids; unset derives one from the clock at start.
    pub socket_id_seed: Option<u64>,
    /// Change-feed watchers that publish channel events.
    pub watchers: Vec<WatcherConfig>,
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

    /// Checks ranges and compiles every watcher.
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
        if self.sse_retry_ms == 0 || self.sse_keepalive_ms < 1000 {
            return Err(bad(
                "sse_keepalive_ms",
                "retry must be > 0 and keep-alive ≥ 1000 ms".into(),
            ));
        }
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
    )
}
