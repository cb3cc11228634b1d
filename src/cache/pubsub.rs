//! Pub/sub registry: channel, pattern and shard channel subscriptions of RESP clients, each fed
//! through its [`Outbox`]. Shard channels (SSUBSCRIBE, SPUBLISH: Redis 7.0's sharded pub/sub)
//! are a namespace of their own, as on a Redis server without cluster mode: a PUBLISH never
//! reaches them, an SPUBLISH reaches nothing else, and patterns never match them.
//!
//! A subscriber that cannot keep up is disconnected, never silently skipped, as Redis enforces
//! `client-output-buffer-limit pubsub` (by default `32mb 8mb 60`; CONFIG SET changes it, see
//! [`ObufLimits`]): the outbox counts the bytes of the messages queued for it or not yet
//! written to its socket; when a message takes that to the hard limit (by default
//! [`PUBSUB_BUFFER_BYTES_MAX`]), or it stays at the soft limit (by default
//! [`PUBSUB_BUFFER_SOFT_BYTES`]) or more for longer than its time (by default
//! [`PUBSUB_BUFFER_SOFT_MS`]), the outbox is closed and the connection's kill signal drops
//! the client (logged), even while a write to it is stuck. Nothing is queued for a closed outbox, so what a subscriber receives before
//! the end of its stream is always every message in order, never a sequence with a gap. Like
//! Redis (which appends the message and closes the client afterwards), PUBLISH still counts
//! that subscriber as a receiver.
//!
//! Invariant: `pending_bytes` is the sum of [`Message::charge`] over the messages sent to the
//! outbox and not yet written to the socket (the connection subtracts after writing).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use hashbrown::HashMap;
use tokio::sync::{Notify, mpsc};

use crate::cache::cmd::glob_match;
use crate::cache::{
    OUTPUT_BUFFER_BYTES_MAX, PUBSUB_BUFFER_BYTES_MAX, PUBSUB_BUFFER_SOFT_BYTES,
    PUBSUB_BUFFER_SOFT_MS, PUBSUB_MESSAGE_OVERHEAD_BYTES, PUBSUB_QUEUE_LEN_MAX,
};

/// A connection's kill signal, fired by CLIENT KILL or by an overrun output buffer limit, and
/// the lesser wake-up of a nudge: the clients cron asking a waiting connection to look at its
/// buffers ([`Kill::nudge`]).
///
/// It stays fired: every later wait returns at once, so a wait that observed it (a blocked pop,
/// a stuck write) cannot use it up and leave the connection open, as Redis's `freeClient`
/// closes a client whatever it was doing.
#[derive(Debug, Default)]
pub(crate) struct Kill {
    fired: AtomicBool,
    /// A nudge not yet taken ([`Kill::take_nudge`]).
    nudged: AtomicBool,
    wake: Notify,
}

impl Kill {
    /// Fires the signal (idempotent).
    pub(crate) fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
        // `notify_one` keeps a permit when nobody waits yet, so a wait that checked the flag
        // just before it was set still wakes.
        self.wake.notify_one();
    }

    /// Whether the signal has fired.
    pub(crate) fn is_fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// Returns once the signal has fired (at once if it already has).
    pub(crate) async fn fired(&self) {
        while !self.is_fired() {
            self.wake.notified().await;
        }
    }

    /// Asks the connection to look at its buffers when it next waits for a request; returns
    /// whether this nudge is new. A nudge that wakes some other wait (a blocked pop, a stuck
    /// write) is not lost: it stays set until taken, and while it is set a further nudge wakes
    /// nothing (a client blocked for hours is woken once, not at every housekeeping pass).
    pub(crate) fn nudge(&self) -> bool {
        if self.nudged.swap(true, Ordering::SeqCst) {
            return false;
        }
        self.wake.notify_one();
        true
    }

    /// Whether a nudge was given since the last call, clearing it.
    pub(crate) fn take_nudge(&self) -> bool {
        self.nudged.swap(false, Ordering::SeqCst)
    }

    /// Returns once the signal has fired or a nudge is waiting to be taken.
    pub(crate) async fn fired_or_nudged(&self) {
        while !self.is_fired() && !self.nudged.load(Ordering::SeqCst) {
            self.wake.notified().await;
        }
    }
}

/// A client class of `client-output-buffer-limit`, in Redis's order (`CLIENT_TYPE_NORMAL`,
/// `_SLAVE`, `_PUBSUB`). Replicas do not exist here; their limits are stored for CONFIG only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObufClass {
    Normal,
    Replica,
    Pubsub,
}

impl ObufClass {
    /// Every class, in CONFIG GET's order.
    pub(crate) const ALL: [Self; 3] = [Self::Normal, Self::Replica, Self::Pubsub];

    /// The name CONFIG GET prints (Redis's `getClientTypeName`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Replica => "slave",
            Self::Pubsub => "pubsub",
        }
    }

    /// Redis's `getClientTypeByName` for the classes a limit may name (`master` is refused).
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "normal" => Some(Self::Normal),
            "slave" | "replica" => Some(Self::Replica),
            "pubsub" => Some(Self::Pubsub),
            _ => None,
        }
    }
}

/// One class's output buffer limit; 0 disables a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObufLimit {
    /// A client whose pending reply bytes reach this is closed at once.
    pub(crate) hard_bytes: u64,
    /// A client whose pending bytes stay at this or more for over `soft_seconds` is closed.
    pub(crate) soft_bytes: u64,
    /// Seconds over `soft_bytes` a client is allowed.
    pub(crate) soft_seconds: u64,
}

impl ObufLimit {
    /// Redis's `checkClientOutputBufferLimits`: whether `pending` bytes at wall-clock `now_ms`
    /// overrun the limit, given when the client was first seen at the soft limit
    /// (`soft_since_ms`, 0: it was not); returns that, and the new `soft_since_ms`. A hard
    /// limit of 0 (unlimited) still stops at [`OUTPUT_BUFFER_BYTES_MAX`].
    pub(crate) fn check(self, pending: usize, soft_since_ms: u64, now_ms: u64) -> (bool, u64) {
        let pending = pending as u64;
        let ceiling = OUTPUT_BUFFER_BYTES_MAX as u64;
        let hard = if self.hard_bytes == 0 {
            ceiling
        } else {
            self.hard_bytes.min(ceiling)
        };
        if pending >= hard {
            return (true, soft_since_ms);
        }
        if self.soft_bytes == 0 || pending < self.soft_bytes {
            return (false, 0);
        }
        if soft_since_ms == 0 {
            return (false, now_ms.max(1));
        }
        let allowed_ms = self.soft_seconds.saturating_mul(1000);
        (
            now_ms.saturating_sub(soft_since_ms) > allowed_ms,
            soft_since_ms,
        )
    }
}

/// The live `client-output-buffer-limit` of each class (CONFIG SET stores them here).
#[derive(Debug)]
pub(crate) struct ObufLimits {
    /// Per class: hard bytes, soft bytes, soft seconds.
    normal: [AtomicU64; 3],
    replica: [AtomicU64; 3],
    pubsub: [AtomicU64; 3],
}

impl Default for ObufLimits {
    fn default() -> Self {
        let limits = Self {
            normal: Default::default(),
            replica: Default::default(),
            pubsub: Default::default(),
        };
        for class in ObufClass::ALL {
            limits.set(class, ObufLimit::default_for(class));
        }
        limits
    }
}

impl ObufLimit {
    /// Redis's defaults: `normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60`.
    pub(crate) fn default_for(class: ObufClass) -> Self {
        match class {
            ObufClass::Normal => Self {
                hard_bytes: 0,
                soft_bytes: 0,
                soft_seconds: 0,
            },
            ObufClass::Replica => Self {
                hard_bytes: 256 << 20,
                soft_bytes: 64 << 20,
                soft_seconds: 60,
            },
            ObufClass::Pubsub => Self {
                hard_bytes: PUBSUB_BUFFER_BYTES_MAX as u64,
                soft_bytes: PUBSUB_BUFFER_SOFT_BYTES as u64,
                soft_seconds: PUBSUB_BUFFER_SOFT_MS / 1000,
            },
        }
    }
}

impl ObufLimits {
    fn row(&self, class: ObufClass) -> &[AtomicU64; 3] {
        match class {
            ObufClass::Normal => &self.normal,
            ObufClass::Replica => &self.replica,
            ObufClass::Pubsub => &self.pubsub,
        }
    }

    /// The limit of `class`.
    pub(crate) fn get(&self, class: ObufClass) -> ObufLimit {
        let [hard, soft, secs] = self.row(class);
        ObufLimit {
            hard_bytes: hard.load(Ordering::Relaxed),
            soft_bytes: soft.load(Ordering::Relaxed),
            soft_seconds: secs.load(Ordering::Relaxed),
        }
    }

    /// Replaces the limit of `class`.
    pub(crate) fn set(&self, class: ObufClass, limit: ObufLimit) {
        let [hard, soft, secs] = self.row(class);
        hard.store(limit.hard_bytes, Ordering::Relaxed);
        soft.store(limit.soft_bytes, Ordering::Relaxed);
        secs.store(limit.soft_seconds, Ordering::Relaxed);
    }
}

/// A message delivered to a subscriber.
#[derive(Debug, Clone)]
pub(crate) enum Message {
    /// From a channel subscription.
    Channel { channel: Bytes, payload: Bytes },
    /// From a shard channel subscription (SPUBLISH), sent as `smessage`.
    Shard { channel: Bytes, payload: Bytes },
    /// From a pattern subscription.
    Pattern {
        pattern: Bytes,
        channel: Bytes,
        payload: Bytes,
    },
    /// A MONITOR line, already in its wire form (`crate::cache::monitor`).
    Monitor(Bytes),
    /// A client-side caching invalidation (`crate::cache::tracking`): the keys (`None`: every
    /// key, after a flush), and whether it was redirected here from the tracking client.
    Invalidate {
        keys: Option<Vec<Bytes>>,
        redirected: bool,
    },
    /// The tracking client's redirect target (this id) is gone.
    RedirectBroken(u64),
}

impl Message {
    /// Bytes the message counts against its subscriber's output buffer limit.
    pub(crate) fn charge(&self) -> usize {
        let data = match self {
            Self::Channel { channel, payload } | Self::Shard { channel, payload } => {
                channel.len().saturating_add(payload.len())
            }
            Self::Pattern {
                pattern,
                channel,
                payload,
            } => pattern
                .len()
                .saturating_add(channel.len())
                .saturating_add(payload.len()),
            Self::Monitor(line) => line.len(),
            Self::Invalidate { keys, .. } => keys
                .iter()
                .flatten()
                .fold(0usize, |n, k| n.saturating_add(k.len())),
            Self::RedirectBroken(_) => 0,
        };
        data.saturating_add(PUBSUB_MESSAGE_OVERHEAD_BYTES)
    }
}

/// One subscriber's message queue and output buffer account.
#[derive(Debug)]
pub(crate) struct Outbox {
    client: u64,
    tx: mpsc::Sender<Message>,
    /// Bytes of messages queued or not yet written (see the module invariant).
    pending_bytes: AtomicUsize,
    /// When `pending_bytes` was first seen at the soft limit (wall-clock ms; 0: below it).
    soft_since_ms: AtomicU64,
    /// Set once the subscriber overran its limit; nothing more is queued.
    closed: AtomicBool,
    /// The connection's kill signal (shared with CLIENT KILL), which drops the client.
    kill: Arc<Kill>,
}

impl Outbox {
    /// An outbox for `client`, whose connection ends on `kill`, and the receiving end that
    /// connection drains.
    pub(crate) fn new(client: u64, kill: Arc<Kill>) -> (Arc<Self>, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel(PUBSUB_QUEUE_LEN_MAX);
        let outbox = Self {
            client,
            tx,
            pending_bytes: AtomicUsize::new(0),
            soft_since_ms: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            kill,
        };
        (Arc::new(outbox), rx)
    }

    /// Records that messages charged `bytes` in all were written to the socket.
    pub(crate) fn written(&self, bytes: usize) {
        let _ = self
            .pending_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                Some(p.saturating_sub(bytes))
            });
    }

    /// Whether the subscriber overran its limit (its connection must close).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Queues `msg` unless that overruns `limit` at wall-clock `now_ms`, in which case the
    /// outbox is closed instead. Returns false only when the connection is already gone.
    pub(crate) fn deliver(&self, msg: Message, now_ms: u64, limit: ObufLimit) -> bool {
        if self.is_closed() {
            return true;
        }
        let charge = msg.charge();
        let pending = self
            .pending_bytes
            .fetch_add(charge, Ordering::Relaxed)
            .saturating_add(charge);
        let since = self.soft_since_ms.load(Ordering::Relaxed);
        let (over, since) = limit.check(pending, since, now_ms);
        self.soft_since_ms.store(since, Ordering::Relaxed);
        if !over {
            match self.tx.try_send(msg) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
                // The count bound cannot bind before the byte bound (see PUBSUB_QUEUE_LEN_MAX);
                // if it ever does, the subscriber is dropped all the same.
                Err(mpsc::error::TrySendError::Full(_)) => {}
            }
        }
        if !self.closed.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                client = self.client,
                pending_bytes = pending,
                "pub/sub or monitor client closed for overcoming of output buffer limits"
            );
            self.kill.fire();
        }
        true
    }
}

/// The three namespaces a client subscribes in, as Redis's `pubsubtype` (with patterns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// SUBSCRIBE's channels.
    Channel,
    /// PSUBSCRIBE's glob patterns over those channels.
    Pattern,
    /// SSUBSCRIBE's shard channels.
    Shard,
}

impl Kind {
    /// Every kind, in the order RESET and a closing connection drop them.
    pub(crate) const ALL: [Self; 3] = [Self::Channel, Self::Pattern, Self::Shard];

    /// The kind a subscription command (SUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE, …) works on, and
    /// whether it subscribes; `None` for any other command.
    pub(crate) fn of_command(name: &str) -> Option<(Self, bool)> {
        Some(match name {
            "subscribe" => (Self::Channel, true),
            "unsubscribe" => (Self::Channel, false),
            "psubscribe" => (Self::Pattern, true),
            "punsubscribe" => (Self::Pattern, false),
            "ssubscribe" => (Self::Shard, true),
            "sunsubscribe" => (Self::Shard, false),
            _ => return None,
        })
    }

    /// The first element of a (un)subscribe confirmation.
    pub(crate) fn confirmation(self, subscribe: bool) -> &'static [u8] {
        match (self, subscribe) {
            (Self::Channel, true) => b"subscribe",
            (Self::Channel, false) => b"unsubscribe",
            (Self::Pattern, true) => b"psubscribe",
            (Self::Pattern, false) => b"punsubscribe",
            (Self::Shard, true) => b"ssubscribe",
            (Self::Shard, false) => b"sunsubscribe",
        }
    }
}

type Subscribers = HashMap<u64, Arc<Outbox>>;

#[derive(Debug, Default)]
struct State {
    channels: HashMap<Bytes, Subscribers>,
    patterns: HashMap<Bytes, Subscribers>,
    shard_channels: HashMap<Bytes, Subscribers>,
}

impl State {
    fn names(&self, kind: Kind) -> &HashMap<Bytes, Subscribers> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard_channels,
        }
    }

    fn names_mut(&mut self, kind: Kind) -> &mut HashMap<Bytes, Subscribers> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }
}

/// Queues a message made by `msg` for each of `subs`; returns how many received it.
fn deliver_each(
    subs: Option<&Subscribers>,
    now_ms: u64,
    limit: ObufLimit,
    msg: impl Fn() -> Message,
) -> usize {
    let mut n = 0;
    for outbox in subs.into_iter().flat_map(HashMap::values) {
        if outbox.deliver(msg(), now_ms, limit) {
            n += 1;
        }
    }
    n
}

/// The registry.
#[derive(Debug, Default)]
pub(crate) struct PubSub {
    state: Mutex<State>,
    /// `client-output-buffer-limit` of every class: the pubsub class is enforced here, the
    /// normal class by the RESP connections.
    pub(crate) limits: ObufLimits,
}

impl PubSub {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Subscribes `client` to the channel, pattern or shard channel `name`. Returns whether it
    /// was new.
    pub(crate) fn subscribe(
        &self,
        client: u64,
        name: &Bytes,
        kind: Kind,
        outbox: &Arc<Outbox>,
    ) -> bool {
        self.state()
            .names_mut(kind)
            .entry(name.clone())
            .or_default()
            .insert(client, outbox.clone())
            .is_none()
    }

    /// Unsubscribes `client`. Returns whether it was subscribed.
    pub(crate) fn unsubscribe(&self, client: u64, name: &[u8], kind: Kind) -> bool {
        let mut st = self.state();
        let map = st.names_mut(kind);
        let Some(subs) = map.get_mut(name) else {
            return false;
        };
        let was = subs.remove(&client).is_some();
        if subs.is_empty() {
            map.remove(name);
        }
        was
    }

    /// Delivers `payload` to every subscriber of `channel` (or, `shard`, of the shard channel
    /// `channel`: SPUBLISH) at wall-clock `now_ms`; returns how many received it (a subscriber
    /// disconnected for overrunning its buffer counts, as in Redis). Patterns match channels
    /// only, never shard channels (Redis's `pubsubPublishMessageInternal`).
    pub(crate) fn publish(
        &self,
        channel: &[u8],
        payload: &[u8],
        now_ms: u64,
        shard: bool,
    ) -> usize {
        let st = self.state();
        let limit = self.limits.get(ObufClass::Pubsub);
        let channel = Bytes::copy_from_slice(channel);
        let payload = Bytes::copy_from_slice(payload);
        let (channel, payload) = (&channel, &payload);
        if shard {
            return deliver_each(st.shard_channels.get(channel), now_ms, limit, || {
                Message::Shard {
                    channel: channel.clone(),
                    payload: payload.clone(),
                }
            });
        }
        let mut n = deliver_each(st.channels.get(channel), now_ms, limit, || {
            Message::Channel {
                channel: channel.clone(),
                payload: payload.clone(),
            }
        });
        for (pattern, subs) in &st.patterns {
            if glob_match(pattern, channel, false) {
                n += deliver_each(Some(subs), now_ms, limit, || Message::Pattern {
                    pattern: pattern.clone(),
                    channel: channel.clone(),
                    payload: payload.clone(),
                });
            }
        }
        n
    }

    /// Number of channels (or patterns, or shard channels) with subscribers (INFO's
    /// `pubsub_channels`, `pubsub_patterns`, `pubsubshard_channels`; PUBSUB NUMPAT).
    pub(crate) fn count(&self, kind: Kind) -> usize {
        self.state().names(kind).len()
    }

    /// Channels (or shard channels) with subscribers whose names match the glob `pattern`
    /// (PUBSUB CHANNELS, SHARDCHANNELS).
    pub(crate) fn channels_matching(&self, pattern: &[u8], kind: Kind) -> Vec<Bytes> {
        self.state()
            .names(kind)
            .keys()
            .filter(|c| glob_match(pattern, c, false))
            .cloned()
            .collect()
    }

    /// Subscribers of the channel (or shard channel) `channel`, pattern subscriptions not
    /// counted (PUBSUB NUMSUB, SHARDNUMSUB).
    pub(crate) fn subscriber_count(&self, channel: &[u8], kind: Kind) -> usize {
        self.state()
            .names(kind)
            .get(channel)
            .map_or(0, HashMap::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Outbox {
        /// `deliver` under Redis's default pubsub limit.
        fn deliver_default(&self, msg: Message, now_ms: u64) -> bool {
            self.deliver(msg, now_ms, ObufLimit::default_for(ObufClass::Pubsub))
        }
    }

    #[test]
    fn a_zero_hard_limit_still_stops_at_the_output_buffer_ceiling() {
        let unlimited = ObufLimit {
            hard_bytes: 0,
            soft_bytes: 0,
            soft_seconds: 0,
        };
        assert_eq!(
            unlimited.check(OUTPUT_BUFFER_BYTES_MAX - 1, 0, 5),
            (false, 0)
        );
        assert!(unlimited.check(OUTPUT_BUFFER_BYTES_MAX, 0, 5).0);
        // A configured hard limit is reached at exactly its bytes.
        let small = ObufLimit {
            hard_bytes: 100,
            ..unlimited
        };
        assert!(!small.check(99, 0, 5).0);
        assert!(small.check(100, 0, 5).0);
    }

    /// A channel message on "c" charged exactly `charge` bytes.
    fn message(charge: usize) -> Message {
        let data = charge - PUBSUB_MESSAGE_OVERHEAD_BYTES - 1;
        Message::Channel {
            channel: Bytes::from_static(b"c"),
            payload: Bytes::from(vec![b'p'; data]),
        }
    }

    #[test]
    fn the_hard_limit_closes_the_outbox_when_pending_bytes_reach_it() {
        let (outbox, mut rx) = Outbox::new(1, Arc::default());
        let soft = PUBSUB_BUFFER_SOFT_BYTES;
        assert!(outbox.deliver_default(message(soft - 1), 0));
        // Over the soft limit from t = 1 (not yet for 60 s), one byte short of the hard limit.
        assert!(outbox.deliver_default(message(PUBSUB_BUFFER_BYTES_MAX - soft), 1));
        assert!(!outbox.is_closed());
        assert!(outbox.deliver_default(message(PUBSUB_MESSAGE_OVERHEAD_BYTES + 1), 2));
        assert!(outbox.is_closed(), "closed at the hard limit");
        // Nothing is queued after the close: the subscriber's stream has no gap, it ends.
        assert!(outbox.deliver_default(message(100), 3));
        assert_eq!(rx.try_recv().map(|m| m.charge()).ok(), Some(soft - 1));
        assert_eq!(
            rx.try_recv().map(|m| m.charge()).ok(),
            Some(PUBSUB_BUFFER_BYTES_MAX - soft)
        );
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn the_soft_limit_closes_after_its_time_and_resets_below_it() {
        let (outbox, _rx) = Outbox::new(1, Arc::default());
        let soft = PUBSUB_BUFFER_SOFT_BYTES;
        assert!(outbox.deliver_default(message(soft), 1_000));
        assert!(outbox.deliver_default(message(100), 1_000 + PUBSUB_BUFFER_SOFT_MS));
        assert!(
            !outbox.is_closed(),
            "at the soft limit for exactly its time"
        );
        // Written out: below the soft limit again, the clock restarts.
        outbox.written(soft + 100);
        assert!(outbox.deliver_default(message(100), 2_000 + PUBSUB_BUFFER_SOFT_MS));
        assert!(outbox.deliver_default(message(soft), 3_000 + PUBSUB_BUFFER_SOFT_MS));
        assert!(outbox.deliver_default(message(100), 3_000 + 2 * PUBSUB_BUFFER_SOFT_MS));
        assert!(!outbox.is_closed());
        assert!(outbox.deliver_default(message(100), 3_001 + 2 * PUBSUB_BUFFER_SOFT_MS));
        assert!(
            outbox.is_closed(),
            "over the soft limit for longer than its time"
        );
    }
}
