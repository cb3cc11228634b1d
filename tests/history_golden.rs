//! Capability: history's on-disk format is stable — a data directory written by an earlier
//! build (committed under `tests/fixtures/history/v1/`) still opens, its documents, index
//! entries, catalog, writer state and oplog decode to exactly the recorded values, and new
//! writes continue its sequence; and the order-preserving key encoding of every BSON type
//! still produces the recorded bytes.
//!
//! Method: copy the fixture to a temporary directory, open it, and compare what it returns
//! with `expected.json` (canonical Extended JSON) and `key_values.hex`. A format change makes
//! these tests fail; it then needs a new fixture version and a `docs/formats.md` entry.
//! `a_fresh_store_records_what_the_fixture_holds` writes the same operations into a new store
//! and compares its observation with `expected.json` too; run with
//! `STREAMCACHE_BLESS_GOLDEN=1` (that test alone: the others read the fixture) it rewrites the
//! committed fixture first (deliberately, after a format change).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use std::path::{Path, PathBuf};

use bson::{Bson, doc, oid::ObjectId};
use serde_json::Value;
use streamcache::clock::ManualClock;
use streamcache::history::{
    ChangeStream, FindOptions, History, HistoryConfig, IndexModel, UpdateOptions, WatchOptions,
    WatchScope, encode_key_value,
};

/// The wall clock every fixture write used.
const FIXTURE_MS: i64 = 1_700_000_000_000;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/history/v1")
}

fn open(dir: &Path) -> History {
    History::open(
        dir,
        HistoryConfig::default(),
        ManualClock::shared(FIXTURE_MS as u64),
    )
    .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Values covering every encoded type bracket, in the encoding's order.
fn key_values() -> Vec<Bson> {
    vec![
        Bson::MinKey,
        Bson::Null,
        Bson::Int32(-5),
        Bson::Double(1.5),
        Bson::Int64(1 << 40),
        Bson::String("A-1".into()),
        Bson::Document(doc! {"a": 1}),
        Bson::Array(vec![Bson::Int32(1), Bson::String("x".into())]),
        Bson::Binary(bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic,
            bytes: vec![1, 2, 3],
        }),
        Bson::ObjectId(ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").unwrap()),
        Bson::Boolean(true),
        Bson::DateTime(bson::DateTime::from_millis(FIXTURE_MS)),
        Bson::Timestamp(bson::Timestamp {
            time: 1_700_000_000,
            increment: 7,
        }),
        Bson::MaxKey,
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything the fixture must decode to: documents, indexes, an indexed lookup and every
/// change event (canonical Extended JSON, so types are pinned too).
fn observe(h: &History) -> Value {
    let docs = h
        .find(
            "shop",
            "orders",
            &doc! {},
            &FindOptions {
                sort: Some(doc! {"orderNumber": 1}),
                ..FindOptions::default()
            },
        )
        .unwrap();
    let by_index = h
        .find_one("shop", "orders", &doc! {"orderNumber": "A-1"}, None)
        .unwrap();
    let plan = h
        .explain(
            "shop",
            "orders",
            &doc! {"orderNumber": "A-1"},
            &FindOptions::default(),
        )
        .unwrap();
    let mut stream: ChangeStream = h
        .watch(
            WatchScope::All,
            WatchOptions {
                start_at_operation_time: Some(bson::Timestamp {
                    time: 0,
                    increment: 0,
                }),
                ..WatchOptions::default()
            },
        )
        .unwrap();
    let events = stream.try_next_batch(100).unwrap().events;
    let out = doc! {
        "documents": docs,
        "byIndex": by_index.map_or(Bson::Null, Bson::Document),
        "winningPlan": plan.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap().clone(),
        "indexes": h.list_indexes("shop", "orders").unwrap(),
        "events": events,
        "oplogRange": format!("{:?}", h.oplog_range().unwrap()),
    };
    Bson::Document(out).into_canonical_extjson()
}

/// The fixture's writes: an index, inserts, an update, a delete and a second collection.
fn write_fixture(h: &History) {
    h.create_index(
        "shop",
        "orders",
        &IndexModel {
            keys: vec![("orderNumber".into(), 1)],
            name: None,
            unique: true,
        },
    )
    .unwrap();
    let at = bson::DateTime::from_millis(FIXTURE_MS);
    h.insert_many(
        "shop",
        "orders",
        vec![
            doc! {"_id": 1, "orderNumber": "A-1", "total": 10.5, "at": at, "lines": [{"sku": "x", "qty": 2}]},
            doc! {"_id": ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").unwrap(), "orderNumber": "A-2", "total": 3_i64},
            doc! {"_id": "s", "orderNumber": "A-3", "tags": ["a", "b"]},
        ],
    )
    .unwrap();
    h.update(
        "shop",
        "orders",
        &doc! {"_id": 1},
        &doc! {"$set": {"total": 11.0}, "$push": {"lines": {"sku": "y", "qty": 1}}},
        UpdateOptions::default(),
    )
    .unwrap();
    h.delete("shop", "orders", &doc! {"orderNumber": "A-2"}, false)
        .unwrap();
    h.insert_one("shop", "customers", doc! {"_id": 7, "name": "Ada"})
        .unwrap();
    h.persist().unwrap();
}

/// Writes the fixture's operations into `data` and returns what the reopened store shows.
fn write_and_observe(data: &Path) -> Value {
    {
        let h = open(data);
        write_fixture(&h);
    }
    let h = open(data);
    observe(&h)
}

#[test]
fn a_fresh_store_records_what_the_fixture_holds() {
    let dir = fixture_dir();
    if std::env::var_os("STREAMCACHE_BLESS_GOLDEN").is_some_and(|v| v == "1") {
        let _ = std::fs::remove_dir_all(&dir);
        let observed = write_and_observe(&dir.join("data"));
        std::fs::write(
            dir.join("expected.json"),
            serde_json::to_string_pretty(&observed).unwrap() + "\n",
        )
        .unwrap();
        let lines: Vec<String> = key_values()
            .iter()
            .map(|v| hex(&encode_key_value(v)))
            .collect();
        std::fs::write(dir.join("key_values.hex"), lines.join("\n") + "\n").unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let observed = write_and_observe(&tmp.path().join("data"));
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    assert_eq!(observed, expected);
}

#[test]
fn the_committed_data_directory_decodes_to_the_recorded_values() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir().join("data"), tmp.path());
    let h = open(tmp.path());
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_dir().join("expected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(observe(&h), expected);
    // The writer state decoded too: a new write continues the oplog after the fixture's.
    let (_, last) = h.oplog_range().unwrap();
    h.insert_one("shop", "orders", doc! {"orderNumber": "A-9"})
        .unwrap();
    assert_eq!(h.oplog_range().unwrap().1, last + 1);
    let dup = h.insert_one("shop", "orders", doc! {"orderNumber": "A-1"});
    assert_eq!(
        dup.unwrap_err().code(),
        11000,
        "the unique index entries decoded"
    );
}

#[test]
fn key_encoding_matches_the_recorded_bytes() {
    let recorded = std::fs::read_to_string(fixture_dir().join("key_values.hex")).unwrap();
    let recorded: Vec<&str> = recorded.lines().collect();
    let now: Vec<String> = key_values()
        .iter()
        .map(|v| hex(&encode_key_value(v)))
        .collect();
    assert_eq!(now, recorded);
    let mut sorted = now.clone();
    sorted.sort();
    assert_eq!(sorted, now, "the values are listed in encoded order");
}
