//! Capability: the `$densify` stage — the missing values of a field on a step grid made as new
//! documents per partition, over the partition's own range, the range of all partitions
//! (`full`) or an explicit `[lower, upper)`, numbers by `$add` and dates by `$dateAdd` of a
//! unit; documents off the grid or without the field kept as they are; MongoDB 7.0's errors.
//!
//! Method: the cases of MongoDB's `jstests/aggregation/sources/densify/` (`partitions.js`,
//! `full_range.js`, `explicit_range.js`, `doc_on_bound.js`, `decimal.js`, `mixed_units.js`,
//! `parse_util.js`) with their expected documents; outputs are compared as sets where MongoDB
//! leaves the order open (the partitions' tails), in order where the sort fixes it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly on setup errors"
)]

mod history_common;

use bson::{Bson, DateTime, Document, doc};
use streamcache::history::History;

use history_common::open_with as with;

/// `$project: {_id: 0}` then `$densify: spec`, the documents in the stage's order.
fn densify(h: &History, spec: Document) -> Result<Vec<Document>, (i32, String)> {
    h.aggregate(
        "db",
        "c",
        &[doc! {"$project": {"_id": 0}}, doc! {"$densify": spec}],
    )
    .map_err(|e| (e.code(), e.to_string()))
}

/// Documents as a sorted list of their extended JSON, to compare as sets.
fn set(docs: &[Document]) -> Vec<String> {
    let mut v: Vec<String> = docs
        .iter()
        .map(|d| {
            Bson::Document(d.clone())
                .into_canonical_extjson()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

fn code(h: &History, spec: Document) -> i32 {
    match densify(h, spec) {
        Ok(out) => panic!("expected an error, got {out:?}"),
        Err((code, _)) => code,
    }
}

fn day(y: i32, m: u8, d: u8) -> DateTime {
    DateTime::builder().year(y).month(m).day(d).build().unwrap()
}

fn at(ms: i64) -> DateTime {
    DateTime::from_millis(ms)
}

const HOUR: i64 = 3_600_000;

#[test]
fn partition_bounds_fill_between_each_partitions_own_values() {
    let (_d, h) = with(vec![
        doc! {"val": 0, "partition": 0},
        doc! {"val": 2, "partition": 0},
        doc! {"val": 0, "partition": 1},
        doc! {"val": 2, "partition": 1},
        doc! {"val": 0, "partition": 2},
        doc! {"val": 123, "partition": 3},
    ]);
    let out = densify(
        &h,
        doc! {"field": "val", "partitionByFields": ["partition"], "range": {"step": 1, "bounds": "partition"}},
    )
    .unwrap();
    // Sorted by partition, then val; a partition of one value gets nothing.
    assert_eq!(
        out,
        vec![
            doc! {"val": 0, "partition": 0},
            doc! {"partition": 0, "val": 1},
            doc! {"val": 2, "partition": 0},
            doc! {"val": 0, "partition": 1},
            doc! {"partition": 1, "val": 1},
            doc! {"val": 2, "partition": 1},
            doc! {"val": 0, "partition": 2},
            doc! {"val": 123, "partition": 3},
        ]
    );
    // Dates by a unit.
    let (_d, h) = with(vec![
        doc! {"val": day(2021, 1, 1), "partition": 0},
        doc! {"val": day(2021, 1, 3), "partition": 0},
    ]);
    let out = densify(
        &h,
        doc! {"field": "val", "partitionByFields": ["partition"], "range": {"step": 1, "unit": "day", "bounds": "partition"}},
    )
    .unwrap();
    assert_eq!(out[1], doc! {"partition": 0, "val": day(2021, 1, 2)});
}

#[test]
fn full_bounds_give_every_partition_the_grid_of_all() {
    let (_d, h) = with(vec![
        doc! {"val": 0, "part": 0},
        doc! {"val": 0, "part": 1},
        doc! {"val": 10, "part": 2},
        doc! {"val": 4, "part": 0},
        doc! {"val": 5, "part": 1},
    ]);
    let out = densify(
        &h,
        doc! {"field": "val", "range": {"step": 2, "bounds": "full"}, "partitionByFields": ["part"]},
    )
    .unwrap();
    // The documents made hold the partition fields first, then the field.
    let originals = [(0, 0), (0, 1), (10, 2), (4, 0), (5, 1)];
    let mut expected: Vec<Document> = originals
        .iter()
        .map(|&(val, part)| doc! {"val": val, "part": part})
        .collect();
    for part in 0..3 {
        for val in (0..=10).step_by(2) {
            if !originals.contains(&(val, part)) {
                expected.push(doc! {"part": part, "val": val});
            }
        }
    }
    assert_eq!(set(&out), set(&expected));
    // The largest value off the grid: the grid stops below it.
    let (_d, h) = with(vec![
        doc! {"val": -10, "part": 0},
        doc! {"val": 10, "part": 0},
        doc! {"val": -2, "part": 1},
    ]);
    let out = densify(
        &h,
        doc! {"field": "val", "range": {"step": 3, "bounds": "full"}, "partitionByFields": ["part"]},
    )
    .unwrap();
    let vals = |part: i32| {
        let mut v: Vec<i32> = out
            .iter()
            .filter(|d| d.get_i32("part").unwrap() == part)
            .map(|d| d.get_i32("val").unwrap())
            .collect();
        v.sort_unstable();
        v
    };
    assert_eq!(vals(0), vec![-10, -7, -4, -1, 2, 5, 8, 10]);
    assert_eq!(vals(1), vec![-10, -7, -4, -2, -1, 2, 5, 8]);
    // Without partitions, in order, an off-grid value kept.
    let (_d, h) = with(vec![
        doc! {"v": 0},
        doc! {"v": 3},
        doc! {"v": 7},
        doc! {"x": 1},
    ]);
    let out = densify(
        &h,
        doc! {"field": "v", "range": {"step": 2, "bounds": "full"}},
    )
    .unwrap();
    assert_eq!(
        out,
        vec![
            doc! {"x": 1},
            doc! {"v": 0},
            doc! {"v": 2},
            doc! {"v": 3},
            doc! {"v": 4},
            doc! {"v": 6},
            doc! {"v": 7},
        ]
    );
}

#[test]
fn explicit_bounds_fill_from_the_lower_bound_to_below_the_upper() {
    let (_d, h) = with(vec![
        doc! {"val": 0, "part": 0},
        doc! {"val": 5, "part": 1},
        doc! {"val": 10, "part": 2},
    ]);
    let out = densify(
        &h,
        doc! {"field": "val", "range": {"step": 2, "bounds": [4, 8]}, "partitionByFields": ["part"]},
    )
    .unwrap();
    let mut expected = vec![
        doc! {"val": 0, "part": 0},
        doc! {"val": 5, "part": 1},
        doc! {"val": 10, "part": 2},
    ];
    for part in 0..3 {
        expected.push(doc! {"part": part, "val": 4});
        expected.push(doc! {"part": part, "val": 6});
    }
    assert_eq!(set(&out), set(&expected));
    // SERVER-82446: a value below the range does not start the grid.
    let (_d, h) = with(vec![
        doc! {"key": 1, "num": 2},
        doc! {"key": 1, "num": 4},
        doc! {"key": 1, "num": 6},
    ]);
    let out = densify(
        &h,
        doc! {"field": "num", "partitionByFields": ["key"], "range": {"step": 1, "bounds": [4, 8]}},
    )
    .unwrap();
    let nums: Vec<i32> = out.iter().map(|d| d.get_i32("num").unwrap()).collect();
    assert_eq!(nums, vec![2, 4, 5, 6, 7]);
    assert!(out.iter().all(|d| d.get_i32("key").unwrap() == 1));
    // Without partitions the range is made from nothing.
    let (_d, h) = with(vec![]);
    let out = densify(
        &h,
        doc! {"field": "v", "range": {"step": 1, "bounds": [0, 3]}},
    )
    .unwrap();
    assert_eq!(out, vec![doc! {"v": 0}, doc! {"v": 1}, doc! {"v": 2}]);
}

#[test]
fn dates_step_in_hours_and_calendar_months() {
    let base = day(2023, 9, 13).timestamp_millis();
    let (_d, h) = with(vec![
        doc! {"key": 1, "time": at(base - 24 * HOUR), "orig": true},
        doc! {"key": 1, "time": at(base), "orig": true},
        doc! {"key": 2, "time": at(base + 10_000), "orig": true},
        doc! {"key": 1, "time": at(base + 24 * HOUR), "orig": true},
        doc! {"key": 1, "time": at(base + 48 * HOUR), "orig": true},
    ]);
    let out = densify(
        &h,
        doc! {"field": "time", "range": {"step": 6, "unit": "hour", "bounds": [at(base), at(base + 72 * HOUR)]}},
    )
    .unwrap();
    let times: Vec<(i64, bool)> = out
        .iter()
        .map(|d| {
            (
                (d.get_datetime("time").unwrap().timestamp_millis() - base) / 1000,
                d.get_bool("orig").unwrap_or(false),
            )
        })
        .collect();
    let h6 = 6 * 3600;
    let mut expected = vec![(-4 * h6, true), (0, true), (10, true)];
    for d in 0..3 {
        if d > 0 {
            expected.push((d * 4 * h6, true));
        }
        for k in 1..4 {
            expected.push((d * 4 * h6 + k * h6, false));
        }
    }
    assert_eq!(times, expected);
    // Months from an explicit lower bound: one month on is the upper bound, not made.
    let start = DateTime::parse_rfc3339_str("2022-10-31T23:00:00Z").unwrap();
    let end = DateTime::parse_rfc3339_str("2022-11-30T23:00:00Z").unwrap();
    let before = DateTime::parse_rfc3339_str("2022-10-29T23:00:00Z").unwrap();
    let (_d, h) = with(vec![doc! {"date": before}]);
    let out = densify(
        &h,
        doc! {"field": "date", "range": {"step": 1, "unit": "month", "bounds": [start, end]}},
    )
    .unwrap();
    assert_eq!(out, vec![doc! {"date": before}, doc! {"date": start}]);
    // Stepping from the last value: Jan 31, Feb 28, Mar 28, Apr 28.
    let (_d, h) = with(vec![
        doc! {"d": day(2021, 1, 31)},
        doc! {"d": day(2021, 5, 1)},
    ]);
    let out = densify(
        &h,
        doc! {"field": "d", "range": {"step": 1, "unit": "month", "bounds": "full"}},
    )
    .unwrap();
    let got: Vec<DateTime> = out
        .iter()
        .map(|d| d.get_datetime("d").unwrap().to_owned())
        .collect();
    assert_eq!(
        got,
        vec![
            day(2021, 1, 31),
            day(2021, 2, 28),
            day(2021, 3, 28),
            day(2021, 4, 28),
            day(2021, 5, 1)
        ]
    );
}

#[test]
fn generated_values_take_the_type_of_the_value_they_step_from() {
    let dec = |s: &str| Bson::Decimal128(s.parse().unwrap());
    let (_d, h) = with(vec![
        doc! {"val": dec("0")},
        doc! {"val": 5.0},
        doc! {"val": dec("10")},
    ]);
    let out = densify(
        &h,
        doc! {"field": "val", "range": {"step": 1, "bounds": "full"}},
    )
    .unwrap();
    let kinds: Vec<&str> = out
        .iter()
        .map(|d| match d.get("val").unwrap() {
            Bson::Decimal128(_) => "decimal",
            Bson::Double(_) => "double",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "decimal", "decimal", "decimal", "decimal", "decimal", "double", "double", "double",
            "double", "double", "decimal"
        ]
    );
}

#[test]
fn values_of_the_wrong_kind_are_mongodbs_errors() {
    let (_d, h) = with(vec![doc! {"val": 1}, doc! {"val": 3}]);
    assert_eq!(
        code(
            &h,
            doc! {"field": "val", "range": {"step": 1, "unit": "day", "bounds": "full"}}
        ),
        6_053_600
    );
    let (_d, h) = with(vec![doc! {"val": day(2021, 1, 1)}]);
    assert_eq!(
        code(
            &h,
            doc! {"field": "val", "range": {"step": 1, "bounds": "full"}}
        ),
        6_053_600
    );
    let (_d, h) = with(vec![doc! {"val": "a"}]);
    assert_eq!(
        code(
            &h,
            doc! {"field": "val", "range": {"step": 1, "bounds": "full"}}
        ),
        5_733_201
    );
}

/// The cases of `parse_util.js`, with MongoDB's codes.
#[test]
fn malformed_specifications_get_mongodbs_errors() {
    let (_d, h) = with(vec![]);
    let d1 = day(2020, 1, 1);
    let d0 = day(2019, 1, 1);
    for ok in [
        doc! {"field": "a", "range": {"step": 1.0, "bounds": [1.0, 2.0]}},
        doc! {"field": "a", "range": {"step": 1.0, "bounds": [d0, d1], "unit": "day"}},
        doc! {"field": "a", "partitionByFields": ["b", "c"], "range": {"step": 1.0, "bounds": "partition", "unit": "second"}},
        doc! {"field": "a", "partitionByFields": ["b", "c"], "range": {"step": 1.0, "bounds": "full"}},
        doc! {"field": "a", "range": {"step": 1.0, "bounds": "full"}},
    ] {
        densify(&h, ok.clone()).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
    }
    for (bad, expected) in [
        (doc! {"field": "a", "range": {"step": 1.0}}, 40414),
        (doc! {"range": {"step": 1, "bounds": "full"}}, 40414),
        (doc! {"field": "a", "range": {"bounds": "full"}}, 40414),
        (doc! {"field": "a"}, 40414),
        (
            doc! {"field": 1.0, "range": {"step": 1.0, "bounds": "full"}},
            14,
        ),
        (
            doc! {"field": "a", "range": {"step": "invalid", "bounds": "full"}},
            14,
        ),
        (
            doc! {"field": "a", "partitionByFields": "incorrect", "range": {"step": 1.0, "bounds": "full"}},
            14,
        ),
        (
            doc! {"field": "a", "range": {"step": 1.0, "bounds": "full", "unit": 1000}},
            14,
        ),
        (
            doc! {"field": "a", "range": {"step": 1.0, "bounds": "full"}, "other": 1},
            40415,
        ),
        (
            doc! {"field": "a", "range": {"step": 1.0, "bounds": [d1]}},
            5_733_403,
        ),
        (
            doc! {"field": "a", "range": {"step": 1.0, "bounds": [0.0, 1.0, 2.0]}},
            5_733_403,
        ),
        (
            doc! {"field": "a", "range": {"step": -1.0, "bounds": [0.0, 1.0]}},
            5_733_401,
        ),
        (
            doc! {"field": "$a", "range": {"step": 1.0, "bounds": "full"}},
            16410,
        ),
        (
            doc! {"field": "a", "partitionByFields": ["$b"], "range": {"step": 1.0, "bounds": "full"}},
            16410,
        ),
        // As MongoDB's `FieldPath` checks a path: a trailing `.` before an empty part.
        (
            doc! {"field": "a.", "range": {"step": 1.0, "bounds": "full"}},
            40353,
        ),
        (
            doc! {"field": "a..b", "range": {"step": 1.0, "bounds": "full"}},
            15998,
        ),
        (
            doc! {"field": "a", "partitionByFields": [], "range": {"step": 1.0, "bounds": "partition"}},
            5_733_408,
        ),
        (
            doc! {"field": "a", "range": {"step": 1.0, "bounds": "partition"}},
            5_733_408,
        ),
        (
            doc! {"field": "a", "range": {"step": 1.0, "bounds": [2.0, 1.0]}},
            5_733_402,
        ),
        (
            doc! {"field": "a", "range": {"step": 1.0, "bounds": [d1, d0], "unit": "day"}},
            5_733_402,
        ),
        (
            doc! {"field": "a", "range": {"step": 1.0, "bounds": [1.0, 2.0], "unit": "day"}},
            5_733_409,
        ),
        (
            doc! {"field": "a", "range": {"step": 1.0, "bounds": [1.0, d1]}},
            5_733_406,
        ),
        (
            doc! {"field": "a", "range": {"step": 1.0, "bounds": [d1, 1.0], "unit": "day"}},
            5_733_402,
        ),
        (
            doc! {"field": "a", "range": {"step": 1.1, "bounds": [d0, d1], "unit": "second"}},
            6_586_400,
        ),
        (
            doc! {"field": "a", "range": {"step": 1.0, "bounds": [d0, d1]}},
            5_733_410,
        ),
        (
            doc! {"field": "a", "range": {"step": 1, "bounds": [1.0, 2.0]}},
            5_876_900,
        ),
        (
            doc! {"field": "a", "range": {"step": 1.0, "bounds": ["a", "b"]}},
            5_946_800,
        ),
        (
            doc! {"field": "a", "range": {"step": 1.0, "bounds": "fully"}},
            5_946_802,
        ),
        (
            doc! {"field": "a", "range": {"step": 1.0, "bounds": 3}},
            5_733_404,
        ),
        (
            doc! {"field": "a", "partitionByFields": ["a"], "range": {"step": 1.0, "bounds": "full"}},
            8_993_000,
        ),
        (
            doc! {"field": "a.b", "partitionByFields": ["a"], "range": {"step": 1.0, "bounds": "full"}},
            9_554_500,
        ),
        (
            doc! {"field": "a", "partitionByFields": ["a.b"], "range": {"step": 1.0, "bounds": "full"}},
            8_993_000,
        ),
    ] {
        assert_eq!(code(&h, bad.clone()), expected, "{bad}");
    }
}

/// The partition key is built as MongoDB builds it, an object expression of the partition
/// fields: a path through an array gathers its values into a key of its own; an undefined
/// value, like null, keeps its document as it is.
#[test]
fn partition_keys_are_object_expressions_and_undefined_is_nullish() {
    let (_d, h) = with(vec![
        doc! {"v": 5},
        doc! {"a": [{"b": 1}], "v": 1},
        doc! {"v": Bson::Undefined},
    ]);
    let out = densify(
        &h,
        doc! {"field": "v", "partitionByFields": ["a.b"], "range": {"step": 1, "bounds": [0, 3]}},
    )
    .unwrap();
    // The array's partition is {a: {b: [1]}}; the other is {a: {}} (a missing field inside
    // the key's object is left out of it, the object kept).
    let array_key = |d: &&Document| {
        matches!(d.get("a"), Some(Bson::Array(_)))
            || d.get("a") == Some(&Bson::Document(doc! {"b": [1]}))
    };
    let mut in_array: Vec<i32> = out
        .iter()
        .filter(array_key)
        .filter_map(|d| d.get_i32("v").ok())
        .collect();
    in_array.sort_unstable();
    assert_eq!(in_array, vec![0, 1, 2]);
    assert!(out.iter().any(|d| d.get("v") == Some(&Bson::Undefined)));
    let mut others: Vec<i32> = out
        .iter()
        .filter(|d| !array_key(d))
        .filter_map(|d| d.get_i32("v").ok())
        .collect();
    others.sort_unstable();
    assert_eq!(others, vec![0, 1, 2, 5], "{out:?}");
    assert!(
        out.iter()
            .any(|d| d.get("a") == Some(&Bson::Document(doc! {})))
    );
}
