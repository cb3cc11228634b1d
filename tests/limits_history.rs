//! Capability: the history store's limits at max and max + 1 — `REGEX_COMPILED_BYTES_MAX` (the
//! compiled size of a `$regex`) and `OPLOG_BYTES_MAX` (the ceiling of the configured oplog
//! retention by size).
//!
//! Method: for the regex, measure with the regex engine itself how many compiled bytes each
//! piece of a pattern family costs (on small patterns, by the smallest size limit that
//! compiles them), build the pattern that compiles to exactly the limit and the next larger
//! one, and run both as `find` filters on a fresh store. For the oplog, load configuration
//! files through `config::load` and open a store at the ceiling.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly on setup errors"
)]

mod history_common;

use bson::{Document, doc};
use history_common::{START_MS, load_history_setting, open_at};
use streamcache::clock::ManualClock;
use streamcache::history::{
    FindOptions, History, HistoryConfig, OPLOG_BYTES_MAX, REGEX_COMPILED_BYTES_MAX,
};

// ---- REGEX_COMPILED_BYTES_MAX -----------------------------------------------------------

/// The pattern family: `^x$` (so a one-letter string matches whatever the size) or `y` letters
/// `a` then `x` classes `[ab]`, each a fixed number of compiled bytes.
fn pattern(y: usize, x: usize) -> String {
    format!("^x$|a{{{y}}}[ab]{{{x}}}")
}

/// The compiled size of `p`: the smallest size limit under which the regex engine builds it.
fn compiled_bytes(p: &str) -> usize {
    let builds = |limit| {
        regex::RegexBuilder::new(p)
            .size_limit(limit)
            .build()
            .is_ok()
    };
    let (mut lo, mut hi) = (0, 1 << 20);
    assert!(builds(hi), "calibration patterns stay small: {p}");
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if builds(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// The compiled size of [`pattern`]`(y, x)` as `base + y * per_a + x * per_class`.
struct Cost {
    base: usize,
    per_a: usize,
    per_class: usize,
}

impl Cost {
    /// Measured on small members of the family, and checked to add up on another.
    fn measure() -> Self {
        let (y0, x0) = (100, 100);
        let at = compiled_bytes(&pattern(y0, x0));
        let per_a = compiled_bytes(&pattern(y0 + 1, x0)) - at;
        let per_class = compiled_bytes(&pattern(y0, x0 + 1)) - at;
        let cost = Self {
            base: at - y0 * per_a - x0 * per_class,
            per_a,
            per_class,
        };
        assert_eq!(
            compiled_bytes(&pattern(3 * y0, 2 * x0)),
            cost.bytes(3 * y0, 2 * x0),
            "the family's compiled size is linear"
        );
        cost
    }

    fn bytes(&self, y: usize, x: usize) -> usize {
        self.base + y * self.per_a + x * self.per_class
    }

    /// The member whose compiled size is the largest at most `max` (`at_most`) or else the
    /// smallest above it, as (y, x, compiled bytes).
    fn nearest(&self, max: usize, at_most: bool) -> (usize, usize, usize) {
        // Every residue of x modulo `per_a` is tried, so every reachable size is.
        let members = (0..=self.per_a).map(|x| {
            let room = max - self.base - x * self.per_class;
            let y = room / self.per_a + usize::from(!at_most);
            (y, x, self.bytes(y, x))
        });
        if at_most {
            members.max_by_key(|m| m.2)
        } else {
            members.min_by_key(|m| m.2)
        }
        .unwrap()
    }
}

#[test]
fn regex_compiled_bytes_max_compiles_a_pattern_that_size_and_refuses_the_next_larger() {
    let cost = Cost::measure();
    let (y, x, at_max) = cost.nearest(REGEX_COMPILED_BYTES_MAX, true);
    assert_eq!(
        at_max, REGEX_COMPILED_BYTES_MAX,
        "a member compiles to exactly the max"
    );
    let (y_over, x_over, over) = cost.nearest(REGEX_COMPILED_BYTES_MAX, false);
    assert!(over > REGEX_COMPILED_BYTES_MAX && over - REGEX_COMPILED_BYTES_MAX < cost.per_a);

    let (_dir, h) = open_at(START_MS);
    let docs = vec![doc! {"_id": 1, "s": "x"}, doc! {"_id": 2, "s": "y"}];
    h.insert_many("db", "c", docs.clone()).unwrap();
    let find = |p: &str| {
        h.find(
            "db",
            "c",
            &doc! {"s": {"$regex": p}},
            &FindOptions::default(),
        )
    };
    // At the max: compiled, and it matches.
    assert_eq!(find(&pattern(y, x)).unwrap(), vec![docs[0].clone()]);
    // The smallest size above the max that the family reaches (8 bytes more with the regex
    // crate of this writing) is refused with the engine's reason, which names the limit.
    let e = find(&pattern(y_over, x_over)).unwrap_err();
    assert_eq!(e.code(), 2, "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "Regular expression is invalid: Compiled regex exceeds size limit of \
             {REGEX_COMPILED_BYTES_MAX} bytes."
        )
    );
    assert!(!h.is_poisoned());
    let all: Vec<Document> = h
        .find("db", "c", &doc! {}, &FindOptions::default())
        .unwrap();
    assert_eq!(all, docs);
}

// ---- OPLOG_BYTES_MAX --------------------------------------------------------------------

/// Loads a configuration file holding `[history] oplog_bytes_max = bytes`.
fn load_oplog_bytes_max(bytes: u64) -> Result<u64, streamcache::config::Error> {
    load_history_setting("oplog_bytes_max", bytes).map(|c| c.history.oplog_bytes_max)
}

#[test]
fn oplog_bytes_max_is_a_valid_setting_and_one_byte_more_is_refused() {
    assert_eq!(
        load_oplog_bytes_max(OPLOG_BYTES_MAX).unwrap(),
        OPLOG_BYTES_MAX
    );
    let e = load_oplog_bytes_max(OPLOG_BYTES_MAX + 1).unwrap_err();
    assert_eq!(e.setting, "history.oplog_bytes_max");
    assert_eq!(
        e.reason,
        format!("{} is outside 1..={OPLOG_BYTES_MAX}", OPLOG_BYTES_MAX + 1)
    );

    // A store retaining up to the ceiling keeps every event of a small history.
    let dir = tempfile::tempdir().unwrap();
    let config = HistoryConfig {
        oplog_bytes_max: OPLOG_BYTES_MAX,
        ..HistoryConfig::default()
    };
    let h = History::open(dir.path(), config, ManualClock::shared(START_MS)).unwrap();
    for i in 0..50 {
        h.insert_one("db", "c", doc! {"_id": i, "pad": "x".repeat(100)})
            .unwrap();
    }
    assert_eq!(
        h.oplog_range().unwrap(),
        (1, 51),
        "the collection's create and 50 inserts"
    );
}

#[test]
fn a_store_opened_with_an_oplog_bytes_max_outside_its_range_is_refused() {
    for bytes in [0, OPLOG_BYTES_MAX + 1] {
        let dir = tempfile::tempdir().unwrap();
        let config = HistoryConfig {
            oplog_bytes_max: bytes,
            ..HistoryConfig::default()
        };
        let Err(e) = History::open(dir.path(), config, ManualClock::shared(START_MS)) else {
            panic!("oplog_bytes_max = {bytes} was accepted");
        };
        assert_eq!(
            e.to_string(),
            format!("history.oplog_bytes_max: {bytes} is outside 1..={OPLOG_BYTES_MAX}"),
        );
        // Nothing was created in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
