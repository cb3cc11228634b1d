//! Capability: the aggregation stages that run sub-pipelines or hold their whole input, as
//! MongoDB 7.0 runs them — `$lookup` with `let` and `pipeline` (a correlated sub-pipeline, alone
//! or after the `localField`/`foreignField` equality; `$$var` reaching the joined document,
//! through nested lookups, shadowed by `$let`), `$facet`, `$bucket`,
//! `$bucketAuto`, `$unionWith` and `$sample` — with MongoDB's codes and messages for a
//! malformed stage, and each input-controlled limit (sub-pipeline depth, facets, buckets) at
//! its maximum and one past it.
//!
//! Method: the shared shop fixture (`history_common::open_shop`); each table row is a pipeline
//! over `shop.orders` and its exact output, or MongoDB's code and message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Bson, Document, doc};
use streamcache::history::{BUCKETS_MAX, FACET_PIPELINES_MAX, History, SUB_PIPELINE_DEPTH_MAX};

/// What a pipeline must give: its documents, or an error's code and message.
type Want = Result<Vec<Document>, (i32, String)>;

fn ok(docs: Vec<Document>) -> Want {
    Ok(docs)
}

/// An error found when the pipeline is built: MongoDB's message as it is.
fn parse_err(code: i32, message: &str) -> Want {
    Err((code, message.to_owned()))
}

/// An error found while documents flow: MongoDB's message after the executor's context.
fn run_err(code: i32, message: &str) -> Want {
    Err((
        code,
        format!("PlanExecutor error during aggregation :: caused by :: {message}"),
    ))
}

fn check(h: &History, cases: Vec<(Vec<Document>, Want)>) {
    for (pipeline, want) in cases {
        let got = h
            .aggregate("shop", "orders", &pipeline)
            .map_err(|e| (e.code(), e.to_string()));
        assert_eq!(got, want, "{pipeline:?}");
    }
}

/// `$lookup` of `shop.customers` as `x` with `spec`'s other fields, for order 1, keeping `x`.
fn lookup_one(spec: Document) -> Vec<Document> {
    let mut full = doc! {"from": "customers", "as": "x"};
    full.extend(spec);
    vec![
        doc! {"$match": {"_id": 1}},
        doc! {"$lookup": full},
        doc! {"$project": {"x": 1}},
    ]
}

#[test]
fn lookup_runs_a_correlated_sub_pipeline_per_document() {
    let (_d, h) = history_common::open_shop();
    check(
        &h,
        vec![
            // let + pipeline: the customer whose _id is the order's customer.
            (
                lookup_one(doc! {
                    "let": {"c": "$customer"},
                    "pipeline": [{"$match": {"$expr": {"$eq": ["$_id", "$$c"]}}}, {"$project": {"_id": 0, "name": 1}}],
                }),
                ok(vec![doc! {"_id": 1, "x": [{"name": "Ann"}]}]),
            ),
            // The equality first, then the pipeline over what it matched, with a variable.
            (
                vec![
                    doc! {"$match": {"_id": 2}},
                    doc! {"$lookup": {"from": "customers", "localField": "customer", "foreignField": "_id", "let": {"t": "$total"}, "pipeline": [{"$project": {"_id": 0, "name": 1, "spent": "$$t"}}], "as": "who"}},
                    doc! {"$project": {"who": 1}},
                ],
                ok(vec![
                    doc! {"_id": 2, "who": [{"name": "Ben", "spent": 25.5}]},
                ]),
            ),
            // No variables: the same sub-pipeline result for every document.
            (
                vec![
                    doc! {"$lookup": {"from": "customers", "pipeline": [{"$count": "n"}], "as": "all"}},
                    doc! {"$project": {"all": 1}},
                ],
                ok(vec![
                    doc! {"_id": 1, "all": [{"n": 2}]},
                    doc! {"_id": 2, "all": [{"n": 2}]},
                    doc! {"_id": 3, "all": [{"n": 2}]},
                ]),
            ),
            // A nested $lookup sees its own variables and its enclosing one's.
            (
                lookup_one(doc! {
                    "let": {"c": "$customer", "t": "$total"},
                    "pipeline": [
                        {"$match": {"$expr": {"$eq": ["$_id", "$$c"]}}},
                        {"$lookup": {"from": "orders", "let": {"who": "$_id"}, "pipeline": [
                            {"$match": {"$expr": {"$and": [{"$eq": ["$customer", "$$who"]}, {"$lt": ["$total", "$$t"]}]}}},
                            {"$project": {"_id": 1}},
                        ], "as": "cheaper"}},
                        {"$project": {"_id": 0, "cheaper": 1}},
                    ],
                }),
                ok(vec![doc! {"_id": 1, "x": [{"cheaper": [{"_id": 3}]}]}]),
            ),
            // A path into a variable; `$let` inside the sub-pipeline shadows the name.
            (
                lookup_one(doc! {
                    "let": {"o": "$$ROOT"},
                    "pipeline": [
                        {"$match": {"$expr": {"$eq": ["$_id", "$$o.customer"]}}},
                        {"$project": {"_id": 0, "inner": {"$let": {"vars": {"o": "in"}, "in": "$$o"}}, "skus": "$$o.lines.sku"}},
                    ],
                }),
                ok(vec![
                    doc! {"_id": 1, "x": [{"inner": "in", "skus": ["a", "b"]}]},
                ]),
            ),
            // A variable bound to a missing field is missing.
            (
                lookup_one(doc! {
                    "let": {"m": "$nothing"},
                    "pipeline": [{"$limit": 1}, {"$project": {"_id": 0, "m": "$$m"}}],
                }),
                ok(vec![doc! {"_id": 1, "x": [{}]}]),
            ),
        ],
    );
}

#[test]
fn malformed_lookups_fail_as_in_mongodb() {
    let (_d, h) = history_common::open_shop();
    let lookup = |spec: Document| vec![doc! {"$lookup": spec}];
    check(
        &h,
        vec![
            (
                lookup_one(
                    doc! {"let": {"c": "$customer"}, "pipeline": [{"$match": {"$expr": {"$eq": ["$_id", "$$d"]}}}]},
                ),
                parse_err(17276, "Use of undefined variable: d"),
            ),
            (
                lookup_one(doc! {"let": 1, "pipeline": []}),
                parse_err(
                    9,
                    "$lookup argument 'let: 1' must be an object, is type int",
                ),
            ),
            (
                lookup_one(doc! {"let": {"c": 1}, "localField": "a", "foreignField": "b"}),
                parse_err(
                    9,
                    "$lookup with a 'let' argument must also specify 'pipeline'",
                ),
            ),
            (
                lookup_one(doc! {"localField": "a", "pipeline": []}),
                parse_err(
                    9,
                    "$lookup requires both or neither of 'localField' and 'foreignField' to be specified",
                ),
            ),
            (
                lookup_one(doc! {}),
                parse_err(
                    9,
                    "$lookup requires either 'pipeline' or both 'localField' and 'foreignField' to be specified",
                ),
            ),
            (
                lookup_one(doc! {"let": {"Bad": 1}, "pipeline": []}),
                parse_err(
                    16867,
                    "'Bad' starts with an invalid character for a user variable name",
                ),
            ),
            (
                lookup_one(doc! {"pipeline": {}}),
                parse_err(14, "'pipeline' option must be specified as an array"),
            ),
            (
                lookup_one(doc! {"pipeline": [1]}),
                parse_err(14, "Each element of the 'pipeline' array must be an object"),
            ),
            (
                lookup_one(doc! {"pipeline": [{"$bogus": 1}]}),
                parse_err(40324, "Unrecognized pipeline stage name: '$bogus'"),
            ),
            (
                lookup_one(doc! {"pipeline": [], "bogus": "y"}),
                parse_err(9, "unknown argument to $lookup: bogus"),
            ),
            (
                vec![doc! {"$lookup": 1}],
                parse_err(
                    9,
                    "the $lookup stage specification must be an object, but found int",
                ),
            ),
            (
                lookup(doc! {"from": 1, "pipeline": [], "as": "x"}),
                parse_err(9, "$lookup 'from' field must be a string, but found int"),
            ),
            (
                lookup(doc! {"from": "customers", "pipeline": [], "as": 1}),
                parse_err(
                    9,
                    "$lookup argument 'as' must be a string, found as: 1: int",
                ),
            ),
            (
                lookup(doc! {"pipeline": [], "as": "x"}),
                parse_err(
                    9,
                    "$lookup stage without explicit collection must have a pipeline with $documents as first stage",
                ),
            ),
            (
                lookup(doc! {"from": "customers", "pipeline": []}),
                parse_err(9, "must specify 'as' field for a $lookup"),
            ),
            (
                lookup(
                    doc! {"from": "customers", "let": {"n": {"$size": "$customer"}}, "pipeline": [], "as": "x"},
                ),
                run_err(
                    17124,
                    "The argument to $size must be an array, but was of type: string",
                ),
            ),
        ],
    );
}

/// A `$lookup` whose sub-pipeline nests `levels` lookups in all (counting itself) — or a
/// `$unionWith` when `union`.
fn nested(levels: usize, union: bool) -> Document {
    let mut stage = doc! {"$limit": 1};
    for _ in 0..levels {
        stage = if union {
            doc! {"$unionWith": {"coll": "customers", "pipeline": [{"$limit": 1}, stage]}}
        } else {
            doc! {"$lookup": {"from": "customers", "pipeline": [{"$limit": 1}, stage], "as": "x"}}
        };
    }
    stage
}

#[test]
fn sub_pipelines_nest_at_most_the_limit() {
    let (_d, h) = history_common::open_shop();
    for union in [false, true] {
        let at_max = [doc! {"$limit": 1}, nested(SUB_PIPELINE_DEPTH_MAX, union)];
        assert!(!h.aggregate("shop", "orders", &at_max).unwrap().is_empty());
        let over = [nested(SUB_PIPELINE_DEPTH_MAX + 1, union)];
        let e = h.aggregate("shop", "orders", &over).unwrap_err();
        assert_eq!(
            (e.code(), e.code_name(), e.to_string()),
            (
                232,
                "MaxSubPipelineDepthExceeded",
                format!(
                    "Maximum number of nested sub-pipelines exceeded. Limit is {SUB_PIPELINE_DEPTH_MAX}"
                )
            )
        );
    }
}

#[test]
fn facet_runs_each_sub_pipeline_over_the_same_input() {
    let (_d, h) = history_common::open_shop();
    check(
        &h,
        vec![
            (
                vec![doc! {"$facet": {
                    "byCustomer": [{"$sortByCount": "$customer"}],
                    "count": [{"$count": "n"}],
                    "top": [{"$sort": {"total": -1}}, {"$limit": 1}, {"$project": {"_id": 1}}],
                    "joined": [{"$match": {"_id": 3}}, {"$lookup": {"from": "customers", "localField": "customer", "foreignField": "_id", "as": "c"}}, {"$project": {"n": {"$size": "$c"}}}],
                }}],
                ok(vec![doc! {
                    "byCustomer": [{"_id": "c1", "count": 2}, {"_id": "c2", "count": 1}],
                    "count": [{"n": 3}],
                    "top": [{"_id": 2}],
                    "joined": [{"_id": 3, "n": 1}],
                }]),
            ),
            // No input: each facet's output is empty, and there is still one document.
            (
                vec![
                    doc! {"$match": {"_id": 99}},
                    doc! {"$facet": {"a": [{"$count": "n"}], "b": [{"$skip": 0}]}},
                ],
                ok(vec![doc! {"a": [], "b": []}]),
            ),
            (
                vec![doc! {"$facet": 1}],
                parse_err(
                    40169,
                    "the $facet specification must be a non-empty object, but found: $facet: 1",
                ),
            ),
            (
                vec![doc! {"$facet": {}}],
                parse_err(
                    40169,
                    "the $facet specification must be a non-empty object, but found: $facet: {}",
                ),
            ),
            (
                vec![doc! {"$facet": {"a": 1}}],
                parse_err(40170, "arguments to $facet must be arrays, a is type int"),
            ),
            (
                vec![doc! {"$facet": {"a": [{"$limit": 1}, 2]}}],
                parse_err(
                    40171,
                    "elements of arrays in $facet spec must be non-empty objects, a argument contained an element of type int: 1: 2",
                ),
            ),
            (
                vec![doc! {"$facet": {"a": []}}],
                parse_err(2, "sub-pipeline in $facet stage cannot be empty"),
            ),
            (
                vec![doc! {"$facet": {"$a": [{"$limit": 1}]}}],
                parse_err(
                    16410,
                    "$facet pipeline names must follow the naming rules of field path expressions. :: caused by :: FieldPath field names may not start with '$'. Consider using $getField or $setField.",
                ),
            ),
            (
                vec![doc! {"$facet": {"a": [{"$facet": {"b": [{"$limit": 1}]}}]}}],
                parse_err(
                    40600,
                    "$facet is not allowed to be used within a $facet stage",
                ),
            ),
            (
                vec![
                    doc! {"$facet": {"a": [{"$lookup": {"from": "customers", "pipeline": [{"$facet": {"b": [{"$limit": 1}]}}], "as": "x"}}]}},
                ],
                parse_err(
                    40600,
                    "$lookup is not allowed to be used within a $facet stage",
                ),
            ),
        ],
    );
    let facets = |n: usize| {
        let mut spec = Document::new();
        for i in 0..n {
            spec.insert(format!("f{i}"), vec![Bson::Document(doc! {"$count": "n"})]);
        }
        vec![doc! {"$facet": spec}]
    };
    let out = h
        .aggregate("shop", "orders", &facets(FACET_PIPELINES_MAX))
        .unwrap();
    assert_eq!(out[0].len(), FACET_PIPELINES_MAX);
    let e = h
        .aggregate("shop", "orders", &facets(FACET_PIPELINES_MAX + 1))
        .unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        (
            2,
            format!(
                "$facet has {} entries, more than the limit of {FACET_PIPELINES_MAX}",
                FACET_PIPELINES_MAX + 1
            )
        )
    );
}

fn bucket(spec: Document) -> Vec<Document> {
    vec![doc! {"$bucket": spec}]
}

#[test]
fn bucket_groups_by_boundaries_as_mongodb() {
    let (_d, h) = history_common::open_shop();
    check(
        &h,
        vec![
            (
                bucket(doc! {"groupBy": "$total", "boundaries": [0, 10, 20, 30]}),
                ok(vec![
                    doc! {"_id": 0, "count": 1},
                    doc! {"_id": 10, "count": 1},
                    doc! {"_id": 20, "count": 1},
                ]),
            ),
            // A default for what falls outside; output accumulators instead of the count;
            // boundaries that fold to constants.
            (
                bucket(
                    doc! {"groupBy": "$total", "boundaries": [0, {"$add": [5, 5]}], "default": "other", "output": {"ids": {"$push": "$_id"}, "sum": {"$sum": "$total"}}},
                ),
                ok(vec![
                    doc! {"_id": 0, "ids": [3], "sum": 7},
                    doc! {"_id": "other", "ids": [1, 2], "sum": 35.5},
                ]),
            ),
            (
                bucket(doc! {"groupBy": "$total", "boundaries": [0, 10]}),
                run_err(
                    40066,
                    "$switch could not find a matching branch for an input, and no default was specified.",
                ),
            ),
            (
                vec![doc! {"$bucket": 1}],
                parse_err(
                    40201,
                    "Argument to $bucket stage must be an object, but found type: int.",
                ),
            ),
            (
                bucket(doc! {"groupBy": "total", "boundaries": [0, 1]}),
                parse_err(
                    40202,
                    "The $bucket 'groupBy' field must be defined as a $-prefixed path or an expression, but found: \"total\".",
                ),
            ),
            (
                bucket(doc! {"groupBy": "$total", "boundaries": 1}),
                parse_err(
                    40200,
                    "The $bucket 'boundaries' field must be an array, but found type: int.",
                ),
            ),
            (
                bucket(doc! {"groupBy": "$total", "boundaries": [0, "$total"]}),
                parse_err(
                    40191,
                    "The $bucket 'boundaries' field must be an array of constant values, but found value: \"$total\".",
                ),
            ),
            (
                bucket(doc! {"groupBy": "$total", "boundaries": [0]}),
                parse_err(
                    40192,
                    "The $bucket 'boundaries' field must have at least 2 values, but found 1 value(s).",
                ),
            ),
            (
                bucket(doc! {"groupBy": "$total", "boundaries": [0, "a"]}),
                parse_err(
                    40193,
                    "All values in the the 'boundaries' option to $bucket must have the same type. Found conflicting types int and string.",
                ),
            ),
            (
                bucket(doc! {"groupBy": "$total", "boundaries": [0, 10, 5]}),
                parse_err(
                    40194,
                    "The 'boundaries' option to $bucket must be sorted, but elements 1 and 2 are not in ascending order (10 is not less than 5).",
                ),
            ),
            (
                bucket(doc! {"groupBy": "$total", "boundaries": [0, 10], "default": "$total"}),
                parse_err(
                    40195,
                    "The $bucket 'default' field must be a constant expression, but found: \"$total\".",
                ),
            ),
            (
                bucket(doc! {"groupBy": "$total", "boundaries": [0, 10], "output": 1}),
                parse_err(
                    40196,
                    "The $bucket 'output' field must be an object, but found type: int.",
                ),
            ),
            (
                bucket(doc! {"groupBy": "$total", "boundaries": [0, 10], "bogus": 1}),
                parse_err(40197, "Unrecognized option to $bucket: bogus."),
            ),
            (
                bucket(doc! {"groupBy": "$total"}),
                parse_err(
                    40198,
                    "$bucket requires 'groupBy' and 'boundaries' to be specified.",
                ),
            ),
            (
                bucket(doc! {"groupBy": "$total", "boundaries": [0, 10], "default": 5}),
                parse_err(
                    40199,
                    "The $bucket 'default' field must be less than the lowest boundary or greater than or equal to the highest boundary.",
                ),
            ),
        ],
    );
    // At most BUCKETS_MAX buckets: BUCKETS_MAX + 1 boundaries.
    let boundaries = |n: usize| (0..n).map(|i| Bson::Int64(i as i64)).collect::<Vec<_>>();
    let at_max = bucket(doc! {"groupBy": "$total", "boundaries": boundaries(BUCKETS_MAX + 1)});
    assert_eq!(h.aggregate("shop", "orders", &at_max).unwrap().len(), 3);
    let over = bucket(doc! {"groupBy": "$total", "boundaries": boundaries(BUCKETS_MAX + 2)});
    let e = h.aggregate("shop", "orders", &over).unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        (
            2,
            format!(
                "$bucket 'boundaries' has {} entries, more than the limit of {}",
                BUCKETS_MAX + 2,
                BUCKETS_MAX + 1
            )
        )
    );
}

fn bucket_auto(spec: Document) -> Vec<Document> {
    vec![doc! {"$bucketAuto": spec}]
}

#[test]
fn bucket_auto_spreads_documents_evenly_as_mongodb() {
    let (_d, h) = history_common::open_shop();
    check(
        &h,
        vec![
            // Three documents in two buckets: about two each; the first bucket's max is the
            // next one's min, the last one's its own largest value.
            (
                bucket_auto(doc! {"groupBy": "$total", "buckets": 2}),
                ok(vec![
                    doc! {"_id": {"min": 7, "max": 25.5}, "count": 2},
                    doc! {"_id": {"min": 25.5, "max": 25.5}, "count": 1},
                ]),
            ),
            // Equal values stay in one bucket; more buckets than values make fewer.
            (
                bucket_auto(
                    doc! {"groupBy": "$customer", "buckets": 5, "output": {"ids": {"$push": "$_id"}}},
                ),
                ok(vec![
                    doc! {"_id": {"min": "c1", "max": "c2"}, "ids": [1, 3]},
                    doc! {"_id": {"min": "c2", "max": "c2"}, "ids": [2]},
                ]),
            ),
            (
                bucket_auto(doc! {"groupBy": "$customer", "buckets": 1}),
                ok(vec![doc! {"_id": {"min": "c1", "max": "c2"}, "count": 3}]),
            ),
            (
                vec![doc! {"$bucketAuto": 1}],
                parse_err(
                    40240,
                    "The argument to $bucketAuto must be an object, but found type: int",
                ),
            ),
            (
                bucket_auto(doc! {"groupBy": 1, "buckets": 1}),
                parse_err(
                    40239,
                    "The $bucketAuto 'groupBy' field must be defined as a $-prefixed path or an expression object, but found: 1",
                ),
            ),
            (
                bucket_auto(doc! {"groupBy": "$total", "buckets": "2"}),
                parse_err(
                    40241,
                    "The $bucketAuto 'buckets' field must be a numeric value, but found type: string",
                ),
            ),
            (
                bucket_auto(doc! {"groupBy": "$total", "buckets": 2.5}),
                parse_err(
                    40242,
                    "The $bucketAuto 'buckets' field must be representable as a 32-bit integer, but found 2.5",
                ),
            ),
            (
                bucket_auto(doc! {"groupBy": "$total", "buckets": 0}),
                parse_err(
                    40243,
                    "The $bucketAuto 'buckets' field must be greater than 0, but found: 0",
                ),
            ),
            (
                bucket_auto(doc! {"groupBy": "$total", "buckets": 2, "output": []}),
                parse_err(
                    40244,
                    "The $bucketAuto 'output' field must be an object, but found type: array",
                ),
            ),
            (
                bucket_auto(doc! {"groupBy": "$total", "buckets": 2, "bogus": 1}),
                parse_err(40245, "Unrecognized option to $bucketAuto: bogus"),
            ),
            (
                bucket_auto(doc! {"groupBy": "$total"}),
                parse_err(
                    40246,
                    "$bucketAuto requires 'groupBy' and 'buckets' to be specified",
                ),
            ),
            (
                bucket_auto(doc! {"groupBy": "$total", "buckets": 2, "granularity": "r5"}),
                parse_err(40257, "Unknown rounding granularity 'r5'"),
            ),
            (
                bucket_auto(doc! {"groupBy": "$total", "buckets": 2, "granularity": 5}),
                parse_err(
                    40261,
                    "The $bucketAuto 'granularity' field must be a string, but found type: int",
                ),
            ),
        ],
    );
    let count =
        |n: usize| bucket_auto(doc! {"groupBy": "$total", "buckets": i32::try_from(n).unwrap()});
    assert_eq!(
        h.aggregate("shop", "orders", &count(BUCKETS_MAX))
            .unwrap()
            .len(),
        3
    );
    let e = h
        .aggregate("shop", "orders", &count(BUCKETS_MAX + 1))
        .unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        (
            2,
            format!(
                "$bucketAuto 'buckets' has {} entries, more than the limit of {BUCKETS_MAX}",
                BUCKETS_MAX + 1
            )
        )
    );
}

#[test]
fn union_with_appends_another_collections_documents() {
    let (_d, h) = history_common::open_shop();
    check(
        &h,
        vec![
            (
                vec![
                    doc! {"$project": {"_id": 1}},
                    doc! {"$unionWith": "customers"},
                ],
                ok(vec![
                    doc! {"_id": 1},
                    doc! {"_id": 2},
                    doc! {"_id": 3},
                    doc! {"_id": "c1", "name": "Ann"},
                    doc! {"_id": "c2", "name": "Ben"},
                ]),
            ),
            (
                vec![
                    doc! {"$match": {"_id": 1}},
                    doc! {"$project": {"_id": 1}},
                    doc! {"$unionWith": {"coll": "customers", "pipeline": [{"$match": {"_id": "c2"}}, {"$project": {"name": 1}}]}},
                    doc! {"$unionWith": {"coll": "nothing"}},
                ],
                ok(vec![doc! {"_id": 1}, doc! {"_id": "c2", "name": "Ben"}]),
            ),
            (
                vec![doc! {"$unionWith": 1}],
                parse_err(
                    9,
                    "the $unionWith stage specification must be an object or string, but found int",
                ),
            ),
            (
                vec![doc! {"$unionWith": {"coll": 1}}],
                parse_err(
                    14,
                    "BSON field '$unionWith.coll' is the wrong type 'int', expected type 'string'",
                ),
            ),
            (
                vec![doc! {"$unionWith": {"coll": "customers", "pipeline": 1}}],
                parse_err(
                    14,
                    "BSON field '$unionWith.pipeline' is the wrong type 'int', expected type 'array'",
                ),
            ),
            (
                vec![doc! {"$unionWith": {"coll": "customers", "bogus": 1}}],
                parse_err(40415, "BSON field '$unionWith.bogus' is an unknown field."),
            ),
            (
                vec![doc! {"$unionWith": {"pipeline": []}}],
                parse_err(
                    9,
                    "$unionWith stage without explicit collection must have a pipeline with $documents as first stage",
                ),
            ),
        ],
    );
}

#[test]
fn sample_picks_distinct_documents_from_a_seeded_source() {
    let (_d, h) = history_common::open_shop();
    let ids = |h: &History, size: i32| -> Vec<i32> {
        h.aggregate("shop", "orders", &[doc! {"$sample": {"size": size}}])
            .unwrap()
            .iter()
            .map(|d| d.get_i32("_id").unwrap())
            .collect()
    };
    let mut draws = Vec::new();
    for size in [2, 2, 2, 2, 10, 0] {
        let got = ids(&h, size);
        let mut sorted = got.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), got.len(), "distinct: {got:?}");
        assert_eq!(got.len(), usize::try_from(size).unwrap().min(3));
        assert!(got.iter().all(|id| (1..=3).contains(id)));
        draws.push(got);
    }
    // Consecutive draws differ (four draws of 2 of 3 are not all the same).
    assert!(draws[..4].windows(2).any(|w| w[0] != w[1]), "{draws:?}");
    // The source is seeded from the store's injected clock: another store on the same manual
    // clock draws the same sequence.
    let (_d2, h2) = history_common::open_shop();
    let again: Vec<Vec<i32>> = [2, 2, 2, 2, 10, 0].iter().map(|s| ids(&h2, *s)).collect();
    assert_eq!(again, draws);
    check(
        &h,
        vec![
            (
                vec![doc! {"$sample": 1}],
                parse_err(28745, "the $sample stage specification must be an object"),
            ),
            (
                vec![doc! {"$sample": {"size": "1"}}],
                parse_err(28746, "size argument to $sample must be a number"),
            ),
            (
                vec![doc! {"$sample": {"size": -1}}],
                parse_err(28747, "size argument to $sample must not be negative"),
            ),
            (
                vec![doc! {"$sample": {"size": 1, "x": 1}}],
                parse_err(28748, "unrecognized option to $sample: x"),
            ),
            (
                vec![doc! {"$sample": {}}],
                parse_err(28749, "$sample stage must specify a size"),
            ),
        ],
    );
}
