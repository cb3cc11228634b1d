//! History benchmarks: 100k order documents (~1 KB, 3 order lines) — insert one by one and in
//! batches of 100, find by `_id`, find by an indexed field, an indexed range returning 100 —
//! beside SQLite (bundled, WAL, `synchronous=OFF` to match `fsync = "never"`) storing the same
//! JSON with expression indexes on the same fields; and change-feed latency, insert →
//! in-process subscriber, p50/p99; and one transaction of upserts by an indexed field (100,
//! 1,000, 10,000 per transaction in the pre-pass; 1,000 under criterion) beside SQLite's
//! UPDATE-then-INSERT in one transaction.
//!
//! A pre-pass prints a side-by-side table with ops/s and the ratio; just before criterion the
//! three reads run again as paired rounds (history block, SQLite block, 15 times; median,
//! lowest and highest ratio); criterion then measures each operation for both stores in one
//! group.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark setup fails loudly"
)]

use std::sync::Arc;
use std::time::Duration;

use bson::{Bson, Document, doc};
use criterion::{BenchmarkId, Criterion};
use rusqlite::{Connection, params};
use streamcache::clock::{Clock, SystemClock};
use streamcache::history::{
    FindOptions, History, HistoryConfig, IndexModel, WatchOptions, WatchScope, WriteOp,
};

const DOCS: i64 = 100_000;
const DB: &str = "shop";
const COLL: &str = "orders";

/// A deterministic ~1 KB order with three lines.
fn order(i: i64) -> Document {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let lines: Vec<Bson> = (0..3)
        .map(|l| {
            Bson::Document(doc! {
                "lineNumber": l,
                "sku": format!("SKU-{:06}", next() % 100_000),
                "name": format!("Product {} with a reasonably descriptive name", next() % 5000),
                "qty": (next() % 9 + 1) as i32,
                "price": (next() % 10_000) as f64 / 100.0,
                "description": "A line description long enough to make the order about one kilobyte in size overall.",
            })
        })
        .collect();
    let status = ["new", "paid", "shipped"][(i % 3) as usize];
    doc! {
        "_id": i,
        "orderNumber": i,
        "customerNumber": i % 1000,
        "status": status,
        "createdAt": bson::DateTime::from_millis(1_700_000_000_000 + i * 1000),
        "customer": {"name": format!("Customer {}", i % 1000), "email": format!("c{}@example.com", i % 1000), "city": "Springfield", "street": "742 Evergreen Terrace"},
        "lines": lines,
        "notes": "x".repeat(150),
    }
}

fn json_of(d: &Document) -> String {
    Bson::Document(d.clone()).into_relaxed_extjson().to_string()
}

struct Stores {
    _dir: tempfile::TempDir,
    history: History,
    sqlite: Connection,
}

fn open_stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(
        &dir.path().join("history"),
        HistoryConfig::default(),
        SystemClock::shared(),
    )
    .unwrap();
    for (field, unique) in [("orderNumber", true), ("customerNumber", false)] {
        history
            .create_index(
                DB,
                COLL,
                &IndexModel {
                    keys: vec![(field.into(), 1)],
                    name: None,
                    unique,
                },
            )
            .unwrap();
    }
    let sqlite = Connection::open(dir.path().join("sqlite.db")).unwrap();
    sqlite.pragma_update(None, "journal_mode", "WAL").unwrap();
    sqlite.pragma_update(None, "synchronous", "OFF").unwrap();
    sqlite
        .execute_batch(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, doc TEXT NOT NULL);
             CREATE UNIQUE INDEX orders_order_number ON orders (json_extract(doc, '$.orderNumber'));
             CREATE INDEX orders_customer_number ON orders (json_extract(doc, '$.customerNumber'));",
        )
        .unwrap();
    Stores {
        _dir: dir,
        history,
        sqlite,
    }
}

fn load(s: &Stores, n: i64) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        s.history
            .insert_many(DB, COLL, chunk.iter().map(|i| order(*i)).collect())
            .unwrap();
        let tx = s.sqlite.unchecked_transaction().unwrap();
        {
            let mut st = tx
                .prepare_cached("INSERT INTO orders (id, doc) VALUES (?1, ?2)")
                .unwrap();
            for i in chunk {
                st.execute(params![i, json_of(&order(*i))]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
}

fn sqlite_find(c: &Connection, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Vec<serde_json::Value> {
    let mut st = c.prepare_cached(sql).unwrap();
    st.query_map(p, |r| r.get::<_, String>(0))
        .unwrap()
        .map(|s| serde_json::from_str(&s.unwrap()).unwrap())
        .collect()
}

fn history_by_id(s: &Stores, i: i64) -> usize {
    s.history
        .find(DB, COLL, &doc! {"_id": i}, &FindOptions::default())
        .unwrap()
        .len()
}
fn sqlite_by_id(s: &Stores, i: i64) -> usize {
    sqlite_find(&s.sqlite, "SELECT doc FROM orders WHERE id = ?1", &[&i]).len()
}
fn history_by_field(s: &Stores, i: i64) -> usize {
    s.history
        .find(DB, COLL, &doc! {"orderNumber": i}, &FindOptions::default())
        .unwrap()
        .len()
}
fn sqlite_by_field(s: &Stores, i: i64) -> usize {
    sqlite_find(
        &s.sqlite,
        "SELECT doc FROM orders WHERE json_extract(doc, '$.orderNumber') = ?1",
        &[&i],
    )
    .len()
}
fn history_range(s: &Stores, i: i64) -> usize {
    let f = doc! {"orderNumber": {"$gte": i, "$lt": i + 100}};
    s.history
        .find(DB, COLL, &f, &FindOptions::default())
        .unwrap()
        .len()
}
fn sqlite_range(s: &Stores, i: i64) -> usize {
    let end = i + 100;
    sqlite_find(&s.sqlite, "SELECT doc FROM orders WHERE json_extract(doc, '$.orderNumber') >= ?1 AND json_extract(doc, '$.orderNumber') < ?2", &[&i, &end]).len()
}

/// A read on one store: call `i` reads the key the call number maps to and returns how many
/// documents came back.
type Read = fn(&Stores, i64) -> usize;

/// The compared reads, as every part of this bench runs them: name, criterion id, documents
/// per call, history, SQLite. Call numbers are spread over the loaded orders by [`lcg`].
fn reads() -> [(&'static str, &'static str, usize, Read, Read); 3] {
    [
        (
            "find by _id",
            "find_by_id",
            1,
            |s, i| history_by_id(s, lcg(i)),
            |s, i| sqlite_by_id(s, lcg(i)),
        ),
        (
            "find by indexed field",
            "find_by_indexed_field",
            1,
            |s, i| history_by_field(s, lcg(i)),
            |s, i| sqlite_by_field(s, lcg(i)),
        ),
        (
            "indexed range of 100",
            "indexed_range_100",
            100,
            |s, i| history_range(s, lcg(i) % (DOCS - 100)),
            |s, i| sqlite_range(s, lcg(i) % (DOCS - 100)),
        ),
    ]
}

fn history_insert_one(s: &Stores, i: i64) {
    s.history.insert_one(DB, COLL, order(i)).unwrap();
}
fn sqlite_insert_one(s: &Stores, i: i64) {
    s.sqlite
        .prepare_cached("INSERT INTO orders (id, doc) VALUES (?1, ?2)")
        .unwrap()
        .execute(params![i, json_of(&order(i))])
        .unwrap();
}
fn history_insert_100(s: &Stores, first: i64) {
    s.history
        .insert_many(DB, COLL, (first..first + 100).map(order).collect())
        .unwrap();
}
fn sqlite_insert_100(s: &Stores, first: i64) {
    let tx = s.sqlite.unchecked_transaction().unwrap();
    {
        let mut st = tx
            .prepare_cached("INSERT INTO orders (id, doc) VALUES (?1, ?2)")
            .unwrap();
        for i in first..first + 100 {
            st.execute(params![i, json_of(&order(i))]).unwrap();
        }
    }
    tx.commit().unwrap();
}

/// An order for an upsert: the replacement carries no `_id` (the store keeps or generates it).
fn order_without_id(i: i64) -> Document {
    let mut d = order(i);
    d.remove("_id");
    d
}

/// One transaction of `n` upserts by the unique `orderNumber`, as the pipeline's sink writes
/// them: order numbers `base + j / 2`, so half insert and half replace a document staged
/// earlier in the same transaction.
fn history_upsert_batch(s: &Stores, base: i64, n: i64) {
    let ops = (0..n)
        .map(|j| {
            let number = base + j / 2;
            WriteOp::Upsert {
                db: DB.into(),
                coll: COLL.into(),
                filter: doc! {"orderNumber": number},
                document: order_without_id(number),
            }
        })
        .collect();
    s.history.commit(ops, Vec::new()).unwrap();
}
/// The same in one SQLite transaction: UPDATE by the indexed expression, INSERT when nothing
/// changed.
fn sqlite_upsert_batch(s: &Stores, base: i64, n: i64) {
    let tx = s.sqlite.unchecked_transaction().unwrap();
    {
        let mut up = tx
            .prepare_cached(
                "UPDATE orders SET doc = ?2 WHERE json_extract(doc, '$.orderNumber') = ?1",
            )
            .unwrap();
        let mut ins = tx
            .prepare_cached("INSERT INTO orders (doc) VALUES (?1)")
            .unwrap();
        for j in 0..n {
            let number = base + j / 2;
            let json = json_of(&order_without_id(number));
            if up.execute(params![number, json]).unwrap() == 0 {
                ins.execute(params![json]).unwrap();
            }
        }
    }
    tx.commit().unwrap();
}

/// Per-upsert cost of one transaction of 100, 1,000 and 10,000 upserts (linear scaling shows
/// as a flat column).
fn upsert_scaling(s: &Stores) {
    let clock = SystemClock::new();
    println!("\nupserts by an indexed field in one transaction (us per upsert, same run)");
    println!(
        "{:<12} {:>10} {:>10} {:>7}",
        "batch", "history", "sqlite", "ratio"
    );
    let mut base = DOCS * 1_000;
    for n in [100_i64, 1_000, 10_000] {
        let reps = (20_000 / n).max(2);
        let h = rate(&clock, reps, |r| history_upsert_batch(s, base + r * n, n));
        base += reps * n;
        let q = rate(&clock, reps, |r| sqlite_upsert_batch(s, base + r * n, n));
        base += reps * n;
        println!(
            "{n:<12} {:>10.2} {:>10.2} {:>6.2}x",
            1e6 / (h * n as f64),
            1e6 / (q * n as f64),
            h / q
        );
    }
}

/// Ops per second of `f` over `n` calls, timed with the injected system clock.
fn rate(clock: &SystemClock, n: i64, mut f: impl FnMut(i64)) -> f64 {
    let t = clock.monotonic_ns();
    for i in 0..n {
        f(i);
    }
    n as f64 / ((clock.monotonic_ns() - t) as f64 / 1e9)
}

fn lcg(i: i64) -> i64 {
    ((i as u64)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
        >> 17) as i64
        % DOCS
}

/// Pre-pass: one side-by-side table from the same run.
fn side_by_side(s: &Stores) {
    let clock = SystemClock::new();
    let mut next = DOCS * 10;
    println!(
        "\nhistory vs SQLite, {DOCS} orders of ~{} B (ops/s, same run)",
        order(1).to_vec().unwrap().len()
    );
    println!(
        "{:<34} {:>12} {:>12} {:>7}",
        "operation", "history", "sqlite", "ratio"
    );
    let row = |name: &str, docs_per_op: f64, h: f64, q: f64| {
        println!(
            "{name:<34} {:>12.0} {:>12.0} {:>6.2}x",
            h * docs_per_op,
            q * docs_per_op,
            h / q
        );
    };
    let base = next;
    let h = rate(&clock, 5_000, |i| history_insert_one(s, base + i));
    let q = rate(&clock, 5_000, |i| sqlite_insert_one(s, base + i));
    row("insert one by one (docs/s)", 1.0, h, q);
    next += 10_000;
    let base = next;
    let h = rate(&clock, 100, |i| history_insert_100(s, base + i * 100));
    let q = rate(&clock, 100, |i| sqlite_insert_100(s, base + i * 100));
    row("insert batches of 100 (docs/s)", 100.0, h, q);
    for (name, _, docs, history, sqlite) in reads() {
        // Finds 50,000 times; ranges 2,000 times, counted in ranges per second.
        let (n, label) = if docs == 1 {
            (50_000, name.to_owned())
        } else {
            (2_000, format!("{name} (ranges/s)"))
        };
        let h = rate(&clock, n, |i| assert_eq!(history(s, i), docs));
        let q = rate(&clock, n, |i| assert_eq!(sqlite(s, i), docs));
        row(&label, 1.0, h, q);
    }
}

/// Insert → in-process subscriber latency, p50/p99/max over `n` events, beside the insert's
/// own commit time (insert call → return) so the wake-up share is visible.
fn feed_latency(n: usize, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<SystemClock> = Arc::new(SystemClock::new());
    let h = History::open(dir.path(), HistoryConfig::default(), clock.clone()).unwrap();
    let mut stream = h
        .watch(
            WatchScope::Collection {
                db: DB.into(),
                coll: COLL.into(),
            },
            WatchOptions::default(),
        )
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let c2 = clock.clone();
    let sub = std::thread::spawn(move || {
        let mut got = 0;
        while got < n {
            let batch = stream.next_batch(1, Duration::from_secs(5)).unwrap();
            for _ in batch.events {
                tx.send(c2.monotonic_ns()).unwrap();
                got += 1;
            }
        }
    });
    let mut lat = Vec::with_capacity(n);
    let mut commit = Vec::with_capacity(n);
    let doc = order(1);
    for i in 0..n {
        let mut d = doc.clone();
        d.insert("_id", i as i64);
        let t = clock.monotonic_ns();
        h.insert_one(DB, COLL, d).unwrap();
        commit.push(clock.monotonic_ns().saturating_sub(t));
        let received = rx.recv().unwrap();
        lat.push(received.saturating_sub(t));
    }
    sub.join().unwrap();
    let pct = |v: &mut Vec<u64>, p: f64| {
        v.sort_unstable();
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)] as f64 / 1000.0
    };
    println!(
        "\nchange feed insert -> subscriber, {label} ({n} events, includes the commit): p50 {:.1} us, p99 {:.1} us, max {:.1} us (bar: p99 < 1000 us); the insert call alone: p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        pct(&mut lat, 1.0),
        pct(&mut commit, 0.5),
        pct(&mut commit, 0.99),
        pct(&mut commit, 1.0),
    );
}

fn criterion_benches(c: &mut Criterion, s: &Stores) {
    let mut next = DOCS * 100;
    let mut g = c.benchmark_group("history_vs_sqlite");
    g.bench_function(BenchmarkId::new("insert_one", "history"), |b| {
        b.iter(|| {
            next += 1;
            history_insert_one(s, next)
        })
    });
    g.bench_function(BenchmarkId::new("insert_one", "sqlite"), |b| {
        b.iter(|| {
            next += 1;
            sqlite_insert_one(s, next)
        })
    });
    g.bench_function(BenchmarkId::new("insert_batch_100", "history"), |b| {
        b.iter(|| {
            next += 100;
            history_insert_100(s, next)
        })
    });
    g.bench_function(BenchmarkId::new("insert_batch_100", "sqlite"), |b| {
        b.iter(|| {
            next += 100;
            sqlite_insert_100(s, next)
        })
    });
    let mut i = 0;
    for (_, id, _, history, sqlite) in reads() {
        for (side, read) in [("history", history), ("sqlite", sqlite)] {
            g.bench_function(BenchmarkId::new(id, side), |b| {
                b.iter(|| {
                    i += 1;
                    read(s, i)
                })
            });
        }
    }
    g.finish();
    let mut g = c.benchmark_group("history_upsert_batch_1000");
    g.throughput(criterion::Throughput::Elements(1_000));
    let mut base = DOCS * 100_000;
    g.bench_function(
        BenchmarkId::new("upsert_by_indexed_field", "history"),
        |b| {
            b.iter(|| {
                base += 1_000;
                history_upsert_batch(s, base, 1_000)
            })
        },
    );
    g.bench_function(BenchmarkId::new("upsert_by_indexed_field", "sqlite"), |b| {
        b.iter(|| {
            base += 1_000;
            sqlite_upsert_batch(s, base, 1_000)
        })
    });
    g.finish();
}

/// Rounds of [`paired_reads`].
const PAIRED_ROUNDS: usize = 15;

/// The reads again as paired rounds: a block of each operation on history, then the same block
/// on SQLite, `PAIRED_ROUNDS` times; prints the median, lowest and highest history/SQLite ratio
/// of the rounds. Both sides of a round run within a fraction of a second of each other, so a
/// change in the machine's speed (other tenants of this shared host) moves both; criterion's
/// rows, seconds apart, do not pair them.
fn paired_reads(s: &Stores) {
    let clock = SystemClock::new();
    println!(
        "\nhistory / SQLite in {PAIRED_ROUNDS} paired rounds (ratio of ops/s, > 1 means history is faster)"
    );
    println!(
        "{:<24} {:>7} {:>7} {:>7}",
        "operation", "median", "lowest", "highest"
    );
    let mut next = 0;
    for (name, _, docs, history, sqlite) in reads() {
        // Blocks of 2,000 finds or 40 ranges.
        let n = if docs == 1 { 2_000 } else { 40 };
        let mut ratios: Vec<f64> = (0..PAIRED_ROUNDS)
            .map(|_| {
                let base = next;
                next += n;
                let h = rate(&clock, n, |i| assert_eq!(history(s, base + i), docs));
                let q = rate(&clock, n, |i| assert_eq!(sqlite(s, base + i), docs));
                h / q
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "{name:<24} {:>6.2}x {:>6.2}x {:>6.2}x",
            ratios[PAIRED_ROUNDS / 2],
            ratios[0],
            ratios[PAIRED_ROUNDS - 1]
        );
    }
}

fn main() {
    feed_latency(10_000, "fresh process");
    let stores = open_stores();
    load(&stores, DOCS);
    side_by_side(&stores);
    upsert_scaling(&stores);
    feed_latency(10_000, "after the 100k load (its compaction may still run)");
    paired_reads(&stores);
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c, &stores);
    c.final_summary();
}
