//! Watchers (the Laravel watcher of the reference system): history's change feed in, channel
//! events out. One task reads every change event once, in oplog order, and hands it to each
//! configured [`Watcher`], which publishes to the hub (and so to SSE and Pusher subscribers).
//!
//! The stream reads the durable oplog, so a slow hub never loses an event here; a stream that
//! falls behind oplog retention (286) is reopened at the latest event and says so in the log.
//!
//! An event is not converted to JSON whole: watchers route on a [`View`] that holds only the
//! fields they read (namespace, filter paths, `documentKey`), and an unprojected `fullDocument`
//! payload is written as relaxed Extended JSON text straight from BSON ([`write_relaxed`]),
//! the same text as converting it to a JSON value and serialising that.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;

use bson::{Bson, Document};
use serde_json::{Map, Value};

use crate::history::{FullDocument, History, WatchOptions, WatchScope};
use crate::realtime::{Hub, PayloadField, Watcher};
use crate::shutdown::ShutdownSignal;

/// Consecutive stream failures after which the task gives up (each failure reopens the stream).
const REOPEN_ATTEMPTS_MAX: u32 = 5;

/// Runs until `shutdown` fires.
pub(crate) async fn run(
    history: History,
    hub: Arc<Hub>,
    watchers: Vec<Watcher>,
    mut shutdown: ShutdownSignal,
) {
    if watchers.is_empty() {
        return;
    }
    let options = || WatchOptions {
        full_document: FullDocument::UpdateLookup,
        ..WatchOptions::default()
    };
    let view = View::new(&watchers);
    let mut failures = 0u32;
    let mut stream = match history.watch(WatchScope::All, options()) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::error!(error = %e, "watchers: cannot open the change stream; no channel events will be published");
            return;
        }
    };
    loop {
        let next = tokio::select! {
            () = shutdown.wait() => return,
            next = stream.next() => next,
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
                match history.watch(WatchScope::All, options()) {
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
fn publish(hub: &Hub, watchers: &[Watcher], view: &View, event: &Document) {
    let routed = Value::Object(view.reduce(event));
    // The whole `fullDocument` as a JSON value, only if a projecting watcher needs it.
    let mut full: Option<Value> = None;
    for watcher in watchers {
        let Some(field) = watcher.route(&routed) else {
            continue;
        };
        let data = match field {
            PayloadField::FullDocument if !watcher.projects() => {
                relaxed_text(event.get("fullDocument").unwrap_or(&Bson::Null))
            }
            PayloadField::FullDocument => watcher.payload_text(full.get_or_insert_with(|| {
                event
                    .get("fullDocument")
                    .cloned()
                    .map_or(Value::Null, Bson::into_relaxed_extjson)
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
                other => other.clone().into_relaxed_extjson(),
            };
            out.insert(key.clone(), value);
        }
        out
    }
}

/// `value` as one-line relaxed Extended JSON text: the text of
/// `value.clone().into_relaxed_extjson().to_string()`, without building the JSON value.
fn relaxed_text(value: &Bson) -> String {
    let mut out = Vec::with_capacity(1024);
    match write_relaxed(&mut out, value).map(|()| String::from_utf8(out)) {
        Ok(Ok(text)) => text,
        // Writing to a `Vec` does not fail and serde_json writes UTF-8; should either ever
        // happen, the slow path gives the same text.
        _ => value.clone().into_relaxed_extjson().to_string(),
    }
}

/// Writes `value` as relaxed Extended JSON. Documents, arrays, strings, integers, finite
/// doubles, booleans and null are written here exactly as serde_json writes their JSON value;
/// every other type goes through bson's own conversion.
fn write_relaxed(out: &mut Vec<u8>, value: &Bson) -> std::io::Result<()> {
    match value {
        Bson::Document(doc) => {
            out.push(b'{');
            for (i, (key, value)) in doc.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key)?;
                out.push(b':');
                write_relaxed(out, value)?;
            }
            out.push(b'}');
        }
        Bson::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_relaxed(out, item)?;
            }
            out.push(b']');
        }
        Bson::String(s) => serde_json::to_writer(&mut *out, s)?,
        Bson::Int32(n) => write!(out, "{n}")?,
        Bson::Int64(n) => write!(out, "{n}")?,
        Bson::Double(f) if f.is_finite() => serde_json::to_writer(&mut *out, f)?,
        Bson::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Bson::Null => out.extend_from_slice(b"null"),
        other => serde_json::to_writer(&mut *out, &other.clone().into_relaxed_extjson())?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bson::{Bson, doc, oid::ObjectId};
    use serde_json::json;

    use super::{View, relaxed_text};
    use crate::realtime::{PayloadField, Watcher, WatcherConfig};

    fn order() -> bson::Document {
        doc! {
            "_id": "10100", "orderNumber": 10_100_i64, "small": 7_i32, "price": 98.5,
            "whole": 100.0, "tiny": 1e-7, "huge": 1.5e300, "nan": f64::NAN, "inf": f64::NEG_INFINITY,
            "status": "Shipped \"now\"\n", "ok": true, "none": Bson::Null,
            "date": bson::DateTime::from_millis(1_796_032_800_000),
            "oid": ObjectId::from_bytes([7; 12]),
            "lines": [{"productCode": "S10_1678", "qty": 30}, 1, "x", [], {}],
            "nested": {"a": {"b": [1.25, {"c": "é"}]}},
        }
    }

    #[test]
    fn relaxed_text_is_the_text_of_the_converted_value() {
        let doc = Bson::Document(order());
        assert_eq!(
            relaxed_text(&doc),
            doc.clone().into_relaxed_extjson().to_string()
        );
        for value in order().values() {
            assert_eq!(
                relaxed_text(value),
                value.clone().into_relaxed_extjson().to_string()
            );
        }
    }

    fn change(op: &str, full: Bson) -> bson::Document {
        doc! {
            "_id": {"_data": "00"}, "operationType": op,
            "ns": {"db": "shop", "coll": "orders"},
            "documentKey": {"_id": "10100"}, "fullDocument": full,
        }
    }

    #[test]
    fn the_reduced_view_routes_like_the_whole_event() {
        let watchers = vec![
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
        ];
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
            let whole = Bson::Document(event.clone()).into_relaxed_extjson();
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
}
