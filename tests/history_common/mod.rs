//! Helpers shared by the history tests: a store in a fresh temporary directory on a manual
//! clock.

#![allow(
    dead_code,
    reason = "each test file uses a different subset of the helpers"
)]

use bson::doc;
use streamcache::clock::ManualClock;
use streamcache::history::{History, HistoryConfig};

/// Wall-clock start of the manual clock `open` uses (2023-11-14T22:13:20Z).
pub(crate) const START_MS: u64 = 1_700_000_000_000;

/// A store with the default configuration in a fresh temporary directory, its manual clock at
/// [`START_MS`]. Keep the directory alive as long as the store.
pub(crate) fn open() -> (tempfile::TempDir, History) {
    open_at(START_MS)
}

/// As [`open`], with the manual clock at `start_ms`.
pub(crate) fn open_at(start_ms: u64) -> (tempfile::TempDir, History) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let h = History::open(
        dir.path(),
        HistoryConfig::default(),
        ManualClock::shared(start_ms),
    )
    .expect("history opens on an empty directory");
    (dir, h)
}

/// A store (clock at 0) holding a small shop: `shop.orders` (three orders of two customers,
/// with order lines) and `shop.customers` (the two customers).
pub(crate) fn open_shop() -> (tempfile::TempDir, History) {
    let (dir, h) = open_at(0);
    h.insert_many(
        "shop",
        "orders",
        vec![
            doc! {"_id": 1, "customer": "c1", "total": 10, "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]},
            doc! {"_id": 2, "customer": "c2", "total": 25.5, "lines": [{"sku": "a", "qty": 5}]},
            doc! {"_id": 3, "customer": "c1", "total": 7, "lines": []},
        ],
    )
    .expect("the orders insert");
    h.insert_many(
        "shop",
        "customers",
        vec![
            doc! {"_id": "c1", "name": "Ann"},
            doc! {"_id": "c2", "name": "Ben"},
        ],
    )
    .expect("the customers insert");
    (dir, h)
}
