//! Capability: `$percentile` and `$median` with MongoDB 7.0's `approximate` method — as `$group`
//! accumulators (a t-digest, exact up to 2,000 values), as `$setWindowFields` functions (the
//! t-digest over windows from the partition's start, the exact percentile of any other
//! window) and as expressions (the exact percentile of an array, a number of itself);
//! numbers of every type count, other values and NaN do not; `p` from constant expressions
//! and the command's `let`; MongoDB's parse errors.
//!
//! Method: the cases of MongoDB's `jstests/aggregation/accumulators/percentiles_approx.js`,
//! `median_approx.js`, `percentiles_syntax.js`, the expression tests and
//! `sources/setWindowFields/percentile.js`, with their expected values.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Bson, Document, bson, doc};
use streamcache::history::{AggregateOptions, History};

const M: &str = "approximate";

fn with(docs: Vec<Document>) -> (tempfile::TempDir, History) {
    history_common::open_with(docs)
}

fn xs(values: Vec<Bson>) -> Vec<Document> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, x)| {
            let mut d = doc! {"_id": i64::try_from(i).unwrap()};
            if x != Bson::Undefined {
                d.insert("x", x);
            }
            d
        })
        .collect()
}

/// `$group` of everything with `acc` as `p`, and the command's `let`.
fn group(h: &History, acc: Document, lets: Option<Document>) -> Result<Bson, i32> {
    let options = AggregateOptions {
        let_vars: lets,
        ..AggregateOptions::default()
    };
    h.aggregate_with(
        "db",
        "c",
        &[doc! {"$group": {"_id": null, "p": acc}}],
        options,
    )
    .map(|out| out[0].get("p").cloned().unwrap())
    .map_err(|e| e.code())
}

fn doubles(v: &[f64]) -> Bson {
    Bson::Array(v.iter().map(|&x| Bson::Double(x)).collect())
}

#[test]
fn group_percentiles_of_mixed_values() {
    // Missing values are `Undefined` in `xs`.
    let (_d, h) = with(xs(vec![
        Bson::Int32(0),
        "non-numeric".into(),
        Bson::Int32(1),
        Bson::Undefined,
        Bson::Int32(2),
    ]));
    let pct = |p: Bson| doc! {"$percentile": {"input": "$x", "p": p, "method": M}};
    assert_eq!(group(&h, pct(bson!([0.5])), None), Ok(doubles(&[1.0])));
    assert_eq!(
        group(&h, doc! {"$median": {"input": "$x", "method": M}}, None),
        Ok(Bson::Double(1.0))
    );
    assert_eq!(
        group(&h, pct(bson!([0.5, 0.9, 0.1])), None),
        Ok(doubles(&[1.0, 2.0, 0.0]))
    );
    // `p` from the command's `let` and from constant expressions over it.
    let lets = doc! {"ps": [0.5, 0.9, 0.1], "p90": 0.9};
    assert_eq!(
        group(&h, pct(Bson::String("$$ps".into())), Some(lets.clone())),
        Ok(doubles(&[1.0, 2.0, 0.0]))
    );
    assert_eq!(
        group(&h, pct(bson!(["$$p90"])), Some(lets.clone())),
        Ok(doubles(&[2.0]))
    );
    assert_eq!(
        group(
            &h,
            pct(bson!({"$concatArrays": [[0.1, 0.5], ["$$p90"]]})),
            Some(lets.clone())
        ),
        Ok(doubles(&[0.0, 1.0, 2.0]))
    );
    let (_d, numbers) = with(xs(vec![Bson::Int32(0), Bson::Int32(1), Bson::Int32(2)]));
    assert_eq!(
        group(
            &numbers,
            doc! {"$percentile": {"input": {"$add": [42, "$x"]}, "p": "$$ps", "method": M}},
            Some(lets)
        ),
        Ok(doubles(&[43.0, 44.0, 42.0]))
    );
    // `p` read from the documents is not constant.
    assert_eq!(group(&h, pct(bson!(["$x"])), None), Err(7_750_300));
    // The input's expression parses before `p`.
    assert_eq!(
        group(
            &h,
            doc! {"$percentile": {"input": {"$foo": 1}, "p": 0.5, "method": M}},
            None
        ),
        Err(168)
    );
    // A `$lookup`'s variables differ per joined document: not constants.
    let e = h
        .aggregate(
            "db",
            "c",
            &[doc! {"$lookup": {
                "from": "c",
                "let": {"v": "$x"},
                "pipeline": [{"$group": {"_id": null, "p": {"$percentile": {
                    "input": "$x", "p": {"$ifNull": ["$$v", [0.5]]}, "method": M,
                }}}}],
                "as": "j",
            }}],
        )
        .unwrap_err();
    assert_eq!(e.code(), 7_750_300, "{e}");
}

#[test]
fn group_of_nothing_numeric_is_null_and_ends_are_min_and_max() {
    let (_d, h) = with(xs(vec![
        "non-numeric".into(),
        Bson::Undefined,
        Bson::DateTime(bson::DateTime::from_millis(0)),
        bson!([42, 43]),
        Bson::Null,
        Bson::Double(f64::NAN),
    ]));
    let pct = |p: Bson| doc! {"$percentile": {"input": "$x", "p": p, "method": M}};
    assert_eq!(group(&h, pct(bson!([0.5])), None), Ok(bson!([null])));
    assert_eq!(
        group(&h, pct(bson!([0.5, 0.9])), None),
        Ok(bson!([null, null]))
    );
    assert_eq!(
        group(&h, doc! {"$median": {"input": "$x", "method": M}}, None),
        Ok(Bson::Null)
    );
    let (_d, h) = with(xs(vec![
        Bson::Int32(10),
        Bson::Int64(5),
        Bson::Double(27.0),
    ]));
    assert_eq!(group(&h, pct(bson!([0])), None), Ok(doubles(&[5.0])));
    assert_eq!(group(&h, pct(bson!([1])), None), Ok(doubles(&[27.0])));
}

#[test]
fn group_keys_have_their_own_digests() {
    let (_d, h) = with(vec![
        doc! {"k": 0, "x": 2},
        doc! {"k": 0, "x": 1},
        doc! {"k": 0, "x": "str"},
        doc! {"k": 1, "x": 2},
        doc! {"k": 1, "x": 0},
        doc! {"k": 2},
    ]);
    let out = h
        .aggregate(
            "db",
            "c",
            &[
                doc! {"$group": {
                    "_id": "$k",
                    "p": {"$percentile": {"input": "$x", "p": [0.9], "method": M}},
                    "m": {"$median": {"input": "$x", "method": M}},
                }},
                doc! {"$sort": {"_id": 1}},
            ],
        )
        .unwrap();
    assert_eq!(
        out,
        vec![
            doc! {"_id": 0, "p": [2.0], "m": 1.0},
            doc! {"_id": 1, "p": [2.0], "m": 0.0},
            doc! {"_id": 2, "p": [null], "m": null},
        ]
    );
}

/// A generator of MongoDB's `Random.rand()`-like samples, deterministic.
fn samples(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            #[expect(clippy::cast_precision_loss, reason = "53 random bits")]
            let x = (s >> 11) as f64 / (1u64 << 53) as f64;
            x
        })
        .collect()
}

/// percentiles_approx.js's accuracy check: for each p, the rank of the result among the sorted
/// samples is within 0.1 % of n of the true rank.
#[test]
fn large_groups_are_within_mongodbs_accuracy_bound() {
    let values = samples(10_000, 20_230_328);
    let mut docs: Vec<Document> = values.iter().map(|x| doc! {"x": x}).collect();
    // Infinities after every 2,000th sample and decimal NaNs are counted and skipped.
    for i in 0..5 {
        docs.insert(i * 2_001, doc! {"x": f64::INFINITY});
        docs.insert(i * 2_001, doc! {"x": f64::NEG_INFINITY});
        docs.push(doc! {"x": Bson::Decimal128("NaN".parse().unwrap())});
    }
    let (_d, h) = with(docs);
    let ps = [
        0.0, 0.001, 0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99, 0.999, 1.0,
    ];
    let got = group(
        &h,
        doc! {"$percentile": {"input": "$x", "p": ps.to_vec(), "method": M}},
        None,
    )
    .unwrap();
    let mut sorted = vec![f64::NEG_INFINITY; 5];
    let mut finite = values;
    finite.sort_by(f64::total_cmp);
    sorted.extend(finite);
    sorted.extend([f64::INFINITY; 5]);
    #[expect(clippy::cast_precision_loss, reason = "counts of 10,010")]
    let n = sorted.len() as f64;
    for (p, r) in ps.iter().zip(got.as_array().unwrap()) {
        let r = r.as_f64().unwrap();
        let computed = sorted.partition_point(|x| *x < r);
        #[expect(clippy::cast_precision_loss, reason = "a rank of 10,010")]
        let computed = computed as f64;
        let truth = (p * n - 1.0).max(0.0);
        assert!(
            (truth - computed).abs() <= 0.001 * n + 1.0,
            "p {p}: {r} at rank {computed}, true rank {truth}"
        );
    }
}

fn project(h: &History, e: Bson) -> Bson {
    h.aggregate("db", "c", &[doc! {"$project": {"_id": 0, "p": e}}])
        .unwrap()[0]
        .get("p")
        .cloned()
        .unwrap_or(Bson::Undefined)
}

#[test]
fn the_expression_is_exact_over_an_array_and_a_number_is_its_own_percentile() {
    let (_d, h) = with(vec![doc! {
        "a": [0, "non-numeric", 1, 2], "b": [10, 5, 27], "x": 0, "x1": "non-numeric",
        "x2": 1, "x3": 2, "x4": [2, 2, 2], "y": 3, "z": [2, 1],
    }]);
    let pct = |input: Bson, p: Bson| bson!({"$percentile": {"input": input, "p": p, "method": M}});
    assert_eq!(project(&h, pct("$a".into(), bson!([0.5]))), doubles(&[1.0]));
    assert_eq!(project(&h, pct("$b".into(), bson!([0]))), doubles(&[5.0]));
    assert_eq!(project(&h, pct("$b".into(), bson!([1]))), doubles(&[27.0]));
    assert_eq!(
        project(
            &h,
            pct(bson!(["$x", "$x1", "$x2", "$x3", "$x4"]), bson!([0.5]))
        ),
        doubles(&[1.0])
    );
    assert_eq!(
        project(&h, pct(bson!(["$x1"]), bson!([0.5]))),
        bson!([null])
    );
    assert_eq!(
        project(&h, pct("$x".into(), bson!([0.5, 0.9, 0.1]))),
        doubles(&[0.0, 0.0, 0.0])
    );
    assert_eq!(
        project(&h, pct("$x1".into(), bson!([0.5, 0.9, 0.1]))),
        bson!([null, null, null])
    );
    assert_eq!(
        project(
            &h,
            pct(
                bson!({"$concatArrays": ["$z", [{"$add": [42, "$y"]}]]}),
                bson!([0.5, 0.9])
            )
        ),
        doubles(&[2.0, 45.0])
    );
    let median = |input: Bson| bson!({"$median": {"input": input, "method": M}});
    assert_eq!(project(&h, median("$a".into())), Bson::Double(1.0));
    assert_eq!(
        project(&h, median(bson!(["$x", "$x1", "$x2", "$x3"]))),
        Bson::Double(1.0)
    );
    assert_eq!(project(&h, median("$x1".into())), Bson::Null);
    // The expression's own codes.
    for (e, code) in [
        (bson!({"$percentile": 0.5}), 7_436_200),
        (bson!({"$median": 0.5}), 7_436_201),
        (
            bson!({"$percentile": {"input": "$a", "p": [2], "method": M}}),
            7_750_303,
        ),
        (bson!({"$median": {"input": "$a", "method": "discrete"}}), 2),
    ] {
        let err = h
            .aggregate("db", "c", &[doc! {"$project": {"p": e.clone()}}])
            .unwrap_err();
        assert_eq!(err.code(), code, "{e}");
    }
}

/// `percentile.js`'s ticker data: prices 500 − 10·i (T1) and 400 + 10·i (T2), i < 10.
fn tickers() -> Vec<Document> {
    let mut docs = Vec::new();
    for i in 0..10 {
        docs.push(doc! {"_id": i, "partIndex": i, "ticker": "T1", "price": 500 - 10 * i});
    }
    for i in 0..10 {
        docs.push(doc! {"_id": i + 10, "partIndex": i, "ticker": "T2", "price": 400 + 10 * i});
    }
    docs
}

fn windowed(h: &History, output: Document) -> Vec<Document> {
    h.aggregate(
        "db",
        "c",
        &[
            doc! {"$setWindowFields": {"sortBy": {"_id": 1}, "output": output}},
            doc! {"$sort": {"_id": 1}},
        ],
    )
    .unwrap()
}

#[test]
fn window_functions_over_the_whole_partition_and_sliding_windows() {
    let (_d, h) = with(tickers());
    let out = windowed(
        &h,
        doc! {
            "p": {"$percentile": {"p": [0.01, 0.99], "input": "$price", "method": M}},
            "m": {"$median": {"input": "$price", "method": M}},
            "s": {"$percentile": {"p": [0.1, 0.6], "input": "$ticker", "method": M}},
        },
    );
    for d in &out {
        assert_eq!(d.get("p"), Some(&doubles(&[400.0, 500.0])));
        assert_eq!(d.get("m"), Some(&Bson::Double(450.0)));
        assert_eq!(d.get("s"), Some(&bson!([null, null])));
    }
    let out = windowed(
        &h,
        doc! {
            "p": {"$percentile": {"p": [0.9], "input": "$price", "method": M}, "window": {"documents": [-1, 0]}},
            "m": {"$median": {"input": "$price", "method": M}, "window": {"documents": [-1, 0]}},
        },
    );
    let prices: Vec<f64> = tickers()
        .iter()
        .map(|d| f64::from(d.get_i32("price").unwrap()))
        .collect();
    for (i, d) in out.iter().enumerate() {
        let before = prices[i.saturating_sub(1)];
        assert_eq!(d.get("p"), Some(&doubles(&[before.max(prices[i])])), "{i}");
        assert_eq!(
            d.get("m"),
            Some(&Bson::Double(before.min(prices[i]))),
            "{i}"
        );
    }
}

/// percentile.js's `testAccumAgainstGroup`: each document's window gives what `$group` gives
/// over the same documents; an empty window gives nulls.
#[test]
fn every_window_agrees_with_group_over_its_documents() {
    let (_d, h) = with(tickers());
    let bounds: [(Bson, Bson); 8] = [
        ("unbounded".into(), "unbounded".into()),
        ("unbounded".into(), "current".into()),
        ("unbounded".into(), Bson::Int32(2)),
        ("current".into(), "unbounded".into()),
        (Bson::Int32(-2), Bson::Int32(0)),
        (Bson::Int32(-3), Bson::Int32(-1)),
        (Bson::Int32(1), Bson::Int32(3)),
        (Bson::Int32(-20), Bson::Int32(20)),
    ];
    for partition in [false, true] {
        for (lo, hi) in &bounds {
            let spec = |name: &str| {
                let mut f = if name == "$median" {
                    doc! {name: {"input": "$price", "method": M}}
                } else {
                    doc! {name: {"input": "$price", "p": [0.1, 0.6], "method": M}}
                };
                f.insert("window", doc! {"documents": [lo.clone(), hi.clone()]});
                f
            };
            let mut stage = doc! {
                "sortBy": {"partIndex": 1},
                "output": {"p": spec("$percentile"), "m": spec("$median")},
            };
            if partition {
                stage.insert("partitionBy", "$ticker");
            }
            let out = h
                .aggregate("db", "c", &[doc! {"$setWindowFields": stage}])
                .unwrap();
            // The same documents in the same order, to pick each window's members by position.
            let mut members = out.clone();
            for (i, d) in out.iter().enumerate() {
                let part: Vec<&Document> = members
                    .iter()
                    .filter(|m| !partition || m.get("ticker") == d.get("ticker"))
                    .collect();
                let at = part
                    .iter()
                    .position(|m| m.get("_id") == d.get("_id"))
                    .unwrap();
                // Positions as offsets from `at`, clamped to the partition.
                let len = i64::try_from(part.len()).unwrap();
                let bound = |b: &Bson, unbounded: i64| match b {
                    Bson::String(s) if s == "current" => i64::try_from(at).unwrap(),
                    Bson::String(_) => unbounded,
                    other => i64::try_from(at).unwrap() + i64::from(other.as_i32().unwrap()),
                };
                let clamp = |x: i64| usize::try_from(x.clamp(0, len)).unwrap();
                let start = clamp(bound(lo, 0));
                let end = clamp(bound(hi, len - 1) + 1);
                let ids: Vec<Bson> = part
                    .get(start..end.max(start))
                    .unwrap_or_default()
                    .iter()
                    .map(|m| m.get("_id").cloned().unwrap())
                    .collect();
                let want = h
                    .aggregate(
                        "db",
                        "c",
                        &[
                            doc! {"$match": {"_id": {"$in": ids}}},
                            doc! {"$group": {
                                "_id": null,
                                "p": {"$percentile": {"input": "$price", "p": [0.1, 0.6], "method": M}},
                                "m": {"$median": {"input": "$price", "method": M}},
                            }},
                        ],
                    )
                    .unwrap();
                let (p, m) = want.first().map_or((bson!([null, null]), Bson::Null), |g| {
                    (g.get("p").cloned().unwrap(), g.get("m").cloned().unwrap())
                });
                assert_eq!(
                    (d.get("p").unwrap(), d.get("m").unwrap()),
                    (&p, &m),
                    "{lo}..{hi} partition {partition}, document {i}"
                );
            }
            members.clear();
        }
    }
}

#[test]
fn window_specifications_are_refused_with_mongodbs_codes() {
    let (_d, h) = with(tickers());
    let run = |output: Document| {
        h.aggregate(
            "db",
            "c",
            &[doc! {"$setWindowFields": {"sortBy": {"_id": 1}, "output": output}}],
        )
        .unwrap_err()
        .code()
    };
    let pct = doc! {"p": [0.5], "input": "$price", "method": M};
    assert_eq!(
        run(doc! {"p": {"$percentile": pct.clone(), "window": [-1, 1]}}),
        9
    );
    assert_eq!(
        run(doc! {"p": {"$percentile": pct.clone(), "window": {"documents": []}}}),
        9
    );
    assert_eq!(run(doc! {"p": {"$percentile": pct.clone(), "extra": 1}}), 9);
    assert_eq!(run(doc! {"p": {"$percentile": "not an object"}}), 7_429_703);
    assert_eq!(run(doc! {"p": {"$median": "not an object"}}), 7_436_100);
    assert_eq!(
        run(doc! {"p": {"$percentile": {"p": [0.5], "input": "$price", "method": false}}}),
        14
    );
    assert_eq!(
        run(doc! {"p": {"$percentile": {"input": "$price", "method": M}}}),
        40414
    );
    assert_eq!(
        run(doc! {"p": {"$median": {"p": [0.5], "input": "$price", "method": M}}}),
        40415
    );
}
