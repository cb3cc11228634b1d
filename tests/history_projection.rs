//! Capability: find projections with MongoDB 7.0's find policies — inclusion and exclusion,
//! aggregation expressions and literals, the find-only operators `$slice`, `$elemMatch` and
//! the positional `field.$`, and the projection parser's error codes.
//!
//! Method: table-driven. Each row is a (filter, projection) pair and the exact documents
//! MongoDB returns for it on a fixed set of documents, or the error code it answers with; every
//! table runs against a fresh store on a manual clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Document, doc};
use history_common::open;
use streamcache::history::{FindAndModifyOptions, FindOptions, History};

fn fixture() -> Vec<Document> {
    vec![
        doc! {"_id": 1, "name": "alice", "grades": [80, 85, 90, 95], "size": {"h": 14, "points": [1, 2, 3]},
        "students": [{"name": "a", "school": 102, "age": 10}, {"name": "b", "school": 100, "age": 11}, {"name": "c", "school": 100, "age": 12}]},
        doc! {"_id": 2, "name": "bob", "grades": [60, 70], "size": {"h": 9, "points": "none"},
        "students": [{"name": "d", "school": 101, "age": 9}]},
    ]
}

fn find(
    h: &History,
    filter: Document,
    projection: Document,
) -> streamcache::history::Result<Vec<Document>> {
    h.find(
        "db",
        "c",
        &filter,
        &FindOptions {
            projection: Some(projection),
            sort: Some(doc! {"_id": 1}),
            ..FindOptions::default()
        },
    )
}

#[test]
fn find_projections_return_what_mongodb_returns() {
    let (_d, h) = open();
    h.insert_many("db", "c", fixture()).unwrap();
    let table: Vec<(Document, Document, Vec<Document>)> = vec![
        // $slice alone: an exclusion projection, every other field kept, the array sliced in place.
        (
            doc! {"_id": 1},
            doc! {"grades": {"$slice": 2}},
            vec![
                doc! {"_id": 1, "name": "alice", "grades": [80, 85], "size": {"h": 14, "points": [1, 2, 3]},
                "students": [{"name": "a", "school": 102, "age": 10}, {"name": "b", "school": 100, "age": 11}, {"name": "c", "school": 100, "age": 12}]},
            ],
        ),
        // Negative: the last n; [skip, limit]; negative skip counts from the end.
        (
            doc! {"_id": 1},
            doc! {"_id": 0, "name": 1, "grades": {"$slice": -3}},
            vec![doc! {"name": "alice", "grades": [85, 90, 95]}],
        ),
        (
            doc! {"_id": 1},
            doc! {"grades": {"$slice": [1, 2]}, "name": 1},
            vec![doc! {"_id": 1, "name": "alice", "grades": [85, 90]}],
        ),
        (
            doc! {"_id": 1},
            doc! {"grades": {"$slice": [-3, 2]}, "_id": 0, "name": 1},
            vec![doc! {"name": "alice", "grades": [85, 90]}],
        ),
        (
            doc! {"_id": 1},
            doc! {"grades": {"$slice": [10, 2]}, "name": 1},
            vec![doc! {"_id": 1, "name": "alice", "grades": []}],
        ),
        (
            doc! {"_id": 1},
            doc! {"grades": {"$slice": 0}, "name": 1},
            vec![doc! {"_id": 1, "name": "alice", "grades": []}],
        ),
        // With `_id: 1` and nothing else deciding, $slice makes an inclusion.
        (
            doc! {"_id": 1},
            doc! {"_id": 1, "grades": {"$slice": 1}},
            vec![doc! {"_id": 1, "grades": [80]}],
        ),
        // In an inclusion, a dotted $slice keeps only that field of the embedded document; a
        // value that is not an array is left as it is.
        (
            doc! {},
            doc! {"size.points": {"$slice": 1}, "name": 1},
            vec![
                doc! {"_id": 1, "name": "alice", "size": {"points": [1]}},
                doc! {"_id": 2, "name": "bob", "size": {"points": "none"}},
            ],
        ),
        // $slice through an array of documents slices each one's array.
        (
            doc! {"_id": 1},
            doc! {"_id": 0, "students.name": 1, "students.age": {"$slice": 1}},
            vec![
                doc! {"students": [{"name": "a", "age": 10}, {"name": "b", "age": 11}, {"name": "c", "age": 12}]},
            ],
        ),
        // Not find's syntax but the expression's: a computed field.
        (
            doc! {"_id": 1},
            doc! {"first": {"$slice": ["$grades", 1]}},
            vec![doc! {"_id": 1, "first": [80]}],
        ),
        // $elemMatch: the first matching element, after the other included fields; absent when none.
        (
            doc! {},
            doc! {"students": {"$elemMatch": {"school": 100}}, "name": 1},
            vec![
                doc! {"_id": 1, "name": "alice", "students": [{"name": "b", "school": 100, "age": 11}]},
                doc! {"_id": 2, "name": "bob"},
            ],
        ),
        (
            doc! {"_id": 1},
            doc! {"grades": {"$elemMatch": {"$gt": 84}}},
            vec![doc! {"_id": 1, "grades": [85]}],
        ),
        (
            doc! {"_id": 1},
            doc! {"_id": 0, "students": {"$elemMatch": {"school": 100, "age": {"$gt": 11}}}},
            vec![doc! {"students": [{"name": "c", "school": 100, "age": 12}]}],
        ),
        // Positional: the element the query's condition on the array matched.
        (
            doc! {"grades": {"$gte": 88}},
            doc! {"grades.$": 1},
            vec![doc! {"_id": 1, "grades": [90]}],
        ),
        (
            doc! {"_id": 1, "students.school": 100},
            doc! {"students.$": 1, "name": 1},
            vec![
                doc! {"_id": 1, "name": "alice", "students": [{"name": "b", "school": 100, "age": 11}]},
            ],
        ),
        (
            doc! {"students": {"$elemMatch": {"school": 100, "age": 12}}},
            doc! {"_id": 0, "students.$": 1},
            vec![doc! {"students": [{"name": "c", "school": 100, "age": 12}]}],
        ),
        // Positional under an $or: the matching branch locates the element.
        (
            doc! {"$or": [{"grades": 60}, {"grades": 95}]},
            doc! {"grades.$": 1},
            vec![
                doc! {"_id": 1, "grades": [95]},
                doc! {"_id": 2, "grades": [60]},
            ],
        ),
        // Expressions and literals (4.4+): computed fields of an inclusion.
        (
            doc! {"_id": 2},
            doc! {"name": 1, "best": {"$max": "$grades"}, "tag": "literal", "n": {"$literal": 5}},
            vec![doc! {"_id": 2, "name": "bob", "best": 70, "tag": "literal", "n": 5}],
        ),
        (
            doc! {"_id": 2},
            doc! {"_id": 0, "h": "$size.h"},
            vec![doc! {"h": 9}],
        ),
        // Sub-object form of a projection.
        (
            doc! {"_id": 2},
            doc! {"size": {"h": 1}},
            vec![doc! {"_id": 2, "size": {"h": 9}}],
        ),
    ];
    for (filter, projection, expected) in table {
        let got = find(&h, filter.clone(), projection.clone());
        assert_eq!(
            got.as_ref().ok(),
            Some(&expected),
            "filter {filter} projection {projection}: {got:?}"
        );
    }
}

#[test]
fn find_projection_errors_carry_mongodb_codes() {
    let (_d, h) = open();
    h.insert_many("db", "c", fixture()).unwrap();
    let table: Vec<(Document, Document, i32)> = vec![
        (doc! {}, doc! {"a": 1, "b": 0}, 31254),
        (doc! {}, doc! {"a": 0, "b": 1}, 31253),
        (doc! {}, doc! {"a": 0, "b": "$x"}, 31310),
        (doc! {}, doc! {"a": 0, "b": {"$add": [1, 2]}}, 31252),
        (doc! {}, doc! {"a": 1, "a.b": 1}, 31249),
        (doc! {}, doc! {"a.b": 1, "a": 1}, 31250),
        (doc! {}, doc! {"a": {}}, 51270),
        (doc! {}, doc! {"a": {"$nope": 1}}, 31325),
        // $slice arguments: not find's syntax, so read as the `$slice` expression, which then
        // fails on its own terms (a constant first argument is not an array).
        (doc! {}, doc! {"grades": {"$slice": [1, 0]}}, 28724),
        (doc! {}, doc! {"grades": {"$slice": [1, 2, 3, 4]}}, 28667),
        (doc! {}, doc! {"grades": {"$slice": "x"}}, 28667),
        // $elemMatch.
        (doc! {}, doc! {"grades": {"$elemMatch": 5}}, 31274),
        (
            doc! {},
            doc! {"size.points": {"$elemMatch": {"$gt": 1}}},
            31275,
        ),
        (
            doc! {},
            doc! {"size": {"points": {"$elemMatch": {"$gt": 1}}}},
            31275,
        ),
        (
            doc! {"grades": 80},
            doc! {"grades.$": 1, "students": {"$elemMatch": {"age": 10}}},
            31255,
        ),
        (
            doc! {"grades": 80},
            doc! {"students": {"$elemMatch": {"age": 10}}, "grades.$": 1},
            31256,
        ),
        // Positional.
        (doc! {}, doc! {"grades.$": 1}, 31277),
        (doc! {"name": "alice"}, doc! {"grades.$": 1}, 31277),
        (
            doc! {"grades": 80, "students.age": 10},
            doc! {"grades.$": 1, "students.$": 1},
            31276,
        ),
        (doc! {"grades": 80}, doc! {"grades.$.$": 1}, 31287),
        (doc! {"grades": 80}, doc! {"grades.$": {"$slice": 1}}, 31271),
        (doc! {"grades": 80}, doc! {"grades.$": "x"}, 31308),
    ];
    for (filter, projection, code) in table {
        let got = find(&h, filter.clone(), projection.clone());
        let e = got.expect_err(&format!("filter {filter} projection {projection}"));
        assert_eq!(
            e.code(),
            code,
            "filter {filter} projection {projection}: {e}"
        );
    }
    // Neither syntax: the expression's error, with both reasons.
    let e = find(&h, doc! {}, doc! {"grades": {"$slice": [1, 2, 3, 4]}}).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("Invalid $slice syntax")
            && text
                .contains("Location31272: $slice array argument should be of form [skip, limit]")
            && text.contains("takes at least 2 arguments, and at most 3, but 4 were passed in"),
        "{text}"
    );
    // The query matched through something other than the projected array: no element to pick.
    let e = find(
        &h,
        doc! {"name": "alice", "$or": [{"grades": 1}, {"name": "alice"}]},
        doc! {"grades.$": 1},
    )
    .unwrap_err();
    assert_eq!(e.code(), 51246, "{e}");
}

#[test]
fn the_boundaries_of_slice_and_elem_match() {
    let (_d, h) = open();
    h.insert_many("db", "c", vec![doc! {"_id": 1, "a": [1, 2, 3]}])
        .unwrap();
    // Numbers are read as 32-bit integers, as MongoDB's `numberInt()` does: 2^31 wraps to
    // -2^31, the last 2^31 elements, so the whole array comes back.
    let got = find(&h, doc! {}, doc! {"a": {"$slice": i64::from(i32::MAX) + 1}}).unwrap();
    assert_eq!(got, vec![doc! {"_id": 1, "a": [1, 2, 3]}]);
    let got = find(&h, doc! {}, doc! {"a": {"$slice": [i32::MIN, i32::MAX]}}).unwrap();
    assert_eq!(got, vec![doc! {"_id": 1, "a": [1, 2, 3]}]);
    // A field that is not an array: $elemMatch leaves it out.
    h.insert_many("db", "c", vec![doc! {"_id": 2, "a": 5}])
        .unwrap();
    let got = find(&h, doc! {"_id": 2}, doc! {"a": {"$elemMatch": {"$gt": 1}}}).unwrap();
    assert_eq!(got, vec![doc! {"_id": 2}]);
}

#[test]
fn find_and_modify_projects_with_find_policies() {
    let (_d, h) = open();
    h.insert_many("db", "c", fixture()).unwrap();
    let got = h
        .find_one_and_delete(
            "db",
            "c",
            &doc! {"grades": {"$lt": 65}},
            &FindAndModifyOptions {
                projection: Some(doc! {"grades.$": 1, "students": {"$slice": -1}}),
                ..FindAndModifyOptions::default()
            },
        )
        .unwrap();
    assert_eq!(
        got,
        Some(doc! {"_id": 2, "grades": [60], "students": [{"name": "d", "school": 101, "age": 9}]})
    );
}
