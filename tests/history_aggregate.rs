//! Capability: aggregation pipelines — `$match $project $addFields $set $unset $sort $limit
//! $skip $count $unwind $group $lookup` — and index use by a leading `$match`; `$project`'s
//! sub-projections and `$addFields`'s merge into embedded documents; `$group`'s `$count`,
//! `$stdDevPop`/`$stdDevSamp`, `$mergeObjects` and n-accumulators.
//!
//! Method: a fixed set of orders and customers; each table row is a pipeline and its exact
//! expected output.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Document, doc};
use streamcache::history::History;

#[test]
fn pipelines_produce_expected_documents() {
    let (_d, h) = history_common::open_shop();
    let table: Vec<(Vec<Document>, Vec<Document>)> = vec![
        (
            vec![
                doc! {"$group": {"_id": "$customer", "sum": {"$sum": "$total"}, "n": {"$sum": 1}, "avg": {"$avg": "$total"}, "max": {"$max": "$total"}, "ids": {"$push": "$_id"}}},
                doc! {"$sort": {"_id": 1}},
            ],
            vec![
                doc! {"_id": "c1", "sum": 17, "n": 2, "avg": 8.5, "max": 10, "ids": [1, 3]},
                doc! {"_id": "c2", "sum": 25.5, "n": 1, "avg": 25.5, "max": 25.5, "ids": [2]},
            ],
        ),
        (
            vec![
                doc! {"$unwind": "$lines"},
                doc! {"$group": {"_id": "$lines.sku", "qty": {"$sum": "$lines.qty"}}},
                doc! {"$sort": {"qty": -1}},
            ],
            vec![doc! {"_id": "a", "qty": 6}, doc! {"_id": "b", "qty": 2}],
        ),
        (
            vec![
                doc! {"$unwind": {"path": "$lines", "includeArrayIndex": "i", "preserveNullAndEmptyArrays": true}},
                doc! {"$match": {"_id": 3}},
            ],
            vec![doc! {"_id": 3, "customer": "c1", "total": 7, "i": null}],
        ),
        (
            vec![
                doc! {"$match": {"total": {"$gt": 8}}},
                doc! {"$sort": {"total": -1}},
                doc! {"$project": {"_id": 0, "customer": 1, "double": {"$multiply": ["$total", 2]}}},
            ],
            vec![
                doc! {"customer": "c2", "double": 51.0},
                doc! {"customer": "c1", "double": 20},
            ],
        ),
        (
            vec![
                doc! {"$match": {"_id": 1}},
                doc! {"$addFields": {"label": {"$concat": ["$customer", "-", "x"]}, "nLines": {"$size": "$lines"}}},
                doc! {"$unset": ["lines", "total"]},
            ],
            vec![doc! {"_id": 1, "customer": "c1", "label": "c1-x", "nLines": 2}],
        ),
        (
            vec![
                doc! {"$match": {"customer": "c1"}},
                doc! {"$lookup": {"from": "customers", "localField": "customer", "foreignField": "_id", "as": "who"}},
                doc! {"$project": {"who.name": 1}},
                doc! {"$limit": 1},
            ],
            vec![doc! {"_id": 1, "who": [{"name": "Ann"}]}],
        ),
        (
            vec![doc! {"$skip": 1}, doc! {"$count": "n"}],
            vec![doc! {"n": 2}],
        ),
        (
            vec![
                doc! {"$match": {"customer": "nobody"}},
                doc! {"$count": "n"},
            ],
            vec![],
        ),
        (
            vec![
                doc! {"$group": {"_id": null, "skus": {"$addToSet": "$customer"}, "first": {"$first": "$_id"}, "last": {"$last": "$_id"}, "min": {"$min": "$total"}}},
            ],
            vec![doc! {"_id": null, "skus": ["c1", "c2"], "first": 1, "last": 3, "min": 7}],
        ),
    ];
    for (pipeline, expected) in table {
        let got = h.aggregate("shop", "orders", &pipeline).unwrap();
        assert_eq!(got, expected, "pipeline {pipeline:?}");
    }
}

#[test]
fn bad_pipelines_are_rejected() {
    let (_d, h) = history_common::open_shop();
    for (pipeline, code) in [
        (vec![doc! {"$bogus": {}}], 40324),
        (vec![doc! {"$match": {}, "$sort": {"a": 1}}], 2),
        (vec![doc! {"$limit": -1}], 5_107_201),
        (vec![doc! {"$group": {"total": {"$sum": 1}}}], 2),
        (vec![doc! {"$unwind": "lines"}], 28818),
        (vec![doc! {"$project": {"a": 0, "b": "$x"}}], 31310),
    ] {
        assert_eq!(
            h.aggregate("shop", "orders", &pipeline).unwrap_err().code(),
            code,
            "{pipeline:?}"
        );
    }
    let too_many = vec![doc! {"$skip": 0}; streamcache::history::PIPELINE_STAGES_MAX + 1];
    assert_eq!(
        h.aggregate("shop", "orders", &too_many).unwrap_err().code(),
        2
    );
    let max = vec![doc! {"$skip": 0}; streamcache::history::PIPELINE_STAGES_MAX];
    assert_eq!(h.aggregate("shop", "orders", &max).unwrap().len(), 3);
}

/// A Decimal128 among the values makes `$sum`, `$avg` and `$add` compute in decimal, exactly
/// (0.1 + 0.2 is 0.3, not the double 0.30000000000000004).
#[test]
fn decimal_sums_and_averages_are_exact() {
    let (_d, h) = history_common::open_at(0);
    let dec = |s: &str| bson::Bson::Decimal128(s.parse().unwrap());
    h.insert_many(
        "shop",
        "prices",
        vec![
            doc! {"_id": 1, "p": dec("0.1"), "q": 1},
            doc! {"_id": 2, "p": dec("0.2"), "q": 2},
        ],
    )
    .unwrap();
    let got = h
        .aggregate(
            "shop",
            "prices",
            &[
                doc! {"$group": {"_id": null, "sum": {"$sum": "$p"}, "avg": {"$avg": "$p"}, "mixed": {"$sum": {"$add": ["$p", "$q"]}}, "qavg": {"$avg": "$q"}}},
            ],
        )
        .unwrap();
    assert_eq!(
        got,
        vec![
            doc! {"_id": null, "sum": dec("0.3"), "avg": dec("0.15"), "mixed": dec("3.3"), "qavg": 1.5}
        ]
    );
}

/// A field path that reaches nothing is *missing*, not null, as in MongoDB: `$project` and
/// `$addFields` leave the field out (and `$addFields` removes one that was there), an object
/// expression drops it, `$group` files it under a null `_id`, `$push`/`$addToSet` add
/// nothing, `$first`/`$last` give null, `$min`/`$max`/`$sum`/`$avg` skip it (and non-numbers
/// for the last two), and arithmetic on it gives null.
#[test]
fn missing_fields_are_left_out_not_set_to_null() {
    let (_d, h) = history_common::open_at(0);
    h.insert_many(
        "db",
        "c",
        vec![
            doc! {"_id": 1, "k": "a", "v": 5},
            doc! {"_id": 2, "k": "a", "v": "text"},
            doc! {"_id": 3},
        ],
    )
    .unwrap();
    let run = |pipeline: &[Document]| h.aggregate("db", "c", pipeline).unwrap();
    assert_eq!(
        run(&[doc! {"$project": {"x": "$missing", "y": "$v"}}]),
        vec![
            doc! {"_id": 1, "y": 5},
            doc! {"_id": 2, "y": "text"},
            doc! {"_id": 3},
        ]
    );
    assert_eq!(
        run(&[
            doc! {"$match": {"_id": 1}},
            doc! {"$addFields": {"x": "$missing", "v": "$missing", "o": {"a": "$missing", "b": "$k"}, "s": {"$add": [1, "$missing"]}}},
        ]),
        vec![doc! {"_id": 1, "k": "a", "o": {"b": "a"}, "s": null}]
    );
    assert_eq!(
        run(&[
            doc! {"$match": {"_id": 3}},
            doc! {"$set": {"x": "$missing"}},
            doc! {"$group": {"_id": {"k": "$k"}, "n": {"$sum": 1}}},
        ]),
        vec![doc! {"_id": {}, "n": 1}]
    );
    assert_eq!(
        run(&[
            doc! {"$group": {
                "_id": "$k",
                "push": {"$push": "$v"},
                "set": {"$addToSet": "$v"},
                "first": {"$first": "$v"},
                "last": {"$last": "$v"},
                "min": {"$min": "$v"},
                "max": {"$max": "$v"},
                "sum": {"$sum": "$v"},
                "avg": {"$avg": "$v"},
            }},
            doc! {"$sort": {"_id": 1}},
        ]),
        vec![
            doc! {"_id": null, "push": [], "set": [], "first": null, "last": null, "min": null, "max": null, "sum": 0, "avg": null},
            doc! {"_id": "a", "push": [5, "text"], "set": [5, "text"], "first": 5, "last": "text", "min": 5, "max": "text", "sum": 5, "avg": 5.0},
        ]
    );
}

/// Decimal128 `$subtract`, `$multiply` and `$divide` compute in decimal, and decimals compare
/// exactly in expressions, filters and sorts, with and without an index:
/// `NumberDecimal("0.1") * 3` is `NumberDecimal("0.3")`, 9007199254740993 is above
/// 9007199254740992, and a decimal is compared with a double's exact value.
#[test]
fn decimal_arithmetic_and_comparisons_are_exact() {
    let (_d, h) = history_common::open_at(0);
    let dec = |s: &str| bson::Bson::Decimal128(s.parse().unwrap());
    h.insert_many(
        "shop",
        "d",
        vec![
            doc! {"_id": 1, "v": dec("9007199254740993")},
            doc! {"_id": 2, "v": dec("9007199254740992")},
            doc! {"_id": 3, "v": dec("0.1")},
        ],
    )
    .unwrap();
    let got = h
        .aggregate(
            "shop",
            "d",
            &[
                doc! {"$match": {"_id": 3}},
                doc! {"$project": {
                    "_id": 0,
                    "m": {"$multiply": ["$v", 3]},
                    "eq": {"$eq": [{"$multiply": ["$v", 3]}, dec("0.3")]},
                    "s": {"$subtract": [dec("0.3"), "$v"]},
                    "q": {"$divide": [dec("1"), 3]},
                    "q2": {"$divide": [dec("0.6"), dec("0.2")]},
                    "double": {"$eq": ["$v", 0.1]},
                }},
            ],
        )
        .unwrap();
    assert_eq!(
        got,
        vec![doc! {
            "m": dec("0.3"), "eq": true, "s": dec("0.2"),
            "q": dec("0.3333333333333333333333333333333333"), "q2": dec("3"), "double": false,
        }]
    );
    let ids = |filter: Document, sort: Document| -> Vec<i32> {
        h.find(
            "shop",
            "d",
            &filter,
            &streamcache::history::FindOptions {
                sort: Some(sort),
                ..Default::default()
            },
        )
        .unwrap()
        .iter()
        .map(|d| d.get_i32("_id").unwrap())
        .collect()
    };
    let check = || {
        assert_eq!(
            ids(doc! {"v": {"$gt": dec("9007199254740992")}}, doc! {}),
            vec![1]
        );
        assert_eq!(
            ids(
                doc! {"v": {"$lte": dec("9007199254740992")}},
                doc! {"_id": 1}
            ),
            vec![2, 3]
        );
        assert_eq!(ids(doc! {"v": dec("9007199254740993")}, doc! {}), vec![1]);
        assert_eq!(ids(doc! {}, doc! {"v": -1, "_id": 1}), vec![1, 2, 3]);
    };
    check();
    // Not through an index: index keys order a decimal by its nearest double, and only a
    // decimal bound widens to all of that double's keys.
    assert_eq!(ids(doc! {"v": {"$lt": 0.1}}, doc! {}), vec![3]);
    h.create_index(
        "shop",
        "d",
        &streamcache::history::IndexModel::from_documents(&doc! {"v": 1}, None).unwrap(),
    )
    .unwrap();
    check();
}

#[test]
fn group_keys_and_added_sets_follow_mongodb_equality_at_any_cardinality() {
    use bson::Decimal128;
    let (_d, h) = history_common::open_at(0);
    let one_decimal: Decimal128 = "1.0".parse().unwrap();
    // Equal numbers of every type, both zeros, and equal embedded documents share a group.
    h.insert_many(
        "t",
        "mixed",
        vec![
            doc! {"_id": 1, "k": 1_i32, "v": 1_i32},
            doc! {"_id": 2, "k": 1_i64, "v": 1.0},
            doc! {"_id": 3, "k": 1.0, "v": one_decimal},
            doc! {"_id": 4, "k": one_decimal, "v": 2_i32},
            doc! {"_id": 5, "k": 0.0, "v": 1_i32},
            doc! {"_id": 6, "k": -0.0, "v": 1_i32},
            doc! {"_id": 7, "k": {"a": 1, "b": "x"}, "v": 1_i32},
            doc! {"_id": 8, "k": {"a": 1.0, "b": "x"}, "v": 1_i32},
            doc! {"_id": 9, "k": {"b": "x", "a": 1}, "v": 1_i32},
            doc! {"_id": 10, "k": "1", "v": 1_i32},
        ],
    )
    .unwrap();
    let out = h
        .aggregate(
            "t",
            "mixed",
            &[doc! {"$group": {"_id": "$k", "ids": {"$push": "$_id"}, "vs": {"$addToSet": "$v"}}}],
        )
        .unwrap();
    let mut groups: Vec<(Vec<i32>, usize)> = out
        .iter()
        .map(|g| {
            let ids = g.get_array("ids").unwrap();
            let ids = ids.iter().map(|i| i.as_i32().unwrap()).collect();
            (ids, g.get_array("vs").unwrap().len())
        })
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        vec![
            (vec![1, 2, 3, 4], 2),
            (vec![5, 6], 1),
            (vec![7, 8], 1),
            (vec![9], 1),
            (vec![10], 1),
        ]
    );

    // Many distinct keys, each seen three times.
    let docs: Vec<Document> = (0..30_000)
        .map(|i| doc! {"_id": i, "k": i % 10_000, "v": (i / 10_000) % 2})
        .collect();
    h.insert_many("t", "many", docs).unwrap();
    let out = h
        .aggregate(
            "t",
            "many",
            &[doc! {"$group": {"_id": "$k", "n": {"$sum": 1}, "vs": {"$addToSet": "$v"}}}],
        )
        .unwrap();
    assert_eq!(out.len(), 10_000);
    for g in &out {
        assert_eq!(g.get_i32("n").unwrap(), 3, "{g}");
        assert_eq!(g.get_array("vs").unwrap().len(), 2, "{g}");
    }
}

/// Runs each pipeline over `shop.orders` and expects its error's code and MongoDB's message.
fn expect_errors(h: &History, table: &[(Vec<Document>, i32, &str)]) {
    for (pipeline, code, message) in table {
        let e = h.aggregate("shop", "orders", pipeline).unwrap_err();
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            (*code, *message),
            "{pipeline:?}"
        );
    }
}

/// A stage name MongoDB does not know is 40324 with its text; one it knows but this store does
/// not run stays 115.
#[test]
fn unknown_stage_names_are_mongodb_errors() {
    let (_d, h) = history_common::open_shop();
    expect_errors(
        &h,
        &[(
            vec![doc! {"$match": {}}, doc! {"$foo": {}}],
            40324,
            "Unrecognized pipeline stage name: '$foo'",
        )],
    );
    let e = h
        .aggregate("shop", "orders", &[doc! {"$geoNear": {}}])
        .unwrap_err();
    assert_eq!(e.code(), 115);
    assert_eq!(e.code_name(), "CommandNotSupported");
    let e = h
        .aggregate("shop", "orders", &[doc! {"$foo": {}}])
        .unwrap_err();
    assert_eq!(e.code_name(), "Location40324");
}

/// A nested object in `$project` is a sub-projection: inclusion, exclusion and computed fields
/// inside embedded documents and arrays of them; in `$addFields`/`$set` it merges into the
/// embedded document (or each document of an array) at its path.
#[test]
fn nested_objects_project_and_merge_into_embedded_documents() {
    let (_d, h) = history_common::open_shop();
    let table: Vec<(Vec<Document>, Vec<Document>)> = vec![
        // Inclusion inside an array of documents.
        (
            vec![
                doc! {"$match": {"_id": 1}},
                doc! {"$project": {"lines": {"sku": 1}}},
            ],
            vec![doc! {"_id": 1, "lines": [{"sku": "a"}, {"sku": "b"}]}],
        ),
        // Computed fields in a new embedded document.
        (
            vec![
                doc! {"$match": {"_id": 2}},
                doc! {"$project": {"_id": 0, "info": {"who": "$customer", "twice": {"$multiply": ["$total", 2]}}}},
            ],
            vec![doc! {"info": {"who": "c2", "twice": 51.0}}],
        ),
        // Inclusion and a computed field side by side inside each line; the expression reads
        // the whole document.
        (
            vec![
                doc! {"$match": {"_id": 1}},
                doc! {"$project": {"lines": {"qty": true, "of": "$customer"}}},
            ],
            vec![doc! {"_id": 1, "lines": [{"qty": 1, "of": "c1"}, {"qty": 2, "of": "c1"}]}],
        ),
        // Exclusion inside an array, the rest kept in order.
        (
            vec![
                doc! {"$match": {"_id": 1}},
                doc! {"$project": {"lines": {"qty": 0}, "total": 0}},
            ],
            vec![doc! {"_id": 1, "customer": "c1", "lines": [{"sku": "a"}, {"sku": "b"}]}],
        ),
        // A nested object and a dotted path build one tree.
        (
            vec![
                doc! {"$match": {"_id": 1}},
                doc! {"$project": {"_id": 0, "lines": {"sku": 1}, "lines.qty": 1}},
            ],
            vec![doc! {"lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]}],
        ),
        // $set merges into each document of an array; an empty array stays empty.
        (
            vec![
                doc! {"$match": {"_id": {"$in": [1, 3]}}},
                doc! {"$set": {"lines": {"flag": true}}},
                doc! {"$project": {"lines": 1}},
            ],
            vec![
                doc! {"_id": 1, "lines": [{"sku": "a", "qty": 1, "flag": true}, {"sku": "b", "qty": 2, "flag": true}]},
                doc! {"_id": 3, "lines": []},
            ],
        ),
        // $addFields: a scalar at the path is replaced by a new document; a missing path gets
        // one; an empty object is the value {}.
        (
            vec![
                doc! {"$match": {"_id": 2}},
                doc! {"$addFields": {"customer": {"id": "$customer"}, "meta": {"src": {"kind": "web"}, "none": {}}}},
                doc! {"$unset": "lines"},
            ],
            vec![
                doc! {"_id": 2, "customer": {"id": "c2"}, "total": 25.5, "meta": {"src": {"kind": "web"}, "none": {}}},
            ],
        ),
    ];
    for (pipeline, expected) in table {
        let got = h.aggregate("shop", "orders", &pipeline).unwrap();
        assert_eq!(got, expected, "pipeline {pipeline:?}");
    }
}

/// `$project` mixing inclusion and exclusion, or naming a path through another, fails as
/// MongoDB's projection parser does; so do `$addFields`'s conflicting paths.
#[test]
fn projection_mixing_and_path_collisions_are_mongodb_errors() {
    let (_d, h) = history_common::open_shop();
    expect_errors(
        &h,
        &[
            (
                vec![doc! {"$project": {"a": 1, "b": {"c": 0}}}],
                31254,
                "Invalid $project :: caused by :: Cannot do exclusion on field c in inclusion projection",
            ),
            (
                vec![doc! {"$project": {"a": 0, "b": {"c": 1}}}],
                31253,
                "Invalid $project :: caused by :: Cannot do inclusion on field c in exclusion projection",
            ),
            (
                vec![doc! {"$project": {"a": 1, "a.b": 1}}],
                31249,
                "Invalid $project :: caused by :: Path collision at a.b remaining portion b",
            ),
            (
                vec![doc! {"$project": {"a.b": 1, "a": 1}}],
                31250,
                "Invalid $project :: caused by :: Path collision at a",
            ),
            (
                vec![doc! {"$project": {"a": 0, "b": "$x"}}],
                31310,
                "Invalid $project :: caused by :: Cannot use an expression b: \"$x\" in an exclusion projection",
            ),
            (
                vec![doc! {"$project": {"a": 0, "b": {"c": {"$add": [1, 2]}}}}],
                31252,
                "Invalid $project :: caused by :: Cannot use expression other than $meta in exclusion projection",
            ),
            (
                vec![doc! {"$project": {"a": {"$bogus": 1}}}],
                31325,
                "Invalid $project :: caused by :: Unknown expression $bogus",
            ),
            (
                vec![doc! {"$project": {}}],
                51272,
                "Invalid $project :: caused by :: projection specification must have at least one field",
            ),
            (
                vec![doc! {"$project": {"a": {}}}],
                51270,
                "Invalid $project :: caused by :: An empty sub-projection is not a valid value. Found empty object at path",
            ),
            (
                vec![doc! {"$project": {"a.$": 1}}],
                31324,
                "Invalid $project :: caused by :: Cannot use positional projection in aggregation projection",
            ),
            (
                vec![doc! {"$project": {"a": {"$elemMatch": {"b": 1}}}}],
                168,
                "Invalid $project :: caused by :: Cannot use $elemMatch in this context",
            ),
            (
                vec![doc! {"$addFields": {"a": 1, "a.b": 2}}],
                40176,
                "Invalid $addFields :: caused by :: specification contains two conflicting paths. Cannot specify both 'a.b' and 'a': { a: 1, a.b: 2 }",
            ),
            (
                vec![doc! {"$set": {"a": {"b": 1}, "a.b": 2}}],
                40176,
                "Invalid $set :: caused by :: specification contains two conflicting paths. Cannot specify both 'a.b' and 'a.b': { a: { b: 1 }, a.b: 2 }",
            ),
            (
                vec![doc! {"$set": {"a": {"b.c": 1}}}],
                40183,
                "Invalid $set :: caused by :: cannot use dotted field name 'b.c' in a sub object: { a: { b.c: 1 } }",
            ),
            (
                vec![doc! {"$set": {"a": {"$add": [1], "b": 1}}}],
                40181,
                "Invalid $set :: caused by :: an expression specification must contain exactly one field, the name of the expression. Found 2 fields in { $add: [ 1 ], b: 1 }, while parsing object { a: { $add: [ 1 ], b: 1 } }",
            ),
        ],
    );
}

/// A path through sub-projections counts its sub-object levels and dotted parts together
/// against `PATH_PARTS_MAX`: at the limit it projects, one past it is code 15.
#[test]
fn nested_projection_paths_are_held_to_the_path_limit() {
    let (_d, h) = history_common::open_shop();
    let max = streamcache::history::PATH_PARTS_MAX;
    let spec = |parts: usize| {
        let outer = vec!["x"; parts / 2].join(".");
        let inner = vec!["x"; parts - parts / 2].join(".");
        let mut sub = Document::new();
        sub.insert(inner, 1);
        let mut spec = Document::new();
        spec.insert(outer, sub);
        vec![doc! {"$match": {"_id": 1}}, doc! {"$project": spec}]
    };
    assert_eq!(
        h.aggregate("shop", "orders", &spec(max)).unwrap(),
        vec![doc! {"_id": 1}]
    );
    assert_eq!(
        h.aggregate("shop", "orders", &spec(max + 1))
            .unwrap_err()
            .code(),
        15
    );
}

/// A `$project` or `$addFields` specification holds at most `FIELD_TREE_KEYS_MAX` keys, nested
/// ones and those of expressions counted: at the limit it runs, one more is refused (code 2)
/// before any document is read.
#[test]
fn field_specifications_are_held_to_their_key_limit() {
    let (_d, h) = history_common::open_shop();
    let max = streamcache::history::FIELD_TREE_KEYS_MAX;
    // `a: {b: 1}` is two keys; the rest are top-level fields.
    let spec = |keys: usize| {
        let mut spec = doc! {"a": {"b": 1}};
        for i in 0..keys - 2 {
            spec.insert(format!("f{i}"), 1);
        }
        spec
    };
    for stage in ["$project", "$addFields"] {
        let run = |keys: usize| {
            let mut st = Document::new();
            st.insert(stage, spec(keys));
            h.aggregate("shop", "orders", &[doc! {"$match": {"_id": 1}}, st])
        };
        let docs = run(max).unwrap();
        assert_eq!(docs.len(), 1, "{stage}");
        let err = run(max + 1).unwrap_err();
        assert_eq!(err.code(), 2, "{stage}: {err}");
        assert!(
            err.to_string()
                .contains(&format!("more than the limit of {max}")),
            "{stage}: {err}"
        );
    }
}

/// A `$group` specification (and `$bucket`'s `output`) is held to the same key limit: every
/// accumulator is updated for every document.
#[test]
fn group_specifications_are_held_to_the_field_key_limit() {
    let (_d, h) = history_common::open_shop();
    let max = streamcache::history::FIELD_TREE_KEYS_MAX;
    // `_id: {a: null}` is two keys (three with `b`), each `fN: {$sum: 1}` two more.
    let group = |extra_id_key: bool| {
        let mut id = doc! {"a": null};
        if extra_id_key {
            id.insert("b", bson::Bson::Null);
        }
        let mut spec = doc! {"_id": id};
        for i in 0..(max - 2) / 2 {
            spec.insert(format!("f{i}"), doc! {"$sum": 1});
        }
        h.aggregate("shop", "orders", &[doc! {"$group": spec}])
    };
    assert_eq!(group(false).unwrap().len(), 1);
    let err = group(true).unwrap_err();
    assert_eq!(err.code(), 2, "{err}");
    assert!(
        err.to_string()
            .contains(&format!("more than the limit of {max}")),
        "{err}"
    );
    let output = |n: usize| {
        let mut out = Document::new();
        for i in 0..n {
            out.insert(format!("f{i}"), doc! {"$sum": 1});
        }
        h.aggregate(
            "shop",
            "orders",
            &[doc! {"$bucket": {"groupBy": "$total", "boundaries": [0, 1_000_000], "output": out}}],
        )
    };
    output(max / 2).unwrap();
    assert_eq!(output(max / 2 + 1).unwrap_err().code(), 2);
}

/// `$group`'s `$count`, `$stdDevPop`, `$stdDevSamp`, `$mergeObjects` and the n-accumulators,
/// with MongoDB's types, null handling and orders.
#[test]
fn group_accumulators_of_mongodb_5_and_later() {
    let (_d, h) = history_common::open_shop();
    let table: Vec<(Vec<Document>, Vec<Document>)> = vec![
        (
            vec![
                doc! {"$group": {"_id": "$customer", "n": {"$count": {}}, "pop": {"$stdDevPop": "$total"}, "samp": {"$stdDevSamp": "$total"}, "none": {"$stdDevPop": "$missing"}}},
                doc! {"$sort": {"_id": 1}},
            ],
            vec![
                doc! {"_id": "c1", "n": 2, "pop": 1.5, "samp": 4.5_f64.sqrt(), "none": null},
                doc! {"_id": "c2", "n": 1, "pop": 0.0, "samp": null, "none": null},
            ],
        ),
        (
            // Later fields win; missing and null inputs are skipped.
            vec![
                doc! {"$group": {"_id": null, "m": {"$mergeObjects": {"$arrayElemAt": ["$lines", 0]}}, "e": {"$mergeObjects": "$missing"}}},
            ],
            vec![doc! {"_id": null, "m": {"sku": "a", "qty": 5}, "e": {}}],
        ),
        (
            vec![doc! {"$group": {
                "_id": null,
                "f": {"$firstN": {"n": 2, "input": "$_id"}},
                "l": {"$lastN": {"n": 2, "input": "$_id"}},
                "fm": {"$firstN": {"n": 1, "input": "$missing"}},
                "mx": {"$maxN": {"n": 2, "input": "$total"}},
                "mn": {"$minN": {"n": 5, "input": "$total"}},
                "mm": {"$minN": {"n": 5, "input": "$missing"}},
            }}],
            vec![
                doc! {"_id": null, "f": [1, 2], "l": [2, 3], "fm": [null], "mx": [25.5, 10], "mn": [7, 10, 25.5], "mm": []},
            ],
        ),
        (
            // `n` from the group key.
            vec![
                doc! {"$group": {"_id": "$customer", "f": {"$firstN": {"n": {"$cond": [{"$eq": ["$_id", "c1"]}, 2, 1]}, "input": "$total"}}}},
                doc! {"$sort": {"_id": 1}},
            ],
            vec![
                doc! {"_id": "c1", "f": [10, 7]},
                doc! {"_id": "c2", "f": [25.5]},
            ],
        ),
        (
            vec![doc! {"$group": {
                "_id": null,
                "t": {"$top": {"sortBy": {"total": -1}, "output": "$customer"}},
                "b": {"$bottom": {"sortBy": {"total": -1}, "output": ["$customer", "$total"]}},
                "tn": {"$topN": {"n": 2, "sortBy": {"total": 1}, "output": "$_id"}},
                "bn": {"$bottomN": {"n": 2, "sortBy": {"total": 1}, "output": "$_id"}},
                "tie": {"$top": {"sortBy": {"customer": 1}, "output": "$_id"}},
                "btie": {"$bottom": {"sortBy": {"customer": -1}, "output": "$_id"}},
                "nul": {"$top": {"sortBy": {"_id": 1}, "output": "$missing"}},
            }}],
            vec![
                doc! {"_id": null, "t": "c2", "b": ["c1", 7], "tn": [3, 1], "bn": [1, 2], "tie": 1, "btie": 1, "nul": null},
            ],
        ),
    ];
    for (pipeline, expected) in table {
        let got = h.aggregate("shop", "orders", &pipeline).unwrap();
        assert_eq!(got, expected, "pipeline {pipeline:?}");
    }
}

/// The accumulators' argument errors, with MongoDB's codes and text.
#[test]
fn group_accumulator_errors_are_mongodb_errors() {
    let (_d, h) = history_common::open_shop();
    let group = |acc: Document| vec![doc! {"$group": {"_id": null, "x": acc}}];
    expect_errors(
        &h,
        &[
            (
                group(doc! {"$firstN": {"n": 0, "input": "$_id"}}),
                5_787_908,
                "PlanExecutor error during aggregation :: caused by :: 'n' must be greater than 0, found 0",
            ),
            (
                group(doc! {"$lastN": {"n": 1.5, "input": "$_id"}}),
                5_787_903,
                "PlanExecutor error during aggregation :: caused by :: Value for 'n' must be of integral type, but found 1.5",
            ),
            (
                group(doc! {"$maxN": {"n": "two", "input": "$_id"}}),
                5_787_902,
                "PlanExecutor error during aggregation :: caused by :: Value for 'n' must be of integral type, but found \"two\"",
            ),
            (
                group(doc! {"$minN": {"input": "$_id"}}),
                5_787_906,
                "Missing value for 'n'",
            ),
            (
                group(doc! {"$firstN": {"n": 1, "input": "$_id", "x": 1}}),
                5_787_901,
                "Unknown argument for 'n' operator: x",
            ),
            (
                group(doc! {"$topN": {"n": 1, "output": "$_id"}}),
                5_788_005,
                "Missing value for 'sortBy'",
            ),
            (
                group(doc! {"$top": {"n": 1, "sortBy": {"a": 1}, "output": "$_id"}}),
                5_788_002,
                "Unknown argument to $top 'n'",
            ),
            (
                group(doc! {"$bottom": {"sortBy": {"a": 1}}}),
                5_788_004,
                "Missing value for 'output'",
            ),
            (
                group(doc! {"$mergeObjects": "$customer"}),
                40400,
                "PlanExecutor error during aggregation :: caused by :: $mergeObjects requires object inputs, but input \"c1\" is of type string",
            ),
            (
                group(doc! {"$count": 1}),
                14,
                "$count takes no arguments, i.e. $count:{}",
            ),
            (
                group(doc! {"$bogus": 1}),
                15952,
                "unknown group operator '$bogus'",
            ),
        ],
    );
}

/// The expression forms of `$firstN` `$lastN` `$maxN` `$minN` over an array.
#[test]
fn n_expressions_take_from_arrays() {
    let (_d, h) = history_common::open_shop();
    let got = h
        .aggregate(
            "shop",
            "orders",
            &[
                doc! {"$match": {"_id": 1}},
                doc! {"$project": {
                    "_id": 0,
                    "f": {"$firstN": {"n": 2, "input": [1, 2, 3]}},
                    "l": {"$lastN": {"n": 5, "input": [1, 2, 3]}},
                    "mx": {"$maxN": {"n": 2, "input": [3, null, 1, 5]}},
                    "mn": {"$minN": {"n": "$total", "input": "$lines.qty"}},
                }},
            ],
        )
        .unwrap();
    assert_eq!(
        got,
        vec![doc! {"f": [1, 2], "l": [1, 2, 3], "mx": [5, 3], "mn": [1, 2]}]
    );
    expect_errors(
        &h,
        &[
            (
                vec![doc! {"$project": {"x": {"$lastN": {"n": 1, "input": "$customer"}}}}],
                5_788_200,
                "PlanExecutor error during aggregation :: caused by :: Input must be an array",
            ),
            (
                vec![doc! {"$project": {"x": {"$maxN": {"n": -1, "input": "$lines"}}}}],
                5_787_908,
                "PlanExecutor error during aggregation :: caused by :: 'n' must be greater than 0, found -1",
            ),
            (
                vec![doc! {"$project": {"x": {"$minN": [1]}}}],
                5_787_900,
                "Invalid $project :: caused by :: specification must be an object; found $minN: [ 1 ]",
            ),
        ],
    );
}
