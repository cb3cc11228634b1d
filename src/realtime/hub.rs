//! The channel hub: one monotonic event id per channel, a bounded replay buffer, and fan-out to
//! subscribers with explicit lag handling.
//!
//! Each channel has a `broadcast` ring of [`SUBSCRIBER_QUEUE_EVENTS_MAX`] events for live
//! subscribers and a replay buffer of `replay_events` events. A subscriber that falls off the
//! ring recovers the missed events from the replay buffer; if they have aged out of it too, it
//! gets [`Delivery::Resync`] and must refetch. Nothing is skipped silently.
//!
//! Invariant: event ids on a channel grow by exactly 1 per publish from the channel's base, its
//! head when it is created (see [`IDS_PER_MS`]); the replay buffer holds a contiguous run of them
//! ending at the channel's head. A base lies above every id handed out earlier under the channel's
//! name, by this hub (before an eviction) or an earlier process (before a restart, within the
//! bounds given at [`IDS_PER_MS`]), so a `Last-Event-ID` from then is below the new channel's
//! oldest id and gets [`Start::Resync`] instead of a replay of unrelated events.
//!
//! When a webhook wants channel existence events, each channel counts its [`Subscription`]s
//! under its state lock and emits `channel_occupied` on the first and `channel_vacated` when the
//! last one drops, so the two alternate per channel.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde_json::Value;
use tokio::sync::{Notify, broadcast};

use super::presence::Presence;
use super::protocol::{EventData, frame_event, pusher_data};
use super::{
    CONNECTIONS_MAX, Error, HUB_CHANNELS_MAX, PINNED_CHANNELS_MAX, PresenceSnapshot,
    REPLAY_BYTES_MAX, RealtimeConfig, Result, SUBSCRIBER_QUEUE_EVENTS_MAX, SocketId, WebhookKind,
    WebhookSink, check_channel_name, check_event_name,
};
use crate::clock::SharedClock;

/// A channel's event id: its base + 1 for the first event (see [`IDS_PER_MS`]), then +1 per
/// publish.
pub type EventId = u64;

/// The id [`Hub::publish`] returns for an event it did not keep: one to a channel the hub does
/// not hold and has no room to create. No event has it (every id is at least its channel's
/// base + 1).
pub const EVENT_ID_NOT_KEPT: EventId = 0;

/// Event ids a channel's base reserves per millisecond of wall clock: a channel created at
/// `now_ms` (the hub's injected clock) starts with head `max(now_ms × IDS_PER_MS, the highest
/// head of any channel this hub evicted)`, so its first event is that + 1.
///
/// Invariant: an id handed out under a channel name is below the base of every channel made
/// later under that name, so a `Last-Event-ID` from before a restart or an eviction gets
/// [`Start::Resync`], never a replay of the new sequence. Within one hub this always holds: an
/// evicted channel's head is remembered, whatever the rate or the clock. Across processes it
/// holds as long as every channel averaged under a million events a second (`IDS_PER_MS` a
/// millisecond) over its life — its ids then stay below `now_ms × IDS_PER_MS` — and the wall
/// clock did not go back between the runs: a clock set back so far that the new `now_ms ×
/// IDS_PER_MS` is not above the earlier run's ids is the one way a new base falls below ids
/// already handed out.
///
/// Ids stay below 2^53, the integers JavaScript holds exactly (a `resync` event's `head` and
/// `last_event_id`, `POST /realtime/{channel}`'s `id`), until about the year 2255
/// (2^53 / `IDS_PER_MS` ms after 1970).
pub const IDS_PER_MS: u64 = 1000;

/// Highest base a channel gets, whatever the clock reads: 2^63 leaves room for 2^63 publishes
/// after it, so a head never reaches `u64::MAX` (at a billion events a second that is 292
/// years). Reached only by a clock reading past the year 292 million.
const BASE_MAX: EventId = 1 << 63;

/// One published event, shared by every subscriber.
#[derive(Debug)]
pub struct Event {
    /// Position on its channel.
    id: EventId,
    /// The channel.
    channel: Arc<str>,
    /// Event name, e.g. `NewOrder`.
    name: String,
    /// Payload as one-line JSON text.
    data: String,
    /// Whether the Pusher frame carries `data` as it is ([`EventData::verbatim`]).
    verbatim: bool,
    /// A Pusher connection that must not receive it (`socket_id` exclusion).
    exclude: Option<SocketId>,
    /// The sender's presence user id, on client events relayed on a presence channel.
    user_id: Option<String>,
    /// The Pusher frame, built once on first use.
    pusher_frame: OnceLock<String>,
}

impl Event {
    /// The event id on its channel.
    #[must_use]
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The channel name.
    #[must_use]
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The event name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The payload as one-line JSON text.
    #[must_use]
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The connection excluded from delivery, if any.
    #[must_use]
    pub fn exclude(&self) -> Option<&SocketId> {
        self.exclude.as_ref()
    }

    /// The sender's presence user id (client events on presence channels only).
    #[must_use]
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The Pusher protocol frame delivering this event (built once, then shared).
    #[must_use]
    pub fn pusher_frame(&self) -> &str {
        self.pusher_frame.get_or_init(|| {
            frame_event(
                &self.name,
                &self.channel,
                &self.data,
                self.verbatim,
                self.user_id.as_deref(),
            )
        })
    }
}

/// How a subscription started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// No `Last-Event-ID`: live events only.
    Live,
    /// Events after the given id were still buffered and come first.
    Replayed {
        /// How many events are replayed.
        count: usize,
    },
    /// The given id is no longer buffered (or is from before the channel's base, e.g. from
    /// before a restart or an eviction, or ahead of its head): the subscriber must refetch its
    /// state, then follows live events after `head`.
    Resync {
        /// The id the subscriber asked to resume after.
        requested: EventId,
        /// The channel's latest id now.
        head: EventId,
    },
}

/// What [`Subscription::recv`] yields.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// The next event, in id order.
    Event(Arc<Event>),
    /// The subscriber fell so far behind that the missed events left the replay buffer; it must
    /// refetch its state. Delivery continues with events after `head`.
    Resync {
        /// The latest id when the gap was detected.
        head: EventId,
    },
}

/// The mutable part of a channel.
#[derive(Debug)]
struct ChannelState {
    /// The latest id assigned (the channel's base before the first publish).
    head: EventId,
    /// The last `capacity` events, oldest first.
    buffer: VecDeque<Arc<Event>>,
    /// Bytes of event data in `buffer` (at most [`REPLAY_BYTES_MAX`]).
    buffer_bytes: usize,
    /// Live [`Subscription`]s, counted only while a webhook wants channel existence events.
    subscribers: usize,
}

/// One channel: its state and its live fan-out ring.
#[derive(Debug)]
struct Channel {
    /// Head and replay buffer.
    state: Mutex<ChannelState>,
    /// Live fan-out; held here so receivers never see `Closed`.
    tx: broadcast::Sender<Arc<Event>>,
    /// Replay buffer capacity.
    capacity: usize,
    /// Kept for the hub's lifetime and outside [`HUB_CHANNELS_MAX`] ([`Hub::pin`]); changed
    /// only under the hub's channel map lock.
    pinned: AtomicBool,
}

impl Channel {
    /// A channel whose first event gets id `base + 1`.
    fn new(capacity: usize, pinned: bool, base: EventId) -> Self {
        // The live ring does not shrink with the replay buffer: a small `replay_events` would
        // otherwise make one batch of events overrun every live subscriber.
        let (tx, _) = broadcast::channel(SUBSCRIBER_QUEUE_EVENTS_MAX);
        Self {
            state: Mutex::new(ChannelState {
                head: base,
                buffer: VecDeque::new(),
                buffer_bytes: 0,
                subscribers: 0,
            }),
            tx,
            capacity,
            pinned: AtomicBool::new(pinned),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ChannelState> {
        // Poisoning can only follow a panic inside the short critical sections below, which do
        // no fallible work; the state is still consistent, so keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Events after `after`, or `None` when some of them are gone (or `after` is ahead). An
    /// `after` below the channel's base is gone too: with nothing buffered the oldest id there
    /// can be is the next one, `head + 1`, which is above it.
    fn replay_after(state: &ChannelState, after: EventId) -> Option<Vec<Arc<Event>>> {
        if after > state.head {
            return None;
        }
        // `after <= head`, and a head stays below `u64::MAX` (`BASE_MAX`): neither saturates.
        let next = after.saturating_add(1);
        let oldest = state
            .buffer
            .front()
            .map_or(state.head.saturating_add(1), |e| e.id);
        if next < oldest {
            return None;
        }
        let skip = usize::try_from(next - oldest).ok()?;
        Some(state.buffer.iter().skip(skip).cloned().collect())
    }
}

/// A subscriber's view of one channel: replayed events first, then live ones, in id order.
#[derive(Debug)]
pub struct Subscription {
    /// The channel (kept alive by this handle).
    channel: Arc<Channel>,
    /// Live events.
    rx: broadcast::Receiver<Arc<Event>>,
    /// Events to deliver before reading `rx` (replay, lag recovery).
    pending: VecDeque<Arc<Event>>,
    /// The id of the last event delivered or skipped; anything at or below it is a duplicate.
    last_id: EventId,
    /// How the subscription started.
    start: Start,
    /// Where `channel_vacated` goes when this is the channel's last subscription.
    occupancy: Option<Occupancy>,
}

/// A counted subscription's channel name and the webhooks told when it empties.
#[derive(Debug)]
struct Occupancy {
    /// The webhooks.
    sink: Arc<WebhookSink>,
    /// The channel's name.
    channel: Arc<str>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(o) = &self.occupancy {
            let mut state = self.channel.lock();
            state.subscribers = state.subscribers.saturating_sub(1);
            if state.subscribers == 0 {
                o.sink
                    .channel_event(WebhookKind::ChannelVacated, &o.channel);
            }
        }
    }
}

/// One read of a subscription's live queue, before lag handling.
enum Received {
    /// The next event (possibly one already delivered from the replay buffer).
    Event(Arc<Event>),
    /// The queue overran; this many events were dropped from it.
    Lagged(u64),
    /// The sender is gone.
    Closed,
}

impl Subscription {
    /// How the subscription started (live, replayed, or resync needed).
    #[must_use]
    pub fn start(&self) -> Start {
        self.start
    }

    /// The next event. Lag is handled here: missed events come from the replay buffer when it
    /// still holds them, otherwise [`Delivery::Resync`] is returned once.
    pub async fn recv(&mut self) -> Delivery {
        loop {
            if let Some(delivery) = self.try_recv() {
                return delivery;
            }
            let received = match self.rx.recv().await {
                Ok(event) => Received::Event(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => Received::Lagged(missed),
                Err(broadcast::error::RecvError::Closed) => Received::Closed,
            };
            if let Some(delivery) = self.take(received) {
                return delivery;
            }
        }
    }

    /// [`Subscription::recv`] without waiting: the next delivery if one is ready, else `None`.
    /// Used to write what is already queued together with the delivery that woke the reader.
    pub fn try_recv(&mut self) -> Option<Delivery> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.last_id = event.id;
                return Some(Delivery::Event(event));
            }
            let received = match self.rx.try_recv() {
                Ok(event) => Received::Event(event),
                Err(broadcast::error::TryRecvError::Empty) => return None,
                Err(broadcast::error::TryRecvError::Lagged(missed)) => Received::Lagged(missed),
                Err(broadcast::error::TryRecvError::Closed) => Received::Closed,
            };
            if let Some(delivery) = self.take(received) {
                return Some(delivery);
            }
        }
    }

    /// Turns one read of the live queue into a delivery: an event (`None` for a duplicate); a
    /// lag, refilled from the replay buffer (`None`: the events are now pending) or else one
    /// resync; a closed queue, reported as a gap.
    fn take(&mut self, received: Received) -> Option<Delivery> {
        match received {
            Received::Event(event) if event.id > self.last_id => {
                self.last_id = event.id;
                Some(Delivery::Event(event))
            }
            Received::Event(_) => None,
            Received::Lagged(missed) => {
                let state = self.channel.lock();
                if let Some(events) = Channel::replay_after(&state, self.last_id) {
                    tracing::debug!(
                        missed,
                        recovered = events.len(),
                        "subscriber lag recovered from the replay buffer"
                    );
                    self.pending.extend(events);
                    None
                } else {
                    let head = state.head;
                    drop(state);
                    tracing::warn!(
                        missed,
                        head,
                        "subscriber fell behind the replay buffer; asking it to resync"
                    );
                    self.last_id = head;
                    Some(Delivery::Resync { head })
                }
            }
            Received::Closed => {
                // Unreachable while `channel` holds the sender; report it as a gap.
                let head = self.channel.lock().head;
                self.last_id = head;
                Some(Delivery::Resync { head })
            }
        }
    }
}

/// Counts one WebSocket connection or SSE stream against [`CONNECTIONS_MAX`] until dropped.
#[derive(Debug)]
pub struct ConnectionGuard {
    /// The hub whose count this holds.
    hub: Arc<Hub>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.hub.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Channels [pinned](Hub::pin) in `channels`: never evicted, not counted against
/// [`HUB_CHANNELS_MAX`], at most [`PINNED_CHANNELS_MAX`].
fn pinned_count(channels: &HashMap<Arc<str>, Arc<Channel>>) -> usize {
    channels
        .values()
        .filter(|ch| ch.pinned.load(Ordering::Acquire))
        .count()
}

/// One connection's sign-in: its number and the signal that ends the connection.
type SignIn = (u64, Arc<Notify>);

/// The channel hub. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Hub {
    /// Channel name → channel. Held only briefly (lookup, create, evict).
    channels: Mutex<HashMap<Arc<str>, Arc<Channel>>>,
    /// Replay buffer size per channel.
    replay_events: usize,
    /// Seed mixed into socket ids.
    socket_seed: u64,
    /// Socket ids issued so far; the second half of every id, so ids never repeat.
    sockets_issued: AtomicU64,
    /// Presence membership.
    presence: Presence,
    /// Held from a presence membership change to the `member_added`/`member_removed` event
    /// that announces it ([`Hub::presence_announcing`]).
    presence_announcing: Mutex<()>,
    /// Open WebSocket connections and SSE streams.
    connections: AtomicUsize,
    /// Signed-in user id → each connection signed in as that user (its sign-in number and the
    /// signal that ends it). At most one entry per connection, so bounded by [`CONNECTIONS_MAX`].
    users: Mutex<HashMap<String, Vec<SignIn>>>,
    /// Sign-ins so far; numbers each one.
    sign_ins: AtomicU64,
    /// Where webhook events go, when any webhook is configured.
    webhooks: Option<Arc<WebhookSink>>,
    /// Reads the wall clock for new channels' bases ([`IDS_PER_MS`]).
    clock: SharedClock,
    /// The highest head of any channel evicted so far: a channel created later starts above it.
    /// Written only under the `channels` lock.
    evicted_head_max: AtomicU64,
}

impl Hub {
    /// A hub with `config.replay_events` of replay per channel; `socket_seed` makes socket ids
    /// deterministic for a given seed; `clock`'s wall clock sets new channels' first ids
    /// ([`IDS_PER_MS`]).
    #[must_use]
    pub fn new(config: &RealtimeConfig, socket_seed: u64, clock: SharedClock) -> Self {
        Self {
            channels: Mutex::new(HashMap::new()),
            replay_events: config.replay_events.max(1),
            socket_seed,
            sockets_issued: AtomicU64::new(0),
            presence: Presence::default(),
            presence_announcing: Mutex::new(()),
            connections: AtomicUsize::new(0),
            users: Mutex::new(HashMap::new()),
            sign_ins: AtomicU64::new(0),
            webhooks: None,
            clock,
            evicted_head_max: AtomicU64::new(0),
        }
    }

    /// As [`Hub::new`], emitting webhook events into `webhooks` (a sink without webhooks is
    /// left out).
    #[must_use]
    pub fn with_webhooks(
        config: &RealtimeConfig,
        socket_seed: u64,
        clock: SharedClock,
        webhooks: WebhookSink,
    ) -> Self {
        let any = WebhookKind::ALL.into_iter().any(|k| webhooks.wants(k));
        Self {
            webhooks: any.then(|| Arc::new(webhooks)),
            ..Self::new(config, socket_seed, clock)
        }
    }

    /// The base of a channel created now: its head before the first publish, so its first id is
    /// this + 1. See [`IDS_PER_MS`]. Called under the `channels` lock, so no eviction slips in
    /// between reading `evicted_head_max` and creating the channel.
    fn new_base(&self) -> EventId {
        let from_clock = self.clock.now_ms().saturating_mul(IDS_PER_MS);
        from_clock
            .max(self.evicted_head_max.load(Ordering::Relaxed))
            .min(BASE_MAX)
    }

    /// The webhooks that want `kind`, if any.
    fn webhooks_for(&self, kind: WebhookKind) -> Option<&Arc<WebhookSink>> {
        self.webhooks.as_ref().filter(|w| w.wants(kind))
    }

    /// Counts a new subscription of `channel` when a webhook wants channel existence events,
    /// emitting `channel_occupied` for the first; `state` is the channel's locked state.
    fn occupy(&self, state: &mut ChannelState, channel: &Arc<str>) -> Option<Occupancy> {
        let sink = self.webhooks.as_ref().filter(|w| {
            w.wants(WebhookKind::ChannelOccupied) || w.wants(WebhookKind::ChannelVacated)
        })?;
        state.subscribers += 1;
        if state.subscribers == 1 {
            sink.channel_event(WebhookKind::ChannelOccupied, channel);
        }
        Some(Occupancy {
            sink: sink.clone(),
            channel: channel.clone(),
        })
    }

    /// Keeps `channel` for the hub's lifetime, outside the [`HUB_CHANNELS_MAX`] that clients'
    /// channels share: the channels the server itself publishes to (watchers) stay available
    /// however many channels clients subscribe to. Pinning a pinned channel does nothing.
    ///
    /// # Errors
    /// A bad channel name, or [`Error::TooManyPinned`] beyond [`PINNED_CHANNELS_MAX`].
    pub fn pin(&self, channel: &str) -> Result<()> {
        check_channel_name(channel)?;
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let existing = channels.get(channel);
        if existing.is_some_and(|ch| ch.pinned.load(Ordering::Acquire)) {
            return Ok(());
        }
        if pinned_count(&channels) >= PINNED_CHANNELS_MAX {
            return Err(Error::TooManyPinned {
                max: PINNED_CHANNELS_MAX,
            });
        }
        match existing {
            Some(ch) => ch.pinned.store(true, Ordering::Release),
            None => {
                let base = self.new_base();
                channels.insert(
                    Arc::from(channel),
                    Arc::new(Channel::new(self.replay_events, true, base)),
                );
            }
        }
        Ok(())
    }

    /// Publishes `data` (serialised once, as one-line JSON) to `channel` as `event`; returns its
    /// id. Pusher connections with socket id `exclude` do not receive it.
    ///
    /// A publish never fails for lack of room: when `channel` does not exist and the hub is
    /// full with no idle channel to evict, nobody can be subscribed to it, so the event is
    /// delivered to no one and not kept (no replay buffer, [`Hub::head`] stays 0), and the id
    /// returned is [`EVENT_ID_NOT_KEPT`] (0, which no event has).
    ///
    /// # Errors
    /// A bad channel or event name, or data over [`EVENT_DATA_BYTES_MAX`](super::EVENT_DATA_BYTES_MAX).
    pub fn publish(
        &self,
        channel: &str,
        event: &str,
        data: Value,
        exclude: Option<SocketId>,
    ) -> Result<EventId> {
        self.publish_json(channel, event, data.to_string(), exclude)
    }

    /// As [`Hub::publish`], with the payload already one-line JSON text (see
    /// `EventData::from_sent_text`), so the sender's key order is kept.
    ///
    /// # Errors
    /// As [`Hub::publish`].
    pub fn publish_json(
        &self,
        channel: &str,
        event: &str,
        data_json: String,
        exclude: Option<SocketId>,
    ) -> Result<EventId> {
        self.publish_data(
            channel,
            event,
            EventData::from_json_text(data_json)?,
            exclude,
        )
    }

    /// As [`Hub::publish_json`], with data already checked (e.g. sent as text through the
    /// Pusher HTTP API, [`EventData::from_sent_text`]).
    ///
    /// # Errors
    /// As [`Hub::publish`], except the data size, checked when `data` was made.
    pub fn publish_data(
        &self,
        channel: &str,
        event: &str,
        data: EventData,
        exclude: Option<SocketId>,
    ) -> Result<EventId> {
        self.publish_event(channel, event, data, exclude, None)
    }

    /// Relays a client event from connection `sender` (never delivered back to it); on presence
    /// channels `user_id` is the sender's user, added to the Pusher frame as Pusher does.
    ///
    /// # Errors
    /// As [`Hub::publish`].
    pub fn publish_client_event(
        &self,
        channel: &str,
        event: &str,
        data: EventData,
        sender: SocketId,
        user_id: Option<String>,
    ) -> Result<EventId> {
        let Some(sink) = self.webhooks_for(WebhookKind::ClientEvent) else {
            return self.publish_event(channel, event, data, Some(sender), user_id);
        };
        let webhook_data = pusher_data(data.as_json(), data.verbatim());
        let webhook_user = user_id.clone();
        let id = self.publish_event(channel, event, data, Some(sender.clone()), user_id)?;
        sink.client_event(
            channel,
            event,
            webhook_data,
            sender.as_str(),
            webhook_user.as_deref(),
        );
        Ok(id)
    }

    fn publish_event(
        &self,
        channel: &str,
        event: &str,
        data: EventData,
        exclude: Option<SocketId>,
        user_id: Option<String>,
    ) -> Result<EventId> {
        check_channel_name(channel)?;
        check_event_name(event)?;
        let verbatim = data.verbatim();
        let data_json = data.into_json();
        // A channel the hub does not hold has no subscriber (subscribing creates it), so an
        // event to it reaches no one; when there is no room to create it, the event is dropped
        // as if the channel had been created and evicted at once, and nothing is kept.
        let Some((name, ch)) = self.channel_if_room(channel) else {
            return Ok(EVENT_ID_NOT_KEPT);
        };
        let mut state = ch.lock();
        // Cannot saturate: a head starts at most at `BASE_MAX` (2^63) and grows by one per
        // publish, and 2^63 publishes would take centuries.
        let id = state.head.saturating_add(1);
        let event = Arc::new(Event {
            id,
            channel: name,
            name: event.to_owned(),
            data: data_json,
            verbatim,
            exclude,
            user_id,
            pusher_frame: OnceLock::new(),
        });
        state.head = id;
        state.buffer_bytes += event.data.len();
        state.buffer.push_back(event.clone());
        while state.buffer.len() > ch.capacity || state.buffer_bytes > REPLAY_BYTES_MAX {
            let Some(old) = state.buffer.pop_front() else {
                break;
            };
            state.buffer_bytes -= old.data.len();
        }
        // Sent under the lock so subscribers see ids in order; no receivers is not an error.
        let _ = ch.tx.send(event);
        drop(state);
        Ok(id)
    }

    /// Subscribes to `channel`. With `last_event_id`, events after it are replayed first if the
    /// buffer still holds them; otherwise [`Subscription::start`] says [`Start::Resync`].
    ///
    /// # Errors
    /// A bad channel name, or [`Error::HubFull`].
    pub fn subscribe(&self, channel: &str, last_event_id: Option<EventId>) -> Result<Subscription> {
        check_channel_name(channel)?;
        let (name, ch) = self.channel(channel)?;
        let mut state = ch.lock();
        let occupancy = self.occupy(&mut state, &name);
        let rx = ch.tx.subscribe();
        let head = state.head;
        let (pending, start, last_id) = match last_event_id {
            None => (VecDeque::new(), Start::Live, head),
            Some(requested) => match Channel::replay_after(&state, requested) {
                Some(events) => {
                    let count = events.len();
                    (events.into(), Start::Replayed { count }, requested)
                }
                None => (VecDeque::new(), Start::Resync { requested, head }, head),
            },
        };
        drop(state);
        Ok(Subscription {
            channel: ch,
            rx,
            pending,
            last_id,
            start,
            occupancy,
        })
    }

    /// Subscribes to `channel` with up to `count` of its most recent buffered events replayed
    /// first (what a page that just opened wants to show).
    ///
    /// # Errors
    /// As [`Hub::subscribe`].
    pub fn subscribe_recent(&self, channel: &str, count: usize) -> Result<Subscription> {
        check_channel_name(channel)?;
        let (name, ch) = self.channel(channel)?;
        let mut state = ch.lock();
        let occupancy = self.occupy(&mut state, &name);
        let rx = ch.tx.subscribe();
        let skip = state.buffer.len().saturating_sub(count);
        let pending: VecDeque<Arc<Event>> = state.buffer.iter().skip(skip).cloned().collect();
        // Buffered ids are above the channel's base, so `id - 1` does not saturate.
        let last_id = pending
            .front()
            .map_or(state.head, |e| e.id.saturating_sub(1));
        let start = Start::Replayed {
            count: pending.len(),
        };
        drop(state);
        Ok(Subscription {
            channel: ch,
            rx,
            pending,
            last_id,
            start,
            occupancy,
        })
    }

    /// Looks up or creates a channel to subscribe to, evicting an idle one when the hub is full.
    ///
    /// # Errors
    /// [`Error::HubFull`] when the hub is full and no channel is idle.
    fn channel(&self, name: &str) -> Result<(Arc<str>, Arc<Channel>)> {
        self.channel_if_room(name).ok_or(Error::HubFull {
            max: HUB_CHANNELS_MAX,
        })
    }

    /// Looks up or creates a channel, evicting an idle one when the hub is full; `None` when the
    /// channel does not exist and there is no room for it.
    fn channel_if_room(&self, name: &str) -> Option<(Arc<str>, Arc<Channel>)> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((k, ch)) = channels.get_key_value(name) {
            return Some((k.clone(), ch.clone()));
        }
        // Pinned channels are counted only when the map is that large (rarely).
        if channels.len() >= HUB_CHANNELS_MAX
            && channels.len() - pinned_count(&channels) >= HUB_CHANNELS_MAX
        {
            let idle = channels
                .iter()
                .find(|(_, ch)| {
                    !ch.pinned.load(Ordering::Acquire)
                        && ch.tx.receiver_count() == 0
                        && Arc::strong_count(ch) == 1
                })
                .map(|(k, _)| k.clone());
            if let Some(evicted) = channels.remove(&idle?) {
                // Whoever recreates a channel of that name (or any other) starts above its ids.
                let head = evicted.lock().head;
                self.evicted_head_max.fetch_max(head, Ordering::Relaxed);
            }
        }
        let key: Arc<str> = Arc::from(name);
        let ch = Arc::new(Channel::new(self.replay_events, false, self.new_base()));
        channels.insert(key.clone(), ch.clone());
        Some((key, ch))
    }

    /// Live subscribers of `channel` (SSE streams and Pusher connections).
    #[must_use]
    pub fn subscriber_count(&self, channel: &str) -> usize {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels.get(channel).map_or(0, |ch| ch.tx.receiver_count())
    }

    /// Channels with at least one subscriber and their subscriber counts, sorted by name.
    #[must_use]
    pub fn occupied_channels(&self) -> Vec<(String, usize)> {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<(String, usize)> = channels
            .iter()
            .map(|(k, ch)| (k.to_string(), ch.tx.receiver_count()))
            .filter(|(_, n)| *n > 0)
            .collect();
        out.sort();
        out
    }

    /// The latest event id of `channel`: its base ([`IDS_PER_MS`]) while nothing was published
    /// to it, 0 when the hub does not hold it.
    #[must_use]
    pub fn head(&self, channel: &str) -> EventId {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels.get(channel).map_or(0, |ch| ch.lock().head)
    }

    /// A fresh socket id `R.N`: R from the seed (0..1e9), N the count of ids issued, so ids
    /// never repeat within a process.
    #[must_use]
    pub fn next_socket_id(&self) -> SocketId {
        let n = self.sockets_issued.fetch_add(1, Ordering::Relaxed) + 1;
        SocketId::from_parts(splitmix64(self.socket_seed ^ n) % 1_000_000_000, n)
    }

    /// Counts a new WebSocket connection or SSE stream, or `None` at [`CONNECTIONS_MAX`].
    #[must_use]
    pub fn try_connect(self: &Arc<Self>) -> Option<ConnectionGuard> {
        let prev = self.connections.fetch_add(1, Ordering::AcqRel);
        if prev >= CONNECTIONS_MAX {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(ConnectionGuard { hub: self.clone() })
    }

    /// Records a connection signed in as `user_id` (`pusher:signin`) until the guard drops;
    /// [`Hub::terminate_user`] ends it through [`UserGuard::terminated`].
    #[must_use]
    pub fn sign_in(self: &Arc<Self>, user_id: &str) -> UserGuard {
        let number = self.sign_ins.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        self.users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(user_id.to_owned())
            .or_default()
            .push((number, notify.clone()));
        UserGuard {
            hub: self.clone(),
            user_id: user_id.to_owned(),
            number,
            notify,
        }
    }

    /// Tells every connection signed in as `user_id` to close (the HTTP API's
    /// `terminate_connections`); returns how many there were.
    pub fn terminate_user(&self, user_id: &str) -> usize {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let conns = users.get(user_id).map_or(&[][..], Vec::as_slice);
        for (_, notify) in conns {
            // A stored permit: the connection sees it even if it is not waiting right now.
            notify.notify_one();
        }
        conns.len()
    }

    /// Connections signed in as `user_id`.
    #[must_use]
    pub fn user_connection_count(&self, user_id: &str) -> usize {
        self.users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user_id)
            .map_or(0, Vec::len)
    }

    /// Taken by a connection before it joins or leaves a presence channel and held until it
    /// has published the `member_added` or `member_removed` that the change calls for. Without
    /// it, a user's last socket leaving while a new one joins could announce "added" then
    /// "removed" in that order to the other members, who would then miss a user the channel
    /// still lists.
    pub fn presence_announcing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.presence_announcing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds one socket of `user_id` to a presence channel; `Ok(true)` when the user is new.
    ///
    /// # Errors
    /// [`Error::PresenceFull`] at `PRESENCE_MEMBERS_MAX` distinct users.
    pub fn presence_join(&self, channel: &str, user_id: &str, user_info: &Value) -> Result<bool> {
        self.presence.join(channel, user_id, user_info)
    }

    /// Removes one socket of `user_id`; `true` when it was the user's last one.
    pub fn presence_leave(&self, channel: &str, user_id: &str) -> bool {
        self.presence.leave(channel, user_id)
    }

    /// Emits the `member_added` webhook event: `user_id` joined presence `channel` (its first
    /// connection there, [`Hub::presence_join`] said `true`). Call it after the subscription
    /// that joined exists, so `channel_occupied` comes first, as on Pusher.
    pub fn member_added_webhook(&self, channel: &str, user_id: &str) {
        if let Some(sink) = self.webhooks_for(WebhookKind::MemberAdded) {
            sink.member_event(WebhookKind::MemberAdded, channel, user_id);
        }
    }

    /// Emits the `member_removed` webhook event: `user_id`'s last connection left presence
    /// `channel` ([`Hub::presence_leave`] said `true`). Call it before that subscription drops,
    /// so `channel_vacated` comes after, as on Pusher.
    pub fn member_removed_webhook(&self, channel: &str, user_id: &str) {
        if let Some(sink) = self.webhooks_for(WebhookKind::MemberRemoved) {
            sink.member_event(WebhookKind::MemberRemoved, channel, user_id);
        }
    }

    /// The members of a presence channel, sorted by user id.
    #[must_use]
    pub fn presence_snapshot(&self, channel: &str) -> PresenceSnapshot {
        self.presence.snapshot(channel)
    }

    /// Distinct users on a presence channel.
    #[must_use]
    pub fn presence_user_count(&self, channel: &str) -> usize {
        self.presence.user_count(channel)
    }
}

/// A connection's sign-in as a user; dropping it signs the connection out.
#[derive(Debug)]
pub struct UserGuard {
    /// The hub holding the sign-in.
    hub: Arc<Hub>,
    /// The signed-in user id.
    user_id: String,
    /// This sign-in's number, to find it among the user's connections.
    number: u64,
    /// Signalled by [`Hub::terminate_user`].
    notify: Arc<Notify>,
}

impl UserGuard {
    /// The signed-in user id.
    #[must_use]
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Resolves once [`Hub::terminate_user`] names this user.
    pub async fn terminated(&self) {
        self.notify.notified().await;
    }
}

impl Drop for UserGuard {
    fn drop(&mut self) {
        let mut users = self
            .hub
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(conns) = users.get_mut(&self.user_id) {
            conns.retain(|(n, _)| *n != self.number);
            if conns.is_empty() {
                users.remove(&self.user_id);
            }
        }
    }
}

/// SplitMix64: a bijective mixer, enough to make socket ids look unrelated.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
