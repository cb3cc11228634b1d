//! Watchers (the Laravel watcher of the reference system): history's change feed in, channel
//! events out. One task reads every change event once, in oplog order, and hands it to each
//! configured [`Watcher`], which publishes to the hub (and so to SSE and Pusher subscribers).
//!
//! The stream reads the durable oplog, so a slow hub never loses an event here; a stream that
//! falls behind oplog retention (286) is reopened at the latest event and says so in the log.
//!
//! An event is not converted to JSON whole: watchers route on a [`View`] that holds only the
//! fields they read (namespace, filter paths, `documentKey`), and an unprojected `fullDocument`
//! payload is written as relaxed Extended JSON text straight from BSON ([`write_relaxed_json`],
//! [`write_relaxed_raw`] for the rare types), the same text as converting it to a JSON value and
//! serialising that. The stream splits its events ([`ChangeStream::split_full_documents`]): a
//! `fullDocument` that is the stored post-image arrives as raw BSON, is never decoded into a
//! document, and both the view and the payload text are read from its bytes
//! ([`View::reduce_raw`], [`relaxed_text_raw`]).
//!
//! [`ChangeStream::split_full_documents`]: crate::history::ChangeStream

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;

use bson::{Bson, Document, RawBsonRef, RawDocument};
use serde_json::{Map, Value};

use crate::history::{
    ChangeStream, FullDocument, History, SplitEvent, WatchOptions, WatchScope, raw_value,
    relaxed_extjson, write_relaxed_json,
};
use crate::realtime::{Hub, PayloadField, Watcher};
use crate::shutdown::ShutdownSignal;

/// Consecutive stream failures after which the task gives up (each failure reopens the stream).
const REOPEN_ATTEMPTS_MAX: u32 = 5;

/// Opens the change stream the watchers read, at the feed's latest event: open it before the
/// flows start, so that every change they commit, a backlog at start included, is published.
///
/// # Errors
/// As `History::watch`.
pub(crate) fn open(history: &History) -> crate::history::Result<ChangeStream> {
    let options = WatchOptions {
        full_document: FullDocument::UpdateLookup,
        ..WatchOptions::default()
    };
    let mut stream = history.watch(WatchScope::All, options)?;
    stream.split_full_documents();
    Ok(stream)
}

/// Publishes what `stream` (from [`open`]) reads to `watchers` (the engine runs this only when
/// there are some) until `shutdown` fires; a failed stream is reopened at the latest event.
pub(crate) async fn run(
    history: History,
    hub: Arc<Hub>,
    watchers: Vec<Watcher>,
    mut stream: ChangeStream,
    mut shutdown: ShutdownSignal,
) {
    let view = View::new(&watchers);
    let mut failures = 0u32;
    loop {
        let next = tokio::select! {
            () = shutdown.wait() => return,
            next = stream.next_split() => next,
        };
        match next {
            Ok(Some(event)) => {
                failures = 0;
                publish(&hub, &watchers, &view, &event);
                // IMPORTANT: a committed batch puts hundreds of events in the feed at once, and
                // reading them never waits. Without yielding, this task would keep its worker
                // through the whole burst while the subscribers it just woke sit in that
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
                    Ok(s) => stream = s,
                    Err(e) => {
                        tracing::warn!(error = %e, "watchers: reopening the change stream failed")
                    }
                }
            }
        }
    }
}

/// Routes `event` through every watcher and publishes what they produce.
fn publish(hub: &Hub, watchers: &[Watcher], view: &View, split: &SplitEvent) {
    let event = &split.event;
    let raw_full = split.full_document.as_deref();
    let mut reduced = view.reduce(event);
    if let Some(raw) = raw_full {
        let value = match view.children.get("fullDocument") {
            Some(child) if !child.whole => child.reduce_raw(raw),
            _ => raw_to_relaxed(RawBsonRef::Document(raw)),
        };
        match value {
            Ok(value) => {
                reduced.insert("fullDocument".to_owned(), value);
            }
            Err(e) => {
                tracing::error!(error = %e, "watchers: a change event's fullDocument does not decode; not published");
                return;
            }
        }
    }
    let routed = Value::Object(reduced);
    // The whole `fullDocument` as a JSON value, only if a projecting watcher needs it.
    let mut full: Option<Value> = None;
    for watcher in watchers {
        let Some(field) = watcher.route(&routed) else {
            continue;
        };
        let data = match field {
            PayloadField::FullDocument if !watcher.projects() => match raw_full {
                Some(raw) => relaxed_text_raw(raw),
                None => relaxed_text(event.get("fullDocument").unwrap_or(&Bson::Null)),
            },
            PayloadField::FullDocument => watcher.payload_text(full.get_or_insert_with(|| {
                match raw_full {
                    // The stream checked every element of the raw document when it read the
                    // entry, so the conversion does not fail; null only if that ever changed.
                    Some(raw) => raw_to_relaxed(RawBsonRef::Document(raw)).unwrap_or(Value::Null),
                    None => event
                        .get("fullDocument")
                        .cloned()
                        .map_or(Value::Null, relaxed_extjson),
                }
            })),
            PayloadField::DocumentKey => {
                watcher.payload_text(routed.get("documentKey").unwrap_or(&Value::Null))
            }
        };
        if let Err(e) = watcher.publish_text(hub, data) {
            tracing::warn!(channel = watcher.channel(), error = %e, "watcher could not publish a change");
        }
    }
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

    /// [`View::reduce`] of a raw document (a `fullDocument` left raw by the stream).
    fn reduce_raw(&self, doc: &RawDocument) -> bson::error::Result<Value> {
        if self.children.is_empty() {
            // Only the document's presence is read (the stream checked its bytes): no walk.
            return Ok(Value::Object(Map::new()));
        }
        let mut out = Map::with_capacity(self.children.len());
        for element in doc {
            let (key, value) = element?;
            let Some(child) = self.children.get(key.as_str()) else {
                continue;
            };
            let value = match value {
                RawBsonRef::Document(inner) if !child.whole => child.reduce_raw(inner)?,
                other => raw_to_relaxed(other)?,
            };
            out.insert(key.as_str().to_owned(), value);
        }
        Ok(Value::Object(out))
    }

    /// `doc` reduced to the fields in this tree, as relaxed Extended JSON. A field read whole,
    /// or one whose value is not a document (arrays included), converts entirely, so every
    /// path in the tree resolves to what it resolves to in the whole converted event.
    fn reduce(&self, doc: &Document) -> Map<String, Value> {
        let mut out = Map::with_capacity(self.children.len());
        for (key, value) in doc {
            let Some(child) = self.children.get(key) else {
                continue;
            };
            let value = match value {
                Bson::Document(inner) if !child.whole => Value::Object(child.reduce(inner)),
                other => relaxed_value(other),
            };
            out.insert(key.clone(), value);
        }
        out
    }
}

/// `value` as one-line relaxed Extended JSON text: the text of
/// `relaxed_extjson(value.clone()).to_string()`; a document is written from its BSON
/// encoding ([`write_relaxed_raw`]) without building the JSON value.
fn relaxed_text(value: &Bson) -> String {
    match value {
        Bson::Document(doc) => match bson::RawDocumentBuf::try_from(doc) {
            Ok(raw) => relaxed_text_raw(&raw),
            Err(_) => relaxed_extjson(value.clone()).to_string(),
        },
        other => relaxed_extjson(other.clone()).to_string(),
    }
}

/// `relaxed_extjson(value.clone())` without the clone: documents, arrays, strings, integers,
/// finite doubles, booleans and null are converted here as bson converts them; the other types
/// go through [`relaxed_extjson`] of a clone.
fn relaxed_value(value: &Bson) -> Value {
    match value {
        Bson::Document(doc) => Value::Object(
            doc.iter()
                .map(|(key, value)| (key.clone(), relaxed_value(value)))
                .collect(),
        ),
        Bson::Array(items) => Value::Array(items.iter().map(relaxed_value).collect()),
        Bson::String(s) => Value::String(s.clone()),
        Bson::Int32(n) => Value::from(*n),
        Bson::Int64(n) => Value::from(*n),
        Bson::Double(f) if f.is_finite() => Value::from(*f),
        Bson::Boolean(b) => Value::Bool(*b),
        Bson::Null => Value::Null,
        other => relaxed_extjson(other.clone()),
    }
}

/// A raw value as relaxed Extended JSON ([`relaxed_extjson`]).
fn raw_to_relaxed(value: RawBsonRef<'_>) -> bson::error::Result<Value> {
    Ok(relaxed_extjson(raw_value(value)?))
}

/// [`relaxed_text`] of a raw document: the same text, written from its bytes
/// ([`write_relaxed_json`] for the common types, [`write_relaxed_raw`] for the rest).
fn relaxed_text_raw(doc: &RawDocument) -> String {
    let mut out = Vec::with_capacity(doc.as_bytes().len() + doc.as_bytes().len() / 4);
    // A refused document leaves `out` empty for the writer that handles every type.
    let written = match write_relaxed_json(doc.as_bytes(), &mut out) {
        Some(()) => Ok(()),
        None => write_relaxed_raw(&mut out, RawBsonRef::Document(doc)),
    };
    match written.map(|()| String::from_utf8(out)) {
        Ok(Ok(text)) => text,
        // The stream checked every element of the document and serde_json writes UTF-8; should
        // either ever fail, the slow path gives the same text (or null for a bad document).
        _ => raw_to_relaxed(RawBsonRef::Document(doc))
            .unwrap_or(Value::Null)
            .to_string(),
    }
}

/// Writes `value` as relaxed Extended JSON. Documents, arrays, strings, integers, finite
/// doubles, booleans and null are written here exactly as serde_json writes their JSON value;
/// every other type goes through bson's own conversion.
fn write_relaxed_raw(out: &mut Vec<u8>, value: RawBsonRef<'_>) -> std::io::Result<()> {
    let bad = |e: bson::error::Error| std::io::Error::other(e.to_string());
    match value {
        RawBsonRef::Document(doc) => {
            out.push(b'{');
            for (i, element) in doc.into_iter().enumerate() {
                let (key, value) = element.map_err(bad)?;
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key.as_str())?;
                out.push(b':');
                write_relaxed_raw(out, value)?;
            }
            out.push(b'}');
        }
        RawBsonRef::Array(items) => {
            out.push(b'[');
            for (i, item) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_relaxed_raw(out, item.map_err(bad)?)?;
            }
            out.push(b']');
        }
        RawBsonRef::String(s) => serde_json::to_writer(&mut *out, s)?,
        RawBsonRef::Int32(n) => write!(out, "{n}")?,
        RawBsonRef::Int64(n) => write!(out, "{n}")?,
        RawBsonRef::Double(f) if f.is_finite() => serde_json::to_writer(&mut *out, &f)?,
        RawBsonRef::Boolean(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        RawBsonRef::Null => out.extend_from_slice(b"null"),
        other => {
            serde_json::to_writer(&mut *out, &relaxed_extjson(raw_value(other).map_err(bad)?))?
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bson::{Bson, doc, oid::ObjectId};
    use serde_json::json;

    use super::{View, relaxed_extjson, relaxed_text, relaxed_text_raw, relaxed_value};
    use crate::realtime::{PayloadField, Watcher, WatcherConfig};

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

    #[test]
    fn relaxed_text_is_the_text_of_the_converted_value() {
        let doc = Bson::Document(order());
        assert_eq!(relaxed_text(&doc), relaxed_extjson(doc.clone()).to_string());
        for value in order().values() {
            assert_eq!(
                relaxed_text(value),
                relaxed_extjson(value.clone()).to_string()
            );
        }
    }

    /// Every value of the order (every type the conversion handles itself, and the others),
    /// the order itself and a change event convert as bson converts them, key order included.
    #[test]
    fn values_convert_as_bson_converts_them() {
        let values = order().into_iter().map(|(_, v)| v).chain([
            Bson::Document(order()),
            Bson::Document(change("insert", Bson::Null)),
        ]);
        for value in values {
            let expected = relaxed_extjson(value.clone());
            assert_eq!(relaxed_value(&value), expected, "{value}");
            assert_eq!(relaxed_value(&value).to_string(), expected.to_string());
        }
    }

    fn change(op: &str, full: Bson) -> bson::Document {
        doc! {
            "_id": {"_data": "00"}, "operationType": op,
            "ns": {"db": "shop", "coll": "orders"},
            "documentKey": {"_id": "10100"}, "fullDocument": full,
        }
    }

    /// The default orders watcher and one whose filter reads into arrays and nested documents.
    fn watchers() -> Vec<Watcher> {
        vec![
            Watcher::new(0, &WatcherConfig::default_orders()).unwrap(),
            Watcher::new(
                1,
                &WatcherConfig {
                    filter: Some(json!({"$or": [
                        {"fullDocument.lines.qty": {"$gte": 30}},
                        {"fullDocument.nested.a": {"$exists": true}},
                    ]})),
                    ..WatcherConfig::default_orders()
                },
            )
            .unwrap(),
        ]
    }

    #[test]
    fn the_reduced_view_routes_like_the_whole_event() {
        let watchers = watchers();
        let view = View::new(&watchers);
        let mut no_number = order();
        no_number.remove("orderNumber");
        let mut small_qty = order();
        small_qty.insert("lines", bson::bson!([{"qty": 3}]));
        small_qty.remove("nested");
        let events = [
            change("insert", Bson::Document(order())),
            change("update", Bson::Document(no_number)),
            change("insert", Bson::Document(small_qty)),
            change("delete", Bson::Null),
            change("replace", Bson::Document(doc! {})),
        ];
        for event in events {
            let whole = relaxed_extjson(Bson::Document(event.clone()));
            let reduced = serde_json::Value::Object(view.reduce(&event));
            for w in &watchers {
                let routed = w.route(&reduced);
                assert_eq!(routed, w.route(&whole), "{event}");
                let expected = w.apply(&whole).map(|(_, payload)| payload);
                let got = routed.map(|field| match field {
                    PayloadField::FullDocument => {
                        serde_json::from_str(&relaxed_text(event.get("fullDocument").unwrap()))
                            .unwrap()
                    }
                    PayloadField::DocumentKey => reduced["documentKey"].clone(),
                });
                assert_eq!(got, expected, "{event}");
            }
        }
    }

    #[test]
    fn raw_text_and_raw_view_match_the_decoded_ones() {
        let watchers = watchers();
        let view = View::new(&watchers);
        let child = view.children.get("fullDocument").unwrap();
        let mut small = order();
        small.remove("nested");
        for doc in [order(), small, doc! {}] {
            let raw = bson::RawDocumentBuf::try_from(&doc).unwrap();
            assert_eq!(
                relaxed_text_raw(&raw),
                relaxed_text(&Bson::Document(doc.clone()))
            );
            assert_eq!(
                child.reduce_raw(&raw).unwrap(),
                serde_json::Value::Object(child.reduce(&doc)),
                "{doc}"
            );
        }
    }
}
