//! Capability: the history store's document semantics — filters, projections, sorts, updates,
//! upserts, findAndModify and limits — checked against MongoDB's documented behaviour.
//!
//! Method: table-driven. Each table row is an input (filter, update, projection or sort) and
//! the exact expected result on a fixed set of documents; every row runs against a fresh store
//! opened with a manual clock, so results never depend on time or order of execution.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Bson, Document, doc};
use history_common::open;
use streamcache::history::{
    self, DOCUMENT_BYTES_MAX, Error, FindAndModifyOptions, FindOptions, NESTING_DEPTH_MAX,
    UpdateOptions, WriteOp,
};

fn fixture() -> Vec<Document> {
    vec![
        doc! {"_id": 1, "a": 1, "tags": ["x", "y"], "items": [{"sku": "p1", "qty": 2}, {"sku": "p2", "qty": 7}], "name": "alice"},
        doc! {"_id": 2, "a": 2.5, "tags": ["y"], "items": [{"sku": "p1", "qty": 9}], "name": "Bob"},
        doc! {"_id": 3, "a": "10", "tags": [], "name": null},
        doc! {"_id": 4, "a": [0, 10], "nested": {"b": {"c": 5}}},
        doc! {"_id": 5, "a": null, "tags": [["x", "y"]], "when": bson::DateTime::from_millis(1000)},
        doc! {"_id": 6, "b": true, "a": {"x": 1}, "items": [{"sku": "p3", "qty": 1}, {"qty": 3}]},
        doc! {"_id": 7, "a": i64::MAX, "n": -3},
    ]
}

/// Applies `update` to `start` (whose `_id` is 1) in a fresh store: the outcome and the
/// stored document afterwards.
fn update_fresh(
    start: &Document,
    update: &Document,
) -> (history::Result<history::UpdateResult>, Document) {
    update_fresh_with(start, update, UpdateOptions::default())
}

/// [`update_fresh`] with options (`arrayFilters`, `upsert`).
fn update_fresh_with(
    start: &Document,
    update: &Document,
    options: UpdateOptions,
) -> (history::Result<history::UpdateResult>, Document) {
    let (_d, h) = open();
    h.insert_one("db", "c", start.clone()).unwrap();
    let outcome = h.update("db", "c", &doc! {"_id": 1}, update, options);
    let stored = h
        .find_one("db", "c", &doc! {"_id": 1}, None)
        .unwrap()
        .unwrap();
    (outcome, stored)
}

fn regex(pattern: &str, options: &str) -> Bson {
    Bson::RegularExpression(bson::Regex {
        pattern: pattern.to_owned().try_into().unwrap(),
        options: options.to_owned().try_into().unwrap(),
    })
}

fn ids(docs: &[Document]) -> Vec<i32> {
    docs.iter().map(|d| d.get_i32("_id").unwrap()).collect()
}

#[test]
fn filters_match_like_mongodb() {
    let (_d, h) = open();
    h.insert_many("db", "c", fixture()).unwrap();
    let table: Vec<(Document, Vec<i32>)> = vec![
        (doc! {}, vec![1, 2, 3, 4, 5, 6, 7]),
        (doc! {"a": 1}, vec![1]),
        (doc! {"a": 1.0}, vec![1]),
        (doc! {"a": {"$gt": 1}}, vec![2, 4, 7]),
        // [0, 10] matches too: 10 >= 1 and 0 < 3.
        (doc! {"a": {"$gte": 1, "$lt": 3}}, vec![1, 2, 4]),
        // Conditions on an array may be met by different elements…
        (doc! {"a": {"$gt": 5, "$lt": 5}}, vec![4]),
        // …unless $elemMatch pins one element.
        (doc! {"a": {"$elemMatch": {"$gt": 5, "$lt": 5}}}, vec![]),
        (doc! {"a": {"$lt": "2"}}, vec![3]),
        (doc! {"a": null}, vec![5]),
        (doc! {"missing": null}, vec![1, 2, 3, 4, 5, 6, 7]),
        (doc! {"name": null}, vec![3, 4, 5, 6, 7]),
        (doc! {"name": {"$ne": "alice"}}, vec![2, 3, 4, 5, 6, 7]),
        (doc! {"name": {"$exists": true}}, vec![1, 2, 3]),
        (doc! {"name": {"$exists": false}}, vec![4, 5, 6, 7]),
        (
            doc! {"name": {"$in": ["Bob", null]}},
            vec![2, 3, 4, 5, 6, 7],
        ),
        (doc! {"name": {"$nin": ["Bob", null]}}, vec![1]),
        (doc! {"tags": "y"}, vec![1, 2]),
        (doc! {"tags": ["x", "y"]}, vec![1, 5]),
        (doc! {"tags": {"$size": 0}}, vec![3]),
        (doc! {"tags": {"$all": ["x", "y"]}}, vec![1]),
        // tags.0 of doc 5 is the array ["x", "y"], whose element matches.
        (doc! {"tags.0": "x"}, vec![1, 5]),
        (doc! {"items.sku": "p1"}, vec![1, 2]),
        (doc! {"items.qty": {"$gt": 8}}, vec![2]),
        (doc! {"items.1.qty": 7}, vec![1]),
        (
            doc! {"items": {"$elemMatch": {"sku": "p1", "qty": {"$gt": 5}}}},
            vec![2],
        ),
        (doc! {"items.sku": "p1", "items.qty": 7}, vec![1]),
        (doc! {"items.sku": null}, vec![3, 4, 5, 6, 7]),
        (doc! {"nested.b.c": 5}, vec![4]),
        (doc! {"nested.b": {"c": 5}}, vec![4]),
        (doc! {"a": {"x": 1}}, vec![6]),
        (doc! {"a": {"$type": "string"}}, vec![3]),
        (doc! {"a": {"$type": "number"}}, vec![1, 2, 4, 7]),
        (doc! {"a": {"$type": "array"}}, vec![4]),
        (doc! {"a": {"$type": 10}}, vec![5]),
        (doc! {"when": {"$type": "date"}}, vec![5]),
        (doc! {"name": {"$regex": "^a"}}, vec![1]),
        (doc! {"name": {"$regex": "^B", "$options": "i"}}, vec![2]),
        (
            doc! {"name": {"$not": {"$regex": "^a"}}},
            vec![2, 3, 4, 5, 6, 7],
        ),
        (doc! {"n": {"$mod": [3, 0]}}, vec![7]),
        (doc! {"a": {"$mod": [2, 1]}}, vec![1, 7]),
        (doc! {"$or": [{"a": 1}, {"b": true}]}, vec![1, 6]),
        (
            doc! {"$and": [{"a": {"$gte": 0}}, {"a": {"$lte": 1}}]},
            vec![1, 4],
        ),
        (doc! {"$nor": [{"a": 1}, {"b": true}]}, vec![2, 3, 4, 5, 7]),
        (doc! {"a": {"$gt": 9_223_372_036_854_775_806_i64}}, vec![7]),
        (doc! {"a": {"$not": {"$gt": 1}}}, vec![1, 3, 5, 6]),
        (doc! {"b": {"$eq": true}}, vec![6]),
    ];
    for (filter, expected) in table {
        let got = h.find("db", "c", &filter, &FindOptions::default()).unwrap();
        assert_eq!(ids(&got), expected, "filter {filter}");
        assert_eq!(
            h.count("db", "c", &filter).unwrap(),
            expected.len() as u64,
            "count {filter}"
        );
    }
}

/// `$mod` divides the value truncated to a 64-bit integer, exactly: a long as it is, a double
/// or a decimal toward zero, and one that no 64-bit integer holds (NaN, infinity, past ±2^63)
/// matches nothing, as MongoDB 7.0's `ModMatchExpression`.
#[test]
fn mod_divides_the_value_as_a_64_bit_integer() {
    let (_d, h) = open();
    let dec = |s: &str| Bson::Decimal128(s.parse().unwrap());
    h.insert_many(
        "db",
        "c",
        vec![
            doc! {"_id": 1, "v": 9_007_199_254_740_993_i64},
            doc! {"_id": 2, "v": 1e19},
            doc! {"_id": 3, "v": -7.9},
            doc! {"_id": 4, "v": dec("1E+30")},
            doc! {"_id": 5, "v": dec("9007199254740993.5")},
            doc! {"_id": 6, "v": dec("-7.9")},
            doc! {"_id": 7, "v": f64::NAN},
            doc! {"_id": 8, "v": -(2f64.powi(63))},
        ],
    )
    .unwrap();
    for (filter, expected) in [
        (doc! {"v": {"$mod": [2, 1]}}, vec![1, 5]),
        (doc! {"v": {"$mod": [4, -3]}}, vec![3, 6]),
        (doc! {"v": {"$mod": [1, 0]}}, vec![1, 3, 5, 6, 8]),
        (doc! {"v": {"$mod": [-1, 0]}}, vec![1, 3, 5, 6, 8]),
    ] {
        let got = h.find("db", "c", &filter, &FindOptions::default()).unwrap();
        assert_eq!(ids(&got), expected, "filter {filter}");
    }
}

#[test]
fn malformed_filters_are_bad_values() {
    let (_d, h) = open();
    h.insert_one("db", "c", doc! {"_id": 1}).unwrap();
    for filter in [
        doc! {"$bogus": 1},
        doc! {"a": {"$gt": 1, "$what": 2}},
        doc! {"$or": []},
        doc! {"a": {"$in": 5}},
        doc! {"a": {"$mod": [0, 1]}},
        doc! {"a": {"$size": -1}},
        doc! {"a": {"$regex": "("}},
        doc! {"a": {"$type": "nonsense"}},
        doc! {"": 1},
    ] {
        let e = h
            .find("db", "c", &filter, &FindOptions::default())
            .unwrap_err();
        assert_eq!(e.code(), 2, "{filter}: {e}");
    }
}

/// The argument errors of `$size`, `$mod`, `$type`, `$not` and of an unknown top-level
/// operator carry MongoDB's texts (BadValue, 2), as its match expression parser words them
/// (`$size` reads its argument as `BSONElement::parseIntegerElementToNonNegativeInt` does).
#[test]
fn filter_argument_errors_carry_mongodbs_texts() {
    let (_d, h) = open();
    h.insert_one("db", "c", doc! {"_id": 1, "a": [1, 2]})
        .unwrap();
    let two_pow_63 = 2f64.powi(63);
    for (filter, code, message) in [
        (
            doc! {"a": {"$size": 1.5}},
            "Failed to parse $size. Expected an integer: $size: 1.5",
        ),
        (
            doc! {"a": {"$size": f64::NAN}},
            "Failed to parse $size. Expected an integer, but found NaN in: $size: nan.0",
        ),
        (
            doc! {"a": {"$size": 1e20}},
            "Failed to parse $size. Cannot represent as a 64-bit integer: $size: 1e+20.0",
        ),
        (
            doc! {"a": {"$size": "2"}},
            "Failed to parse $size. Expected a number in: $size: \"2\"",
        ),
        (
            doc! {"a": {"$size": -1}},
            "Failed to parse $size. Expected a non-negative number in: $size: -1",
        ),
        (
            doc! {"a": {"$size": -2.0}},
            "Failed to parse $size. Expected a non-negative number in: $size: -2.0",
        ),
        (
            doc! {"a": {"$size": 1_i64 << 40}},
            "Failed to parse $size. Cannot represent $size: 1099511627776 in an int",
        ),
        (
            doc! {"a": {"$size": "2.5".parse::<bson::Decimal128>().unwrap()}},
            "Failed to parse $size. Cannot represent as a 64-bit integer: $size: 2.5",
        ),
        (
            doc! {"a": {"$mod": [1, 2, 3]}},
            "malformed mod, too many elements",
        ),
        (
            doc! {"a": {"$mod": ["x", 2]}},
            "malformed mod, divisor not a number",
        ),
        (
            doc! {"a": {"$mod": [2, "x"]}},
            "malformed mod, remainder not a number",
        ),
        (
            doc! {"a": {"$mod": [f64::NAN, 1]}},
            "malformed mod, divisor value is invalid :: caused by :: Unable to coerce NaN/Inf to integral type",
        ),
        (
            doc! {"a": {"$mod": [1, f64::INFINITY]}},
            "malformed mod, remainder value is invalid :: caused by :: Unable to coerce NaN/Inf to integral type",
        ),
        (
            doc! {"a": {"$mod": [two_pow_63, 0]}},
            "malformed mod, divisor value is invalid :: caused by :: Out of bounds coercing to integral value",
        ),
        (
            doc! {"a": {"$type": "nonsense"}},
            "Unknown type name alias: nonsense",
        ),
        (
            doc! {"a": {"$type": 100}},
            "Invalid numerical type code: 100",
        ),
        (doc! {"a": {"$not": {}}}, "$not cannot be empty"),
        (
            doc! {"$bogus": 1},
            "unknown top level operator: $bogus. If you have a field name that starts with a '$' symbol, consider using $getField or $setField.",
        ),
    ]
    .into_iter()
    .map(|(filter, message)| (filter, 2, message))
    // An empty `$type` list is FailedToParse (9), naming the path.
    .chain([
        (doc! {"a": {"$type": []}}, 9, "a must match at least one type"),
        (
            doc! {"a.b": {"$elemMatch": {"c": {"$gt": 1}}, "$type": []}},
            9,
            "a.b must match at least one type",
        ),
    ]) {
        let e = h
            .find("db", "c", &filter, &FindOptions::default())
            .unwrap_err();
        assert_eq!(
            (e.code(), e.to_string()),
            (code, message.to_owned()),
            "{filter}"
        );
    }
    // The edges that are taken: a whole double or decimal, and a divisor just inside a long.
    for filter in [
        doc! {"a": {"$size": 2.0}},
        doc! {"a": {"$size": "2.0".parse::<bson::Decimal128>().unwrap()}},
        doc! {"a": {"$mod": [-two_pow_63, 0]}},
    ] {
        h.find("db", "c", &filter, &FindOptions::default()).unwrap();
    }
}

#[test]
fn projection_sort_skip_limit() {
    let (_d, h) = open();
    h.insert_many("db", "c", fixture()).unwrap();
    let find = |filter: Document, o: FindOptions| h.find("db", "c", &filter, &o).unwrap();
    // Projection table: (projection, _id 1 result).
    let table: Vec<(Document, Document)> = vec![
        (doc! {"name": 1}, doc! {"_id": 1, "name": "alice"}),
        (doc! {"name": 1, "_id": 0}, doc! {"name": "alice"}),
        (
            doc! {"items.sku": 1},
            doc! {"_id": 1, "items": [{"sku": "p1"}, {"sku": "p2"}]},
        ),
        (
            doc! {"items": 0, "tags": 0, "a": 0},
            doc! {"_id": 1, "name": "alice"},
        ),
        (
            doc! {"items.qty": 0, "tags": 0, "a": 0, "_id": 0},
            doc! {"items": [{"sku": "p1"}, {"sku": "p2"}], "name": "alice"},
        ),
        (doc! {"_id": 0, "a": 1}, doc! {"a": 1}),
    ];
    for (projection, expected) in table {
        let got = find(
            doc! {"_id": 1},
            FindOptions {
                projection: Some(projection.clone()),
                ..FindOptions::default()
            },
        );
        assert_eq!(got, vec![expected], "projection {projection}");
    }
    let e = h
        .find(
            "db",
            "c",
            &doc! {},
            &FindOptions {
                projection: Some(doc! {"a": 1, "b": 0}),
                ..FindOptions::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), 31254);

    // Cross-type sort: null/missing < numbers < strings < objects < arrays-by-min.
    let sorted = find(
        doc! {},
        FindOptions {
            sort: Some(doc! {"a": 1, "_id": 1}),
            ..FindOptions::default()
        },
    );
    assert_eq!(ids(&sorted), vec![5, 4, 1, 2, 7, 3, 6]);
    let sorted = find(
        doc! {},
        FindOptions {
            sort: Some(doc! {"a": -1, "_id": 1}),
            ..FindOptions::default()
        },
    );
    assert_eq!(ids(&sorted), vec![6, 3, 7, 4, 2, 1, 5]);
    let page = find(
        doc! {},
        FindOptions {
            sort: Some(doc! {"_id": -1}),
            skip: 2,
            limit: Some(3),
            ..FindOptions::default()
        },
    );
    assert_eq!(ids(&page), vec![5, 4, 3]);
    let e = h
        .find(
            "db",
            "c",
            &doc! {},
            &FindOptions {
                sort: Some(doc! {"a": 2}),
                ..FindOptions::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), 2);
}

#[test]
fn updates_apply_like_mongodb() {
    // (start document, update, expected document)
    let table: Vec<(Document, Document, Document)> = vec![
        (
            doc! {"_id": 1},
            doc! {"$set": {"a.b.c": 1}},
            doc! {"_id": 1, "a": {"b": {"c": 1}}},
        ),
        (
            doc! {"_id": 1, "a": [1]},
            doc! {"$set": {"a.3": 9}},
            doc! {"_id": 1, "a": [1, null, null, 9]},
        ),
        (
            doc! {"_id": 1, "a": [1, 2]},
            doc! {"$unset": {"a.0": ""}},
            doc! {"_id": 1, "a": [null, 2]},
        ),
        (
            doc! {"_id": 1, "a": 1, "b": 2},
            doc! {"$unset": {"a": ""}},
            doc! {"_id": 1, "b": 2},
        ),
        (
            doc! {"_id": 1, "n": 1},
            doc! {"$inc": {"n": 2, "m": 5}},
            doc! {"_id": 1, "n": 3, "m": 5},
        ),
        (
            doc! {"_id": 1, "n": i32::MAX},
            doc! {"$inc": {"n": 1}},
            doc! {"_id": 1, "n": i64::from(i32::MAX) + 1},
        ),
        (
            doc! {"_id": 1, "n": 2},
            doc! {"$mul": {"n": 2.5, "z": 3}},
            doc! {"_id": 1, "n": 5.0, "z": 0},
        ),
        (
            doc! {"_id": 1, "n": 5},
            doc! {"$min": {"n": 3}, "$max": {"m": 1}},
            doc! {"_id": 1, "n": 3, "m": 1},
        ),
        (
            doc! {"_id": 1, "n": 5},
            doc! {"$max": {"n": 3}},
            doc! {"_id": 1, "n": 5},
        ),
        (
            doc! {"_id": 1, "a": 1},
            doc! {"$rename": {"a": "b.c"}},
            doc! {"_id": 1, "b": {"c": 1}},
        ),
        (
            doc! {"_id": 1},
            doc! {"$push": {"l": 1}},
            doc! {"_id": 1, "l": [1]},
        ),
        (
            doc! {"_id": 1, "l": [5, 1]},
            doc! {"$push": {"l": {"$each": [3, 9], "$sort": 1, "$slice": 3}}},
            doc! {"_id": 1, "l": [1, 3, 5]},
        ),
        (
            doc! {"_id": 1, "l": [1, 2]},
            doc! {"$push": {"l": {"$each": [0], "$position": 0}}},
            doc! {"_id": 1, "l": [0, 1, 2]},
        ),
        (
            doc! {"_id": 1, "l": [1, 2, 3]},
            doc! {"$push": {"l": {"$each": [7, 8, 9], "$position": 1}}},
            doc! {"_id": 1, "l": [1, 7, 8, 9, 2, 3]},
        ),
        (
            doc! {"_id": 1, "l": [1, 2, 3]},
            doc! {"$push": {"l": {"$each": [7, 8], "$position": -1}}},
            doc! {"_id": 1, "l": [1, 2, 7, 8, 3]},
        ),
        (
            doc! {"_id": 1, "l": [1, 2]},
            doc! {"$push": {"l": {"$each": [7, 8], "$position": 9}}},
            doc! {"_id": 1, "l": [1, 2, 7, 8]},
        ),
        (
            doc! {"_id": 1, "l": [1, 2]},
            doc! {"$push": {"l": {"$each": [7, 8], "$position": -9}}},
            doc! {"_id": 1, "l": [7, 8, 1, 2]},
        ),
        (
            doc! {"_id": 1, "l": [1, 2, 3]},
            doc! {"$push": {"l": {"$each": [], "$slice": -2}}},
            doc! {"_id": 1, "l": [2, 3]},
        ),
        (
            doc! {"_id": 1, "l": [{"p": 2}, {"p": 1}]},
            doc! {"$push": {"l": {"$each": [{"p": 0}], "$sort": {"p": 1}}}},
            doc! {"_id": 1, "l": [{"p": 0}, {"p": 1}, {"p": 2}]},
        ),
        // A sort pattern compares the value at each path as it is (an array as an array, not
        // by an element), and a missing value or an element that is no document as null.
        (
            doc! {"_id": 1, "l": [{"a": [3, 1]}, {"a": 2}, 5]},
            doc! {"$push": {"l": {"$each": [], "$sort": {"a": 1}}}},
            doc! {"_id": 1, "l": [5, {"a": 2}, {"a": [3, 1]}]},
        ),
        (
            doc! {"_id": 1, "l": [5, {"a": 2}, {"b": {"c": 0}}, {"a": [3, 1]}]},
            doc! {"$push": {"l": {"$each": [{"a": 9}], "$sort": {"a": -1}, "$slice": 3}}},
            doc! {"_id": 1, "l": [{"a": [3, 1]}, {"a": 9}, {"a": 2}]},
        ),
        (
            doc! {"_id": 1, "l": [{"a": {"b": 2}}, {"a": [{"b": 0}]}, {"a": {"b": 1}}]},
            doc! {"$push": {"l": {"$each": [], "$sort": {"a.b": 1}}}},
            doc! {"_id": 1, "l": [{"a": [{"b": 0}]}, {"a": {"b": 1}}, {"a": {"b": 2}}]},
        ),
        (
            doc! {"_id": 1, "l": [1, 2]},
            doc! {"$addToSet": {"l": {"$each": [2, 3, 3]}}},
            doc! {"_id": 1, "l": [1, 2, 3]},
        ),
        (
            doc! {"_id": 1, "l": [1, 5, 9]},
            doc! {"$pull": {"l": {"$gte": 5}}},
            doc! {"_id": 1, "l": [1]},
        ),
        (
            doc! {"_id": 1, "l": [{"a": 1}, {"a": 2}]},
            doc! {"$pull": {"l": {"a": 2}}},
            doc! {"_id": 1, "l": [{"a": 1}]},
        ),
        // A regex removes the strings it matches (MongoDB wraps it as a condition on each
        // element), not only an equal regex.
        (
            doc! {"_id": 1, "l": ["apple", "Avocado", "banana", 5]},
            doc! {"$pull": {"l": regex("^a", "i")}},
            doc! {"_id": 1, "l": ["banana", 5]},
        ),
        // A document led by a logical operator is a query on the element documents.
        (
            doc! {"_id": 1, "l": [{"a": 1}, {"b": 2}, {"a": 3}, 1]},
            doc! {"$pull": {"l": {"$or": [{"a": 1}, {"b": 2}]}}},
            doc! {"_id": 1, "l": [{"a": 3}, 1]},
        ),
        (
            doc! {"_id": 1, "l": [{"a": 1, "b": 1}, {"a": 1, "b": 2}, {"a": 2}]},
            doc! {"$pull": {"l": {"$and": [{"a": 1}, {"b": {"$gt": 1}}]}}},
            doc! {"_id": 1, "l": [{"a": 1, "b": 1}, {"a": 2}]},
        ),
        (
            doc! {"_id": 1, "l": [1, 2, 1, 3]},
            doc! {"$pullAll": {"l": [1, 3]}},
            doc! {"_id": 1, "l": [2]},
        ),
        (
            doc! {"_id": 1, "l": [1, 2, 3]},
            doc! {"$pop": {"l": -1}},
            doc! {"_id": 1, "l": [2, 3]},
        ),
        (
            doc! {"_id": 1, "l": [1, 2, 3]},
            doc! {"$pop": {"l": 1}},
            doc! {"_id": 1, "l": [1, 2]},
        ),
        (
            doc! {"_id": 1, "l": [1, 2, 3]},
            doc! {"$pop": {"l": -1.0}},
            doc! {"_id": 1, "l": [2, 3]},
        ),
        (
            doc! {"_id": 1},
            doc! {"$currentDate": {"d": true}},
            doc! {"_id": 1, "d": bson::DateTime::from_millis(1_700_000_000_000)},
        ),
        // Any boolean asks for a date.
        (
            doc! {"_id": 1},
            doc! {"$currentDate": {"d": false}},
            doc! {"_id": 1, "d": bson::DateTime::from_millis(1_700_000_000_000)},
        ),
        (
            doc! {"_id": 1, "x": 1},
            doc! {"$setOnInsert": {"y": 1}},
            doc! {"_id": 1, "x": 1},
        ),
        (
            doc! {"_id": 1, "x": 1},
            doc! {"y": 2},
            doc! {"_id": 1, "y": 2},
        ),
    ];
    assert_updates_apply(table);
}

/// An operator that writes a top-level field whose name starts with `$` is refused with
/// MongoDB 7.0's storage check (code 52 DollarPrefixedFieldName); below the top level such a
/// name is stored, and `$unset` (which writes nothing) takes one.
#[test]
fn operators_refuse_to_write_a_top_level_dollar_field() {
    let refused = "The dollar ($) prefixed field '$x' in '$x' is not allowed in the context of an update's replacement document. Consider using an aggregation pipeline with $replaceWith.";
    for (start, update) in [
        (doc! {"_id": 1}, doc! {"$set": {"$x": 1}}),
        (doc! {"_id": 1}, doc! {"$inc": {"$x": 1}}),
        (doc! {"_id": 1}, doc! {"$set": {"$x.y": 1}}),
        (doc! {"_id": 1}, doc! {"$push": {"$x": 1}}),
        (doc! {"_id": 1}, doc! {"$currentDate": {"$x": true}}),
        (doc! {"_id": 1, "k": 1}, doc! {"$rename": {"k": "$x"}}),
    ] {
        let (outcome, stored) = update_fresh(&start, &update);
        let e = outcome.unwrap_err();
        assert_eq!(
            (e.code(), e.to_string()),
            (52, refused.to_owned()),
            "{update}"
        );
        assert_eq!(stored, start, "unchanged after {update}");
    }
    for (start, update, expected) in [
        (
            doc! {"_id": 1},
            doc! {"$set": {"a.$x": 1}},
            doc! {"_id": 1, "a": {"$x": 1}},
        ),
        (
            doc! {"_id": 1, "a": {}},
            doc! {"$set": {"a.$x": 1}},
            doc! {"_id": 1, "a": {"$x": 1}},
        ),
        (
            doc! {"_id": 1},
            doc! {"$set": {"a": {"$x": 1}}},
            doc! {"_id": 1, "a": {"$x": 1}},
        ),
        (
            doc! {"_id": 1},
            doc! {"$push": {"a": {"$x": 1}}},
            doc! {"_id": 1, "a": [{"$x": 1}]},
        ),
        (
            doc! {"_id": 1},
            doc! {"$unset": {"$x": ""}},
            doc! {"_id": 1},
        ),
    ] {
        let (outcome, stored) = update_fresh(&start, &update);
        outcome.unwrap();
        assert_eq!(stored, expected, "{update}");
    }
}

/// A path part of digits with leading zeros indexes an array as its number, as MongoDB's update
/// system reads a part below an array (`parseUnsignedBase10Integer`); below a document it is a
/// field name.
#[test]
fn leading_zero_parts_index_arrays_in_updates() {
    let table: Vec<(Document, Document, Document)> = vec![
        (
            doc! {"_id": 1, "a": [1, 2, 3]},
            doc! {"$set": {"a.01": 9}},
            doc! {"_id": 1, "a": [1, 9, 3]},
        ),
        (
            doc! {"_id": 1, "a": [1, 2, 3]},
            doc! {"$inc": {"a.001": 1}},
            doc! {"_id": 1, "a": [1, 3, 3]},
        ),
        (
            doc! {"_id": 1, "a": [1, 2, 3]},
            doc! {"$unset": {"a.02": ""}},
            doc! {"_id": 1, "a": [1, 2, null]},
        ),
        (
            doc! {"_id": 1, "a": [1]},
            doc! {"$set": {"a.03": 9}},
            doc! {"_id": 1, "a": [1, null, null, 9]},
        ),
        (
            doc! {"_id": 1, "a": [{"b": 1}]},
            doc! {"$set": {"a.00.b": 9}},
            doc! {"_id": 1, "a": [{"b": 9}]},
        ),
        (
            doc! {"_id": 1, "a": [[1], [2]]},
            doc! {"$push": {"a.01": 3}},
            doc! {"_id": 1, "a": [[1], [2, 3]]},
        ),
        (
            doc! {"_id": 1, "a": [{"b": [1, 2]}]},
            doc! {"$set": {"a.$[].b.01": 9}},
            doc! {"_id": 1, "a": [{"b": [1, 9]}]},
        ),
        (
            doc! {"_id": 1, "a": {"1": 5}},
            doc! {"$set": {"a.01": 9}},
            doc! {"_id": 1, "a": {"1": 5, "01": 9}},
        ),
        (
            doc! {"_id": 1},
            doc! {"$set": {"a.01": 9}},
            doc! {"_id": 1, "a": {"01": 9}},
        ),
    ];
    assert_updates_apply(table);
}

/// Asserts that an update (its outcome and the stored document after it) was refused with
/// MongoDB's code 40 for writes that meet only when applied, `Update created a conflict at
/// '<at>'`, and left the document as it was (`start`).
fn assert_conflict_when_applied(
    (outcome, stored): (history::Result<history::UpdateResult>, Document),
    start: &Document,
    update: &Document,
    at: &str,
) {
    let e = outcome.unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        (40, format!("Update created a conflict at '{at}'")),
        "{update}"
    );
    assert_eq!(&stored, start, "unchanged after {update}");
}

/// Two spellings of one array position (`a.1`, `a.01`) are two paths to MongoDB 7's update
/// parser, which keys its tree by the parts as written, so no conflict is found when the
/// update is parsed; both are applied, `01` first (zero-padded parts order as strings). When
/// both writes change the element, MongoDB's oplog diff builder meets that position twice and
/// the server stops on an invariant with nothing written; the store refuses such an update
/// instead (code 40, `Update created a conflict at 'a.1'`, MongoDB's text for writes that meet
/// only when applied) and leaves the document. When one of the writes changes nothing, or
/// they reach different fields below the element, MongoDB applies both, and so does the store.
#[test]
fn one_array_position_written_by_two_spellings() {
    for (start, update, at) in [
        (
            doc! {"_id": 1, "a": [0, 0, 0]},
            doc! {"$set": {"a.1": 1, "a.01": 2}},
            "a.1",
        ),
        (
            doc! {"_id": 1, "a": [0, 0, 0]},
            doc! {"$inc": {"a.001": 1}, "$set": {"a.1": 5}},
            "a.1",
        ),
        (
            doc! {"_id": 1, "a": [0, {"c": 1}]},
            doc! {"$set": {"a.01.c": 5, "a.1": 7}},
            "a.1",
        ),
        (
            doc! {"_id": 1, "a": [0, {"c": 1}]},
            doc! {"$set": {"a.01": {"c": 5}}, "$inc": {"a.1.c": 1}},
            "a.1",
        ),
        (
            doc! {"_id": 1, "a": [0]},
            doc! {"$set": {"a.5": 1, "a.05": 2}},
            "a.5",
        ),
    ] {
        assert_conflict_when_applied(update_fresh(&start, &update), &start, &update, at);
    }
    assert_updates_apply([
        // The later write changes nothing.
        (
            doc! {"_id": 1, "a": [0, 0, 0]},
            doc! {"$set": {"a.01": 5, "a.1": 5}},
            doc! {"_id": 1, "a": [0, 5, 0]},
        ),
        // The earlier (`01`) write changes nothing.
        (
            doc! {"_id": 1, "a": [0, 0, 0]},
            doc! {"$set": {"a.1": 5, "a.01": 0}},
            doc! {"_id": 1, "a": [0, 5, 0]},
        ),
        // Different fields of one element.
        (
            doc! {"_id": 1, "a": [{}, {"b": 0, "c": 0}]},
            doc! {"$set": {"a.01.b": 1, "a.1.c": 2}},
            doc! {"_id": 1, "a": [{}, {"b": 1, "c": 2}]},
        ),
        // Below a document the parts are names: two fields.
        (
            doc! {"_id": 1, "a": {"1": 0}},
            doc! {"$set": {"a.1": 1, "a.01": 2}},
            doc! {"_id": 1, "a": {"1": 1, "01": 2}},
        ),
    ]);
}

/// An array position respelled beside an array update (`$[]`, `$[<id>]`), below it
/// (`x.$[].a.01` with `x.$[].a.1`) or above it (`x.01.$[]` with `x.1.$[]`), is two paths to
/// MongoDB 7's parser as in [`one_array_position_written_by_two_spellings`]: when both writes
/// change the element MongoDB stops on an invariant, and the store refuses the update with
/// code 40 at the element's path; when one changes nothing, both apply.
#[test]
fn array_positions_respelled_beside_array_updates() {
    for (start, update, at) in [
        (
            doc! {"_id": 1, "x": [{"a": [0, 1]}]},
            doc! {"$set": {"x.$[].a.01": 5, "x.$[].a.1": 6}},
            "x.0.a.1",
        ),
        (
            doc! {"_id": 1, "x": [0, [1]]},
            doc! {"$set": {"x.1.$[]": 5, "x.01.$[]": 6}},
            "x.1",
        ),
    ] {
        assert_conflict_when_applied(update_fresh(&start, &update), &start, &update, at);
    }
    assert_updates_apply([
        (
            doc! {"_id": 1, "x": [{"a": [0, 1]}]},
            doc! {"$set": {"x.$[].a.01": 6, "x.$[].a.1": 6}},
            doc! {"_id": 1, "x": [{"a": [0, 6]}]},
        ),
        (
            doc! {"_id": 1, "x": [0, [1]]},
            doc! {"$set": {"x.01.$[]": 5, "x.1.$[]": 5}},
            doc! {"_id": 1, "x": [0, [5]]},
        ),
    ]);
}

/// A position respelled above filtered array updates (`x.01.$[i]` with `x.1.$[j]`) is two
/// children of MongoDB 7's update tree, keyed by the parts as written, each its own array
/// node: they are never merged (whatever elements their filters admit), both are applied,
/// `01` first, and when both change the element the store refuses the update with code 40 at
/// the element's path, as for `x.01.$[]` with `x.1.$[]`; when one changes nothing, both apply.
#[test]
fn filtered_array_updates_below_a_respelled_position() {
    let start = doc! {"_id": 1, "x": [0, [1, 2]]};
    let all = || vec![doc! {"i": {"$gte": 0}}, doc! {"j": {"$gte": 0}}];
    let apart = || vec![doc! {"i": 1}, doc! {"j": 2}];
    let nested = doc! {"_id": 1, "x": [0, [{"a": 1}, {"a": 2}]]};
    for (start, update, filters) in [
        (
            &start,
            doc! {"$set": {"x.01.$[i]": 5, "x.1.$[j]": 6}},
            all(),
        ),
        (
            &start,
            doc! {"$set": {"x.1.$[j]": 6, "x.01.$[i]": 5}},
            all(),
        ),
        (
            &start,
            doc! {"$set": {"x.01.$[i]": 5, "x.1.$[j]": 6}},
            apart(),
        ),
        (
            &nested,
            doc! {"$set": {"x.01.$[i].a": 5, "x.1.$[j].b": 6}},
            vec![doc! {"i.a": 1}, doc! {"j.a": 2}],
        ),
    ] {
        let outcome = update_fresh_with(start, &update, with_filters(filters));
        assert_conflict_when_applied(outcome, start, &update, "x.1");
    }
    assert_filtered_updates_apply(vec![
        (
            start.clone(),
            doc! {"$set": {"x.01.$[i]": 5, "x.1.$[j]": 5}},
            all(),
            doc! {"_id": 1, "x": [0, [5, 5]]},
        ),
        (
            start.clone(),
            doc! {"$set": {"x.01.$[i]": 5, "x.1.$[j]": 2}},
            apart(),
            doc! {"_id": 1, "x": [0, [5, 2]]},
        ),
    ]);
}

/// Values for `$addToSet`/`$pullAll`, each with its class under MongoDB's equality: numbers
/// by value whatever their type (a long past 2^53 apart from the nearest double), NaN equal
/// to NaN, a string to the symbol with its text, documents field by field in order.
fn equality_classes() -> Vec<(usize, Bson)> {
    let dec = |s: &str| Bson::Decimal128(s.parse().unwrap());
    let two_53 = 1_i64 << 53;
    vec![
        (0, Bson::Int32(1)),
        (0, Bson::Int64(1)),
        (0, Bson::Double(1.0)),
        (0, dec("1.00")),
        (1, Bson::Double(f64::NAN)),
        (1, dec("NaN")),
        (2, Bson::Int32(0)),
        (2, Bson::Double(-0.0)),
        (2, dec("-0")),
        (3, Bson::Int64(two_53)),
        (3, Bson::Double(9_007_199_254_740_992.0)),
        (4, Bson::Int64(two_53 + 1)),
        (5, Bson::Int64(i64::MAX)),
        (6, Bson::Double(9_223_372_036_854_775_808.0)),
        (7, Bson::String("a".into())),
        (7, Bson::Symbol("a".into())),
        (8, Bson::String("b".into())),
        (9, Bson::Document(doc! {"a": 1, "b": 2})),
        (9, Bson::Document(doc! {"a": 1.0, "b": 2_i64})),
        (10, Bson::Document(doc! {"b": 2, "a": 1})),
        (11, Bson::Array(vec![Bson::Int32(1), Bson::Int32(2)])),
        (11, Bson::Array(vec![Bson::Double(1.0), Bson::Int64(2)])),
        (12, Bson::Array(vec![Bson::Int32(2), Bson::Int32(1)])),
        (13, Bson::Null),
        (14, Bson::Boolean(true)),
        (15, Bson::MinKey),
        (16, Bson::MaxKey),
    ]
}

/// `$addToSet` with `$each` adds each value equal to no element and to no value before it,
/// in order; `$pullAll` removes every element equal to a value. Checked against a scan by
/// equality class over generated arrays of mixed types, with repeats.
#[test]
fn add_to_set_and_pull_all_use_mongodbs_equality() {
    let pool = equality_classes();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |below: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(seed >> 33).unwrap() % below
    };
    let mut pick = |n: usize| -> Vec<(usize, Bson)> {
        (0..n).map(|_| pool[next(pool.len())].clone()).collect()
    };
    let mut cases = Vec::new();
    for i in 0..60 {
        let (a, b) = (i % 7, (i * 5) % 11);
        cases.push((pick(a), pick(b)));
    }
    let (_d, h) = open();
    let values = |xs: &[(usize, Bson)]| Bson::Array(xs.iter().map(|(_, v)| v.clone()).collect());
    // `Bson`'s `==` has NaN unequal to itself: compare debug renderings, exact in type.
    let render = |v: &Bson| format!("{v:?}");
    for (i, (start, each)) in cases.into_iter().enumerate() {
        let id = i32::try_from(i).unwrap();
        let mut added = start.clone();
        for item in &each {
            if !added.iter().any(|(class, _)| *class == item.0) {
                added.push(item.clone());
            }
        }
        let pulled: Vec<_> = start
            .iter()
            .filter(|(class, _)| !each.iter().any(|(c, _)| c == class))
            .cloned()
            .collect();
        h.insert_many(
            "db",
            "sets",
            vec![
                doc! {"_id": id, "l": values(&start)},
                doc! {"_id": -id - 1, "l": values(&start)},
            ],
        )
        .unwrap();
        let update = |id: i32, u: Document| {
            h.update(
                "db",
                "sets",
                &doc! {"_id": id},
                &u,
                UpdateOptions::default(),
            )
            .unwrap();
            let got = h
                .find_one("db", "sets", &doc! {"_id": id}, None)
                .unwrap()
                .unwrap();
            render(got.get("l").unwrap())
        };
        assert_eq!(
            update(id, doc! {"$addToSet": {"l": {"$each": values(&each)}}}),
            render(&values(&added)),
            "$addToSet {start:?} {each:?}"
        );
        assert_eq!(
            update(-id - 1, doc! {"$pullAll": {"l": values(&each)}}),
            render(&values(&pulled)),
            "$pullAll {start:?} {each:?}"
        );
    }
}

/// `$inc` and `$mul` with a Decimal128 on either side compute in decimal, exactly; an integer
/// joins exactly and a double with 15 significant digits, as MongoDB converts them.
#[test]
fn decimal_increments_and_products_are_exact() {
    let dec = |s: &str| Bson::Decimal128(s.parse().unwrap());
    let table: Vec<(Document, Document, Document)> = vec![
        (
            doc! {"_id": 1, "n": dec("0.1")},
            doc! {"$inc": {"n": dec("0.2")}},
            doc! {"_id": 1, "n": dec("0.3")},
        ),
        (
            doc! {"_id": 1, "n": 5},
            doc! {"$inc": {"n": dec("0.25")}},
            doc! {"_id": 1, "n": dec("5.25")},
        ),
        (
            doc! {"_id": 1, "n": dec("1")},
            doc! {"$inc": {"n": 0.1}},
            doc! {"_id": 1, "n": dec("1.100000000000000")},
        ),
        (
            doc! {"_id": 1, "n": dec("1.10")},
            doc! {"$mul": {"n": dec("3"), "z": dec("1.5")}},
            doc! {"_id": 1, "n": dec("3.30"), "z": dec("0.0")},
        ),
        (
            doc! {"_id": 1, "n": 0.1},
            doc! {"$inc": {"n": 0.2}},
            doc! {"_id": 1, "n": 0.1 + 0.2},
        ),
    ];
    for (start, update, expected) in table {
        let (outcome, got) = update_fresh(&start, &update);
        outcome.unwrap();
        assert_eq!(got, expected, "start {start} update {update}");
    }
}

#[test]
fn update_errors_carry_mongodb_codes() {
    let table: Vec<(Document, Document, i32)> = vec![
        (doc! {"_id": 1, "a": 1}, doc! {"$set": {"a.b": 1}}, 28),
        (doc! {"_id": 1, "s": "x"}, doc! {"$inc": {"s": 1}}, 14),
        (
            doc! {"_id": 1},
            doc! {"$set": {"a": 1}, "$inc": {"a": 1}},
            40,
        ),
        (doc! {"_id": 1}, doc! {"$set": {"a": 1, "a.b": 2}}, 40),
        (doc! {"_id": 1}, doc! {"$set": {"_id": 2}}, 66),
        (doc! {"_id": 1}, doc! {"$bogus": {"a": 1}}, 9),
        (doc! {"_id": 1, "l": 1}, doc! {"$push": {"l": 2}}, 2),
        (doc! {"_id": 1}, doc! {"$set": {"l.$": 2}}, 2),
        (doc! {"_id": 1, "l": [1, 2]}, doc! {"$pop": {"l": 2}}, 9),
        (doc! {"_id": 1, "l": [1, 2]}, doc! {"$pop": {"l": 0}}, 9),
        (doc! {"_id": 1, "l": [1, 2]}, doc! {"$pop": {"l": 1.5}}, 9),
        (doc! {"_id": 1, "l": [1, 2]}, doc! {"$pop": {"l": "x"}}, 9),
        (doc! {"_id": 1, "l": 1}, doc! {"$pop": {"l": 1}}, 14),
        (
            doc! {"_id": 1, "l": [1]},
            doc! {"$addToSet": {"l": {"$each": [2], "$slice": 1}}},
            2,
        ),
        (
            doc! {"_id": 1, "l": [1]},
            doc! {"$addToSet": {"l": {"$each": 2}}},
            14,
        ),
        (doc! {"_id": 1, "l": 1}, doc! {"$addToSet": {"l": 2}}, 2),
        (
            doc! {"_id": 1},
            doc! {"$currentDate": {"d": {"$type": "date", "x": 1}}},
            2,
        ),
        (doc! {"_id": 1}, doc! {"$currentDate": {"d": 1}}, 2),
    ];
    for (start, update, code) in table {
        let (outcome, stored) = update_fresh(&start, &update);
        let e = outcome.unwrap_err();
        assert_eq!(e.code(), code, "update {update}: {e}");
        assert_eq!(stored, start, "unchanged after error");
    }
    // The messages name the document by its `_id`, as MongoDB renders it.
    let oid = bson::oid::ObjectId::parse_str("61dea7a3d9c1aeae9b4a4b48").unwrap();
    for (start, update, message) in [
        (
            doc! {"_id": 1, "s": "x"},
            doc! {"$inc": {"s": 1}},
            "Cannot apply $inc to a value of non-numeric type. {_id: 1} has the field 's' of non-numeric type string",
        ),
        (
            doc! {"_id": "k", "l": 1},
            doc! {"$push": {"l": 2}},
            "The field 'l' must be an array but is of type int in document {_id: \"k\"}",
        ),
        (
            doc! {"_id": 1, "l": [1]},
            doc! {"$pop": {"l": 2}},
            "$pop expects 1 or -1, found: 2",
        ),
        (
            doc! {"_id": 1, "l": [1]},
            doc! {"$pop": {"l": "x"}},
            "Expected a number in: l: \"x\"",
        ),
        (
            doc! {"_id": 1, "l": 5},
            doc! {"$pop": {"l": 1}},
            "Path 'l' contains an element of non-array type 'int'",
        ),
        (
            doc! {"_id": 1, "l": "x"},
            doc! {"$addToSet": {"l": 2}},
            "Cannot apply $addToSet to non-array field. Field named 'l' has non-array type string",
        ),
        (
            doc! {"_id": 1, "l": [1]},
            doc! {"$addToSet": {"l": {"$each": {"a": 1}}}},
            "The argument to $each in $addToSet must be an array but it was of type object",
        ),
        (
            doc! {"_id": 1},
            doc! {"$currentDate": {"d": 1}},
            "int is not valid type for $currentDate. Please use a boolean ('true') or a $type expression ({$type: 'timestamp/date'}).",
        ),
        (
            doc! {"_id": 1},
            doc! {"$currentDate": {"d": {"$type": "date", "x": 1}}},
            "Unrecognized $currentDate option: x",
        ),
        (
            doc! {"_id": oid, "s": true},
            doc! {"$mul": {"s": 2}},
            "Cannot apply $mul to a value of non-numeric type. {_id: ObjectId('61dea7a3d9c1aeae9b4a4b48')} has the field 's' of non-numeric type bool",
        ),
    ] {
        let (_d, h) = open();
        h.insert_one("db", "c", start.clone()).unwrap();
        let by_id = doc! {"_id": start.get("_id").unwrap().clone()};
        let e = h
            .update("db", "c", &by_id, &update, UpdateOptions::default())
            .unwrap_err();
        assert_eq!(e.to_string(), message);
    }
    // `$pop`, `$currentDate` and `$addToSet` arguments are checked when the update is parsed,
    // so an update that matches nothing is refused all the same.
    let (_d, h) = open();
    for update in [
        doc! {"$pop": {"l": 2}},
        doc! {"$currentDate": {"d": "yes"}},
        doc! {"$addToSet": {"l": {"$each": [1], "$sort": 1}}},
    ] {
        let none = doc! {"_id": 9};
        let outcome = h.update("db", "c", &none, &update, UpdateOptions::default());
        assert!(
            matches!(outcome.map_err(|e| e.code()), Err(2 | 9)),
            "{update}"
        );
    }
}

/// Operators that write overlapping paths are refused when the update is parsed, as MongoDB's
/// update parser does (code 40 ConflictingUpdateOperators, naming the path and the shorter of
/// the two): whether or not a document matches, and `$setOnInsert` included.
#[test]
fn conflicting_update_operators_are_refused_when_parsed() {
    for (update, message) in [
        (
            doc! {"$set": {"a": 1}, "$setOnInsert": {"a": 2}},
            "Updating the path 'a' would create a conflict at 'a'",
        ),
        (
            doc! {"$setOnInsert": {"a.b": 1}, "$inc": {"a.b.c": 1}},
            "Updating the path 'a.b.c' would create a conflict at 'a.b'",
        ),
        (
            doc! {"$set": {"a": 1}, "$unset": {"a.b": ""}},
            "Updating the path 'a.b' would create a conflict at 'a'",
        ),
        (
            doc! {"$set": {"a.b": 2}, "$inc": {"a": 1}},
            "Updating the path 'a' would create a conflict at 'a'",
        ),
        (
            doc! {"$rename": {"a": "b"}, "$set": {"b": 9}},
            "Updating the path 'b' would create a conflict at 'b'",
        ),
        (
            doc! {"$set": {"x": 1, "a.b": 1}, "$push": {"a.b.0": 1}},
            "Updating the path 'a.b.0' would create a conflict at 'a.b'",
        ),
        // Below one prefix, array updates and plain parts cannot mix: MongoDB's tree makes
        // the prefix an array node or an object node.
        (
            doc! {"$set": {"a.$[].x": 1, "a.0.y": 2}},
            "Updating the path 'a.0.y' would create a conflict at 'a'",
        ),
        (
            doc! {"$set": {"a.b": 1}, "$inc": {"a.$[]": 1}},
            "Updating the path 'a.$[]' would create a conflict at 'a'",
        ),
    ] {
        let (_d, h) = open();
        h.insert_one("db", "c", doc! {"_id": 1, "a": {"b": {"c": 1}}})
            .unwrap();
        let upsert = UpdateOptions {
            upsert: true,
            ..UpdateOptions::default()
        };
        let many = UpdateOptions {
            multi: true,
            ..UpdateOptions::default()
        };
        let outcomes = [
            // A match, and none: in the collection, in one that does not exist, and upserting.
            h.update(
                "db",
                "c",
                &doc! {"_id": 1},
                &update,
                UpdateOptions::default(),
            ),
            h.update("db", "c", &doc! {"_id": 2}, &update, many),
            h.update(
                "db",
                "none",
                &doc! {"_id": 2},
                &update,
                UpdateOptions::default(),
            ),
            h.update("db", "c", &doc! {"_id": 2}, &update, upsert),
        ];
        for outcome in outcomes {
            let e = outcome.unwrap_err();
            assert_eq!(
                (e.code(), e.to_string().as_str()),
                (40, message),
                "{update}"
            );
            assert_eq!(e.code_name(), "ConflictingUpdateOperators");
        }
        let e = h
            .find_one_and_update(
                "db",
                "c",
                &doc! {"_id": 2},
                &update,
                &FindAndModifyOptions::default(),
            )
            .unwrap_err();
        assert_eq!(e.code(), 40, "{update}");
        assert_eq!(h.count("db", "c", &doc! {}).unwrap(), 1, "nothing upserted");
        assert_eq!(
            h.find_one("db", "c", &doc! {"_id": 1}, None)
                .unwrap()
                .unwrap(),
            doc! {"_id": 1, "a": {"b": {"c": 1}}}
        );
    }
    // Disjoint and sibling paths do not conflict.
    let (outcome, stored) = update_fresh(
        &doc! {"_id": 1, "a": {"b": 1, "c": 1}},
        &doc! {"$set": {"a.b": 2, "ab": 1}, "$inc": {"a.c": 1}, "$setOnInsert": {"a.d": 1}},
    );
    assert_eq!(outcome.unwrap().modified, 1);
    assert_eq!(stored, doc! {"_id": 1, "a": {"b": 2, "c": 2}, "ab": 1});
}

/// An update whose operators are all empty (`{$set: {}}`) matches and changes nothing, with
/// no change event, as in MongoDB 5.0 and later; an upsert inserts the filter's document. A
/// document with no operator at all is still not an operator update.
#[test]
fn empty_operator_objects_are_a_no_op() {
    let (_d, h) = open();
    h.insert_many(
        "db",
        "c",
        vec![doc! {"_id": 1, "a": 1}, doc! {"_id": 2, "a": 2}],
    )
    .unwrap();
    let mut stream = h
        .watch(history::WatchScope::All, history::WatchOptions::default())
        .unwrap();
    for (update, multi, matched) in [
        (doc! {"$set": {}}, false, 1),
        (doc! {"$set": {}, "$unset": {}, "$inc": {}}, false, 1),
        (doc! {"$set": {}}, true, 2),
    ] {
        let options = UpdateOptions {
            multi,
            ..UpdateOptions::default()
        };
        let r = h.update("db", "c", &doc! {}, &update, options).unwrap();
        assert_eq!(
            (r.matched, r.modified, r.upserted_id),
            (matched, 0, None),
            "{update}"
        );
    }
    let before = h
        .find_one_and_update(
            "db",
            "c",
            &doc! {"_id": 2},
            &doc! {"$set": {}},
            &FindAndModifyOptions::default(),
        )
        .unwrap();
    assert_eq!(before, Some(doc! {"_id": 2, "a": 2}));
    assert!(
        stream.try_next_batch(10).unwrap().events.is_empty(),
        "no change, no event"
    );
    // An upsert that matches nothing inserts what the filter's equalities give.
    let r = h
        .update(
            "db",
            "c",
            &doc! {"_id": 3, "k": "x"},
            &doc! {"$set": {}},
            UpdateOptions {
                upsert: true,
                ..UpdateOptions::default()
            },
        )
        .unwrap();
    assert_eq!(r.upserted_id, Some(Bson::Int32(3)));
    assert_eq!(
        h.find("db", "c", &doc! {}, &FindOptions::default())
            .unwrap(),
        [
            doc! {"_id": 1, "a": 1},
            doc! {"_id": 2, "a": 2},
            doc! {"_id": 3, "k": "x"}
        ]
    );
    // `{}` is a replacement, not an operator update: findOneAndUpdate refuses it.
    assert!(
        h.find_one_and_update(
            "db",
            "c",
            &doc! {"_id": 1},
            &doc! {},
            &FindAndModifyOptions::default(),
        )
        .is_err()
    );
}

/// `$rename` moves a field, never an array element, and its source and target differ and are
/// not on one path (MongoDB answers each with code 2 BadValue and leaves the document).
#[test]
fn rename_refuses_array_elements_and_overlapping_paths() {
    let refused: Vec<(Document, Document, &str)> = vec![
        (
            doc! {"_id": 1, "a": [1, 2, 3]},
            doc! {"$rename": {"a.0": "z"}},
            "The source field cannot be an array element, 'a.0' in doc with _id: 1 has an array field called 'a'",
        ),
        (
            doc! {"_id": 1, "x": {"l": [{"b": 1}]}},
            doc! {"$rename": {"x.l.0.b": "z"}},
            "The source field cannot be an array element, 'x.l.0.b' in doc with _id: 1 has an array field called 'l'",
        ),
        (
            doc! {"_id": 1, "a": 1, "l": [1, 2]},
            doc! {"$rename": {"a": "l.0"}},
            "The destination field cannot be an array element, 'l.0' in doc with _id: 1 has an array field called 'l'",
        ),
        (
            doc! {"_id": 1, "a": 1, "l": [{"b": 1}]},
            doc! {"$rename": {"a": "l.5.c"}},
            "The destination field cannot be an array element, 'l.5.c' in doc with _id: 1 has an array field called 'l'",
        ),
        (
            doc! {"_id": 1, "b": 1},
            doc! {"$rename": {"b": "b"}},
            "The source and target field for $rename must differ: b: \"b\"",
        ),
        (
            doc! {"_id": 1, "a": {"b": 1}},
            doc! {"$rename": {"a": "a.b"}},
            "The source and target field for $rename must not be on the same path: a: \"a.b\"",
        ),
        (
            doc! {"_id": 1, "a": {"b": 1}},
            doc! {"$rename": {"a.b": "a"}},
            "The source and target field for $rename must not be on the same path: a.b: \"a\"",
        ),
    ];
    for (start, update, message) in refused {
        let (outcome, stored) = update_fresh(&start, &update);
        let e = outcome.unwrap_err();
        assert_eq!((e.code(), e.code_name()), (2, "BadValue"), "{update}: {e}");
        assert_eq!(e.to_string(), message, "{update}");
        assert_eq!(stored, start, "unchanged after {update}");
    }
    // An array may be moved, or overwritten by the move; a name that only shares a prefix
    // is another path.
    let moved: Vec<(Document, Document, Document)> = vec![
        (
            doc! {"_id": 1, "a": [1, 2]},
            doc! {"$rename": {"a": "x.b"}},
            doc! {"_id": 1, "x": {"b": [1, 2]}},
        ),
        (
            doc! {"_id": 1, "a": 1, "l": [1, 2]},
            doc! {"$rename": {"a": "l"}},
            doc! {"_id": 1, "l": 1},
        ),
        (
            doc! {"_id": 1, "a": 1},
            doc! {"$rename": {"a": "ab"}},
            doc! {"_id": 1, "ab": 1},
        ),
    ];
    for (start, update, expected) in moved {
        let (outcome, got) = update_fresh(&start, &update);
        outcome.unwrap();
        assert_eq!(got, expected, "{update}");
    }
}

/// MongoDB 7's update parser checks each path before the operator's argument
/// (`fieldchecker::isUpdatable`: code 56 EmptyFieldName; then the positional `$` parts), and a
/// `$rename` its source before its target, then `RenameNode::init`'s checks in order (a null
/// byte in the target, equal paths, paths on one path, a dynamic source, a dynamic target);
/// a target starting with `$` is only refused when written. Each is refused when the update is
/// parsed, whether or not a document matches, and leaves the document.
#[test]
fn update_paths_are_checked_in_mongodb_order() {
    let empty = |path: &str| {
        (
            56,
            format!("The update path '{path}' contains an empty field name, which is not allowed."),
        )
    };
    let bad = |message: &str| (2, message.to_owned());
    let first = |path: &str| {
        bad(&format!(
            "Cannot have positional (i.e. '$') element in the first position in path '{path}'"
        ))
    };
    let table: Vec<(Document, (i32, String))> = vec![
        (doc! {"$set": {"a..b": 1}}, empty("a..b")),
        (doc! {"$unset": {"a.": 1}}, empty("a.")),
        (
            doc! {"$set": {"": 1}},
            (56, "An empty update path is not valid.".to_owned()),
        ),
        // The path before the argument.
        (doc! {"$inc": {"a..b": "x"}}, empty("a..b")),
        (doc! {"$inc": {"$": "x"}}, first("$")),
        (doc! {"$set": {"$.a": 1}}, first("$.a")),
        (
            doc! {"$set": {"a.$.b.$": 1}},
            bad("Too many positional (i.e. '$') elements found in path 'a.$.b.$'"),
        ),
        // A conflict is found as the path is added, before a later operator's argument.
        (
            doc! {"$set": {"a": 1}, "$inc": {"a": 1}, "$mul": {"b": "x"}},
            (
                40,
                "Updating the path 'a' would create a conflict at 'a'".to_owned(),
            ),
        ),
        (
            doc! {"$set": {"$[].a": 1}},
            bad(
                "Cannot have array filter identifier (i.e. '$[<id>]') element in the first position in path '$[].a'",
            ),
        ),
        // `$rename`: the source, its conflicts, the target's type, the target.
        (doc! {"$rename": {"a..b": 1}}, empty("a..b")),
        (doc! {"$rename": {"$.a": "b..c"}}, first("$.a")),
        (
            doc! {"$set": {"a": 1}, "$rename": {"a": 5}},
            (
                40,
                "Updating the path 'a' would create a conflict at 'a'".to_owned(),
            ),
        ),
        (
            doc! {"$rename": {"a": 5}},
            bad("The 'to' field for $rename must be a string: a: 5"),
        ),
        (doc! {"$rename": {"a": "b..c"}}, empty("b..c")),
        (
            doc! {"$rename": {"a": ""}},
            (56, "An empty update path is not valid.".to_owned()),
        ),
        (doc! {"$rename": {"a": "$"}}, first("$")),
        // Then `RenameNode::init`, in its order.
        (
            doc! {"$rename": {"a": "a\u{0}"}},
            bad("The 'to' field for $rename cannot contain an embedded null byte"),
        ),
        (
            doc! {"$rename": {"a.$": "a.$"}},
            bad("The source and target field for $rename must differ: a.$: \"a.$\""),
        ),
        (
            doc! {"$rename": {"a.$": "a.$.b"}},
            bad(
                "The source and target field for $rename must not be on the same path: a.$: \"a.$.b\"",
            ),
        ),
        (
            doc! {"$rename": {"a.$[]": "b.$"}},
            bad("The source field for $rename may not be dynamic: a.$[]"),
        ),
        (
            doc! {"$rename": {"a": "b.$"}},
            bad("The destination field for $rename may not be dynamic: b.$"),
        ),
        (
            doc! {"$rename": {"a": "$[].b"}},
            bad("The destination field for $rename may not be dynamic: $[].b"),
        ),
        (
            doc! {"$rename": {"_id": "_id"}},
            bad("The source and target field for $rename must differ: _id: \"_id\""),
        ),
        (
            doc! {"$rename": {"$x": "$x"}},
            bad("The source and target field for $rename must differ: $x: \"$x\""),
        ),
        // The target's conflicts come last.
        (
            doc! {"$set": {"b": 1}, "$rename": {"a": "b.$"}},
            bad("The destination field for $rename may not be dynamic: b.$"),
        ),
        (
            doc! {"$set": {"b": 1}, "$rename": {"a": "b"}},
            (
                40,
                "Updating the path 'b' would create a conflict at 'b'".to_owned(),
            ),
        ),
    ];
    let start = doc! {"_id": 1, "a": {"b": 1}};
    for (update, (code, message)) in table {
        let (_d, h) = open();
        h.insert_one("db", "c", start.clone()).unwrap();
        for filter in [doc! {"_id": 1}, doc! {"_id": 2}] {
            let e = h
                .update("db", "c", &filter, &update, UpdateOptions::default())
                .unwrap_err();
            assert_eq!(
                (e.code(), e.to_string()),
                (code, message.clone()),
                "{update}"
            );
            if code == 56 {
                assert_eq!(e.code_name(), "EmptyFieldName");
            }
        }
        let stored = h
            .find_one("db", "c", &doc! {"_id": 1}, None)
            .unwrap()
            .unwrap();
        assert_eq!(stored, start, "unchanged after {update}");
    }
}

/// A positional `$` write and a write naming the element it resolves to meet only when the
/// update is applied: MongoDB 7 merges the two branches of its update tree there and, where
/// one of them ends (a leaf), refuses the update with code 40 `Update created a conflict at
/// '<path>'` at the shorter of the two paths (`UpdateNode::createUpdateNodeByMerging`);
/// branches that part below the element both apply.
#[test]
fn positional_and_named_writes_to_one_element_conflict_when_applied() {
    for (start, filter, update, at) in [
        (
            doc! {"_id": 1, "a": [1, 2]},
            doc! {"_id": 1, "a": 2},
            doc! {"$set": {"a.$": 5, "a.1": 6}},
            "a.1",
        ),
        (
            doc! {"_id": 1, "a": [{"b": 0}, {"b": 1}]},
            doc! {"_id": 1, "a.b": 1},
            doc! {"$set": {"a.$.b": 5}, "$inc": {"a.1.b": 1}},
            "a.1.b",
        ),
        (
            doc! {"_id": 1, "a": [{"b": 0}, {"b": 1}]},
            doc! {"_id": 1, "a.b": 1},
            doc! {"$set": {"a.$.b": 5, "a.1": 6}},
            "a.1",
        ),
        (
            doc! {"_id": 1, "a": [{"b": 0}, {"b": 1}]},
            doc! {"_id": 1, "a.b": 1},
            doc! {"$unset": {"a.1.b": ""}, "$set": {"a.$": 5}},
            "a.1",
        ),
    ] {
        let (_d, h) = open();
        h.insert_one("db", "c", start.clone()).unwrap();
        let e = h
            .update("db", "c", &filter, &update, UpdateOptions::default())
            .unwrap_err();
        assert_eq!(
            (e.code(), e.to_string()),
            (40, format!("Update created a conflict at '{at}'")),
            "{update}"
        );
        let stored = h.find_one("db", "c", &doc! {}, None).unwrap().unwrap();
        assert_eq!(stored, start, "unchanged after {update}");
    }
    for (start, filter, update, expected) in [
        (
            doc! {"_id": 1, "a": [{"b": 0}, {"b": 1}]},
            doc! {"_id": 1, "a.b": 1},
            doc! {"$set": {"a.$.b": 5, "a.1.c": 6}},
            doc! {"_id": 1, "a": [{"b": 0}, {"b": 5, "c": 6}]},
        ),
        (
            doc! {"_id": 1, "a": [1, 2]},
            doc! {"_id": 1, "a": 2},
            doc! {"$set": {"a.$": 5, "a.0": 6}},
            doc! {"_id": 1, "a": [6, 5]},
        ),
    ] {
        let (_d, h) = open();
        h.insert_one("db", "c", start.clone()).unwrap();
        h.update("db", "c", &filter, &update, UpdateOptions::default())
            .unwrap();
        let stored = h.find_one("db", "c", &doc! {}, None).unwrap().unwrap();
        assert_eq!(stored, expected, "{update}");
    }
}

#[test]
fn positional_operator_updates_the_matched_element() {
    let (_d, h) = open();
    h.insert_one(
        "db",
        "c",
        doc! {"_id": 1, "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 1}]},
    )
    .unwrap();
    h.update(
        "db",
        "c",
        &doc! {"items.sku": "b"},
        &doc! {"$inc": {"items.$.qty": 5}},
        UpdateOptions::default(),
    )
    .unwrap();
    let d = h.find_one("db", "c", &doc! {}, None).unwrap().unwrap();
    assert_eq!(
        d,
        doc! {"_id": 1, "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 6}]}
    );
    h.insert_one("db", "c", doc! {"_id": 2, "grades": [80, 90, 95]})
        .unwrap();
    h.update(
        "db",
        "c",
        &doc! {"_id": 2, "grades": 90},
        &doc! {"$set": {"grades.$": 91}},
        UpdateOptions::default(),
    )
    .unwrap();
    assert_eq!(
        h.find_one("db", "c", &doc! {"_id": 2}, None)
            .unwrap()
            .unwrap(),
        doc! {"_id": 2, "grades": [80, 91, 95]}
    );
}

/// The positional `$` takes the element a condition on the array matched element by element;
/// conditions on the array as a whole (`$size`), negations (`$ne`, `$not`) and filters without
/// the array fail with MongoDB's BadValue, and nothing is written.
#[test]
fn positional_operator_needs_an_element_match_from_the_filter() {
    let (_d, h) = open();
    h.insert_many(
        "db",
        "c",
        vec![doc! {"_id": 1, "arr": [7]}, doc! {"_id": 2, "arr": [5, 6]}],
    )
    .unwrap();
    let set = |filter: Document| {
        h.update(
            "db",
            "c",
            &filter,
            &doc! {"$set": {"arr.$": 1}},
            UpdateOptions::default(),
        )
    };
    for filter in [
        doc! {"_id": 1, "arr": {"$size": 1}},
        doc! {"_id": 2, "arr": {"$size": 2}},
        doc! {"_id": 2, "arr": {"$ne": 9}},
        doc! {"_id": 2, "arr": {"$not": {"$gt": 9}}},
        doc! {"_id": 1},
    ] {
        let e = set(filter.clone()).unwrap_err();
        assert_eq!(e.code(), 2, "{filter}");
        assert_eq!(
            e.to_string(),
            "The positional operator did not find the match needed from the query.",
            "{filter}"
        );
    }
    // A whole-array condition beside an element condition: the element one picks.
    set(doc! {"_id": 2, "arr": {"$size": 2, "$gt": 5}}).unwrap();
    let all = h
        .find("db", "c", &doc! {}, &FindOptions::default())
        .unwrap();
    assert_eq!(
        all,
        vec![doc! {"_id": 1, "arr": [7]}, doc! {"_id": 2, "arr": [5, 1]}]
    );
}

#[test]
fn upserts_seed_from_filter_equalities() {
    let (_d, h) = open();
    let r = h
        .update(
            "db",
            "c",
            &doc! {"k": 7, "n.m": "x", "q": {"$gt": 1}},
            &doc! {"$set": {"v": 1}, "$setOnInsert": {"created": true}},
            UpdateOptions {
                upsert: true,
                multi: false,
                ..UpdateOptions::default()
            },
        )
        .unwrap();
    assert_eq!((r.matched, r.modified), (0, 0));
    let id = r.upserted_id.unwrap();
    let d = h
        .find_one("db", "c", &doc! {"_id": id.clone()}, Some(&doc! {"_id": 0}))
        .unwrap()
        .unwrap();
    assert_eq!(d, doc! {"k": 7, "n": {"m": "x"}, "v": 1, "created": true});
    // A second upsert matches and does not run $setOnInsert.
    let r = h
        .update(
            "db",
            "c",
            &doc! {"k": 7},
            &doc! {"$set": {"v": 2}, "$setOnInsert": {"created": false}},
            UpdateOptions {
                upsert: true,
                multi: false,
                ..UpdateOptions::default()
            },
        )
        .unwrap();
    assert_eq!((r.matched, r.modified, r.upserted_id), (1, 1, None));
    // Replacement upsert keeps the filter's _id.
    let r = h
        .replace("db", "c", &doc! {"_id": "fixed"}, &doc! {"z": 1}, true)
        .unwrap();
    assert_eq!(r.upserted_id, Some(Bson::String("fixed".into())));
    assert_eq!(
        h.find_one("db", "c", &doc! {"_id": "fixed"}, None)
            .unwrap()
            .unwrap(),
        doc! {"_id": "fixed", "z": 1}
    );
}

/// A replacement keeps the stored `_id` first, may repeat it but not change it (66, and the
/// document stays as it was), and an upsert by a replacement without one gets a generated
/// `_id` first; the same through a batch (`commit`), where the first upsert of an order number
/// inserts and the second replaces what the first staged.
#[test]
fn replacements_keep_the_id_first_and_refuse_a_changed_one() {
    let (_d, h) = open();
    h.insert_one("db", "c", doc! {"a": 1, "_id": 5, "b": 2})
        .unwrap();
    let r = h
        .replace(
            "db",
            "c",
            &doc! {"_id": 5},
            &doc! {"z": 1, "_id": 5, "y": [1, 2]},
            false,
        )
        .unwrap();
    assert_eq!((r.matched, r.modified), (1, 1));
    let stored = h
        .find_one("db", "c", &doc! {"_id": 5}, None)
        .unwrap()
        .unwrap();
    assert_eq!(stored, doc! {"_id": 5, "z": 1, "y": [1, 2]});
    let keys: Vec<&String> = stored.keys().collect();
    assert_eq!(keys, ["_id", "z", "y"]);
    let e = h
        .replace("db", "c", &doc! {"_id": 5}, &doc! {"_id": 6, "z": 2}, false)
        .unwrap_err();
    assert_eq!((e.code(), e.code_name()), (66, "ImmutableField"));
    assert_eq!(
        h.find_one("db", "c", &doc! {"_id": 5}, None)
            .unwrap()
            .unwrap(),
        doc! {"_id": 5, "z": 1, "y": [1, 2]}
    );
    // A replacement replaces one document: with `multi` it is refused before anything is
    // matched, as MongoDB's update driver refuses it.
    h.insert_one("db", "c", doc! {"_id": 6, "a": 1}).unwrap();
    let e = h
        .update(
            "db",
            "c",
            &doc! {},
            &doc! {"b": 2},
            UpdateOptions {
                multi: true,
                ..UpdateOptions::default()
            },
        )
        .unwrap_err();
    assert_eq!(
        (e.code(), e.code_name(), e.to_string().as_str()),
        (
            9,
            "FailedToParse",
            "multi update is not supported for replacement-style update"
        )
    );
    assert_eq!(h.count("db", "c", &doc! {"b": 2}).unwrap(), 0);

    let upsert = |n: i32, v: &str| WriteOp::Upsert {
        db: "db".into(),
        coll: "o".into(),
        filter: doc! {"n": n},
        document: doc! {"n": n, "v": v},
    };
    h.commit(
        vec![upsert(1, "first"), upsert(1, "second"), upsert(2, "only")],
        Vec::new(),
    )
    .unwrap();
    let docs = h
        .find("db", "o", &doc! {}, &FindOptions::default())
        .unwrap();
    assert_eq!(docs.len(), 2);
    for (d, (n, v)) in docs.iter().zip([(1, "second"), (2, "only")]) {
        let keys: Vec<&String> = d.keys().collect();
        assert_eq!(keys, ["_id", "n", "v"], "{d}");
        assert!(matches!(d.get("_id"), Some(Bson::ObjectId(_))), "{d}");
        assert_eq!((d.get_i32("n").unwrap(), d.get_str("v").unwrap()), (n, v));
    }
}

#[test]
fn update_many_delete_and_find_and_modify() {
    let (_d, h) = open();
    h.insert_many(
        "db",
        "c",
        (1..=5).map(|i| doc! {"_id": i, "g": i % 2}).collect(),
    )
    .unwrap();
    let r = h
        .update(
            "db",
            "c",
            &doc! {"g": 1},
            &doc! {"$set": {"odd": true}},
            UpdateOptions {
                upsert: false,
                multi: true,
                ..UpdateOptions::default()
            },
        )
        .unwrap();
    assert_eq!((r.matched, r.modified), (3, 3));
    let r = h
        .update(
            "db",
            "c",
            &doc! {"g": 1},
            &doc! {"$set": {"odd": true}},
            UpdateOptions {
                upsert: false,
                multi: true,
                ..UpdateOptions::default()
            },
        )
        .unwrap();
    assert_eq!((r.matched, r.modified), (3, 0));
    let opts = FindAndModifyOptions {
        sort: Some(doc! {"_id": -1}),
        return_new: true,
        ..FindAndModifyOptions::default()
    };
    let d = h
        .find_one_and_update(
            "db",
            "c",
            &doc! {"g": 0},
            &doc! {"$inc": {"hits": 1}},
            &opts,
        )
        .unwrap()
        .unwrap();
    assert_eq!(d, doc! {"_id": 4, "g": 0, "hits": 1});
    let before = h
        .find_one_and_replace(
            "db",
            "c",
            &doc! {"_id": 4},
            &doc! {"r": 1},
            &FindAndModifyOptions::default(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(before, doc! {"_id": 4, "g": 0, "hits": 1});
    let gone = h
        .find_one_and_delete(
            "db",
            "c",
            &doc! {},
            &FindAndModifyOptions {
                sort: Some(doc! {"_id": 1}),
                ..FindAndModifyOptions::default()
            },
        )
        .unwrap()
        .unwrap();
    assert_eq!(gone.get_i32("_id").unwrap(), 1);
    assert_eq!(h.delete("db", "c", &doc! {"g": 1}, true).unwrap(), 2);
    assert_eq!(h.delete("db", "c", &doc! {}, false).unwrap(), 1);
    assert_eq!(h.count("db", "c", &doc! {}).unwrap(), 1);
}

#[test]
fn ids_are_generated_first_and_duplicates_rejected() {
    let (_d, h) = open();
    let id = h.insert_one("db", "c", doc! {"x": 1}).unwrap();
    assert!(matches!(id, Bson::ObjectId(_)));
    let d = h.find_one("db", "c", &doc! {}, None).unwrap().unwrap();
    assert_eq!(d.keys().next().unwrap(), "_id");
    h.insert_one("db", "c", doc! {"_id": 5}).unwrap();
    // 5.0 equals 5 as an _id, as in MongoDB.
    assert_eq!(
        h.insert_one("db", "c", doc! {"_id": 5.0})
            .unwrap_err()
            .code(),
        11000
    );
    let e = h.insert_one("db", "c", doc! {"_id": 5}).unwrap_err();
    assert_eq!(
        e.to_string(),
        "E11000 duplicate key error collection: db.c index: _id_ dup key: { _id: 5 }"
    );
    // insert_many is all-or-nothing.
    let e = h
        .insert_many("db", "c", vec![doc! {"_id": 6}, doc! {"_id": 6}])
        .unwrap_err();
    assert_eq!(e.code(), 11000);
    assert_eq!(h.count("db", "c", &doc! {"_id": 6}).unwrap(), 0);
}

fn nested(depth: usize) -> Document {
    let mut d = doc! {"leaf": 1};
    for _ in 1..depth {
        d = doc! {"n": d};
    }
    d
}

#[test]
fn limits_hold_at_max_and_fail_at_max_plus_one() {
    let (_d, h) = open();
    // Nesting: depth 100 accepted, 101 refused.
    h.insert_one("db", "c", nested(NESTING_DEPTH_MAX)).unwrap();
    let e = h
        .insert_one("db", "c", nested(NESTING_DEPTH_MAX + 1))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::NestingTooDeep {
                depth: 101,
                max: 100
            }
        ),
        "{e}"
    );
    // Size: exactly 16 MiB accepted, one byte more refused.
    let overhead = doc! {"_id": 1, "s": ""}.to_vec().unwrap().len();
    let big = doc! {"_id": 1, "s": "x".repeat(DOCUMENT_BYTES_MAX - overhead)};
    assert_eq!(big.to_vec().unwrap().len(), DOCUMENT_BYTES_MAX);
    h.insert_one("db", "big", big).unwrap();
    let bigger = doc! {"_id": 2, "s": "x".repeat(DOCUMENT_BYTES_MAX - overhead + 1)};
    let e = h.insert_one("db", "big", bigger).unwrap_err();
    assert!(
        matches!(e, Error::DocumentTooLarge { len, max } if len == DOCUMENT_BYTES_MAX + 1 && max == DOCUMENT_BYTES_MAX),
        "{e}"
    );
    // Names.
    let db64 = "d".repeat(history::DATABASE_NAME_BYTES_MAX);
    h.insert_one(&db64, "c", doc! {}).unwrap();
    assert_eq!(
        h.insert_one(&"d".repeat(65), "c", doc! {})
            .unwrap_err()
            .code(),
        73
    );
    let coll_max = "c".repeat(history::NAMESPACE_BYTES_MAX - 3);
    h.insert_one("db", &coll_max, doc! {}).unwrap();
    assert_eq!(
        h.insert_one("db", &format!("{coll_max}c"), doc! {})
            .unwrap_err()
            .code(),
        73
    );
    for (db, coll) in [
        ("", "c"),
        ("a.b", "c"),
        ("db", ""),
        ("db", "a$b"),
        ("d/b", "c"),
        ("db", "system.x"),
    ] {
        assert_eq!(
            h.insert_one(db, coll, doc! {}).unwrap_err().code(),
            73,
            "{db}.{coll}"
        );
    }
    // An _id whose key exceeds fjall's key limit is refused before storage sees it.
    let long_id = "k".repeat(history::KEY_BYTES_MAX);
    let e = h
        .insert_one("db", "keys", doc! {"_id": long_id})
        .unwrap_err();
    assert!(matches!(e, Error::KeyTooLarge { max: 65_535, .. }), "{e}");
    let ok_id = "k".repeat(history::KEY_BYTES_MAX - 4 - 1 - 2);
    h.insert_one("db", "keys", doc! {"_id": ok_id}).unwrap();
    assert!(!h.is_poisoned());
    h.insert_one("db", "keys", doc! {"_id": 1}).unwrap();
}

#[test]
fn default_config_text_parses_to_the_default_config() {
    use streamcache::config::{Config, default_toml, parse_toml};
    let text = default_toml();
    assert!(text.contains("[history]"));
    assert_eq!(
        parse_toml(&text, std::path::Path::new("default.toml")).unwrap(),
        Config::default()
    );
    let custom = parse_toml(
        "[history]\nfsync = \"always\"\noplog_bytes_max = 5\n",
        std::path::Path::new("x.toml"),
    )
    .unwrap();
    assert_eq!(custom.history.fsync, history::Fsync::Always);
    assert_eq!(custom.history.oplog_bytes_max, 5);
}

/// `$expr` runs an aggregation expression on each document: in find, count, update, delete,
/// findAndModify and `$match`, beside ordinary conditions; `$$NOW` is the store's clock; a
/// run-time error is the query's error; inside `$elemMatch` it is refused, as in MongoDB.
#[test]
fn expr_compares_fields_of_one_document() {
    let (_d, h) = history_common::open_at(history_common::START_MS);
    h.insert_many(
        "db",
        "c",
        vec![
            doc! {"_id": 1, "spent": 120, "budget": 100, "due": bson::DateTime::from_millis(1)},
            doc! {"_id": 2, "spent": 80, "budget": 100, "due": bson::DateTime::from_millis(i64::MAX / 2)},
            doc! {"_id": 3, "spent": 150, "budget": 200, "items": [{"q": 1, "max": 0}]},
        ],
    )
    .unwrap();
    let ids = |filter: Document| -> Vec<i32> {
        h.find("db", "c", &filter, &FindOptions::default())
            .unwrap()
            .iter()
            .map(|d| d.get_i32("_id").unwrap())
            .collect()
    };
    assert_eq!(ids(doc! {"$expr": {"$gt": ["$spent", "$budget"]}}), vec![1]);
    assert_eq!(
        ids(doc! {"$expr": {"$lt": ["$spent", "$budget"]}, "budget": 200}),
        vec![3]
    );
    assert_eq!(
        ids(doc! {"$or": [{"$expr": {"$eq": ["$spent", 80]}}, {"_id": 3}]}),
        vec![2, 3]
    );
    // A missing field sorts below every value in an expression's comparison, so 3 is in.
    assert_eq!(ids(doc! {"$expr": {"$lt": ["$due", "$$NOW"]}}), vec![1, 3]);
    assert_eq!(ids(doc! {"$expr": 0}), Vec::<i32>::new());
    assert_eq!(
        h.count("db", "c", &doc! {"$expr": {"$gte": ["$spent", 100]}})
            .unwrap(),
        2
    );
    let got = h
        .aggregate(
            "db",
            "c",
            &[
                doc! {"$project": {"ratio": {"$divide": ["$spent", "$budget"]}}},
                doc! {"$match": {"$expr": {"$gt": ["$ratio", 1]}}},
            ],
        )
        .unwrap();
    assert_eq!(got, vec![doc! {"_id": 1, "ratio": 1.2}]);
    // A run-time error of the expression is the query's.
    let e = h
        .find(
            "db",
            "c",
            &doc! {"$expr": {"$divide": ["$spent", 0]}},
            &FindOptions::default(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("can't $divide by zero"), "{e}");
    // Only the top-level document: not inside $elemMatch, not as a field's operator.
    let e = h
        .find(
            "db",
            "c",
            &doc! {"items": {"$elemMatch": {"$expr": {"$gt": ["$q", "$max"]}}}},
            &FindOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.code(), 2);
    assert!(
        e.to_string()
            .contains("$expr can only be applied to the top-level document"),
        "{e}"
    );
    assert_eq!(
        h.find(
            "db",
            "c",
            &doc! {"spent": {"$expr": 1}},
            &FindOptions::default()
        )
        .unwrap_err()
        .code(),
        2
    );
    // Writes select with it too.
    let r = h
        .update(
            "db",
            "c",
            &doc! {"$expr": {"$gt": ["$spent", "$budget"]}},
            &doc! {"$set": {"over": true}},
            UpdateOptions::default(),
        )
        .unwrap();
    assert_eq!((r.matched, r.modified), (1, 1));
    assert_eq!(ids(doc! {"over": true}), vec![1]);
    let taken = h
        .find_one_and_delete(
            "db",
            "c",
            &doc! {"$expr": {"$eq": ["$budget", 200]}},
            &FindAndModifyOptions::default(),
        )
        .unwrap();
    assert_eq!(taken.and_then(|d| d.get_i32("_id").ok()), Some(3));
    assert_eq!(
        h.delete(
            "db",
            "c",
            &doc! {"$expr": {"$lt": ["$spent", "$budget"]}},
            true
        )
        .unwrap(),
        1
    );
    assert_eq!(ids(doc! {}), vec![1]);
}

/// Applies each `(start, update, expected)` row to a fresh collection and checks that it
/// matches the document and leaves the expected one.
fn assert_updates_apply(rows: impl IntoIterator<Item = (Document, Document, Document)>) {
    for (start, update, expected) in rows {
        let (outcome, got) = update_fresh(&start, &update);
        assert_eq!(outcome.unwrap().matched, 1, "{update}");
        assert_eq!(got, expected, "start {start} update {update}");
    }
}

fn with_filters(filters: Vec<Document>) -> UpdateOptions {
    UpdateOptions {
        array_filters: Some(filters),
        ..UpdateOptions::default()
    }
}

/// Applies each `(start, update, arrayFilters, expected)` row to a fresh collection and checks
/// that it succeeds and leaves the expected document.
fn assert_filtered_updates_apply(table: Vec<(Document, Document, Vec<Document>, Document)>) {
    for (start, update, filters, expected) in table {
        let (outcome, stored) = update_fresh_with(&start, &update, with_filters(filters.clone()));
        outcome.unwrap_or_else(|e| panic!("{update} {filters:?}: {e}"));
        assert_eq!(stored, expected, "{update} with {filters:?}");
    }
}

/// `$[]` updates every element of an array, `$[<id>]` the elements its `arrayFilters` entry
/// admits, nested and combined with plain parts, as in MongoDB's manual examples.
#[test]
fn all_positional_and_filtered_positional_updates() {
    let table: Vec<(Document, Document, Vec<Document>, Document)> = vec![
        (
            doc! {"_id": 1, "grades": [95, 92, 90]},
            doc! {"$inc": {"grades.$[]": 10}},
            vec![],
            doc! {"_id": 1, "grades": [105, 102, 100]},
        ),
        (
            doc! {"_id": 1, "grades": [95, 102, 90, 150]},
            doc! {"$set": {"grades.$[el]": 100}},
            vec![doc! {"el": {"$gte": 100}}],
            doc! {"_id": 1, "grades": [95, 100, 90, 100]},
        ),
        (
            doc! {"_id": 1, "grades": [{"grade": 80, "mean": 75}, {"grade": 85, "mean": 90}, {"grade": 90, "mean": 85}]},
            doc! {"$set": {"grades.$[el].mean": 100}},
            vec![doc! {"el.grade": {"$gte": 85}}],
            doc! {"_id": 1, "grades": [{"grade": 80, "mean": 75}, {"grade": 85, "mean": 100}, {"grade": 90, "mean": 100}]},
        ),
        (
            doc! {"_id": 1, "degrees": [{"level": "Master", "gpa": 3.9}, {"level": "Bachelor", "gpa": 3.5}]},
            doc! {"$set": {"degrees.$[d].gpa": 4.0}},
            vec![doc! {"d.level": {"$ne": "Bachelor"}, "d.gpa": {"$gt": 3.8}}],
            doc! {"_id": 1, "degrees": [{"level": "Master", "gpa": 4.0}, {"level": "Bachelor", "gpa": 3.5}]},
        ),
        // Nested identifiers, and $[] with a field below it (created where missing).
        (
            doc! {"_id": 1, "tests": [{"type": "quiz", "scores": [8, 5, 9]}, {"type": "exam", "scores": [9]}]},
            doc! {"$inc": {"tests.$[t].scores.$[s]": 1}},
            vec![doc! {"t.type": "quiz"}, doc! {"s": {"$gte": 8}}],
            doc! {"_id": 1, "tests": [{"type": "quiz", "scores": [9, 5, 10]}, {"type": "exam", "scores": [9]}]},
        ),
        (
            doc! {"_id": 1, "a": [{}, {"b": 2}]},
            doc! {"$set": {"a.$[].b": 1}},
            vec![],
            doc! {"_id": 1, "a": [{"b": 1}, {"b": 1}]},
        ),
        // No element admitted: nothing changes.
        (
            doc! {"_id": 1, "grades": [1, 2]},
            doc! {"$set": {"grades.$[x]": 0}},
            vec![doc! {"x": {"$gt": 5}}],
            doc! {"_id": 1, "grades": [1, 2]},
        ),
        // $unset of every element leaves nulls, as for one.
        (
            doc! {"_id": 1, "a": [1, 2]},
            doc! {"$unset": {"a.$[]": ""}},
            vec![],
            doc! {"_id": 1, "a": [null, null]},
        ),
    ];
    assert_filtered_updates_apply(table);
}

/// MongoDB 7 merges the array updates an element's filters admit in order, caching each merge
/// (`UpdateArrayNode::apply`'s `_mergedChildrenCache`), so `ARRAY_FILTERS_MAX` filters that all
/// admit every element of an array cost one merge per filter, not one per pair of filters per
/// element (the merge count, `ARRAY_FILTERS_MAX` × 512 here, is asserted by the unit test
/// `history::update::tests::array_update_merges_grow_linearly_in_the_filters_admitting_an_element`).
/// Such an update is answered with the error of its first write (code 28 PathNotViable, a
/// field below a number) and nothing written.
#[test]
fn many_array_filters_admitting_every_element_are_merged_then_the_first_write_fails() {
    let (elements, filters) = (512, history::ARRAY_FILTERS_MAX);
    let start = doc! {"_id": 1, "a": vec![Bson::Int32(0); elements]};
    let mut set = Document::new();
    let mut array_filters = Vec::new();
    for k in 0..filters {
        set.insert(format!("a.$[i{k}].f{k}"), 1);
        array_filters.push(doc! {format!("i{k}"): {"$exists": true}});
    }
    let update = doc! {"$set": set};
    let (outcome, stored) = update_fresh_with(&start, &update, with_filters(array_filters));
    let e = outcome.unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        (28, "Cannot create field 'f0' in element {0: 0}".to_owned())
    );
    assert_eq!(stored, start);
}

/// MongoDB 7 applies its update tree field by field in path order and merges the array
/// updates of an array when it applies that array, so a write to a field before it that fails
/// is the update's error, and a merge conflict in an array before a failing field is.
#[test]
fn array_update_merges_happen_in_path_order() {
    let filters = || with_filters(vec![doc! {"i": 0}, doc! {"j": 0}]);
    let start = doc! {"_id": 1, "b": "s", "c": [0]};
    let update = doc! {"$inc": {"b": 1}, "$set": {"c.$[i]": 1, "c.$[j]": 2}};
    let (outcome, stored) = update_fresh_with(&start, &update, filters());
    let e = outcome.unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        (
            14,
            "Cannot apply $inc to a value of non-numeric type. {_id: 1} has the field 'b' of non-numeric type string"
                .to_owned()
        )
    );
    assert_eq!(stored, start);
    let start = doc! {"_id": 1, "a": [0], "b": "s"};
    let update = doc! {"$inc": {"b": 1}, "$set": {"a.$[i]": 1, "a.$[j]": 2}};
    let outcome = update_fresh_with(&start, &update, filters());
    assert_conflict_when_applied(outcome, &start, &update, "a.0");
}

/// Array updates (`$[]`, `$[<id>]`) of one array whose filters admit one element are merged
/// there by MongoDB 7 (`UpdateArrayNode::apply`, `createUpdateNodeByMerging`): where one of
/// the merged branches ends, or one goes on into an array and the other into a document, the
/// update is refused with code 40 `Update created a conflict at '<path>'` (the element as its
/// index, then the parts the branches share, a shared identifier as written), and nothing is
/// written; branches that part below the element, or elements only one filter admits, apply.
#[test]
fn array_updates_meeting_at_one_element_conflict() {
    let refused: Vec<(Document, Document, Vec<Document>, &str)> = vec![
        (
            doc! {"_id": 1, "a": [0]},
            doc! {"$set": {"a.$[i]": 2, "a.$[j]": 3}},
            vec![doc! {"i": 0}, doc! {"j": 0}],
            "a.0",
        ),
        (
            doc! {"_id": 1, "a": [0, 1]},
            doc! {"$set": {"a.$[]": 1}, "$inc": {"a.$[i]": 2}},
            vec![doc! {"i": 1}],
            "a.1",
        ),
        (
            doc! {"_id": 1, "a": [{"x": 0, "b": 1}]},
            doc! {"$set": {"a.$[i].b": 1}, "$inc": {"a.$[j].b": 1}},
            vec![doc! {"i.x": 0}, doc! {"j.x": 0}],
            "a.0.b",
        ),
        (
            doc! {"_id": 1, "a": [{"b": [0]}]},
            doc! {"$set": {"a.$[].b.$[i]": 1, "a.$[].b.$[j]": 1}},
            vec![doc! {"i": 0}, doc! {"j": 0}],
            "a.0.b.0",
        ),
        (
            doc! {"_id": 1, "a": [{"b": [0], "c": 0}]},
            doc! {"$set": {"a.$[i].b.$[j]": 1, "a.$[k].b.$[l]": 1}},
            vec![
                doc! {"i.c": 0},
                doc! {"j": 0},
                doc! {"k.c": 0},
                doc! {"l": 0},
            ],
            "a.0.b.0",
        ),
        (
            doc! {"_id": 1, "a": [{"x": 0, "b": [{"y": 0, "c": 0}]}]},
            doc! {"$set": {"a.$[i].b.$[k].c": 1, "a.$[j].b.$[k].c": 2}},
            vec![doc! {"i.x": 0}, doc! {"j.x": 0}, doc! {"k.y": 0}],
            "a.0.b.$[k].c",
        ),
        // The third child meets the second, not the first.
        (
            doc! {"_id": 1, "a": [{"x": 0}]},
            doc! {"$set": {"a.$[i].y": 1, "a.$[j].z": 2, "a.$[k].z.w": 3}},
            vec![doc! {"i.x": 0}, doc! {"j.x": 0}, doc! {"k.x": 0}],
            "a.0.z",
        ),
        // One branch goes into an array, the other into a document.
        (
            doc! {"_id": 1, "a": [{"x": 0, "b": [0]}]},
            doc! {"$set": {"a.$[i].b.$[k]": 1, "a.$[j].b.c": 2}},
            vec![doc! {"i.x": 0}, doc! {"j.x": 0}, doc! {"k": 0}],
            "a.0.b",
        ),
    ];
    for (start, update, filters, at) in refused {
        let outcome = update_fresh_with(&start, &update, with_filters(filters));
        assert_conflict_when_applied(outcome, &start, &update, at);
    }
    let applied: Vec<(Document, Document, Vec<Document>, Document)> = vec![
        // Different fields of one element.
        (
            doc! {"_id": 1, "a": [{"x": 0}]},
            doc! {"$set": {"a.$[i].y": 1, "a.$[j].z": 2}},
            vec![doc! {"i.x": 0}, doc! {"j.x": 0}],
            doc! {"_id": 1, "a": [{"x": 0, "y": 1, "z": 2}]},
        ),
        // No element admitted by both.
        (
            doc! {"_id": 1, "a": [0, 1]},
            doc! {"$set": {"a.$[i]": 5, "a.$[j]": 6}},
            vec![doc! {"i": 0}, doc! {"j": 1}],
            doc! {"_id": 1, "a": [5, 6]},
        ),
        // Nested arrays whose filters part at the inner array.
        (
            doc! {"_id": 1, "a": [{"b": [0, 1], "c": 0}]},
            doc! {"$set": {"a.$[i].b.$[j]": 5, "a.$[k].b.$[l]": 6}},
            vec![
                doc! {"i.c": 0},
                doc! {"j": 0},
                doc! {"k.c": 0},
                doc! {"l": 1},
            ],
            doc! {"_id": 1, "a": [{"b": [5, 6], "c": 0}]},
        ),
    ];
    assert_filtered_updates_apply(applied);
}

/// MongoDB 7 reads which elements of an array each `$[<id>]` admits before it applies any
/// update to that array (`UpdateArrayNode::apply` matches every element against every filter,
/// then applies the merged updates element by element), so a filter sees the element as it was
/// before the update, whatever another operator of the same update writes to it; the fields an
/// element gains are created in the order of their names, as MongoDB's merged update node
/// applies them.
#[test]
fn array_filters_read_elements_as_they_were_before_the_update() {
    let table: Vec<(Document, Document, Vec<Document>, Document)> = vec![
        // Two identifiers on one array: `j` admits no element before `x` is written.
        (
            doc! {"_id": 1, "a": [{"x": 0}]},
            doc! {"$set": {"a.$[i].x": 1, "a.$[j].y": 2}},
            vec![doc! {"i.x": 0}, doc! {"j.x": 1}],
            doc! {"_id": 1, "a": [{"x": 1}]},
        ),
        // … and both admit the element before `x` is written.
        (
            doc! {"_id": 1, "a": [{"x": 0}]},
            doc! {"$set": {"a.$[i].x": 1, "a.$[j].y": 2}},
            vec![doc! {"i.x": 0}, doc! {"j.x": 0}],
            doc! {"_id": 1, "a": [{"x": 1, "y": 2}]},
        ),
        // A filter on the field another operator changes.
        (
            doc! {"_id": 1, "a": [{"n": 0}, {"n": 1}]},
            doc! {"$inc": {"a.$[i].n": 1}, "$set": {"a.$[j].m": 1}},
            vec![doc! {"i.n": {"$gte": 0}}, doc! {"j.n": 1}],
            doc! {"_id": 1, "a": [{"n": 1}, {"n": 2, "m": 1}]},
        ),
        // `$[]` beside `$[<id>]`.
        (
            doc! {"_id": 1, "a": [{"x": 0}, {"x": 1}]},
            doc! {"$inc": {"a.$[].x": 1}, "$set": {"a.$[i].y": 1}},
            vec![doc! {"i.x": 1}],
            doc! {"_id": 1, "a": [{"x": 1}, {"x": 2, "y": 1}]},
        ),
        // Nested arrays: the inner filters read the inner elements as they were …
        (
            doc! {"_id": 1, "a": [{"b": [{"v": 0}]}]},
            doc! {"$set": {"a.$[].b.$[j].v": 1, "a.$[].b.$[k].w": 2}},
            vec![doc! {"j.v": 0}, doc! {"k.v": 1}],
            doc! {"_id": 1, "a": [{"b": [{"v": 1}]}]},
        ),
        // … and so do the outer ones.
        (
            doc! {"_id": 1, "a": [{"x": 0, "b": [0]}]},
            doc! {"$set": {"a.$[i].x": 1, "a.$[j].b.$[]": 9}},
            vec![doc! {"i.x": 0}, doc! {"j.x": 1}],
            doc! {"_id": 1, "a": [{"x": 1, "b": [0]}]},
        ),
        (
            doc! {"_id": 1, "a": [{"x": 0, "b": [{"v": 0}, {"v": 1}]}]},
            doc! {"$set": {"a.$[i].x": 1, "a.$[i].b.$[k].v": 5, "a.$[j].b.$[l].w": 6}},
            vec![
                doc! {"i.x": 0},
                doc! {"j.x": 0},
                doc! {"k.v": 0},
                doc! {"l.v": {"$lt": 1}},
            ],
            doc! {"_id": 1, "a": [{"x": 1, "b": [{"v": 5, "w": 6}, {"v": 1}]}]},
        ),
        // The fields an element gains, in the order of their names.
        (
            doc! {"_id": 1, "a": [{"x": 0}]},
            doc! {"$set": {"a.$[i].z": 1, "a.$[j].y": 2}},
            vec![doc! {"i.x": 0}, doc! {"j.x": 0}],
            doc! {"_id": 1, "a": [{"x": 0, "y": 2, "z": 1}]},
        ),
    ];
    assert_filtered_updates_apply(table);
}

#[test]
fn array_update_errors_are_mongodbs() {
    let start = doc! {"_id": 1, "name": "alice", "grades": [1, 2]};
    let table: Vec<(Document, Vec<Document>, i32, &str)> = vec![
        (
            doc! {"$set": {"grades.$[x]": 0}},
            vec![],
            2,
            "No array filter found for identifier 'x' in path 'grades.$[x]'",
        ),
        (
            doc! {"$set": {"grades.$[]": 0}},
            vec![doc! {"y": 1}],
            9,
            "The array filter for identifier 'y' was not used in the update",
        ),
        (
            doc! {"$set": {"grades.$[x]": 0}},
            vec![doc! {"x": 1, "y": 1}],
            9,
            "Expected a single top-level field name, found 'x' and 'y'",
        ),
        (
            doc! {"$set": {"grades.$[X]": 0}},
            vec![doc! {"X": 1}],
            2,
            "must be an alphanumeric string beginning with a lowercase letter, found 'X'",
        ),
        (
            doc! {"$set": {"grades.$[x]": 0}},
            vec![doc! {"x": 1}, doc! {"x": 2}],
            9,
            "Found multiple array filters with the same top-level field name x",
        ),
        (
            doc! {"$set": {"grades.$[x]": 0}},
            vec![doc! {}],
            2,
            "Cannot use an expression without a top-level field name in arrayFilters",
        ),
        (
            doc! {"$set": {"missing.$[]": 0}},
            vec![],
            2,
            "The path 'missing' must exist in the document in order to apply array updates.",
        ),
        (
            doc! {"$set": {"name.$[]": 0}},
            vec![],
            2,
            "Cannot apply array updates to non-array element name: \"alice\"",
        ),
    ];
    for (update, filters, code, text) in table {
        let (outcome, stored) = update_fresh_with(&start, &update, with_filters(filters.clone()));
        let e = outcome.expect_err(&format!("{update} {filters:?}"));
        assert_eq!(e.code(), code, "{update} {filters:?}: {e}");
        assert!(e.to_string().contains(text), "{update} {filters:?}: {e}");
        assert_eq!(stored, start, "nothing written");
    }
    // An upsert's new document has no array to update.
    let (_d, h) = open();
    let e = h
        .update(
            "db",
            "c",
            &doc! {"_id": 9},
            &doc! {"$set": {"grades.$[]": 1}},
            UpdateOptions {
                upsert: true,
                ..UpdateOptions::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), 2, "{e}");
    assert_eq!(h.count("db", "c", &doc! {}).unwrap(), 0);
}

/// MongoDB 7 parses `arrayFilters` before the update (`parsedUpdateArrayFilters`), so their
/// errors come first; then its parser takes each update path in turn, its `$[<id>]` parts
/// checked part by part as the path joins the update tree (`parseArrayFilterIdentifier`, 2
/// `No array filter found for identifier 'i' in path 'a.$[i]'`), after the path's own checks
/// and its operator's argument, and between the conflicts at the prefixes around them; a
/// filter no path used is reported after the whole update is parsed.
#[test]
fn array_filter_errors_come_in_mongodbs_parse_order() {
    let start = doc! {"_id": 1, "a": [0], "b": 0};
    let missing = |path: &str| format!("No array filter found for identifier 'i' in path '{path}'");
    let table: Vec<(Document, Vec<Document>, i32, String)> = vec![
        // A filter's error before an update path's.
        (
            doc! {"$set": {"": 1}},
            vec![doc! {"I": 0}],
            2,
            "Error parsing array filter :: caused by :: The top-level field name must be an alphanumeric string beginning with a lowercase letter, found 'I'".to_owned(),
        ),
        (
            doc! {"$inc": {"a.$[i]": "x"}},
            vec![doc! {"i": 0}, doc! {"i": 1}],
            9,
            "Found multiple array filters with the same top-level field name i".to_owned(),
        ),
        // A `$rename` source joins the tree before its target is read.
        (doc! {"$rename": {"a.$[i]": "c"}}, vec![], 2, missing("a.$[i]")),
        (
            doc! {"$rename": {"c": "a.$[i]"}},
            vec![],
            2,
            "The destination field for $rename may not be dynamic: a.$[i]".to_owned(),
        ),
        // A missing filter before a later path's conflict or argument error …
        (doc! {"$set": {"a.$[i]": 1, "a": 2}}, vec![], 2, missing("a.$[i]")),
        (doc! {"$set": {"a.$[i]": 2, "a.c": 1}}, vec![], 2, missing("a.$[i]")),
        (
            doc! {"$set": {"a.$[i]": 1}, "$inc": {"b": "x"}},
            vec![],
            2,
            missing("a.$[i]"),
        ),
        (
            doc! {"$set": {"a.$[j].$[i]": 1}},
            vec![doc! {"j": 0}],
            2,
            missing("a.$[j].$[i]"),
        ),
        // … after its own path's argument error, and an earlier path's conflict at a prefix
        // before it.
        (
            doc! {"$inc": {"a.$[i]": "x"}},
            vec![],
            14,
            "Cannot increment with non-numeric argument: {a.$[i]: \"x\"}".to_owned(),
        ),
        (
            doc! {"$set": {"a": 2, "a.$[i]": 1}},
            vec![],
            40,
            "Updating the path 'a.$[i]' would create a conflict at 'a'".to_owned(),
        ),
        (
            doc! {"$set": {"a.c": 1, "a.$[i]": 2}},
            vec![],
            40,
            "Updating the path 'a.$[i]' would create a conflict at 'a'".to_owned(),
        ),
        // A missing filter before an unused one.
        (doc! {"$set": {"a.$[i]": 1}}, vec![doc! {"j": 0}], 2, missing("a.$[i]")),
    ];
    for (update, filters, code, text) in table {
        let (outcome, stored) = update_fresh_with(&start, &update, with_filters(filters.clone()));
        let e = outcome.expect_err(&format!("{update} {filters:?}"));
        assert_eq!(
            (e.code(), e.to_string()),
            (code, text),
            "{update} {filters:?}"
        );
        assert_eq!(stored, start, "nothing written");
    }
}

/// MongoDB 7's update command parses `arrayFilters` before it looks at what kind of update it
/// has (`parsedUpdateArrayFilters`), so a bad filter is reported first; `UpdateDriver::parse`
/// then refuses filters with a pipeline (9 `arrayFilters may not be specified for
/// pipeline-style updates`, before the pipeline's stages are parsed, none given being no
/// filter) and lets a replacement document ignore them. findAndModify refuses `arrayFilters`
/// with a pipeline, even an empty list, before parsing either (9 `Cannot specify arrayFilters
/// and a pipeline update`).
#[test]
fn array_filters_with_a_replacement_or_a_pipeline_as_mongodb() {
    let start = doc! {"_id": 1, "a": [0]};
    let pipeline_text = "arrayFilters may not be specified for pipeline-style updates";
    let bad_filter = "Error parsing array filter :: caused by :: The top-level field name must be an alphanumeric string beginning with a lowercase letter, found 'I'";
    let run = |update: &dyn Fn(&history::History) -> history::Result<history::UpdateResult>| {
        let (_d, h) = open();
        h.insert_one("db", "c", start.clone()).unwrap();
        let outcome = update(&h);
        let stored = h.find_one("db", "c", &doc! {"_id": 1}, None).unwrap();
        (outcome, stored.unwrap())
    };
    let pipeline = |stages: Vec<Document>, filters: Vec<Document>| {
        move |h: &history::History| {
            h.update(
                "db",
                "c",
                &doc! {"_id": 1},
                &stages,
                with_filters(filters.clone()),
            )
        }
    };
    // A replacement ignores well-formed filters, but not malformed ones.
    let (outcome, stored) =
        update_fresh_with(&start, &doc! {"b": 1}, with_filters(vec![doc! {"i": 0}]));
    assert_eq!(outcome.unwrap().modified, 1);
    assert_eq!(stored, doc! {"_id": 1, "b": 1});
    let (outcome, stored) =
        update_fresh_with(&start, &doc! {"b": 1}, with_filters(vec![doc! {"I": 0}]));
    let e = outcome.unwrap_err();
    assert_eq!((e.code(), e.to_string()), (2, bad_filter.to_owned()));
    assert_eq!(stored, start);
    // A pipeline: the filters' errors, then the refusal, then the stages'.
    let table: Vec<(Vec<Document>, Vec<Document>, i32, &str)> = vec![
        (
            vec![doc! {"$set": {"b": 1}}],
            vec![doc! {"i": 0}],
            9,
            pipeline_text,
        ),
        (
            vec![doc! {"$nope": {}}],
            vec![doc! {"i": 0}],
            9,
            pipeline_text,
        ),
        (vec![doc! {"$nope": {}}], vec![doc! {"I": 0}], 2, bad_filter),
    ];
    for (stages, filters, code, text) in table {
        let (outcome, stored) = run(&pipeline(stages.clone(), filters.clone()));
        let e = outcome.expect_err(&format!("{stages:?} {filters:?}"));
        assert_eq!(
            (e.code(), e.to_string()),
            (code, text.to_owned()),
            "{stages:?}"
        );
        assert_eq!(stored, start, "nothing written");
    }
    let (outcome, stored) = run(&pipeline(vec![doc! {"$set": {"b": 1}}], vec![]));
    assert_eq!(outcome.unwrap().modified, 1);
    assert_eq!(stored, doc! {"_id": 1, "a": [0], "b": 1});
    // findAndModify: any arrayFilters with a pipeline, before the filters are parsed.
    let set_b = |h: &history::History, (db, coll): (&str, &str), filters: Vec<Document>| {
        let options = FindAndModifyOptions {
            array_filters: Some(filters),
            ..FindAndModifyOptions::default()
        };
        let update = vec![doc! {"$set": {"b": 1}}];
        h.find_one_and_update(db, coll, &doc! {"_id": 1}, &update, &options)
            .unwrap_err()
    };
    for filters in [vec![], vec![doc! {"I": 0}]] {
        let (_d, h) = open();
        h.insert_one("db", "c", start.clone()).unwrap();
        let e = set_b(&h, ("db", "c"), filters.clone());
        assert_eq!(
            (e.code(), e.code_name(), e.to_string()),
            (
                9,
                "FailedToParse",
                "Cannot specify arrayFilters and a pipeline update".to_owned()
            ),
            "{filters:?}"
        );
        assert_eq!(
            h.find_one("db", "c", &doc! {}, None).unwrap().unwrap(),
            start
        );
    }
    // findAndModify parses its namespace with the command (a valid database, a collection
    // named), then checks arrayFilters with a pipeline (`validate`), then whether the
    // collection may be written (`userAllowedWriteNS`: `$`, `system.`, a leading `.`).
    let (_d, h) = open();
    for (db, coll, code) in [
        ("db", "", 73),
        ("d.b", "c", 73),
        ("", "c", 73),
        ("db", "system.x", 9),
        ("db", "a$b", 9),
        ("db", ".c", 9),
    ] {
        let e = set_b(&h, (db, coll), vec![]);
        assert_eq!(e.code(), code, "{db}.{coll}: {e}");
    }
}

/// MongoDB 7's array node (`UpdateArrayNode::apply`) applies the updates it merged for each
/// element in turn, element by element, each element's in path order; an array below it that
/// is missing or not an array fails when its element is reached, as does a merge of updates
/// meeting at an element (code 40), and an earlier element's write fails before it. So of two
/// updates of one array failing on different elements, the one failing on the earlier element
/// is reported, whatever the operators' order.
#[test]
fn array_update_errors_come_element_by_element_as_mongodb() {
    let missing = |path: &str| {
        format!("The path '{path}' must exist in the document in order to apply array updates.")
    };
    let table: Vec<(Document, Document, Vec<Document>, i32, String)> = vec![
        // The `b` update fails on element 1, the `c` update on element 0.
        (
            doc! {"_id": 1, "a": [{"b": [1], "c": 5}, {"b": 5, "c": [1]}]},
            doc! {"$set": {"a.$[].b.$[]": 0}, "$inc": {"a.$[].c.$[]": 1}},
            vec![],
            2,
            "Cannot apply array updates to non-array element c: 5".to_owned(),
        ),
        (
            doc! {"_id": 1, "a": [{"b": [1]}, {"c": [1]}]},
            doc! {"$set": {"a.$[].b.$[]": 0, "a.$[].c.$[]": 0}},
            vec![],
            2,
            missing("a.0.c"),
        ),
        (
            doc! {"_id": 1, "a": [{"k": 0, "b": [1]}, {"k": 1, "c": [1]}]},
            doc! {"$set": {"a.$[i].b.$[]": 0, "a.$[].c.x.$[]": 0}},
            vec![doc! {"i.k": 1}],
            2,
            missing("a.0.c.x"),
        ),
        // One element: its updates in path order.
        (
            doc! {"_id": 1, "a": [{"b": 5}]},
            doc! {"$set": {"a.$[].c.$[]": 0}, "$unset": {"a.$[].b.$[]": 1}},
            vec![],
            2,
            "Cannot apply array updates to non-array element b: 5".to_owned(),
        ),
        // An earlier element's write fails first.
        (
            doc! {"_id": 1, "a": [{"b": "x", "c": [1]}, {"b": 1, "c": 5}]},
            doc! {"$inc": {"a.$[].b": 1}, "$set": {"a.$[].c.$[]": 0}},
            vec![],
            14,
            "Cannot apply $inc to a value of non-numeric type.".to_owned(),
        ),
        (
            doc! {"_id": 1, "a": [{"b": "x", "c": 5}]},
            doc! {"$inc": {"a.$[].b": 1}, "$set": {"a.$[].c.$[]": 0}},
            vec![],
            14,
            "Cannot apply $inc to a value of non-numeric type.".to_owned(),
        ),
        (
            doc! {"_id": 1, "a": [{"b": [1], "c": 5}, {"b": 1, "c": [0]}]},
            doc! {"$inc": {"a.$[].c": 1}, "$set": {"a.$[].b.$[]": 0}},
            vec![],
            2,
            "Cannot apply array updates to non-array element b: 1".to_owned(),
        ),
        // Updates merged at a later element conflict there only when it is reached: an
        // earlier element's failing write or array comes first.
        (
            doc! {"_id": 1, "a": [{"b": "x"}, {"b": 1}]},
            doc! {"$inc": {"a.$[i].b": 1}, "$set": {"a.$[j].b": 2}},
            vec![doc! {"i.b": {"$exists": true}}, doc! {"j.b": 1}],
            14,
            "Cannot apply $inc to a value of non-numeric type.".to_owned(),
        ),
        (
            doc! {"_id": 1, "a": [{"b": 1}, {"b": [0]}]},
            doc! {"$set": {"a.$[i].b.$[]": 5, "a.$[j].b": 7}},
            vec![
                doc! {"i.b": {"$exists": true}},
                doc! {"j.b": {"$type": "array"}},
            ],
            2,
            "Cannot apply array updates to non-array element b: 1".to_owned(),
        ),
        // A conflict at an earlier element comes before a later element's failing write.
        (
            doc! {"_id": 1, "a": [{"b": 1}, {"b": "x"}]},
            doc! {"$inc": {"a.$[i].b": 1}, "$set": {"a.$[j].b": 2}},
            vec![doc! {"i.b": {"$exists": true}}, doc! {"j.b": 1}],
            40,
            "Update created a conflict at 'a.0.b'".to_owned(),
        ),
    ];
    for (start, update, filters, code, text) in table {
        let (outcome, stored) = update_fresh_with(&start, &update, with_filters(filters));
        let e = outcome.expect_err(&format!("{update}"));
        assert_eq!(e.code(), code, "{update}: {e}");
        assert!(e.to_string().contains(&text), "{update}: {e}");
        assert_eq!(stored, start, "nothing written");
    }
}

#[test]
fn array_filter_and_expansion_limits() {
    // ARRAY_FILTERS_MAX filters, each used by one path, are taken; one more is refused.
    let fields = |n: usize| -> Document {
        let mut d = doc! {"_id": 1};
        for i in 0..n {
            d.insert(format!("f{i}"), vec![Bson::Int32(1)]);
        }
        d
    };
    let update = |n: usize| -> (Document, Vec<Document>) {
        let mut set = Document::new();
        let mut filters = Vec::new();
        for i in 0..n {
            set.insert(format!("f{i}.$[i{i}]"), 2);
            filters.push(doc! {format!("i{i}"): 1});
        }
        (doc! {"$set": set}, filters)
    };
    let max = history::ARRAY_FILTERS_MAX;
    let (u, f) = update(max);
    let (outcome, stored) = update_fresh_with(&fields(max), &u, with_filters(f));
    assert_eq!(outcome.unwrap().modified, 1);
    assert_eq!(
        stored.get_array(format!("f{}", max - 1)).unwrap(),
        &vec![Bson::Int32(2)]
    );
    let (u, f) = update(max + 1);
    let (outcome, _) = update_fresh_with(&fields(max + 1), &u, with_filters(f));
    assert!(
        matches!(outcome, Err(Error::TooMany { max: m, .. }) if m == max),
        "{outcome:?}"
    );

    // One path expands to at most ARRAY_UPDATE_PATHS_MAX concrete paths.
    let max = history::ARRAY_UPDATE_PATHS_MAX;
    let start = |n: usize| doc! {"_id": 1, "a": vec![Bson::Int32(0); n]};
    let (outcome, stored) = update_fresh_with(
        &start(max),
        &doc! {"$inc": {"a.$[]": 1}},
        UpdateOptions::default(),
    );
    assert_eq!(outcome.unwrap().modified, 1);
    assert!(
        stored
            .get_array("a")
            .unwrap()
            .iter()
            .all(|v| v == &Bson::Int32(1))
    );
    let (outcome, stored) = update_fresh_with(
        &start(max + 1),
        &doc! {"$inc": {"a.$[]": 1}},
        UpdateOptions::default(),
    );
    assert!(
        matches!(outcome, Err(Error::TooMany { max: m, .. }) if m == max),
        "{outcome:?}"
    );
    assert_eq!(stored, start(max + 1), "nothing written");
}

/// The error of `update` on an empty collection, where no document matches it.
fn refused_on_nothing(update: &Document) -> Error {
    let (_d, h) = open();
    h.update(
        "db",
        "c",
        &doc! {"_id": 9},
        update,
        UpdateOptions::default(),
    )
    .unwrap_err()
}

/// `$push`'s clauses are checked as MongoDB's `PushNode::init` checks them, when the update is
/// parsed: BadValue (2) with its texts, whether or not a document matches.
#[test]
fn push_clauses_are_checked_when_the_update_is_parsed() {
    for (push, message) in [
        (
            doc! {"$each": [1], "$sort": {}},
            "The $sort pattern is empty when it should be a set of fields.",
        ),
        (
            doc! {"$each": [1], "$sort": {"a": 2}},
            "The $sort element value must be either 1 or -1",
        ),
        (
            doc! {"$each": [1], "$sort": {"a": "1"}},
            "The $sort element value must be either 1 or -1",
        ),
        (
            doc! {"$each": [1], "$sort": {"a..b": 1}},
            "The $sort field is a dotted field but has an empty part: a..b",
        ),
        (
            doc! {"$each": [1], "$sort": 0},
            "The $sort element value must be either 1 or -1",
        ),
        (
            doc! {"$each": [1], "$sort": "a"},
            "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields",
        ),
        (
            doc! {"$each": 1},
            "The argument to $each in $push must be an array but it was of type: int",
        ),
        (
            doc! {"$each": [1], "$slice": 1.5},
            "The value for $slice must be an integer value but was given type: double",
        ),
        (
            doc! {"$each": [1], "$position": "0"},
            "The value for $position must be an integer value, not of type: string",
        ),
        (
            doc! {"$each": [1], "$at": 0},
            "Unrecognized clause in $push: $at",
        ),
    ] {
        // No document matches: the clause is refused all the same.
        let e = refused_on_nothing(&doc! {"$push": {"l": push.clone()}});
        assert_eq!((e.code(), e.to_string()), (2, message.to_owned()), "{push}");
    }
    // Integral doubles are integers, as MongoDB's parseIntegerElementToLong takes them.
    let (outcome, stored) = update_fresh(
        &doc! {"_id": 1, "l": [3, 1]},
        &doc! {"$push": {"l": {"$each": [2], "$sort": {"x": -1.0}, "$slice": 2.0, "$position": 0.0}}},
    );
    outcome.unwrap();
    assert_eq!(stored, doc! {"_id": 1, "l": [2, 3]});
}

/// `$pop`, `$pull` and `$pullAll` on a missing path do nothing, unless the path could never
/// be created: crossing a scalar, or an array by a name, is PathNotViable (28) with MongoDB's
/// `UpdateLeafNode::checkViability` text. Creating operators refuse such a path with
/// `createPathAt`'s text, which renders the blocking element whole.
#[test]
fn array_removals_refuse_a_path_through_a_scalar() {
    let cases: Vec<(Document, Document, &str)> = vec![
        (
            doc! {"_id": 1, "a": 1},
            doc! {"$pop": {"a.b": 1}},
            "Cannot use the part (b) of (a.b) to traverse the element ({a: 1})",
        ),
        (
            doc! {"_id": 1, "a": {"x": "s"}},
            doc! {"$pop": {"a.x.y.z": -1}},
            "Cannot use the part (y) of (a.x.y.z) to traverse the element ({x: \"s\"})",
        ),
        (
            doc! {"_id": 1, "a": 1},
            doc! {"$pull": {"a.b": 1}},
            "Cannot use the part (b) of (a.b) to traverse the element ({a: 1})",
        ),
        (
            doc! {"_id": 1, "a": [1, 2]},
            doc! {"$pullAll": {"a.b": [1]}},
            "Cannot use the part (b) of (a.b) to traverse the element ({a: [ 1, 2 ]})",
        ),
        (
            doc! {"_id": 1, "a": [[1], 2]},
            doc! {"$pop": {"a.1.c": 1}},
            "Cannot use the part (c) of (a.1.c) to traverse the element ({1: 2})",
        ),
        (
            doc! {"_id": 1, "a": [1, 2]},
            doc! {"$set": {"a.b": 1}},
            "Cannot create field 'b' in element {a: [ 1, 2 ]}",
        ),
        (
            doc! {"_id": 1, "a": [1, 2]},
            doc! {"$push": {"a.b": 1}},
            "Cannot create field 'b' in element {a: [ 1, 2 ]}",
        ),
        (
            doc! {"_id": 1, "a": 1},
            doc! {"$addToSet": {"a.b": 1}},
            "Cannot create field 'b' in element {a: 1}",
        ),
        (
            doc! {"_id": 1, "a": 1},
            doc! {"$inc": {"a.b.c": 1}},
            "Cannot create field 'b' in element {a: 1}",
        ),
        // Doubles read as MongoDB's `appendDoubleNice` writes them: `%.16g`, `.0` added when that
        // has no `.`, `E` or `N` (its test is upper-case, so `1e+20.0`).
        (
            doc! {"_id": 1, "a": 2.0},
            doc! {"$pop": {"a.b": 1}},
            "Cannot use the part (b) of (a.b) to traverse the element ({a: 2.0})",
        ),
        (
            doc! {"_id": 1, "a": [1.5, 2.0, 1e20, 0.1]},
            doc! {"$set": {"a.b": 1}},
            "Cannot create field 'b' in element {a: [ 1.5, 2.0, 1e+20.0, 0.1 ]}",
        ),
    ];
    for (start, update, message) in cases {
        let (outcome, stored) = update_fresh(&start, &update);
        let e = outcome.expect_err(&format!("{update}"));
        assert_eq!(
            (e.code(), e.to_string()),
            (28, message.to_owned()),
            "{update}"
        );
        assert_eq!(stored, start, "nothing written");
    }
    // A path that could be created is a no-op: a missing field of a document, a missing index
    // of an array, nothing of the path at all.
    for (start, update) in [
        (doc! {"_id": 1, "a": {"x": 1}}, doc! {"$pop": {"a.b.c": 1}}),
        (doc! {"_id": 1, "a": [1]}, doc! {"$pull": {"a.5": 1}}),
        (doc! {"_id": 1, "a": [1]}, doc! {"$pullAll": {"a.3.b": [1]}}),
        (doc! {"_id": 1}, doc! {"$pop": {"a.b": 1}}),
    ] {
        let (outcome, stored) = update_fresh(&start, &update);
        assert_eq!(outcome.unwrap().modified, 0, "{update}");
        assert_eq!(stored, start);
    }
    // On a present value that is no array, `$pull` and `$pullAll` both answer with `$pull`'s
    // text, as MongoDB's shared ArrayCullingNode does.
    for update in [doc! {"$pull": {"a": 1}}, doc! {"$pullAll": {"a": [1]}}] {
        let (outcome, _) = update_fresh(&doc! {"_id": 1, "a": 1}, &update);
        let e = outcome.unwrap_err();
        assert_eq!(
            (e.code(), e.to_string()),
            (2, "Cannot apply $pull to a non-array value".to_owned())
        );
    }
}

/// `$pull`'s condition and `$pullAll`'s array are checked when the update is parsed, as
/// MongoDB's `PullNode` and `PullAllNode` do, so an update that matches nothing is refused all
/// the same, with MongoDB's texts.
#[test]
fn pull_arguments_are_checked_when_the_update_is_parsed() {
    for (update, message) in [
        (
            doc! {"$pullAll": {"l": 1}},
            "$pullAll requires an array argument but was given a int",
        ),
        (
            doc! {"$pullAll": {"l": {"a": 1}}},
            "$pullAll requires an array argument but was given a object",
        ),
        (
            doc! {"$pull": {"l": {"$bogus": 1}}},
            "unknown top level operator: $bogus. If you have a field name that starts with a '$' symbol, consider using $getField or $setField.",
        ),
        (doc! {"$pull": {"l": {"$in": 1}}}, "$in needs an array"),
    ] {
        let e = refused_on_nothing(&update);
        assert_eq!(
            (e.code(), e.to_string()),
            (2, message.to_owned()),
            "{update}"
        );
    }
    // An operator condition is matched on the element as a field with an empty name, so a
    // message naming the path names none.
    for update in [
        doc! {"$pull": {"l": {"$type": []}}},
        doc! {"$pull": {"l": {"$not": {"$type": []}}}},
    ] {
        let e = refused_on_nothing(&update);
        assert_eq!(
            (e.code(), e.to_string()),
            (9, " must match at least one type".to_owned()),
            "{update}"
        );
    }
}

/// An error that quotes an update path quotes it as written, leading zeros and all, as
/// MongoDB's update system names the path it walked; the element it names keeps its own name.
#[test]
fn leading_zero_parts_are_quoted_as_written() {
    let start = doc! {"_id": 1, "a": [0, {"b": 1}, 5]};
    for (update, code, message) in [
        (
            doc! {"$push": {"a.01.b": 1}},
            2,
            "The field 'a.01.b' must be an array but is of type int in document {_id: 1}",
        ),
        (
            doc! {"$pop": {"a.01.b": 1}},
            14,
            "Path 'a.01.b' contains an element of non-array type 'int'",
        ),
        (
            doc! {"$rename": {"a.01.b": "c"}},
            2,
            "The source field cannot be an array element, 'a.01.b' in doc with _id: 1 has an array field called 'a'",
        ),
        (
            doc! {"$pull": {"a.02.b": 1}},
            28,
            "Cannot use the part (b) of (a.02.b) to traverse the element ({2: 5})",
        ),
        (
            doc! {"$inc": {"a.01.b": i64::MAX}},
            2,
            "Failed to apply $inc operations to current value for field 'a.01.b': overflow",
        ),
    ] {
        let (outcome, stored) = update_fresh(&start, &update);
        let e = outcome.unwrap_err();
        assert_eq!(e.code(), code, "{update}");
        assert!(e.to_string().contains(message), "{update}: {e}");
        assert_eq!(stored, start, "{update}");
    }
}

/// A top-level `$ref`, `$id` and `$db` an operator writes pass MongoDB's storage check when
/// they form a DBRef in that order (`$ref` a string followed by `$id`, `$db` a string after
/// `$id`), judged against the fields beside them after the write; otherwise code 10
/// InvalidDBRef names the broken rule.
#[test]
fn operators_write_top_level_dbref_fields_in_order() {
    let dbref = doc! {"_id": 1, "$ref": "c", "$id": 1};
    for (start, update, expected) in [
        (
            dbref.clone(),
            doc! {"$set": {"$id": 2}},
            doc! {"_id": 1, "$ref": "c", "$id": 2},
        ),
        (
            dbref.clone(),
            doc! {"$inc": {"$id": 1}},
            doc! {"_id": 1, "$ref": "c", "$id": 2},
        ),
        (
            dbref.clone(),
            doc! {"$set": {"$ref": "d"}},
            doc! {"_id": 1, "$ref": "d", "$id": 1},
        ),
        (
            dbref.clone(),
            doc! {"$set": {"$db": "x"}},
            doc! {"_id": 1, "$ref": "c", "$id": 1, "$db": "x"},
        ),
        (
            doc! {"_id": 1, "$ref": "c"},
            doc! {"$set": {"$id": 1}},
            doc! {"_id": 1, "$ref": "c", "$id": 1},
        ),
    ] {
        let (outcome, stored) = update_fresh(&start, &update);
        assert_eq!(outcome.unwrap().modified, 1, "{update}");
        assert_eq!(stored, expected, "{update}");
    }
    for (start, update, message) in [
        (
            doc! {"_id": 1},
            doc! {"$set": {"$ref": "c", "$id": 1}},
            "Found $id field without a $ref before it, which is invalid.",
        ),
        (
            doc! {"_id": 1},
            doc! {"$set": {"$ref": "c"}},
            "The DBRef $ref field must be followed by a $id field",
        ),
        (
            dbref.clone(),
            doc! {"$set": {"$ref": 5}},
            "The DBRef $ref field must be a String, not a int",
        ),
        (
            doc! {"_id": 1, "$ref": 5, "$id": 1},
            doc! {"$set": {"$id": 2}},
            "The DBRef $ref field must be a String, not a int",
        ),
        (
            dbref.clone(),
            doc! {"$set": {"$db": 5}},
            "The DBRef $db field must be a String, not a int",
        ),
        (
            doc! {"_id": 1, "$ref": "c"},
            doc! {"$set": {"$db": "x"}},
            "Found $db field without a $id before it, which is invalid.",
        ),
        (
            doc! {"_id": 1, "$id": 1},
            doc! {"$set": {"$db": "x"}},
            "Found $id field without a $ref before it, which is invalid.",
        ),
    ] {
        let (outcome, stored) = update_fresh(&start, &update);
        let e = outcome.unwrap_err();
        assert_eq!(
            (e.code(), e.code_name(), e.to_string()),
            (10, "InvalidDBRef", message.to_owned()),
            "{update}"
        );
        assert_eq!(stored, start, "unchanged after {update}");
    }
    let (outcome, _) = update_fresh(&doc! {"_id": 1}, &doc! {"$set": {"$x": 1}});
    assert_eq!(outcome.unwrap_err().code_name(), "DollarPrefixedFieldName");
}
