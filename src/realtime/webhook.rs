//! Pusher webhooks without HTTP: the event kinds, which webhook wants which event
//! ([`WebhookTarget`]), the bounded per-webhook queues the hub fills ([`WebhookSink`]) and the
//! engine's sender tasks drain ([`WebhookQueue`]), the JSON body and the retry schedule. The
//! engine (`src/engine/webhooks.rs`) batches, signs and posts.
//!
//! The hub never waits on a webhook: it emits an event with `try_send`, under the lock that
//! orders it (a channel's state for occupancy, so `channel_occupied` and `channel_vacated` of a
//! channel alternate in every queue). A full queue drops the event, counts it in
//! `streamcache_realtime_webhook_events_dropped_total` and logs one warning until the queue has
//! room again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use tokio::sync::mpsc::{self, error::TrySendError};

use super::config::{WebhookConfig, WebhookFilter};
use super::{
    CHANNEL_NAME_CHARS_MAX, Error, Result, WEBHOOK_EVENT_TYPES_MAX, WEBHOOK_QUEUE_EVENTS_MAX,
    WEBHOOK_RETRY_BACKOFF_MS_MIN, WEBHOOK_URL_BYTES_MAX,
};
use crate::clock::SharedClock;
use crate::metrics::{Counter, Registry};

/// A webhook event type, as `event_types` and each event's `name` spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    /// A channel got its first subscriber.
    ChannelOccupied,
    /// A channel lost its last subscriber.
    ChannelVacated,
    /// A user id joined a presence channel (its first connection there).
    MemberAdded,
    /// A user id left a presence channel (its last connection there).
    MemberRemoved,
    /// A client relayed a `client-` event.
    ClientEvent,
}

impl WebhookKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::ChannelOccupied,
        Self::ChannelVacated,
        Self::MemberAdded,
        Self::MemberRemoved,
        Self::ClientEvent,
    ];

    /// The event's `name`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ChannelOccupied => "channel_occupied",
            Self::ChannelVacated => "channel_vacated",
            Self::MemberAdded => "member_added",
            Self::MemberRemoved => "member_removed",
            Self::ClientEvent => "client_event",
        }
    }

    /// The kind named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kind's bit in a set of kinds.
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// How many kinds there are.
pub(crate) const KIND_COUNT: usize = WebhookKind::ALL.len();

/// Pusher's event type for cache channels, which this server does not have.
const CACHE_MISS: &str = "cache_miss";

/// A checked webhook: where to post and what it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// Position in `realtime.webhooks` (the `webhook` label of its metrics).
    index: usize,
    /// The URL as configured.
    url: String,
    /// `host:port` to connect to.
    address: String,
    /// The `Host` header: the URL's authority.
    host: String,
    /// The request target: path and query.
    path: String,
    /// The wanted kinds, one bit each.
    kinds: u8,
    /// The channel filter.
    filter: WebhookFilter,
}

impl WebhookTarget {
    /// Checks `config`, entry `index` of `realtime.webhooks`.
    ///
    /// # Errors
    /// [`Error::Config`] naming `webhooks`, the index and what is wrong.
    pub fn new(index: usize, config: &WebhookConfig) -> Result<Self> {
        let bad = |reason: String| Error::Config {
            setting: "webhooks",
            reason: format!("webhook {index}: {reason}"),
        };
        let (address, host, path) = parse_url(&config.url).map_err(|r| bad(format!("url {r}")))?;
        let types = &config.event_types;
        if types.is_empty() || types.len() > WEBHOOK_EVENT_TYPES_MAX {
            return Err(bad(format!(
                "event_types lists {} entries, 1..={WEBHOOK_EVENT_TYPES_MAX} allowed",
                types.len()
            )));
        }
        let mut kinds = 0;
        for name in types {
            let kind = WebhookKind::parse(name).ok_or_else(|| {
                bad(if name == CACHE_MISS {
                    "event type `cache_miss` is about cache channels (cache-…), which this server \
                     does not have"
                        .to_owned()
                } else {
                    let known: Vec<&str> = WebhookKind::ALL.iter().map(|k| k.name()).collect();
                    format!("unknown event type `{name}` (known: {})", known.join(", "))
                })
            })?;
            kinds |= kind.bit();
        }
        let filter = config.filter.clone().unwrap_or_default();
        for part in [
            &filter.channel_name_starts_with,
            &filter.channel_name_ends_with,
        ]
        .into_iter()
        .flatten()
        {
            let len = part.chars().count();
            if len > CHANNEL_NAME_CHARS_MAX {
                return Err(bad(format!(
                    "filter of {len} characters, at most {CHANNEL_NAME_CHARS_MAX} (a channel name's limit)"
                )));
            }
        }
        Ok(Self {
            index,
            url: config.url.clone(),
            address,
            host,
            path,
            kinds,
            filter,
        })
    }

    /// Position in `realtime.webhooks`.
    #[must_use]
    pub fn index(&self) -> usize {
        self.index
    }

    /// The URL as configured.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `host:port` to connect to.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The `Host` header.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The request target (path and query).
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether this webhook wants events of `kind` on `channel`.
    #[must_use]
    pub fn wants(&self, kind: WebhookKind, channel: &str) -> bool {
        let f = &self.filter;
        self.kinds & kind.bit() != 0
            && f.channel_name_starts_with
                .as_deref()
                .is_none_or(|p| channel.starts_with(p))
            && f.channel_name_ends_with
                .as_deref()
                .is_none_or(|s| channel.ends_with(s))
    }
}

/// Splits an `http://` URL into the address to connect to, the `Host` header and the request
/// target; the error says what is wrong.
fn parse_url(url: &str) -> std::result::Result<(String, String, String), String> {
    if url.len() > WEBHOOK_URL_BYTES_MAX {
        return Err(format!(
            "of {} bytes, at most {WEBHOOK_URL_BYTES_MAX}",
            url.len()
        ));
    }
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "`{url}`: https:// needs TLS, and this server has no TLS client; give an http:// \
                 URL (e.g. a TLS-terminating proxy on loopback)"
            ));
        }
        _ => return Err(format!("`{url}`: only http:// URLs are supported")),
    }
    let authority = uri
        .authority()
        .filter(|a| !a.host().is_empty())
        .ok_or_else(|| format!("`{url}` has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!("`{url}`: credentials in the URL are not supported"));
    }
    let port = authority.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    Ok((
        format!("{}:{port}", authority.host()),
        authority.as_str().to_owned(),
        if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        },
    ))
}

/// What a `client_event` webhook event carries besides the channel.
#[derive(Debug)]
struct ClientEventInfo {
    /// The client event's name.
    event: String,
    /// `data` as the relayed Pusher frame carries it (a string).
    data: String,
    /// The sender's socket id.
    socket_id: String,
}

/// One webhook event, as queued for a webhook.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    /// Its type.
    kind: WebhookKind,
    /// The channel.
    channel: Arc<str>,
    /// The presence user id (member events, client events on presence channels).
    user_id: Option<Arc<str>>,
    /// Client events' name, data and sender.
    client: Option<Arc<ClientEventInfo>>,
    /// The injected clock's monotonic reading when the hub emitted it.
    at_ns: u64,
}

impl WebhookEvent {
    /// Its type.
    #[must_use]
    pub fn kind(&self) -> WebhookKind {
        self.kind
    }

    /// The channel.
    #[must_use]
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The monotonic clock reading when it was emitted (a batch's window starts there).
    #[must_use]
    pub fn emitted_ns(&self) -> u64 {
        self.at_ns
    }
}

/// The POST body for `events`: `{"time_ms": …, "events": [{"name": …, "channel": …, …}]}`, keys
/// in Pusher's order (`event`, `data`, `socket_id`, `user_id` after `name` and `channel`, each
/// only where it applies).
#[must_use]
pub fn encode_webhook_body(time_ms: u64, events: &[WebhookEvent]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        time_ms: u64,
        events: Vec<Item<'a>>,
    }
    #[derive(Serialize)]
    struct Item<'a> {
        name: &'static str,
        channel: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        event: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        socket_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<&'a str>,
    }
    let body = Body {
        time_ms,
        events: events
            .iter()
            .map(|e| {
                let client = e.client.as_deref();
                Item {
                    name: e.kind.name(),
                    channel: &e.channel,
                    event: client.map(|c| c.event.as_str()),
                    data: client.map(|c| c.data.as_str()),
                    socket_id: client.map(|c| c.socket_id.as_str()),
                    user_id: e.user_id.as_deref(),
                }
            })
            .collect(),
    };
    // Serialising strings and integers into a `Vec` cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// How long to wait before retry `retry` (0 for the first) of a failed POST, in milliseconds:
/// [`WEBHOOK_RETRY_BACKOFF_MS_MIN`] doubled per retry.
#[must_use]
pub fn webhook_retry_backoff_ms(retry: u32) -> u64 {
    WEBHOOK_RETRY_BACKOFF_MS_MIN.saturating_mul(1 << retry.min(16))
}

/// One webhook's end of the hub's sink.
#[derive(Debug)]
struct Lane {
    /// The webhook.
    target: Arc<WebhookTarget>,
    /// Its queue.
    tx: mpsc::Sender<WebhookEvent>,
    /// Events dropped because the queue was full (or its sender had stopped).
    dropped: Arc<Counter>,
    /// Whether the last event found the queue full (one warning per overflow).
    overflowing: AtomicBool,
}

/// The hub's side of the webhooks: one bounded queue per webhook.
#[derive(Debug)]
pub struct WebhookSink {
    /// Stamps each event ([`WebhookEvent::emitted_ns`]).
    clock: SharedClock,
    /// One lane per webhook.
    lanes: Vec<Lane>,
    /// Every kind some webhook wants, one bit each.
    kinds: u8,
}

/// A sender task's side of one webhook: the target and its queue.
#[derive(Debug)]
pub struct WebhookQueue {
    /// The webhook.
    target: Arc<WebhookTarget>,
    /// Events from the hub.
    rx: mpsc::Receiver<WebhookEvent>,
}

impl WebhookQueue {
    /// The webhook.
    #[must_use]
    pub fn target(&self) -> &WebhookTarget {
        &self.target
    }

    /// The next event; `None` once the hub is gone.
    pub async fn recv(&mut self) -> Option<WebhookEvent> {
        self.rx.recv().await
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<WebhookEvent> {
        self.rx.try_recv().ok()
    }
}

impl WebhookSink {
    /// A sink with one queue of [`WEBHOOK_QUEUE_EVENTS_MAX`] events per target; the queues'
    /// receiving ends are returned for the sender tasks. Drops are counted in `metrics`.
    #[must_use]
    pub fn new(
        targets: Vec<WebhookTarget>,
        clock: SharedClock,
        metrics: &Registry,
    ) -> (Self, Vec<WebhookQueue>) {
        let mut lanes = Vec::with_capacity(targets.len());
        let mut queues = Vec::with_capacity(targets.len());
        let mut kinds = 0;
        for target in targets {
            kinds |= target.kinds;
            let target = Arc::new(target);
            let (tx, rx) = mpsc::channel(WEBHOOK_QUEUE_EVENTS_MAX);
            let dropped = metrics.counter(
                "streamcache_realtime_webhook_events_dropped_total",
                "Webhook events dropped because the webhook's queue was full.",
                webhook_labels(&target),
            );
            lanes.push(Lane {
                target: target.clone(),
                tx,
                dropped,
                overflowing: AtomicBool::new(false),
            });
            queues.push(WebhookQueue { target, rx });
        }
        (
            Self {
                clock,
                lanes,
                kinds,
            },
            queues,
        )
    }

    /// Whether any webhook wants events of `kind` (on some channel).
    #[must_use]
    pub fn wants(&self, kind: WebhookKind) -> bool {
        self.kinds & kind.bit() != 0
    }

    /// Queues a channel existence event.
    pub(crate) fn channel_event(&self, kind: WebhookKind, channel: &str) {
        self.emit(kind, channel, None, None);
    }

    /// Queues a member event.
    pub(crate) fn member_event(&self, kind: WebhookKind, channel: &str, user_id: &str) {
        self.emit(kind, channel, Some(user_id), None);
    }

    /// Queues a `client_event`; `data` is the string the relayed frame carries.
    pub(crate) fn client_event(
        &self,
        channel: &str,
        event: &str,
        data: String,
        socket_id: &str,
        user_id: Option<&str>,
    ) {
        let info = ClientEventInfo {
            event: event.to_owned(),
            data,
            socket_id: socket_id.to_owned(),
        };
        self.emit(WebhookKind::ClientEvent, channel, user_id, Some(info));
    }

    fn emit(
        &self,
        kind: WebhookKind,
        channel: &str,
        user_id: Option<&str>,
        client: Option<ClientEventInfo>,
    ) {
        let mut lanes = self.lanes.iter().filter(|l| l.target.wants(kind, channel));
        let Some(first) = lanes.next() else {
            return;
        };
        let event = WebhookEvent {
            kind,
            channel: Arc::from(channel),
            user_id: user_id.map(Arc::from),
            client: client.map(Arc::new),
            at_ns: self.clock.monotonic_ns(),
        };
        for lane in std::iter::once(first).chain(lanes) {
            match lane.tx.try_send(event.clone()) {
                Ok(()) => {
                    if lane.overflowing.swap(false, Ordering::Relaxed) {
                        tracing::info!(webhook = lane.target.index, "webhook queue has room again");
                    }
                }
                Err(TrySendError::Full(_)) => {
                    lane.dropped.inc();
                    if !lane.overflowing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            webhook = lane.target.index,
                            url = %lane.target.url,
                            capacity = WEBHOOK_QUEUE_EVENTS_MAX,
                            "webhook queue is full; dropping its events until the sender catches up"
                        );
                    }
                }
                // The sender task has stopped (shutdown): nothing will send it.
                Err(TrySendError::Closed(_)) => lane.dropped.inc(),
            }
        }
    }
}

/// The labels of one webhook's metrics: its position in `realtime.webhooks`.
#[must_use]
pub fn webhook_labels(target: &WebhookTarget) -> Vec<(String, String)> {
    vec![("webhook".to_owned(), target.index.to_string())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, types: &[&str]) -> WebhookConfig {
        WebhookConfig {
            url: url.to_owned(),
            event_types: types.iter().map(|&t| t.to_owned()).collect(),
            filter: None,
        }
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for kind in WebhookKind::ALL {
            assert_eq!(WebhookKind::parse(kind.name()), Some(kind));
        }
        assert_eq!(WebhookKind::parse("cache_miss"), None);
    }

    #[test]
    fn urls_split_into_address_host_and_target() {
        let t = WebhookTarget::new(
            0,
            &config("http://example.test/hooks?x=1", &["client_event"]),
        )
        .unwrap();
        assert_eq!(
            (t.address(), t.host(), t.path()),
            ("example.test:80", "example.test", "/hooks?x=1")
        );
        let t = WebhookTarget::new(0, &config("http://127.0.0.1:9000", &["client_event"])).unwrap();
        assert_eq!(
            (t.address(), t.host(), t.path()),
            ("127.0.0.1:9000", "127.0.0.1:9000", "/")
        );
        let t = WebhookTarget::new(0, &config("http://[::1]:9000/h", &["client_event"])).unwrap();
        assert_eq!(t.address(), "[::1]:9000");
    }

    #[test]
    fn bad_urls_and_types_are_refused_with_a_reason() {
        let reason = |url: &str, types: &[&str]| {
            WebhookTarget::new(3, &config(url, types))
                .unwrap_err()
                .to_string()
        };
        let https = reason("https://example.test/h", &["channel_occupied"]);
        assert!(
            https.contains("webhook 3") && https.contains("no TLS client"),
            "{https}"
        );
        assert!(reason("ftp://x/", &["channel_occupied"]).contains("only http://"));
        assert!(reason("http://u:p@x/", &["channel_occupied"]).contains("credentials"));
        assert!(reason("not a url", &["channel_occupied"]).contains("not a URL"));
        assert!(reason("http://x/", &[]).contains("event_types"));
        assert!(reason("http://x/", &["cache_miss"]).contains("cache channels"));
        assert!(reason("http://x/", &["member_joined"]).contains("unknown event type"));
    }

    #[test]
    fn url_length_is_checked_at_the_limit() {
        let url = |len: usize| format!("http://x/{}", "a".repeat(len - "http://x/".len()));
        assert!(
            WebhookTarget::new(0, &config(&url(WEBHOOK_URL_BYTES_MAX), &["client_event"])).is_ok()
        );
        let err = WebhookTarget::new(
            0,
            &config(&url(WEBHOOK_URL_BYTES_MAX + 1), &["client_event"]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
    }

    #[test]
    fn event_types_count_is_checked_at_the_limit() {
        let types = ["client_event"; WEBHOOK_EVENT_TYPES_MAX + 1];
        assert!(
            WebhookTarget::new(0, &config("http://x/", &types[..WEBHOOK_EVENT_TYPES_MAX])).is_ok()
        );
        assert!(WebhookTarget::new(0, &config("http://x/", &types)).is_err());
    }

    #[test]
    fn filter_length_is_checked_at_the_limit() {
        let with_prefix = |len: usize| WebhookConfig {
            filter: Some(WebhookFilter {
                channel_name_starts_with: Some("p".repeat(len)),
                channel_name_ends_with: None,
            }),
            ..config("http://x/", &["channel_occupied"])
        };
        assert!(WebhookTarget::new(0, &with_prefix(CHANNEL_NAME_CHARS_MAX)).is_ok());
        assert!(WebhookTarget::new(0, &with_prefix(CHANNEL_NAME_CHARS_MAX + 1)).is_err());
    }

    #[test]
    fn filters_and_types_select_events() {
        let t = WebhookTarget::new(
            0,
            &WebhookConfig {
                filter: Some(WebhookFilter {
                    channel_name_starts_with: Some("presence-".into()),
                    channel_name_ends_with: Some("-room".into()),
                }),
                ..config("http://x/", &["member_added"])
            },
        )
        .unwrap();
        assert!(t.wants(WebhookKind::MemberAdded, "presence-chat-room"));
        assert!(!t.wants(WebhookKind::MemberRemoved, "presence-chat-room"));
        assert!(!t.wants(WebhookKind::MemberAdded, "presence-chat"));
        assert!(!t.wants(WebhookKind::MemberAdded, "private-chat-room"));
    }

    #[test]
    fn body_has_pushers_shape() {
        let event = |kind, user_id: Option<&str>, client: Option<ClientEventInfo>| WebhookEvent {
            kind,
            channel: Arc::from("presence-a"),
            user_id: user_id.map(Arc::from),
            client: client.map(Arc::new),
            at_ns: 0,
        };
        let events = [
            event(WebhookKind::ChannelOccupied, None, None),
            event(WebhookKind::MemberAdded, Some("u1"), None),
            event(
                WebhookKind::ClientEvent,
                Some("u1"),
                Some(ClientEventInfo {
                    event: "client-typing".into(),
                    data: r#"{"x":1}"#.into(),
                    socket_id: "1.2".into(),
                }),
            ),
        ];
        let body = String::from_utf8(encode_webhook_body(1_700_000_000_123, &events)).unwrap();
        assert_eq!(
            body,
            r#"{"time_ms":1700000000123,"events":[{"name":"channel_occupied","channel":"presence-a"},{"name":"member_added","channel":"presence-a","user_id":"u1"},{"name":"client_event","channel":"presence-a","event":"client-typing","data":"{\"x\":1}","socket_id":"1.2","user_id":"u1"}]}"#
        );
    }

    #[test]
    fn backoff_doubles_from_the_minimum() {
        assert_eq!(webhook_retry_backoff_ms(0), WEBHOOK_RETRY_BACKOFF_MS_MIN);
        assert_eq!(
            webhook_retry_backoff_ms(3),
            8 * WEBHOOK_RETRY_BACKOFF_MS_MIN
        );
        assert_eq!(
            webhook_retry_backoff_ms(u32::MAX),
            webhook_retry_backoff_ms(16)
        );
    }
}
