//! Pub/sub registry: channel and pattern subscriptions of RESP clients, each fed through its
//! [`Outbox`].
//!
//! A subscriber that cannot keep up is disconnected, never silently skipped, as Redis enforces
//! `client-output-buffer-limit pubsub 32mb 8mb 60`: the outbox counts the bytes of the messages
//! queued for it or not yet written to its socket; when a message takes that past
//! [`PUBSUB_BUFFER_BYTES_MAX`], or it stays at [`PUBSUB_BUFFER_SOFT_BYTES`] or more for longer
//! than [`PUBSUB_BUFFER_SOFT_MS`], the outbox is closed and the connection's kill signal drops
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
    PUBSUB_BUFFER_BYTES_MAX, PUBSUB_BUFFER_SOFT_BYTES, PUBSUB_BUFFER_SOFT_MS,
    PUBSUB_MESSAGE_OVERHEAD_BYTES, PUBSUB_QUEUE_LEN_MAX,
};

/// A connection's kill signal, fired by CLIENT KILL or by an overrun output buffer limit.
///
/// It stays fired: every later wait returns at once, so a wait that observed it (a blocked pop,
/// a stuck write) cannot use it up and leave the connection open, as Redis's `freeClient`
/// closes a client whatever it was doing.
#[derive(Debug, Default)]
pub(crate) struct Kill {
    fired: AtomicBool,
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
}

/// A message delivered to a subscriber.
#[derive(Debug, Clone)]
pub(crate) enum Message {
    /// From a channel subscription.
    Channel { channel: Bytes, payload: Bytes },
    /// From a pattern subscription.
    Pattern {
        pattern: Bytes,
        channel: Bytes,
        payload: Bytes,
    },
}

impl Message {
    /// Bytes the message counts against its subscriber's output buffer limit.
    pub(crate) fn charge(&self) -> usize {
        let data = match self {
            Self::Channel { channel, payload } => channel.len().saturating_add(payload.len()),
            Self::Pattern {
                pattern,
                channel,
                payload,
            } => pattern
                .len()
                .saturating_add(channel.len())
                .saturating_add(payload.len()),
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

    /// Queues `msg` unless that overruns the limits at wall-clock `now_ms`, in which case the
    /// outbox is closed instead. Returns false only when the connection is already gone.
    fn deliver(&self, msg: Message, now_ms: u64) -> bool {
        if self.is_closed() {
            return true;
        }
        let charge = msg.charge();
        let pending = self
            .pending_bytes
            .fetch_add(charge, Ordering::Relaxed)
            .saturating_add(charge);
        let over = if pending >= PUBSUB_BUFFER_BYTES_MAX {
            true
        } else if pending >= PUBSUB_BUFFER_SOFT_BYTES {
            let since = self.soft_since_ms.load(Ordering::Relaxed);
            if since == 0 {
                self.soft_since_ms.store(now_ms.max(1), Ordering::Relaxed);
                false
            } else {
                now_ms.saturating_sub(since) > PUBSUB_BUFFER_SOFT_MS
            }
        } else {
            self.soft_since_ms.store(0, Ordering::Relaxed);
            false
        };
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
                "pub/sub client closed for overcoming of output buffer limits"
            );
            self.kill.fire();
        }
        true
    }
}

type Subscribers = HashMap<u64, Arc<Outbox>>;

#[derive(Debug, Default)]
struct State {
    channels: HashMap<Bytes, Subscribers>,
    patterns: HashMap<Bytes, Subscribers>,
}

/// The registry.
#[derive(Debug, Default)]
pub(crate) struct PubSub {
    state: Mutex<State>,
}

impl PubSub {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Subscribes `client` to `channel` (or pattern). Returns whether it was new.
    pub(crate) fn subscribe(
        &self,
        client: u64,
        name: &Bytes,
        pattern: bool,
        outbox: &Arc<Outbox>,
    ) -> bool {
        let mut st = self.state();
        let map = if pattern {
            &mut st.patterns
        } else {
            &mut st.channels
        };
        map.entry(name.clone())
            .or_default()
            .insert(client, outbox.clone())
            .is_none()
    }

    /// Unsubscribes `client`. Returns whether it was subscribed.
    pub(crate) fn unsubscribe(&self, client: u64, name: &[u8], pattern: bool) -> bool {
        let mut st = self.state();
        let map = if pattern {
            &mut st.patterns
        } else {
            &mut st.channels
        };
        let Some(subs) = map.get_mut(name) else {
            return false;
        };
        let was = subs.remove(&client).is_some();
        if subs.is_empty() {
            map.remove(name);
        }
        was
    }

    /// Delivers `payload` to every subscriber of `channel` at wall-clock `now_ms`; returns how
    /// many received it (a subscriber disconnected for overrunning its buffer counts, as in
    /// Redis).
    pub(crate) fn publish(&self, channel: &[u8], payload: &[u8], now_ms: u64) -> usize {
        let st = self.state();
        let channel = Bytes::copy_from_slice(channel);
        let payload = Bytes::copy_from_slice(payload);
        let mut n = 0;
        if let Some(subs) = st.channels.get(&channel) {
            for outbox in subs.values() {
                let msg = Message::Channel {
                    channel: channel.clone(),
                    payload: payload.clone(),
                };
                if outbox.deliver(msg, now_ms) {
                    n += 1;
                }
            }
        }
        for (pattern, subs) in &st.patterns {
            if glob_match(pattern, &channel, false) {
                for outbox in subs.values() {
                    let msg = Message::Pattern {
                        pattern: pattern.clone(),
                        channel: channel.clone(),
                        payload: payload.clone(),
                    };
                    if outbox.deliver(msg, now_ms) {
                        n += 1;
                    }
                }
            }
        }
        n
    }

    /// Number of channels with subscribers.
    pub(crate) fn channel_count(&self) -> usize {
        self.state().channels.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(outbox.deliver(message(soft - 1), 0));
        // Over the soft limit from t = 1 (not yet for 60 s), one byte short of the hard limit.
        assert!(outbox.deliver(message(PUBSUB_BUFFER_BYTES_MAX - soft), 1));
        assert!(!outbox.is_closed());
        assert!(outbox.deliver(message(PUBSUB_MESSAGE_OVERHEAD_BYTES + 1), 2));
        assert!(outbox.is_closed(), "closed at the hard limit");
        // Nothing is queued after the close: the subscriber's stream has no gap, it ends.
        assert!(outbox.deliver(message(100), 3));
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
        assert!(outbox.deliver(message(soft), 1_000));
        assert!(outbox.deliver(message(100), 1_000 + PUBSUB_BUFFER_SOFT_MS));
        assert!(
            !outbox.is_closed(),
            "at the soft limit for exactly its time"
        );
        // Written out: below the soft limit again, the clock restarts.
        outbox.written(soft + 100);
        assert!(outbox.deliver(message(100), 2_000 + PUBSUB_BUFFER_SOFT_MS));
        assert!(outbox.deliver(message(soft), 3_000 + PUBSUB_BUFFER_SOFT_MS));
        assert!(outbox.deliver(message(100), 3_000 + 2 * PUBSUB_BUFFER_SOFT_MS));
        assert!(!outbox.is_closed());
        assert!(outbox.deliver(message(100), 3_001 + 2 * PUBSUB_BUFFER_SOFT_MS));
        assert!(
            outbox.is_closed(),
            "over the soft limit for longer than its time"
        );
    }
}
