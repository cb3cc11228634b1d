//! Pub/sub registry: channel and pattern subscriptions of RESP clients, each fed through a
//! bounded queue. A subscriber whose queue is full loses the message and is marked for
//! disconnection (Redis's pub/sub output buffer limit).

use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use hashbrown::HashMap;
use tokio::sync::mpsc;

use crate::cache::cmd::glob_match;

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

type Subscribers = HashMap<u64, mpsc::Sender<Message>>;

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
        tx: &mpsc::Sender<Message>,
    ) -> bool {
        let mut st = self.state();
        let map = if pattern {
            &mut st.patterns
        } else {
            &mut st.channels
        };
        map.entry(name.clone())
            .or_default()
            .insert(client, tx.clone())
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

    /// Delivers `payload` to every subscriber of `channel`; returns how many received it.
    pub(crate) fn publish(&self, channel: &[u8], payload: &[u8]) -> usize {
        let st = self.state();
        let channel = Bytes::copy_from_slice(channel);
        let payload = Bytes::copy_from_slice(payload);
        let mut n = 0;
        if let Some(subs) = st.channels.get(&channel) {
            for tx in subs.values() {
                if tx
                    .try_send(Message::Channel {
                        channel: channel.clone(),
                        payload: payload.clone(),
                    })
                    .is_ok()
                {
                    n += 1;
                }
            }
        }
        for (pattern, subs) in &st.patterns {
            if glob_match(pattern, &channel, false) {
                for tx in subs.values() {
                    let msg = Message::Pattern {
                        pattern: pattern.clone(),
                        channel: channel.clone(),
                        payload: payload.clone(),
                    };
                    if tx.try_send(msg).is_ok() {
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
