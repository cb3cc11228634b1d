//! Watchers: a pure function from a MongoDB-shaped change event (`operationType`,
//! `fullDocument`, `documentKey`, `ns`, …) to the channel event it publishes.
//!
//! The pipeline feeds each change from the history change feed to every watcher and publishes
//! what [`Watcher::apply`] returns; this file knows nothing of history or the hub.

use serde_json::Value;

use super::filter::{Filter, Projection};
use super::{Error, EventId, Hub, Result, WatcherConfig, check_channel_name, check_event_name};

/// A compiled watcher: namespace, `$match` filter, projection, channel and event name.
#[derive(Debug, Clone)]
pub struct Watcher {
    /// Database name of the watched namespace.
    db: String,
    /// Collection name of the watched namespace.
    coll: String,
    /// Target channel.
    channel: String,
    /// Event name.
    event: String,
    /// Filter on the whole change event.
    filter: Option<Filter>,
    /// Projection of the payload document.
    projection: Option<Projection>,
}

impl Watcher {
    /// Compiles watcher `index` of the configuration.
    ///
    /// # Errors
    /// [`Error::Watcher`] naming the index and the fault (namespace not `db.collection`, bad
    /// channel or event name, unsupported or too deeply nested filter, bad projection).
    pub fn new(index: usize, config: &WatcherConfig) -> Result<Self> {
        let bad = |reason: String| Error::Watcher { index, reason };
        let (db, coll) = config
            .watch
            .split_once('.')
            .filter(|(d, c)| !d.is_empty() && !c.is_empty())
            .ok_or_else(|| bad(format!("watch `{}` is not db.collection", config.watch)))?;
        check_channel_name(&config.channel).map_err(|e| bad(e.to_string()))?;
        check_event_name(&config.event).map_err(|e| bad(e.to_string()))?;
        let filter = config
            .filter
            .as_ref()
            .map(Filter::compile)
            .transpose()
            .map_err(bad)?;
        let projection = config
            .projection
            .as_ref()
            .map(Projection::compile)
            .transpose()
            .map_err(bad)?;
        Ok(Self {
            db: db.to_owned(),
            coll: coll.to_owned(),
            channel: config.channel.clone(),
            event: config.event.clone(),
            filter,
            projection,
        })
    }

    /// The watched namespace as `(db, collection)`.
    #[must_use]
    pub fn namespace(&self) -> (&str, &str) {
        (&self.db, &self.coll)
    }

    /// The channel this watcher publishes to.
    #[must_use]
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Turns a change event into `(event name, payload)`, or `None` when the event is for
    /// another namespace or fails the filter. The payload is `fullDocument` (or `documentKey`
    /// when there is none, as for deletes), projected.
    #[must_use]
    pub fn apply(&self, change: &Value) -> Option<(String, Value)> {
        let ns = change.get("ns")?;
        if ns.get("db").and_then(Value::as_str) != Some(self.db.as_str())
            || ns.get("coll").and_then(Value::as_str) != Some(self.coll.as_str())
        {
            return None;
        }
        if self.filter.as_ref().is_some_and(|f| !f.matches(change)) {
            return None;
        }
        let doc = change
            .get("fullDocument")
            .filter(|d| d.is_object())
            .or_else(|| change.get("documentKey"))?;
        let payload = self
            .projection
            .as_ref()
            .map_or_else(|| doc.clone(), |p| p.apply(doc));
        Some((self.event.clone(), payload))
    }

    /// Applies the watcher to `change` and publishes the event, if any, to `hub` (reaching SSE
    /// and Pusher subscribers alike); returns its id.
    ///
    /// # Errors
    /// As [`Hub::publish`], e.g. a payload over the event data limit.
    pub fn publish(&self, hub: &Hub, change: &Value) -> Result<Option<EventId>> {
        match self.apply(change) {
            Some((event, payload)) => hub.publish(&self.channel, &event, payload, None).map(Some),
            None => Ok(None),
        }
    }
}
