//! Presence membership: which users are on which `presence-` channel, counting each user's
//! sockets so `member_added` goes out only for a new user and `member_removed` only when the
//! user's last socket leaves.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use serde_json::{Map, Value, json};

use super::{Error, PRESENCE_MEMBERS_MAX, Result};

/// One user on a presence channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The user id from the signed `channel_data`.
    pub user_id: String,
    /// The user info from the signed `channel_data`.
    pub user_info: Value,
}

/// The members of a presence channel, sorted by user id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PresenceSnapshot {
    /// Members sorted by user id.
    pub members: Vec<Member>,
}

impl PresenceSnapshot {
    /// The `{"ids": [...], "hash": {id: info}, "count": n}` object of `subscription_succeeded`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let ids: Vec<&str> = self.members.iter().map(|m| m.user_id.as_str()).collect();
        let hash: Map<String, Value> = self
            .members
            .iter()
            .map(|m| (m.user_id.clone(), m.user_info.clone()))
            .collect();
        json!({"ids": ids, "hash": hash, "count": self.members.len()})
    }
}

/// A member's info and how many sockets carry it.
#[derive(Debug)]
struct Entry {
    /// Info from the first socket that joined.
    info: Value,
    /// Sockets of this user on the channel.
    sockets: usize,
}

/// Every presence channel's members.
#[derive(Debug, Default)]
pub(crate) struct Presence {
    /// Channel → user id → entry. Sorted per channel so snapshots are deterministic.
    channels: Mutex<HashMap<String, BTreeMap<String, Entry>>>,
}

impl Presence {
    /// Adds one socket of `user_id`; `Ok(true)` when the user is new to the channel.
    pub(crate) fn join(&self, channel: &str, user_id: &str, info: &Value) -> Result<bool> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let members = channels.entry(channel.to_owned()).or_default();
        if let Some(entry) = members.get_mut(user_id) {
            entry.sockets += 1;
            return Ok(false);
        }
        if members.len() >= PRESENCE_MEMBERS_MAX {
            return Err(Error::PresenceFull {
                max: PRESENCE_MEMBERS_MAX,
            });
        }
        members.insert(
            user_id.to_owned(),
            Entry {
                info: info.clone(),
                sockets: 1,
            },
        );
        Ok(true)
    }

    /// Removes one socket of `user_id`; `true` when that was the user's last socket.
    pub(crate) fn leave(&self, channel: &str, user_id: &str) -> bool {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(members) = channels.get_mut(channel) else {
            return false;
        };
        let gone = match members.get_mut(user_id) {
            Some(entry) if entry.sockets > 1 => {
                entry.sockets -= 1;
                false
            }
            Some(_) => {
                members.remove(user_id);
                true
            }
            None => false,
        };
        if members.is_empty() {
            channels.remove(channel);
        }
        gone
    }

    /// The channel's members now.
    pub(crate) fn snapshot(&self, channel: &str) -> PresenceSnapshot {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let members = channels
            .get(channel)
            .map(|m| {
                m.iter()
                    .map(|(id, e)| Member {
                        user_id: id.clone(),
                        user_info: e.info.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        PresenceSnapshot { members }
    }

    /// Distinct users on the channel.
    pub(crate) fn user_count(&self, channel: &str) -> usize {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels.get(channel).map_or(0, BTreeMap::len)
    }
}
