//! Watchers (the Laravel watcher of the reference system): history's change feed in, channel
//! events out. One task reads every change event once, in oplog order, and hands it to each
//! configured [`Watcher`], which publishes to the hub (and so to SSE and Pusher subscribers).
//!
//! The stream reads the durable oplog, so a slow hub never loses an event here; a stream that
//! falls behind oplog retention (286) is reopened at the latest event and says so in the log.
//!
//! An event is not built whole: the task reads the oplog as stored ([`OplogTail`]), watchers
//! route on a [`View`] that holds only the fields they read (namespace, filter paths,
//! `documentKey`), taken from the entry's bytes ([`StoredChange::field`]), and an unprojected
//! `fullDocument` payload — the stored post-image, or an update's current document, never
//! decoded — is written as relaxed Extended JSON text straight from its BSON
//! ([`write_relaxed_json`]), the same text as
//! converting the change event a whole-deployment change stream with `fullDocument:
//! updateLookup` hands out to a JSON value and serialising its field.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use bson::{RawBsonRef, RawDocument};
use serde_json::{Map, Value};

use crate::history::{
    EventField, History, OplogTail, StoredChange, raw_value, relaxed_extjson, write_relaxed_json,
};
use crate::realtime::{Hub, PayloadField, Watcher};
use crate::shutdown::ShutdownSignal;

/// Consecutive stream failures after which the task gives up (each failure reopens the stream).
const REOPEN_ATTEMPTS_MAX: u32 = 5;

/// Opens the oplog tail the watchers read, at the latest entry: open it before the flows
/// start, so that every change they commit, a backlog at start included, is published.
///
/// # Errors
/// As `History::tail`.
pub(crate) fn open(history: &History) -> crate::history::Result<OplogTail> {
    history.tail()
}

/// Publishes what `tail` (from [`open`]) reads to `watchers` (the engine runs this only when
/// there are some) until `shutdown` fires; a failed tail is reopened at the latest entry.
pub(crate) async fn run(
    history: History,
    hub: Arc<Hub>,
    watchers: Vec<Watcher>,
    mut tail: OplogTail,
    mut shutdown: ShutdownSignal,
) {
    let view = View::new(&watchers);
    let mut failures = 0u32;
    loop {
        let next = tokio::select! {
            () = shutdown.wait() => return,
            next = tail.next() => next,
        };
        match next {
            Ok(Some(change)) => {
                failures = 0;
                publish(&history, &hub, &watchers, &view, &change);
                // IMPORTANT: a committed batch puts hundreds of entries in the oplog at once,
                // and reading them never waits. Without yielding, this task would keep its
                // worker through the whole burst while the subscribers it just woke sit in that
                // worker's LIFO slot (which other workers cannot steal) and fall behind the
                // hub's buffer, ending in `resync`. Spending the cooperative budget yields
                // every so often.
                tokio::task::consume_budget().await;
            }
            Ok(None) => return,
            Err(e) => {
                failures += 1;
                if failures > REOPEN_ATTEMPTS_MAX {
                    tracing::error!(error = %e, "watchers: change stream failed {REOPEN_ATTEMPTS_MAX} times in a row; stopping");
                    return;
                }
                tracing::warn!(error = %e, "watchers: change stream failed; reopening at the latest event");
                match open(&history) {
                    Ok(t) => tail = t,
                    Err(e) => {
                        tracing::warn!(error = %e, "watchers: reopening the change stream failed")
                    }
                }
            }
        }
    }
}

/// Routes the change event of `change` through every watcher and publishes what they produce.
fn publish(history: &History, hub: &Hub, watchers: &[Watcher], view: &View, change: &StoredChange) {
    let outcome = payloads(history, watchers, view, change, |watcher, data| {
        if let Err(e) = watcher.publish_text(hub, data) {
            tracing::warn!(channel = watcher.channel(), error = %e, "watcher could not publish a change");
        }
    });
    if let Err(e) = outcome {
        tracing::error!(seq = change.seq(), error = %e, "watchers: a change event cannot be read; not published");
    }
}

/// Routes the change event of `change` through every watcher and calls `emit` with each
/// watcher that takes it and the payload text: its [`Watcher::apply`] payload, serialised.
///
/// # Errors
/// The change's `fullDocument` cannot be read, or the entry does not decode (nothing emitted).
fn payloads(
    history: &History,
    watchers: &[Watcher],
    view: &View,
    change: &StoredChange,
    mut emit: impl FnMut(&Watcher, String),
) -> Result<(), String> {
    let full = change.full_document(history).map_err(|e| e.to_string())?;
    let raw_full = full.as_ref().and_then(|f| f.as_deref());
    let routed = view
        .reduce_stored(change, full.as_ref())
        .map(Value::Object)
        .map_err(|e| e.to_string())?;
    // The whole `fullDocument` as a JSON value, only if a projecting watcher needs it.
    let mut full_value: Option<Value> = None;
    for watcher in watchers {
        let Some(field) = watcher.route(&routed) else {
            continue;
        };
        let data = match (field, raw_full) {
            (PayloadField::FullDocument, Some(raw)) if !watcher.projects() => relaxed_text_raw(raw),
            (PayloadField::FullDocument, Some(raw)) => {
                watcher.payload_text(full_value.get_or_insert_with(|| {
                    // The tail checked every element of the stored document when it read it,
                    // so the conversion does not fail; null only if that ever changed.
                    raw_to_relaxed(RawBsonRef::Document(raw)).unwrap_or(Value::Null)
                }))
            }
            // A watcher routes to `fullDocument` only when it is an object, which only a
            // document gives: the payload of an absent one is null, should that ever change.
            (PayloadField::FullDocument, None) => watcher.payload_text(&Value::Null),
            (PayloadField::DocumentKey, _) => {
                watcher.payload_text(routed.get("documentKey").unwrap_or(&Value::Null))
            }
        };
        emit(watcher, data);
    }
    Ok(())
}

/// The fields of a change event the watchers read, as a tree of path segments.
#[derive(Debug, Default)]
struct View {
    /// Fields read below this one; `whole` fields are converted entirely.
    children: BTreeMap<String, View>,
    /// A path ends here: the field is converted whole, whatever lies below.
    whole: bool,
}

impl View {
    /// The union of what `watchers` read, plus `documentKey` (a payload when there is no full
    /// document) and the presence and type of `fullDocument`.
    fn new(watchers: &[Watcher]) -> Self {
        let mut root = Self::default();
        for path in watchers.iter().flat_map(Watcher::read_paths) {
            root.add(&path);
        }
        root.add(&["documentKey".to_owned()]);
        root.children.entry("fullDocument".to_owned()).or_default();
        root
    }

    fn add(&mut self, path: &[String]) {
        match path.split_first() {
            None => self.whole = true,
            Some((head, rest)) => self.children.entry(head.clone()).or_default().add(rest),
        }
    }

    /// The change event of `change` reduced to the fields in this tree, as relaxed Extended
    /// JSON; `full` is its `fullDocument` ([`StoredChange::full_document`]). A field read
    /// whole, or one whose value is not a document (arrays included), converts entirely, so
    /// every path in the tree resolves to what it resolves to in the whole converted event.
    fn reduce_stored(
        &self,
        change: &StoredChange,
        full: Option<&Option<Cow<'_, RawDocument>>>,
    ) -> bson::error::Result<Map<String, Value>> {
        let mut out = Map::with_capacity(self.children.len());
        for (name, child) in &self.children {
            let value = if name == "fullDocument" {
                match full {
                    None => continue,
                    Some(None) => Value::Null,
                    Some(Some(doc)) => child.reduce_document(doc)?,
                }
            } else {
                match change.field(name) {
                    None => continue,
                    Some(EventField::Stored(RawBsonRef::Document(doc))) => {
                        child.reduce_document(doc)?
                    }
                    Some(EventField::Stored(other)) => raw_to_relaxed(other)?,
                    Some(EventField::OperationType(op)) => Value::String(op.to_owned()),
                    Some(EventField::ResumeToken(token)) => {
                        let mut id = Map::with_capacity(1);
                        id.insert("_data".to_owned(), Value::String(token));
                        Value::Object(id)
                    }
                    Some(EventField::Namespace { db, coll }) => {
                        let mut ns = Map::with_capacity(2);
                        ns.insert("db".to_owned(), Value::String(db.to_owned()));
                        if let Some(coll) = coll {
                            ns.insert("coll".to_owned(), Value::String(coll.to_owned()));
                        }
                        Value::Object(ns)
                    }
                }
            };
            out.insert(name.clone(), value);
        }
        Ok(out)
    }

    /// A document field of the event: whole, or reduced to this tree.
    fn reduce_document(&self, doc: &RawDocument) -> bson::error::Result<Value> {
        if self.whole {
            raw_to_relaxed(RawBsonRef::Document(doc))
        } else {
            self.reduce_raw(doc)
        }
    }

    /// A raw document reduced to the fields in this tree (see [`View::reduce_stored`]).
    fn reduce_raw(&self, doc: &RawDocument) -> bson::error::Result<Value> {
        if self.children.is_empty() {
            // Only the document's presence is read (the tail checked its bytes): no walk.
            return Ok(Value::Object(Map::new()));
        }
        let mut out = Map::with_capacity(self.children.len());
        for element in doc {
            let (key, value) = element?;
            let Some(child) = self.children.get(key.as_str()) else {
                continue;
            };
            let value = match value {
                RawBsonRef::Document(inner) => child.reduce_document(inner)?,
                other => raw_to_relaxed(other)?,
            };
            out.insert(key.as_str().to_owned(), value);
        }
        Ok(Value::Object(out))
    }
}

/// A raw value as relaxed Extended JSON ([`relaxed_extjson`]).
fn raw_to_relaxed(value: RawBsonRef<'_>) -> bson::error::Result<Value> {
    Ok(relaxed_extjson(raw_value(value)?))
}

/// A raw document as one-line relaxed Extended JSON text: the text of
/// `relaxed_extjson(decoded).to_string()`, written from its bytes by [`write_relaxed_json`]; a
/// document it leaves (one that repeats a key) goes through `bson`'s conversion.
fn relaxed_text_raw(doc: &RawDocument) -> String {
    let mut out = Vec::with_capacity(doc.as_bytes().len() + doc.as_bytes().len() / 4);
    if write_relaxed_json(doc.as_bytes(), &mut out).is_some()
        && let Ok(text) = String::from_utf8(out)
    {
        return text;
    }
    // The tail checked every element of the document, so the conversion does not fail; null
    // only if that ever changed.
    raw_to_relaxed(RawBsonRef::Document(doc))
        .unwrap_or(Value::Null)
        .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test setup fails loudly")]

    use bson::{Bson, doc, oid::ObjectId};
    use serde_json::{Value, json};

    use super::{View, payloads, relaxed_extjson, relaxed_text_raw};
    use crate::history::{
        FullDocument, History, OplogTail, UpdateOptions, WatchOptions, WatchScope,
    };
    use crate::realtime::{Watcher, WatcherConfig};

    fn order() -> bson::Document {
        doc! {
            "_id": "10100", "orderNumber": 10_100_i64, "small": 7_i32, "price": 98.5,
            "whole": 100.0, "tiny": 1e-7, "huge": 1.5e300, "nan": f64::NAN, "inf": f64::NEG_INFINITY,
            "status": "Shipped \"now\"\n", "ok": true, "none": Bson::Null,
            "date": bson::DateTime::from_millis(1_796_032_800_000),
            "after_9999": bson::DateTime::from_millis(253_402_300_800_000),
            "oid": ObjectId::from_bytes([7; 12]),
            "lines": [{"productCode": "S10_1678", "qty": 30}, 1, "x", [], {}],
            "nested": {"a": {"b": [1.25, {"c": "é"}]}},
        }
    }

    /// The order, and each of its values (every type the writer handles itself, and the
    /// others) in a document of its own, are written as bson converts and serde_json writes
    /// them, key order included.
    #[test]
    fn relaxed_text_raw_is_the_text_of_the_converted_document() {
        let docs = std::iter::once(order()).chain(order().into_iter().map(|(k, v)| doc! {k: v}));
        for doc in docs {
            let raw = bson::RawDocumentBuf::try_from(&doc).unwrap();
            assert_eq!(
                relaxed_text_raw(&raw),
                relaxed_extjson(Bson::Document(doc.clone())).to_string(),
                "{doc}"
            );
        }
    }

    /// Damaged bytes that repeat a key give the text of the decoded document, which keeps one
    /// value per key, not both fields.
    #[test]
    fn a_repeated_key_is_written_as_the_decoded_document_has_it() {
        let mut bytes = doc! {"n": 1_i32, "m": "two"}.to_vec().unwrap();
        // The second key, `m`, renamed `n`: the only `m` byte before a NUL.
        let at = bytes.windows(2).position(|w| w == b"m\0").unwrap();
        bytes[at] = b'n';
        let raw = bson::RawDocumentBuf::from_bytes(bytes).unwrap();
        let decoded = bson::Document::try_from(raw.as_ref()).unwrap();
        let text = relaxed_text_raw(&raw);
        assert_eq!(text, relaxed_extjson(Bson::Document(decoded)).to_string());
        assert_eq!(text.matches("\"n\"").count(), 1, "{text}");
    }

    /// The default orders watcher, one whose filter reads into arrays and nested documents,
    /// one that projects, and one that reads the namespace's collection and the update
    /// description.
    fn watchers() -> Vec<Watcher> {
        let config = |filter: Value, projection: Option<Value>| WatcherConfig {
            filter: Some(filter),
            projection,
            ..WatcherConfig::default_orders()
        };
        [
            WatcherConfig::default_orders(),
            config(
                json!({"$or": [
                    {"fullDocument.lines.qty": {"$gte": 30}},
                    {"fullDocument.nested.a": {"$exists": true}},
                ]}),
                None,
            ),
            config(
                json!({"operationType": {"$in": ["insert", "update"]}}),
                Some(json!({"orderNumber": 1, "nested.a": 1})),
            ),
            config(
                json!({"ns.coll": "orders", "updateDescription.updatedFields.status": {"$exists": true}}),
                None,
            ),
        ]
        .iter()
        .enumerate()
        .map(|(i, c)| Watcher::new(i, c).unwrap())
        .collect()
    }

    /// A view that reads every field of a change event whole.
    fn every_field() -> View {
        let mut view = View::default();
        for name in [
            "_id",
            "operationType",
            "clusterTime",
            "wallTime",
            "ns",
            "to",
            "documentKey",
            "fullDocument",
            "updateDescription",
            "fullDocumentBeforeChange",
        ] {
            view.add(&[name.to_owned()]);
        }
        view
    }

    /// Every kind of oplog entry — inserts, updates (of a document still there and of one
    /// deleted since), a replace, deletes, a rename, drops, a dropDatabase — read from the tail
    /// gives the change event a stream of every namespace under `updateLookup` renders for it
    /// (every field, read whole), routes through each watcher as that event does and gives the
    /// same payload text.
    #[tokio::test]
    async fn stored_changes_read_as_the_change_stream_renders_them() {
        let (_dir, h) = History::open_temporary();
        let options = WatchOptions {
            full_document: FullDocument::UpdateLookup,
            ..WatchOptions::default()
        };
        let mut stream = h.watch(WatchScope::All, options).unwrap();
        let mut tail = h.tail().unwrap();

        let mut small = order();
        small.insert("_id", "small");
        small.insert("lines", bson::bson!([{"qty": 3}]));
        small.remove("nested");
        small.remove("orderNumber");
        h.insert_one("shop", "orders", order()).unwrap();
        h.insert_one("shop", "orders", small).unwrap();
        let set = |id: &str, update: bson::Document| {
            h.update(
                "shop",
                "orders",
                &doc! {"_id": id},
                &update,
                UpdateOptions::default(),
            )
            .unwrap();
        };
        set(
            "10100",
            doc! {"$set": {"status": "Cancelled"}, "$unset": {"tiny": ""}},
        );
        set("small", doc! {"$set": {"status": "Shipped"}});
        h.replace(
            "shop",
            "orders",
            &doc! {"_id": "10100"},
            &doc! {"orderNumber": 7},
            false,
        )
        .unwrap();
        h.delete("shop", "orders", &doc! {"_id": "small"}, false)
            .unwrap();
        h.insert_one("shop", "other", doc! {"_id": ObjectId::from_bytes([1; 12])})
            .unwrap();
        let watchers = watchers();
        let view = View::new(&watchers);
        let mut routed = vec![0; watchers.len()];
        // Read before the namespaces go, so that one update's current document is there.
        let mut events = stream.try_next_batch(100).unwrap().events;
        assert_eq!(events.len(), 7);
        check(&h, &mut tail, &watchers, &view, &events, &mut routed).await;
        h.rename_collection("shop", "other", "shop", "renamed")
            .unwrap();
        h.drop_collection("shop", "orders").unwrap();
        h.drop_database("shop").unwrap();
        events = stream.try_next_batch(100).unwrap().events;
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| e.get_str("operationType").unwrap())
            .collect();
        assert_eq!(kinds, ["rename", "drop", "drop", "dropDatabase"]);
        check(&h, &mut tail, &watchers, &view, &events, &mut routed).await;
        // Nothing else was committed: the tail waits.
        assert!(futures::FutureExt::now_or_never(tail.next()).is_none());
        // Each watcher took some events and left others.
        assert_eq!(routed, [3, 1, 4, 2]);
    }

    /// Reads one entry from `tail` per event of `events` and checks it against the event.
    async fn check(
        h: &History,
        tail: &mut OplogTail,
        watchers: &[Watcher],
        view: &View,
        events: &[bson::Document],
        routed: &mut [usize],
    ) {
        let every = every_field();
        for want in events {
            let change = tail.next().await.unwrap().unwrap();
            let full = change.full_document(h).unwrap();
            let whole = relaxed_extjson(Bson::Document(want.clone()));
            let got = every.reduce_stored(&change, full.as_ref()).unwrap();
            // Map equality ignores the order of the fields, which routing does not read.
            assert_eq!(Value::Object(got), whole, "{want}");

            let mut emitted = Vec::new();
            payloads(h, watchers, view, &change, |w, data| {
                emitted.push((w.channel().to_owned(), data));
            })
            .unwrap();
            let mut emitted = emitted.into_iter();
            for (i, w) in watchers.iter().enumerate() {
                let Some((_, payload)) = w.apply(&whole) else {
                    continue;
                };
                routed[i] += 1;
                let (_, data) = emitted.next().unwrap();
                assert_eq!(data, payload.to_string(), "watcher {i}, {want}");
            }
            assert!(emitted.next().is_none(), "{want}");
        }
    }
}
