//! Aggregation throughput: 20,000 small orders in one collection, and criterion timing whole
//! pipelines over them — a `$group` by customer with `$sum`/`$avg`/`$max`/`$push`, a
//! `$project` computing fields with arithmetic and string operators, a `$match` on an
//! unindexed field feeding a `$group`, a `$lookup` of each order's customer (500 customers),
//! a `$graphLookup` up each customer's chain of referrers (4 deep), and a `$setWindowFields`
//! per customer in order (a running total, a moving average over five orders, a rank) beside
//! the `$sort` by the same keys alone, which it runs first. Each pipeline reads every
//! document, so the time per run divided by 20,000 is the cost per document of the stages and
//! their expressions.
//!
//! Anchor, in the same run: SQLite (rusqlite's bundled build, WAL, `synchronous=OFF`) holding
//! the same orders as JSON text, running the same sort and the same three window functions
//! (`sum … ROWS UNBOUNDED PRECEDING`, `avg … ROWS 4 PRECEDING`, `rank()`) over
//! `json_extract` values, each result row parsed into a `serde_json::Value` with the three
//! values added — documents with their window fields, as the store returns them.
//!
//! The first three pipelines use only operators every version of the store has, so the same
//! file measures a change to expression evaluation before and after. Two more count orders
//! per local day with `$dateToString`, at a fixed offset and in an IANA time zone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark setup fails loudly"
)]

use bson::{Document, doc};
use criterion::{Criterion, Throughput};
use rusqlite::Connection;
use streamcache::clock::ManualClock;
use streamcache::history::{History, HistoryConfig};

const DOCS: i64 = 20_000;
const CUSTOMERS: i64 = 500;

/// Customer `c<i>`, referred by the next one.
fn customer(i: i64) -> Document {
    doc! {
        "_id": format!("c{i}"),
        "name": format!("Customer {i}"),
        "referredBy": format!("c{}", (i + 1) % CUSTOMERS),
    }
}

fn order(i: i64) -> Document {
    let status = ["new", "paid", "shipped"][usize::try_from(i % 3).unwrap()];
    doc! {
        "_id": i,
        "customer": format!("c{}", i % CUSTOMERS),
        "status": status,
        "qty": i32::try_from(i % 9 + 1).unwrap(),
        "price": (i % 10_000) as f64 / 100.0,
        "name": format!("Product {}", i % 5000),
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(
        dir.path(),
        HistoryConfig::default(),
        ManualClock::shared(1_700_000_000_000),
    )
    .unwrap();
    h.insert_many("shop", "orders", (0..DOCS).map(order).collect())
        .unwrap();
    h.insert_many("shop", "customers", (0..CUSTOMERS).map(customer).collect())
        .unwrap();
    // Orders an hour apart (from the `_id`), counted per local day: at a fixed offset, and in
    // an IANA zone whose offset changes twice a year over the 20,000 hours.
    let per_local_day = |timezone: &str| {
        vec![doc! {"$group": {
            "_id": {"$dateToString": {
                "date": {"$toDate": {"$multiply": ["$_id", 3_600_000_i64]}},
                "format": "%Y-%m-%d",
                "timezone": timezone,
            }},
            "n": {"$sum": 1},
        }}]
    };
    let pipelines: [(&str, Vec<Document>); 9] = [
        (
            "group_by_customer",
            vec![doc! {"$group": {
                "_id": "$customer",
                "total": {"$sum": {"$multiply": ["$price", "$qty"]}},
                "avg": {"$avg": "$price"},
                "max": {"$max": "$qty"},
                "ids": {"$push": "$_id"},
            }}],
        ),
        (
            "project_computed",
            vec![doc! {"$project": {
                "_id": 0,
                "customer": 1,
                "amount": {"$multiply": ["$price", "$qty"]},
                "net": {"$subtract": [{"$multiply": ["$price", "$qty"]}, 1]},
                "label": {"$concat": [{"$toUpper": "$status"}, " ", "$name"]},
                "big": {"$gt": ["$qty", 5]},
            }}],
        ),
        (
            "match_then_group",
            vec![
                doc! {"$match": {"status": "paid"}},
                doc! {"$group": {"_id": "$status", "n": {"$sum": 1}, "qty": {"$sum": "$qty"}}},
            ],
        ),
        ("per_local_day_fixed_offset", per_local_day("-05:00")),
        ("per_local_day_iana_zone", per_local_day("America/New_York")),
        (
            "lookup_customer",
            vec![doc! {"$lookup": {
                "from": "customers", "localField": "customer", "foreignField": "_id", "as": "c",
            }}],
        ),
        (
            "graph_lookup_referrers",
            vec![doc! {"$graphLookup": {
                "from": "customers", "startWith": "$customer", "connectFromField": "referredBy",
                "connectToField": "_id", "maxDepth": 3, "as": "referrers",
            }}],
        ),
        (
            "sort_by_customer",
            vec![doc! {"$sort": {"customer": 1, "_id": 1}}],
        ),
        (
            "window_by_customer",
            vec![doc! {"$setWindowFields": {
                "partitionBy": "$customer",
                "sortBy": {"_id": 1},
                "output": {
                    "running": {
                        "$sum": {"$multiply": ["$price", "$qty"]},
                        "window": {"documents": ["unbounded", "current"]},
                    },
                    "moving": {"$avg": "$price", "window": {"documents": [-4, 0]}},
                    "rank": {"$rank": {}},
                },
            }}],
        ),
    ];
    let sqlite = Connection::open(dir.path().join("sqlite.db")).unwrap();
    sqlite.pragma_update(None, "journal_mode", "WAL").unwrap();
    sqlite.pragma_update(None, "synchronous", "OFF").unwrap();
    sqlite
        .execute_batch("CREATE TABLE orders(id INTEGER PRIMARY KEY, doc TEXT NOT NULL)")
        .unwrap();
    {
        let tx = sqlite.unchecked_transaction().unwrap();
        let mut insert = tx
            .prepare("INSERT INTO orders(id, doc) VALUES (?1, ?2)")
            .unwrap();
        for i in 0..DOCS {
            let json =
                serde_json::to_string(&bson::Bson::Document(order(i)).into_relaxed_extjson())
                    .unwrap();
            insert.execute(rusqlite::params![i, json]).unwrap();
        }
        drop(insert);
        tx.commit().unwrap();
    }
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("aggregate_20k");
    g.throughput(Throughput::Elements(u64::try_from(DOCS).unwrap()));
    for (name, pipeline) in &pipelines {
        g.bench_function(*name, |b| {
            b.iter(|| h.aggregate("shop", "orders", pipeline).unwrap().len());
        });
    }
    g.bench_function("sqlite_sort_by_customer", |b| {
        b.iter(|| {
            let mut stmt = sqlite
                .prepare_cached(
                    "SELECT doc FROM orders ORDER BY json_extract(doc, '$.customer'), id",
                )
                .unwrap();
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .unwrap()
                .map(|s| serde_json::from_str::<serde_json::Value>(&s.unwrap()).unwrap());
            rows.collect::<Vec<_>>().len()
        });
    });
    g.bench_function("sqlite_window_by_customer", |b| {
        b.iter(|| {
            let mut stmt = sqlite
                .prepare_cached(
                    "SELECT doc, \
                       sum(json_extract(doc, '$.price') * json_extract(doc, '$.qty')) \
                         OVER (w ROWS UNBOUNDED PRECEDING), \
                       avg(json_extract(doc, '$.price')) OVER (w ROWS 4 PRECEDING), \
                       rank() OVER w \
                     FROM orders \
                     WINDOW w AS (PARTITION BY json_extract(doc, '$.customer') ORDER BY id)",
                )
                .unwrap();
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, f64>(1)?,
                        r.get::<_, f64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .unwrap()
                .map(|row| {
                    let (doc, running, moving, rank) = row.unwrap();
                    let mut v: serde_json::Value = serde_json::from_str(&doc).unwrap();
                    if let Some(o) = v.as_object_mut() {
                        o.insert("running".into(), running.into());
                        o.insert("moving".into(), moving.into());
                        o.insert("rank".into(), rank.into());
                    }
                    v
                });
            rows.collect::<Vec<_>>().len()
        });
    });
    g.finish();
    c.final_summary();
}
