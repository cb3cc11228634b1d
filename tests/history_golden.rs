//! Capability: history's on-disk format is stable — data directories written by earlier
//! builds (committed under `tests/fixtures/history/v1/`, collections with key format V1,
//! `v2/`, key format V2, `v3/`, key format V3, and `v4/`, key format V3 with collection UUIDs
//! and the commands' oplog entries) still open, their documents, index entries, catalog,
//! writer state and oplog decode to exactly the recorded values, new writes continue their
//! sequence, and collections from before UUIDs get one that lasts; a collection created in an
//! old store gets the current key format beside the old ones; and the order-preserving key
//! encoding of every BSON type still produces the recorded bytes in each format.
//!
//! Method: copy a fixture to a temporary directory, open it, and compare what it returns
//! with `expected.json` (canonical Extended JSON) and `key_values.hex`. A format change makes
//! these tests fail; it then needs a new fixture version and a `docs/formats.md` entry.
//! `a_fresh_store_records_what_the_fixture_holds` writes the same operations into a new store
//! and compares its observation with the current fixture's `expected.json`; run with
//! `STREAMCACHE_BLESS_GOLDEN=1` (that test alone: the others read the fixtures) it rewrites
//! the current fixture first (deliberately, after a format change). Older fixtures are never
//! rewritten: they are what earlier builds wrote.
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
    ChangeStream, FindOptions, History, HistoryConfig, IndexModel, KeyFormat, UpdateOptions,
    WatchOptions, WatchScope, encode_key_value,
};

/// The wall clock every fixture write used.
const FIXTURE_MS: i64 = 1_700_000_000_000;

/// The fixture versions and the key format of the collections each one holds.
const FIXTURES: [(&str, KeyFormat); 4] = [
    ("v1", KeyFormat::V1),
    ("v2", KeyFormat::V2),
    ("v3", KeyFormat::V3),
    ("v4", KeyFormat::V3),
];

/// The fixture the current build writes.
const CURRENT_FIXTURE: &str = "v4";

fn fixture_dir(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/history")
        .join(version)
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

/// Every change event of the store's oplog, in a stream of every namespace (with
/// `showExpandedEvents` when `expanded`).
fn every_event(h: &History, expanded: bool) -> Vec<bson::Document> {
    let mut stream: ChangeStream = h
        .watch(
            WatchScope::All,
            WatchOptions {
                start_at_operation_time: Some(bson::Timestamp {
                    time: 0,
                    increment: 0,
                }),
                show_expanded_events: expanded,
                ..WatchOptions::default()
            },
        )
        .unwrap();
    stream.try_next_batch(100).unwrap().events
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
    let events = every_event(h, false);
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
/// Fixtures from v3 on also hold a document whose indexed field is an empty array (the
/// earlier ones were written without it).
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
            doc! {"_id": "e", "orderNumber": []},
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
    let dir = fixture_dir(CURRENT_FIXTURE);
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
            .map(|v| hex(&encode_key_value(v, KeyFormat::CURRENT)))
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
fn the_committed_data_directories_decode_to_the_recorded_values() {
    for (version, _) in FIXTURES {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(&fixture_dir(version).join("data"), tmp.path());
        let h = open(tmp.path());
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture_dir(version).join("expected.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(observe(&h), expected, "fixture {version}");
        // Every collection has a UUID, the same after a reopen (before v4 it is given when
        // the store opens, and written back then).
        let uuids = h.list_collection_uuids("shop").unwrap();
        assert_eq!(uuids.len(), 2, "fixture {version}");
        drop(h);
        let h = open(tmp.path());
        assert_eq!(
            h.list_collection_uuids("shop").unwrap(),
            uuids,
            "fixture {version}"
        );
        // The writer state decoded too: a new write continues the oplog after the fixture's.
        let (_, last) = h.oplog_range().unwrap();
        h.insert_one("shop", "orders", doc! {"orderNumber": "A-9"})
            .unwrap();
        assert_eq!(h.oplog_range().unwrap().1, last + 1, "fixture {version}");
        let dup = h.insert_one("shop", "orders", doc! {"orderNumber": "A-1"});
        assert_eq!(
            dup.unwrap_err().code(),
            11000,
            "fixture {version}: the unique index entries decoded"
        );
        // Numeric keys of the old collection: `_id` 7 in `customers`, found by its key.
        let ada = h
            .find_one("shop", "customers", &doc! {"_id": 7_i64}, None)
            .unwrap();
        assert_eq!(
            ada.and_then(|d| d.get_str("name").ok().map(str::to_owned)),
            Some("Ada".to_owned()),
            "fixture {version}"
        );
    }
}

#[test]
fn a_collection_created_in_an_old_store_uses_the_current_format_beside_the_old_ones() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir("v1").join("data"), tmp.path());
    {
        let h = open(tmp.path());
        h.create_index(
            "shop",
            "fresh",
            &IndexModel {
                keys: vec![("n".into(), -1)],
                name: None,
                unique: true,
            },
        )
        .unwrap();
        h.insert_many(
            "shop",
            "fresh",
            (0..20_i64).map(|i| doc! {"_id": i, "n": i * 3}).collect(),
        )
        .unwrap();
        // A numeric `_id` in the old (V1) collection, written after the open.
        h.insert_one("shop", "customers", doc! {"_id": 8, "name": "Grace"})
            .unwrap();
    }
    let h = open(tmp.path());
    let found = |coll: &str, filter: bson::Document| {
        h.find("shop", coll, &filter, &FindOptions::default())
            .unwrap()
            .len()
    };
    assert_eq!(found("fresh", doc! {"_id": 19}), 1);
    assert_eq!(found("fresh", doc! {"n": 57}), 1, "unique point read");
    assert_eq!(found("fresh", doc! {"n": {"$gte": 9, "$lt": 30}}), 7);
    assert_eq!(found("customers", doc! {"_id": {"$in": [7, 8]}}), 2);
    assert_eq!(found("orders", doc! {"orderNumber": "A-3"}), 1);
    let dup = h.insert_one("shop", "fresh", doc! {"n": 3});
    assert_eq!(dup.unwrap_err().code(), 11000);
    assert_eq!(
        h.insert_one("shop", "customers", doc! {"_id": 8})
            .unwrap_err()
            .code(),
        11000
    );
}

#[test]
fn key_encoding_matches_the_recorded_bytes() {
    for (version, format) in FIXTURES {
        let recorded =
            std::fs::read_to_string(fixture_dir(version).join("key_values.hex")).unwrap();
        let recorded: Vec<&str> = recorded.lines().collect();
        let now: Vec<String> = key_values()
            .iter()
            .map(|v| hex(&encode_key_value(v, format)))
            .collect();
        assert_eq!(now, recorded, "fixture {version}");
        let mut sorted = now.clone();
        sorted.sort();
        assert_eq!(
            sorted, now,
            "{version}: the values are listed in encoded order"
        );
    }
}

/// V3 keys an empty array apart from null in the committed index: the fixture's unique
/// `orderNumber` holds `[]` (document `e`), so a second `[]` is a duplicate and a null is not.
#[test]
fn the_v3_fixture_keys_an_empty_array_apart_from_null() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir("v3").join("data"), tmp.path());
    let h = open(tmp.path());
    let first = h
        .find(
            "shop",
            "orders",
            &doc! {"orderNumber": {"$exists": true}},
            &FindOptions {
                sort: Some(doc! {"orderNumber": 1}),
                limit: Some(1),
                ..FindOptions::default()
            },
        )
        .unwrap();
    assert_eq!(first[0].get_str("_id").unwrap(), "e", "`[]` sorts first");
    let dup = h.insert_one("shop", "orders", doc! {"orderNumber": []});
    assert_eq!(dup.unwrap_err().code(), 11000);
    h.insert_one("shop", "orders", doc! {"_id": "n", "orderNumber": null})
        .unwrap();
    let nulls = h
        .find(
            "shop",
            "orders",
            &doc! {"orderNumber": null},
            &FindOptions::default(),
        )
        .unwrap();
    assert_eq!(nulls.len(), 1);
    assert_eq!(nulls[0].get_str("_id").unwrap(), "n");
}

/// v4 holds the commands' oplog entries and each entry's collection UUID: an expanded stream
/// over the fixture shows each collection's `create` before its first event, the index's
/// `createIndexes`, and the collections' recorded UUIDs on every event.
#[test]
fn the_v4_fixture_holds_the_events_only_expanded_streams_show() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir("v4").join("data"), tmp.path());
    let h = open(tmp.path());
    let events = every_event(&h, true);
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.get_str("operationType").unwrap(),
                e.get_document("ns").unwrap().get_str("coll").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("create", "orders"),
            ("createIndexes", "orders"),
            ("insert", "orders"),
            ("insert", "orders"),
            ("insert", "orders"),
            ("insert", "orders"),
            ("update", "orders"),
            ("delete", "orders"),
            ("create", "customers"),
            ("insert", "customers"),
        ]
    );
    let uuids = h.list_collection_uuids("shop").unwrap();
    for e in &events {
        let coll = e.get_document("ns").unwrap().get_str("coll").unwrap();
        let (_, uuid) = uuids.iter().find(|(name, _)| name == coll).unwrap();
        assert_eq!(e.get("collectionUUID"), Some(&Bson::from(*uuid)), "{e}");
    }
    assert_eq!(
        events[1].get_document("operationDescription").unwrap(),
        &doc! {"indexes": [{"v": 2, "key": {"orderNumber": 1}, "name": "orderNumber_1", "unique": true}]}
    );
}
