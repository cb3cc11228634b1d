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

    /// The fields of a change event this watcher reads to decide whether an event is for it
    /// (the namespace and every path of its filter), as dotted-path segments. Besides these it
    /// reads only whether `fullDocument` is an object and, when it is not, `documentKey`. A
    /// change event reduced to these paths routes exactly as the whole event does.
    #[must_use]
    pub fn read_paths(&self) -> Vec<Vec<String>> {
        let mut paths: Vec<&[String]> = Vec::new();
        if let Some(filter) = &self.filter {
            filter.paths(&mut paths);
        }
        let mut out = vec![vec!["ns".to_owned()]];
        out.extend(paths.into_iter().map(<[String]>::to_vec));
        out
    }

    /// Whether the change event is for this watcher, and which of its fields the payload is
    /// taken from; `None` when the event is for another namespace or fails the filter.
    #[must_use]
    pub fn route(&self, change: &Value) -> Option<PayloadField> {
        let doc = self.select(change)?;
        if change
            .get("fullDocument")
            .is_some_and(|d| std::ptr::eq(d, doc))
        {
            Some(PayloadField::FullDocument)
        } else {
            Some(PayloadField::DocumentKey)
        }
    }

    /// Whether the watcher projects its payload (otherwise the payload is the whole field).
    #[must_use]
    pub fn projects(&self) -> bool {
        self.projection.is_some()
    }

    /// The payload text for `doc` (the field [`Watcher::route`] named): projected, as one-line
    /// JSON.
    #[must_use]
    pub fn payload_text(&self, doc: &Value) -> String {
        match &self.projection {
            Some(p) => p.apply(doc).to_string(),
            None => doc.to_string(),
        }
    }

    /// Publishes this watcher's event with `data`, one-line JSON text made by
    /// [`Watcher::payload_text`] or an equivalent writer; returns its id.
    ///
    /// # Errors
    /// As [`Hub::publish`], e.g. a payload over the event data limit.
    pub fn publish_text(&self, hub: &Hub, data: String) -> Result<EventId> {
        hub.publish_json(&self.channel, &self.event, data, None)
    }

    /// Turns a change event into `(event name, payload)`, or `None` when the event is for
    /// another namespace or fails the filter. The payload is `fullDocument` (or `documentKey`
    /// when there is none, as for deletes), projected.
    #[must_use]
    pub fn apply(&self, change: &Value) -> Option<(String, Value)> {
        let doc = self.select(change)?;
        let payload = self
            .projection
            .as_ref()
            .map_or_else(|| doc.clone(), |p| p.apply(doc));
        Some((self.event.clone(), payload))
    }

    /// The document of `change` this watcher publishes (before projection), or `None` when the
    /// event is for another namespace or fails the filter.
    fn select<'c>(&self, change: &'c Value) -> Option<&'c Value> {
        let ns = change.get("ns")?;
        if ns.get("db").and_then(Value::as_str) != Some(self.db.as_str())
            || ns.get("coll").and_then(Value::as_str) != Some(self.coll.as_str())
        {
            return None;
        }
        if self.filter.as_ref().is_some_and(|f| !f.matches(change)) {
            return None;
        }
        change
            .get("fullDocument")
            .filter(|d| d.is_object())
            .or_else(|| change.get("documentKey"))
    }

    /// Applies the watcher to `change` and publishes the event, if any, to `hub` (reaching SSE
    /// and Pusher subscribers alike); returns its id. The payload is what [`Watcher::apply`]
    /// returns, serialised straight from `change` without a copy.
    ///
    /// # Errors
    /// As [`Hub::publish`], e.g. a payload over the event data limit.
    pub fn publish(&self, hub: &Hub, change: &Value) -> Result<Option<EventId>> {
        match self.select(change) {
            Some(doc) => self.publish_text(hub, self.payload_text(doc)).map(Some),
            None => Ok(None),
        }
    }
}

/// The field of a change event a watcher's payload is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadField {
    /// `fullDocument` (an object).
    FullDocument,
    /// `documentKey` (when there is no full document, as for deletes).
    DocumentKey,
}
