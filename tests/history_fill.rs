//! Capability: the `$fill` stage — null and missing fields filled with a value (as MongoDB's
//! `$addFields` of `$ifNull`), by `locf` or by `linear` interpolation on the single `sortBy`
//! field, per partition (`partitionBy` or `partitionByFields`), the documents sorted by
//! partition and `sortBy` when a method runs — with MongoDB's errors.
//!
//! Method: the collection and the cases of MongoDB's `jstests/aggregation/sources/fill/fill.js`
//! (interpolated values are doubles, as MongoDB's arithmetic makes them), and one case per
//! error; results are compared in the order the stage returns them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly on setup errors"
)]

mod history_common;

use bson::{Bson, Document, doc};
use streamcache::history::History;

fn open() -> (tempfile::TempDir, History) {
    let (dir, h) = history_common::open();
    h.insert_many(
        "db",
        "c",
        vec![
            doc! {"_id": 1, "linear": 1, "other": 1, "part": 1},
            doc! {"_id": 2, "linear": 1, "other": 1, "part": 2},
            doc! {"_id": 3, "linear": Bson::Null, "other": Bson::Null, "part": 1},
            doc! {"_id": 4, "linear": Bson::Null, "other": Bson::Null, "part": 2},
            doc! {"_id": 5, "linear": 5, "other": 10, "part": 1},
            doc! {"_id": 6, "linear": 6, "other": 2, "part": 2},
            doc! {"_id": 7, "linear": Bson::Null, "other": Bson::Null, "part": 1},
            doc! {"_id": 8, "linear": 3, "other": 5, "part": 2},
            doc! {"_id": 9, "linear": 7, "other": 15, "part": 1},
            doc! {"_id": 10, "linear": Bson::Null, "other": Bson::Null, "part": 2},
        ],
    )
    .unwrap();
    (dir, h)
}

fn run(h: &History, pipeline: &[Document]) -> Result<Vec<Document>, (i32, String)> {
    h.aggregate("db", "c", pipeline)
        .map_err(|e| (e.code(), e.to_string()))
}

const NULL: Bson = Bson::Null;

#[test]
fn linear_interpolates_on_the_sort_field_between_known_values() {
    let (_d, h) = open();
    let out = run(
        &h,
        &[
            doc! {"$match": {"part": 1}},
            doc! {"$project": {"other": 0, "part": 0}},
            doc! {"$fill": {"sortBy": {"_id": 1}, "output": {"linear": {"method": "linear"}}}},
        ],
    )
    .unwrap();
    assert_eq!(
        out,
        vec![
            doc! {"_id": 1, "linear": 1},
            doc! {"_id": 3, "linear": 3.0},
            doc! {"_id": 5, "linear": 5},
            doc! {"_id": 7, "linear": 6.0},
            doc! {"_id": 9, "linear": 7},
        ]
    );
}

#[test]
fn locf_carries_the_last_value_forward_in_sort_order() {
    let (_d, h) = open();
    let out = run(
        &h,
        &[
            doc! {"$project": {"linear": 0, "part": 0}},
            doc! {"$fill": {"sortBy": {"_id": 1}, "output": {"other": {"method": "locf"}}}},
        ],
    )
    .unwrap();
    let other: Vec<Bson> = out
        .iter()
        .map(|d| d.get("other").unwrap().clone())
        .collect();
    let ints = |v: &[i32]| v.iter().copied().map(Bson::Int32).collect::<Vec<_>>();
    assert_eq!(other, ints(&[1, 1, 1, 1, 10, 2, 2, 5, 15, 15]));
}

#[test]
fn partitions_fill_apart_and_come_out_sorted() {
    let (_d, h) = open();
    let both = doc! {"other": {"method": "locf"}, "linear": {"method": "linear"}};
    let expected = vec![
        doc! {"_id": 1, "linear": 1, "other": 1, "part": 1},
        doc! {"_id": 3, "linear": 3.0, "other": 1, "part": 1},
        doc! {"_id": 5, "linear": 5, "other": 10, "part": 1},
        doc! {"_id": 7, "linear": 6.0, "other": 10, "part": 1},
        doc! {"_id": 9, "linear": 7, "other": 15, "part": 1},
        doc! {"_id": 2, "linear": 1, "other": 1, "part": 2},
        doc! {"_id": 4, "linear": 3.5, "other": 1, "part": 2},
        doc! {"_id": 6, "linear": 6, "other": 2, "part": 2},
        doc! {"_id": 8, "linear": 3, "other": 5, "part": 2},
        doc! {"_id": 10, "linear": NULL, "other": 5, "part": 2},
    ];
    for partition in [
        doc! {"partitionByFields": ["part"]},
        doc! {"partitionBy": {"part": "$part"}},
        doc! {"partitionBy": "$part"},
    ] {
        let mut spec = doc! {"sortBy": {"_id": 1}, "output": both.clone()};
        spec.extend(partition.clone());
        assert_eq!(
            run(&h, &[doc! {"$fill": spec}]).unwrap(),
            expected,
            "{partition}"
        );
    }
    // A partition whose first values are null: nothing before them to carry or bookend.
    let out = run(
        &h,
        &[
            doc! {"$set": {"linear": {"$cond": [{"$eq": ["$linear", 1]}, NULL, "$linear"]}}},
            doc! {"$fill": {"sortBy": {"_id": 1}, "output": both, "partitionByFields": ["part"]}},
        ],
    )
    .unwrap();
    let linear: Vec<Bson> = out
        .iter()
        .map(|d| d.get("linear").unwrap().clone())
        .collect();
    assert_eq!(
        linear,
        [
            NULL,
            NULL,
            Bson::Int32(5),
            Bson::Double(6.0),
            Bson::Int32(7),
            NULL,
            NULL,
            Bson::Int32(6),
            Bson::Int32(3),
            NULL
        ]
    );
}

#[test]
fn values_fill_null_and_missing_fields_with_an_expression() {
    let (_d, h) = open();
    let out = run(
        &h,
        &[
            doc! {"$match": {"part": 1}},
            doc! {"$fill": {"sortBy": {"_id": 1}, "output": {"other": {"value": -1}, "linear": {"value": {"$add": ["$part", 1]}}}}},
            doc! {"$project": {"part": 0}},
        ],
    )
    .unwrap();
    assert_eq!(
        out,
        vec![
            doc! {"_id": 1, "linear": 1, "other": 1},
            doc! {"_id": 3, "linear": 2, "other": -1},
            doc! {"_id": 5, "linear": 5, "other": 10},
            doc! {"_id": 7, "linear": 2, "other": -1},
            doc! {"_id": 9, "linear": 7, "other": 15},
        ]
    );
    // A value that is itself null or missing: null stays, missing adds nothing.
    let out = run(
        &h,
        &[
            doc! {"$match": {"part": 1}},
            doc! {"$project": {"part": 0}},
            doc! {"$unionWith": {"pipeline": [{"$documents": [{"_id": 2}, {"_id": 4}]}]}},
            doc! {"$fill": {"sortBy": {"_id": 1}, "output": {"other": {"value": "$linear"}}}},
            doc! {"$project": {"linear": 0}},
            doc! {"$sort": {"_id": 1}},
        ],
    )
    .unwrap();
    assert_eq!(
        out,
        vec![
            doc! {"_id": 1, "other": 1},
            doc! {"_id": 2},
            doc! {"_id": 3, "other": NULL},
            doc! {"_id": 4},
            doc! {"_id": 5, "other": 10},
            doc! {"_id": 7, "other": NULL},
            doc! {"_id": 9, "other": 15},
        ]
    );
}

#[test]
fn linear_fills_between_dates_and_refuses_what_it_cannot_order() {
    let (_d, h) = history_common::open();
    let day = |d: i64| Bson::DateTime(bson::DateTime::from_millis(d * 86_400_000));
    h.insert_many(
        "db",
        "t",
        vec![
            doc! {"_id": 1, "at": day(0), "v": 0},
            doc! {"_id": 2, "at": day(1)},
            doc! {"_id": 3, "at": day(4), "v": 8},
        ],
    )
    .unwrap();
    let fill = doc! {"$fill": {"sortBy": {"at": 1}, "output": {"v": {"method": "linear"}}}};
    let out = h.aggregate("db", "t", std::slice::from_ref(&fill)).unwrap();
    assert_eq!(out[1].get("v"), Some(&Bson::Double(2.0)));
    h.insert_one("db", "t", doc! {"_id": 4, "at": day(4), "v": 1})
        .unwrap();
    let e = h
        .aggregate("db", "t", std::slice::from_ref(&fill))
        .unwrap_err();
    assert_eq!(e.code(), 6_050_106, "{e}");
    h.insert_one("db", "t", doc! {"_id": 5, "at": 3, "v": 1})
        .unwrap();
    let e = h
        .aggregate("db", "t", std::slice::from_ref(&fill))
        .unwrap_err();
    assert_eq!(e.code(), 14, "{e}");
    h.insert_one("db", "u", doc! {"_id": 1, "at": 1, "v": "text"})
        .unwrap();
    let e = h.aggregate("db", "u", &[fill]).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("Value to be filled must be numeric or nullish, but found string"),
        "{e}"
    );
}

#[test]
fn outputs_sort_keys_and_partitions_are_taken_as_set_window_fields_takes_them() {
    let (_d, h) = history_common::open();
    let id = |n: u8| Bson::ObjectId(bson::oid::ObjectId::from_bytes([n; 12]));
    h.insert_many(
        "db",
        "o",
        vec![
            doc! {"_id": id(1), "v": 1, "a": 5, "p": [1]},
            doc! {"_id": id(2), "v": 2, "a": {"b": Bson::Null}, "p": [1]},
        ],
    )
    .unwrap();
    // ObjectId sort keys are accepted (MongoDB's coercibleToDate) when nothing needs filling.
    let out = h
        .aggregate(
            "db",
            "o",
            &[doc! {"$fill": {"sortBy": {"_id": 1}, "output": {"v": {"method": "linear"}}}}],
        )
        .unwrap();
    assert_eq!(out.len(), 2);
    // A dotted output replaces a non-document on its path, as setNestedField does.
    let out = h
        .aggregate(
            "db",
            "o",
            &[doc! {"$fill": {"sortBy": {"_id": 1}, "output": {"a.b": {"method": "locf"}}}}],
        )
        .unwrap();
    let a: Vec<&Bson> = out.iter().map(|d| d.get("a").unwrap()).collect();
    assert_eq!(
        a,
        [
            &Bson::Document(doc! {"b": Bson::Null}),
            &Bson::Document(doc! {"b": Bson::Null})
        ]
    );
    // Arrays may not partition.
    let e = h
        .aggregate(
            "db",
            "o",
            &[doc! {"$fill": {"partitionBy": "$p", "output": {"v": {"method": "locf"}}}}],
        )
        .unwrap_err();
    assert_eq!(e.code(), 14, "{e}");
    assert!(
        e.to_string()
            .ends_with("An expression used to partition cannot evaluate to value of type array"),
        "{e}"
    );
    // Every output is computed from the documents as they came in: `v` filled by `locf`
    // does not feed `w`'s.
    h.insert_many(
        "db",
        "in",
        vec![
            doc! {"_id": 1, "v": 1, "w": Bson::Null},
            doc! {"_id": 2, "v": Bson::Null, "w": Bson::Null},
        ],
    )
    .unwrap();
    let both = doc! {"v": {"method": "locf"}, "w": {"method": "locf"}};
    let out = h
        .aggregate(
            "db",
            "in",
            &[doc! {"$fill": {"sortBy": {"_id": 1}, "output": both}}],
        )
        .unwrap();
    assert_eq!(out[1], doc! {"_id": 2, "v": 1, "w": Bson::Null});
}

#[test]
fn specification_errors_are_mongodbs() {
    let (_d, h) = open();
    let code = |spec: Bson| {
        run(&h, &[doc! {"$fill": spec}])
            .map(|_| ())
            .map_err(|(c, _)| c)
    };
    let out = |o: Document| Bson::Document(doc! {"sortBy": {"_id": 1}, "output": o});
    assert_eq!(code(Bson::Int32(1)), Err(9));
    assert_eq!(code(Bson::Document(doc! {})), Err(40414));
    assert_eq!(
        code(Bson::Document(doc! {"output": {}, "x": 1})),
        Err(40415)
    );
    assert_eq!(code(Bson::Document(doc! {"output": {}})), Err(6_050_203));
    assert_eq!(code(Bson::Document(doc! {"output": 1})), Err(14));
    assert_eq!(
        code(Bson::Document(
            doc! {"output": {"a": {"value": 1}}, "sortBy": 1}
        )),
        Err(14)
    );
    assert_eq!(code(out(doc! {"a": 1})), Err(6_050_200));
    assert_eq!(
        code(out(doc! {"a": {"method": "locf", "value": 1}})),
        Err(6_050_201)
    );
    assert_eq!(code(out(doc! {"a": {"method": "nearest"}})), Err(6_050_202));
    assert_eq!(code(out(doc! {"a": {"methods": "locf"}})), Err(40415));
    assert_eq!(
        code(Bson::Document(
            doc! {"output": {"a": {"value": 1}}, "partitionBy": "$p", "partitionByFields": ["p"]}
        )),
        Err(6_050_204)
    );
    assert_eq!(
        code(Bson::Document(
            doc! {"output": {"a": {"value": 1}}, "partitionByFields": [1]}
        )),
        Err(14)
    );
    // linear needs exactly one sortBy field; locf needs none.
    assert_eq!(
        run(&h, &[doc! {"$fill": {"output": {"linear": {"method": "linear"}}}}]),
        Err((
            605_001,
            "$linearFill must be specified with a top level sortBy expression with exactly one element".into()
        ))
    );
    assert_eq!(
        code(Bson::Document(
            doc! {"sortBy": {"_id": 1, "part": 1}, "output": {"linear": {"method": "linear"}}}
        )),
        Err(605_001)
    );
    assert_eq!(
        code(Bson::Document(
            doc! {"output": {"other": {"method": "locf"}}}
        )),
        Ok(())
    );
    assert_eq!(
        code(out(
            doc! {"a": {"method": "locf"}, "a.b": {"method": "locf"}}
        )),
        Err(6_307_900)
    );
    // With only values there is no window stage: its sort and partition are not parsed.
    let values_only =
        doc! {"sortBy": {"_id": 5}, "partitionBy": {"$nope": 1}, "output": {"other": {"value": 0}}};
    assert_eq!(code(Bson::Document(values_only)), Ok(()));
}
