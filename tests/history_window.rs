//! Capability: the `$setWindowFields` stage — window functions over each document's partition
//! in `sortBy` order: the accumulators over the whole partition, a window of documents around
//! it or a range of sort values (numbers, or dates with a unit); ranks, `$shift`,
//! `$derivative`, `$integral`, `$expMovingAvg`, `$locf` and `$linearFill`; MongoDB 7.0's
//! parse errors.
//!
//! Method: the cases of MongoDB's `jstests/aggregation/sources/setWindowFields/` (`range.js`,
//! `shift.js`, `rank.js`, `partition.js`, `empty_window.js`, `parse.js`) with their expected
//! values, and small hand-computed series for the numeric functions; windows that slide (both
//! bounds move) are checked against the same function over the whole window recomputed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly on setup errors"
)]

mod history_common;

use bson::{Bson, Document, doc};
use streamcache::history::History;

use history_common::open_with as with;

fn run(h: &History, pipeline: &[Document]) -> Result<Vec<Document>, (i32, String)> {
    h.aggregate("db", "c", pipeline)
        .map_err(|e| (e.code(), e.to_string()))
}

/// `$setWindowFields` with `stage`, the documents in the stage's order, field `f` of each.
fn column(h: &History, stage: Document, f: &str) -> Vec<Bson> {
    run(h, &[doc! {"$setWindowFields": stage}])
        .unwrap()
        .iter()
        .map(|d| d.get(f).cloned().unwrap_or(Bson::Undefined))
        .collect()
}

fn code(h: &History, stage: Document) -> i32 {
    match run(h, &[doc! {"$setWindowFields": stage}]) {
        Ok(out) => panic!("expected an error, got {out:?}"),
        Err((code, _)) => code,
    }
}

fn message(h: &History, stage: Document) -> String {
    match run(h, &[doc! {"$setWindowFields": stage}]) {
        Ok(out) => panic!("expected an error, got {out:?}"),
        Err((_, m)) => m,
    }
}

fn ints(v: &[i32]) -> Vec<Bson> {
    v.iter().map(|&x| Bson::Int32(x)).collect()
}

fn doubles(v: &[f64]) -> Vec<Bson> {
    v.iter().map(|&x| Bson::Double(x)).collect()
}

fn arr(v: &[f64]) -> Bson {
    Bson::Array(
        v.iter()
            .map(|&x| {
                if x.fract() == 0.0 {
                    Bson::Int32(x as i32)
                } else {
                    Bson::Double(x)
                }
            })
            .collect(),
    )
}

/// The documents of `range.js`: x = 0, 1, 1.5, 2, 3, 100, 100, 101.
fn range_docs() -> (tempfile::TempDir, History) {
    let xs = [
        Bson::Int32(0),
        Bson::Int32(1),
        Bson::Double(1.5),
        Bson::Int32(2),
        Bson::Int32(3),
        Bson::Int32(100),
        Bson::Int32(100),
        Bson::Int32(101),
    ];
    with(
        xs.iter()
            .enumerate()
            .map(|(i, x)| doc! {"_id": i as i32, "x": x.clone()})
            .collect(),
    )
}

fn push_range(h: &History, lo: Bson, hi: Bson) -> Vec<Bson> {
    column(
        h,
        doc! {"sortBy": {"x": 1, }, "output": {"y": {"$push": "$x", "window": {"range": [lo, hi]}}}},
        "y",
    )
}

#[test]
fn range_windows_hold_the_documents_whose_sort_value_is_in_range() {
    let (_d, h) = range_docs();
    let u = || Bson::String("unbounded".into());
    assert_eq!(
        push_range(&h, Bson::Int32(-1), Bson::Int32(0)),
        vec![
            arr(&[0.0]),
            arr(&[0.0, 1.0]),
            arr(&[1.0, 1.5]),
            arr(&[1.0, 1.5, 2.0]),
            arr(&[2.0, 3.0]),
            arr(&[100.0, 100.0]),
            arr(&[100.0, 100.0]),
            arr(&[100.0, 100.0, 101.0]),
        ]
    );
    assert_eq!(
        push_range(&h, Bson::Int32(0), u()),
        vec![
            arr(&[0.0, 1.0, 1.5, 2.0, 3.0, 100.0, 100.0, 101.0]),
            arr(&[1.0, 1.5, 2.0, 3.0, 100.0, 100.0, 101.0]),
            arr(&[1.5, 2.0, 3.0, 100.0, 100.0, 101.0]),
            arr(&[2.0, 3.0, 100.0, 100.0, 101.0]),
            arr(&[3.0, 100.0, 100.0, 101.0]),
            arr(&[100.0, 100.0, 101.0]),
            arr(&[100.0, 100.0, 101.0]),
            arr(&[101.0]),
        ]
    );
    assert_eq!(
        push_range(&h, Bson::Int32(-1), Bson::Int32(-1)),
        vec![
            arr(&[]),
            arr(&[0.0]),
            arr(&[]),
            arr(&[1.0]),
            arr(&[2.0]),
            arr(&[]),
            arr(&[]),
            arr(&[100.0, 100.0]),
        ]
    );
    assert_eq!(
        push_range(&h, u(), Bson::Int32(-99)),
        vec![
            arr(&[]),
            arr(&[]),
            arr(&[]),
            arr(&[]),
            arr(&[]),
            arr(&[0.0, 1.0]),
            arr(&[0.0, 1.0]),
            arr(&[0.0, 1.0, 1.5, 2.0]),
        ]
    );
    assert_eq!(
        push_range(&h, Bson::Int32(99), u()),
        vec![
            arr(&[100.0, 100.0, 101.0]),
            arr(&[100.0, 100.0, 101.0]),
            arr(&[101.0]),
            arr(&[101.0]),
            arr(&[]),
            arr(&[]),
            arr(&[]),
            arr(&[]),
        ]
    );
    // 'current' is the document itself (ties are left out); 0 is its sort value.
    let current = push_range(&h, Bson::String("current".into()), Bson::Int32(1));
    assert_eq!(current[5], arr(&[100.0, 100.0, 101.0]));
    assert_eq!(current[6], arr(&[100.0, 101.0]));
    let lower = push_range(&h, Bson::Int32(-97), Bson::String("current".into()));
    assert_eq!(lower[5], arr(&[3.0, 100.0]));
    assert_eq!(lower[6], arr(&[3.0, 100.0, 100.0]));
    let only = push_range(
        &h,
        Bson::String("current".into()),
        Bson::String("current".into()),
    );
    assert_eq!(only[5], arr(&[100.0]));
    // A decimal bound is a number like another.
    let dec = push_range(
        &h,
        Bson::Decimal128("-1.5".parse().unwrap()),
        Bson::Int64(0),
    );
    assert_eq!(dec[3], arr(&[1.0, 1.5, 2.0]));
}

#[test]
fn a_range_window_needs_a_number_as_the_sort_value_of_every_document() {
    let (_d, h) = with(vec![doc! {"_id": 1, "a": 2}, doc! {"_id": 2, "a": "xyz"}]);
    let stage = doc! {"sortBy": {"a": 1}, "output": {"b": {"$max": 5, "window": {"range": [3, "unbounded"]}}}};
    assert_eq!(code(&h, stage), 5_429_414);
    let (_d, h) = with(vec![doc! {"_id": 1, "a": bson::DateTime::from_millis(0)}]);
    let stage =
        doc! {"sortBy": {"a": 1}, "output": {"b": {"$sum": 1, "window": {"range": [-1, 0]}}}};
    assert_eq!(code(&h, stage), 5_429_413);
    let (_d, h) = with(vec![doc! {"_id": 1, "a": 1}]);
    let stage = doc! {"sortBy": {"a": 1}, "output": {"b": {"$sum": 1, "window": {"range": [-1, 0], "unit": "day"}}}};
    assert_eq!(code(&h, stage), 5_429_513);
}

#[test]
fn a_range_window_with_a_unit_moves_in_calendar_time() {
    let day = 86_400_000_i64;
    let at = |ms: i64| bson::DateTime::from_millis(ms);
    // 2024-01-31, 2024-02-29, 2024-03-01, 2024-03-02 (UTC midnight).
    let (jan31, feb29, mar1, mar2) = (1_706_659_200_000, 1_709_164_800_000, 0, 0);
    let (mar1, mar2) = (mar1 + feb29 + day, mar2 + feb29 + 2 * day);
    let (_d, h) = with(vec![
        doc! {"_id": 1, "t": at(jan31), "v": 1},
        doc! {"_id": 2, "t": at(feb29), "v": 2},
        doc! {"_id": 3, "t": at(mar1), "v": 4},
        doc! {"_id": 4, "t": at(mar2), "v": 8},
    ]);
    // One month back from 2024-02-29 is 2024-01-29, back from 2024-03-01 is 2024-02-01.
    let month = column(
        &h,
        doc! {"sortBy": {"t": 1}, "output": {"s": {"$sum": "$v", "window": {"range": [-1, 0], "unit": "month"}}}},
        "s",
    );
    assert_eq!(month, ints(&[1, 3, 6, 14]));
    let days = column(
        &h,
        doc! {"sortBy": {"t": 1}, "output": {"s": {"$sum": "$v", "window": {"range": [-1, 0], "unit": "day"}}}},
        "s",
    );
    assert_eq!(days, ints(&[1, 2, 6, 12]));
}

#[test]
fn document_windows_slide_with_the_current_position() {
    let (_d, h) = with(
        [1, 3, 7, 2, 9, 4]
            .iter()
            .enumerate()
            .map(|(i, v)| doc! {"_id": i as i32, "v": v})
            .collect(),
    );
    let out = |f: &str, lo: Bson, hi: Bson| {
        let mut spec = Document::new();
        spec.insert(f, "$v");
        spec.insert("window", doc! {"documents": [lo, hi]});
        column(&h, doc! {"sortBy": {"_id": 1}, "output": {"r": spec}}, "r")
    };
    let i = Bson::Int32;
    assert_eq!(out("$sum", i(-1), i(1)), ints(&[4, 11, 12, 18, 15, 13]));
    assert_eq!(out("$min", i(-1), i(1)), ints(&[1, 1, 2, 2, 2, 4]));
    assert_eq!(out("$max", i(-1), i(1)), ints(&[3, 7, 7, 9, 9, 9]));
    assert_eq!(out("$max", i(-2), i(0)), ints(&[1, 3, 7, 7, 9, 9]));
    assert_eq!(
        out("$avg", i(-1), i(1)),
        doubles(&[2.0, 11.0 / 3.0, 4.0, 6.0, 5.0, 6.5])
    );
    assert_eq!(
        out(
            "$sum",
            Bson::String("unbounded".into()),
            Bson::String("current".into())
        ),
        ints(&[1, 4, 11, 13, 22, 26])
    );
    assert_eq!(out("$first", i(-2), i(-1)), {
        let mut v = vec![Bson::Null];
        v.extend(ints(&[1, 1, 3, 7, 2]));
        v
    });
    assert_eq!(out("$last", i(1), i(2)), {
        let mut v = ints(&[7, 2, 9, 4, 4]);
        v.push(Bson::Null);
        v
    });
    assert_eq!(
        out("$push", i(0), i(1)),
        vec![
            arr(&[1.0, 3.0]),
            arr(&[3.0, 7.0]),
            arr(&[7.0, 2.0]),
            arr(&[2.0, 9.0]),
            arr(&[9.0, 4.0]),
            arr(&[4.0]),
        ]
    );
    // A window past the partition's end is empty.
    assert_eq!(out("$sum", i(100), i(100)), ints(&[0; 6]));
}

/// Sliding `$stdDevSamp`, `$stdDevPop` and `$covariancePop` (states that values enter and
/// leave) against each window's value computed from scratch.
#[test]
fn sliding_statistics_equal_the_statistics_of_each_window() {
    let vs = [2.5, 7.0, -1.0, 4.0, 4.0, 10.5, 3.0, 0.5, 8.0];
    let (_d, h) = with(
        vs.iter()
            .enumerate()
            .map(|(i, v)| doc! {"_id": i as i32, "v": v, "w": (i as f64) * 2.0 - v})
            .collect(),
    );
    let got = |f: &str, input: Bson| {
        let mut spec = Document::new();
        spec.insert(f, input);
        spec.insert("window", doc! {"documents": [-2, 1]});
        column(&h, doc! {"sortBy": {"_id": 1}, "output": {"r": spec}}, "r")
    };
    let n = vs.len();
    let window = |i: usize| (i.saturating_sub(2), (i + 2).min(n));
    let ws: Vec<f64> = (0..n).map(|i| (i as f64) * 2.0 - vs[i]).collect();
    let close = |a: &Bson, b: f64| {
        let a = a.as_f64().unwrap();
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    };
    let samp = got("$stdDevSamp", Bson::String("$v".into()));
    let pop = got("$stdDevPop", Bson::String("$v".into()));
    let cov = got(
        "$covariancePop",
        Bson::Array(vec!["$v".into(), "$w".into()]),
    );
    for i in 0..n {
        let (lo, hi) = window(i);
        let xs = &vs[lo..hi];
        let k = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / k;
        let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
        close(&samp[i], (ss / (k - 1.0)).sqrt());
        close(&pop[i], (ss / k).sqrt());
        let ys = &ws[lo..hi];
        let mean_y = ys.iter().sum::<f64>() / k;
        let c: f64 = xs
            .iter()
            .zip(ys)
            .map(|(x, y)| (x - mean) * (y - mean_y))
            .sum();
        close(&cov[i], c / k);
    }
}

#[test]
fn empty_windows_give_each_function_its_empty_value() {
    let (_d, h) = with(vec![
        doc! {"_id": 0, "price": 1000, "ts": bson::DateTime::from_millis(5)},
    ]);
    for (f, input, expected) in [
        ("$stdDevPop", "$noField", Bson::Null),
        ("$sum", "$noField", Bson::Int32(0)),
        ("$avg", "$noField", Bson::Null),
        ("$min", "$noField", Bson::Null),
        ("$max", "$noField", Bson::Null),
        ("$push", "$noField", Bson::Array(vec![])),
    ] {
        let mut spec = Document::new();
        spec.insert(f, input);
        spec.insert("window", doc! {"documents": ["unbounded", "current"]});
        let got = column(&h, doc! {"sortBy": {"ts": 1}, "output": {"r": spec}}, "r");
        assert_eq!(got, vec![expected.clone()], "{f} of a missing field");
        let mut spec = Document::new();
        spec.insert(f, "$price");
        spec.insert("window", doc! {"documents": ["unbounded", -1]});
        let got = column(&h, doc! {"sortBy": {"ts": 1}, "output": {"r": spec}}, "r");
        assert_eq!(got, vec![expected], "{f} of an empty window");
    }
}

#[test]
fn partitions_put_null_and_missing_together_and_refuse_arrays() {
    let (_d, h) = with(vec![
        doc! {"_id": 1, "int_field": 0},
        doc! {"_id": 2, "int_field": Bson::Null, "other_field": Bson::Null},
        doc! {"_id": 3, "other_field": 0},
        doc! {"_id": 4, "int_field": Bson::Null},
        doc! {"_id": 5, "other_field": Bson::Null},
        doc! {"_id": 6, "int_field": Bson::Null, "other_field": Bson::Null},
    ]);
    let out = run(
        &h,
        &[doc! {"$setWindowFields": {"partitionBy": "$int_field", "output": {"count": {"$sum": 1}}}}],
    )
    .unwrap();
    for d in &out {
        let expected = if d.get_i32("int_field").ok() == Some(0) {
            1
        } else {
            5
        };
        assert_eq!(d.get_i32("count").unwrap(), expected, "{d}");
    }
    // An object key: a missing field is left out of it, so {int_field: null} and {} differ.
    let out = run(
        &h,
        &[doc! {"$setWindowFields": {
            "partitionBy": {"i": "$int_field", "o": "$other_field"},
            "output": {"count": {"$sum": 1}},
        }}],
    )
    .unwrap();
    let count = |id: i32| {
        out.iter()
            .find(|d| d.get_i32("_id").unwrap() == id)
            .unwrap()
            .get_i32("count")
            .unwrap()
    };
    assert_eq!(
        [count(1), count(2), count(3), count(4), count(5), count(6)],
        [1, 2, 1, 1, 1, 2]
    );
    let (_d, h) = with(vec![doc! {"_id": 1, "arr": [1, 2]}]);
    let e = run(
        &h,
        &[doc! {"$setWindowFields": {"partitionBy": "$arr", "sortBy": {"_id": 1}, "output": {"a": {"$sum": 1}}}}],
    )
    .unwrap_err();
    assert_eq!(e.0, 14, "{}", e.1);
    assert_eq!(
        code(&h, doc! {"partitionBy": {"$literal": [1]}, "output": {}}),
        14
    );
}

#[test]
fn shift_reads_the_document_by_positions_away() {
    let (_d, h) = with(
        (0..10)
            .map(|i| doc! {"_id": i, "one": i, "partition": i % 2})
            .collect(),
    );
    let shift = |stage: Document| column(&h, stage, "r");
    let got = shift(
        doc! {"sortBy": {"one": 1}, "output": {"r": {"$shift": {"by": -1, "output": "$one", "default": -10}}}},
    );
    let expected: Vec<Bson> = (0..10)
        .map(|i| Bson::Int32(if i == 0 { -10 } else { i - 1 }))
        .collect();
    assert_eq!(got, expected);
    let got = shift(
        doc! {"sortBy": {"one": -1}, "output": {"r": {"$shift": {"by": 1, "output": "$one"}}}},
    );
    let expected: Vec<Bson> = (0..10)
        .rev()
        .map(|i| {
            if i == 0 {
                Bson::Null
            } else {
                Bson::Int32(i - 1)
            }
        })
        .collect();
    assert_eq!(got, expected);
    let got = shift(
        doc! {"partitionBy": "$partition", "sortBy": {"one": 1}, "output": {"r": {"$shift": {"by": 1, "output": "$one"}}}},
    );
    // Partition 0 (0, 2, …, 8) then partition 1 (1, 3, …, 9).
    let expected: Vec<Bson> = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9]
        .iter()
        .map(|&i| {
            if i >= 8 {
                Bson::Null
            } else {
                Bson::Int32(i + 2)
            }
        })
        .collect();
    assert_eq!(got, expected);
    let (_d, h) = with(vec![doc! {"_id": 1}, doc! {"_id": 2}]);
    let got = column(
        &h,
        doc! {"sortBy": {"_id": 1}, "output": {"a": {"$shift": {"output": "$b", "by": 1, "default": "c"}}}},
        "a",
    );
    assert_eq!(got, vec![Bson::from("c"), Bson::from("c")]);
    for bad in [
        doc! {"output": "$one"},
        doc! {"output": "$one", "by": "1"},
        doc! {"output": "$one", "by": {"$sum": [1, 1]}},
        doc! {"output": "$one", "by": 1.1},
        doc! {"by": 1},
        doc! {"output": "$one", "by": 1, "default": "$one"},
    ] {
        assert_eq!(
            code(
                &h,
                doc! {"sortBy": {"_id": 1}, "output": {"a": {"$shift": bad.clone()}}}
            ),
            9,
            "{bad}"
        );
    }
    assert_eq!(
        message(
            &h,
            doc! {"output": {"a": {"$shift": {"output": "$b", "by": 1}}}}
        ),
        "'$shift' requires a sortBy"
    );
    assert_eq!(
        column(
            &h,
            doc! {"sortBy": {"_id": 1}, "output": {"a": {"$shift": {"output": "$_id", "by": 1.0, "default": {"$add": [1, 1]}}}}},
            "a"
        ),
        vec![Bson::Int32(2), Bson::Int32(2)]
    );
}

#[test]
fn ranks_count_ties_by_the_sort_value() {
    let (_d, h) = with(
        (0..12)
            .map(|i| {
                let mut d = doc! {"_id": i, "double": f64::from(i / 2)};
                match i % 4 {
                    1 => d.insert("nullOrMissing", Bson::Null),
                    2 => d.insert("nullOrMissing", vec![Bson::Null]),
                    3 => d.insert("nullOrMissing", vec![Bson::from("abc"), Bson::Null]),
                    _ => None,
                };
                d
            })
            .collect(),
    );
    let rank = |f: &str, by: &str| {
        let mut spec = Document::new();
        spec.insert(f, Document::new());
        let mut sort = Document::new();
        sort.insert(by, 1);
        column(&h, doc! {"sortBy": sort, "output": {"r": spec}}, "r")
    };
    let seq = |f: fn(i32) -> i32| (0..12).map(|i| Bson::Int32(f(i))).collect::<Vec<_>>();
    assert_eq!(rank("$rank", "_id"), seq(|i| i + 1));
    assert_eq!(rank("$rank", "double"), seq(|i| i / 2 * 2 + 1));
    assert_eq!(rank("$denseRank", "double"), seq(|i| i / 2 + 1));
    assert_eq!(rank("$documentNumber", "double"), seq(|i| i + 1));
    assert_eq!(rank("$rank", "nullOrMissing"), seq(|_| 1));
    assert_eq!(rank("$denseRank", "nullOrMissing"), seq(|_| 1));
    assert_eq!(
        code(
            &h,
            doc! {"sortBy": {"_id": 1}, "output": {"r": {"$rank": {}, "window": []}}}
        ),
        5_371_601
    );
    assert_eq!(
        code(
            &h,
            doc! {"sortBy": {"_id": 1}, "output": {"r": {"$rank": "$_id"}}}
        ),
        5_371_603
    );
    assert_eq!(code(&h, doc! {"output": {"r": {"$rank": {}}}}), 5_371_602);
}

#[test]
fn derivative_integral_and_moving_average_follow_the_sort_field() {
    let (_d, h) = with(vec![
        doc! {"_id": 1, "t": 1, "v": 1},
        doc! {"_id": 2, "t": 2, "v": 3},
        doc! {"_id": 3, "t": 4, "v": 7},
    ]);
    let get = |spec: Document| column(&h, doc! {"sortBy": {"t": 1}, "output": {"r": spec}}, "r");
    assert_eq!(
        get(doc! {"$derivative": {"input": "$v"}, "window": {"documents": [-1, 0]}}),
        vec![Bson::Null, Bson::Double(2.0), Bson::Double(2.0)]
    );
    assert_eq!(
        get(doc! {"$integral": {"input": "$v"}, "window": {"documents": ["unbounded", "current"]}}),
        vec![Bson::Int32(0), Bson::Double(2.0), Bson::Double(12.0)]
    );
    // Sliding: the trapezoid of each pair of neighbours.
    assert_eq!(
        get(doc! {"$integral": {"input": "$v"}, "window": {"documents": [-1, 0]}}),
        vec![Bson::Int32(0), Bson::Double(2.0), Bson::Double(10.0)]
    );
    assert_eq!(
        get(doc! {"$expMovingAvg": {"input": "$v", "N": 3}}),
        doubles(&[1.0, 2.0, 4.5])
    );
    assert_eq!(
        get(doc! {"$expMovingAvg": {"input": "$v", "alpha": 0.25}}),
        doubles(&[1.0, 1.5, 2.875])
    );
    assert_eq!(get(doc! {"$count": {}}), ints(&[3, 3, 3]));
    // Dates per unit of time.
    let (_d, h) = with(vec![
        doc! {"_id": 1, "t": bson::DateTime::from_millis(0), "v": 0},
        doc! {"_id": 2, "t": bson::DateTime::from_millis(1000), "v": 5},
    ]);
    assert_eq!(
        column(
            &h,
            doc! {"sortBy": {"t": 1}, "output": {"r": {"$derivative": {"input": "$v", "unit": "second"}, "window": {"range": [-10, 0], "unit": "second"}}}},
            "r"
        ),
        vec![Bson::Null, Bson::Double(5.0)]
    );
    assert_eq!(
        column(
            &h,
            doc! {"sortBy": {"t": 1}, "output": {"r": {"$integral": {"input": "$v", "unit": "second"}}}},
            "r"
        ),
        vec![Bson::Double(2.5), Bson::Double(2.5)]
    );
    assert_eq!(
        code(
            &h,
            doc! {"sortBy": {"t": 1}, "output": {"r": {"$derivative": {"input": "$v"}, "window": {"documents": [-1, 0]}}}}
        ),
        5_624_901
    );
    assert_eq!(
        code(
            &h,
            doc! {"sortBy": {"t": 1}, "output": {"r": {"$derivative": {"input": "$v", "unit": "month"}, "window": {"documents": [-1, 0]}}}}
        ),
        5_490_710
    );
}

#[test]
fn n_functions_locf_and_linear_fill_run_per_window() {
    let (_d, h) = with(vec![
        doc! {"_id": 1, "v": 5},
        doc! {"_id": 2, "v": Bson::Null},
        doc! {"_id": 3, "v": 1},
        doc! {"_id": 4},
        doc! {"_id": 5, "v": 9},
    ]);
    let get = |spec: Document| column(&h, doc! {"sortBy": {"_id": 1}, "output": {"r": spec}}, "r");
    assert_eq!(
        get(doc! {"$maxN": {"n": 2, "input": "$v"}, "window": {"documents": [-1, 1]}}),
        vec![
            arr(&[5.0]),
            arr(&[5.0, 1.0]),
            arr(&[1.0]),
            arr(&[9.0, 1.0]),
            arr(&[9.0]),
        ]
    );
    assert_eq!(
        get(
            doc! {"$firstN": {"n": 2, "input": "$v"}, "window": {"documents": ["unbounded", "current"]}}
        ),
        vec![
            arr(&[5.0]),
            Bson::Array(vec![Bson::Int32(5), Bson::Null]),
            Bson::Array(vec![Bson::Int32(5), Bson::Null]),
            Bson::Array(vec![Bson::Int32(5), Bson::Null]),
            Bson::Array(vec![Bson::Int32(5), Bson::Null]),
        ]
    );
    assert_eq!(
        get(
            doc! {"$top": {"output": "$_id", "sortBy": {"v": -1}}, "window": {"documents": [0, 1]}}
        ),
        ints(&[1, 3, 3, 5, 5])
    );
    assert_eq!(get(doc! {"$locf": "$v"}), ints(&[5, 5, 1, 1, 9]));
    assert_eq!(
        get(doc! {"$linearFill": "$v"}),
        vec![
            Bson::Int32(5),
            Bson::Double(3.0),
            Bson::Int32(1),
            Bson::Double(5.0),
            Bson::Int32(9)
        ]
    );
    assert_eq!(
        get(doc! {"$addToSet": "$v", "window": {"documents": [-1, 1]}}),
        vec![
            Bson::Array(vec![Bson::Int32(5), Bson::Null]),
            Bson::Array(vec![Bson::Int32(5), Bson::Null, Bson::Int32(1)]),
            Bson::Array(vec![Bson::Null, Bson::Int32(1)]),
            arr(&[1.0, 9.0]),
            arr(&[9.0]),
        ]
    );
}

#[test]
fn outputs_overwrite_fields_and_write_dotted_paths() {
    let (_d, h) = with(vec![
        doc! {"_id": 1, "a": 1, "b": 5},
        doc! {"_id": 2, "a": 2},
    ]);
    let out = run(
        &h,
        &[doc! {"$setWindowFields": {"sortBy": {"_id": 1}, "output": {
            "a": {"$sum": "$a"},
            "b.total": {"$sum": "$a", "window": {"documents": ["unbounded", "current"]}},
        }}}],
    )
    .unwrap();
    assert_eq!(
        out,
        vec![
            doc! {"_id": 1, "a": 3, "b": {"total": 1}},
            doc! {"_id": 2, "a": 3, "b": {"total": 3}},
        ]
    );
}

/// MongoDB's parse errors, from `parse.js` and the window bounds' parser.
#[test]
fn malformed_specifications_get_mongodbs_errors() {
    let (_d, h) = with(vec![doc! {"_id": 1, "ts": 1}]);
    let window = |f: Document| doc! {"sortBy": {"ts": 1}, "output": {"v": f}};
    assert_eq!(
        run(&h, &[doc! {"$setWindowFields": "invalid"}])
            .unwrap_err()
            .0,
        9
    );
    assert_eq!(code(&h, doc! {"sortBy": "invalid", "output": {}}), 14);
    assert_eq!(code(&h, doc! {"output": "invalid"}), 14);
    assert_eq!(code(&h, doc! {"what_is_this": 1, "output": {}}), 40415);
    assert_eq!(code(&h, doc! {"sortBy": {"ts": 1}}), 40414);
    assert_eq!(
        message(&h, window(doc! {"abcde": 1})),
        "Expected a $-prefixed window function, abcde"
    );
    assert_eq!(
        message(&h, window(doc! {})),
        "Expected a $-prefixed window function"
    );
    assert_eq!(
        message(&h, window(doc! {"$mergeObjects": "$a"})),
        "Unrecognized window function, $mergeObjects"
    );
    assert_eq!(
        message(&h, window(doc! {"$sum": "$a", "$avg": "$a"})),
        "Cannot specify two functions in window function spec"
    );
    assert_eq!(
        message(&h, window(doc! {"$sum": "$a", "windoww": {}})),
        "Window function found an unknown argument: windoww"
    );
    assert_eq!(
        message(&h, window(doc! {"$count": 1})),
        "$count only accepts an empty object as input"
    );
    for ok in [
        doc! {"documents": [-2, 4]},
        doc! {"documents": [-3, "unbounded"]},
        doc! {"range": ["unbounded", "unbounded"]},
        doc! {"range": [Bson::Decimal128("1.42".parse().unwrap()), Bson::Int64(5)]},
        doc! {"documents": [{"$add": [2, 2]}, {"$add": [2, 2]}]},
        doc! {},
    ] {
        run(
            &h,
            &[doc! {"$setWindowFields": window(doc! {"$sum": "$a", "window": ok.clone()})}],
        )
        .unwrap_or_else(|e| panic!("{ok}: {e:?}"));
    }
    for (bad, expected) in [
        (doc! {"documents": [1, -1]}, 5_339_900),
        (doc! {"range": [1, -1]}, 5_339_900),
        (doc! {"documents": ["current", -1]}, 5_339_900),
        (doc! {"range": [1, "current"], "unit": "day"}, 5_339_900),
        (doc! {"documents": [{"$const": "current"}, 3]}, 9),
        (doc! {"documents": [0.5, 3]}, 9),
        (doc! {"documents": [0, 1], "range": [0, 1]}, 9),
        (doc! {"documents": [0, 1], "unit": "day"}, 9),
        (doc! {"documents": [0]}, 9),
        (doc! {"documents": ["now", 0]}, 9),
        (doc! {"documents": ["$ts", 0]}, 9),
        (doc! {"range": ["a", 0]}, 9),
        (doc! {"range": [-1.5, 0], "unit": "day"}, 9),
        (doc! {"range": [-1, 0], "unit": "fortnight"}, 9),
        (doc! {"other": 1}, 9),
    ] {
        assert_eq!(
            code(&h, window(doc! {"$sum": "$a", "window": bad.clone()})),
            expected,
            "{bad}"
        );
    }
    let unsorted = |w: Document| doc! {"output": {"v": {"$sum": "$a", "window": w}}};
    assert_eq!(
        code(&h, unsorted(doc! {"documents": ["unbounded", "current"]})),
        5_339_901
    );
    assert_eq!(
        code(&h, unsorted(doc! {"range": ["unbounded", "unbounded"]})),
        5_339_902
    );
    assert_eq!(
        code(
            &h,
            doc! {"sortBy": {"a": 1, "b": 1}, "output": {"v": {"$sum": "$a", "window": {"range": [0, 1]}}}}
        ),
        5_339_902
    );
    run(
        &h,
        &[doc! {"$setWindowFields": unsorted(doc! {"documents": ["unbounded", "unbounded"]})}],
    )
    .unwrap();
    assert_eq!(
        code(
            &h,
            doc! {"sortBy": {"ts": 1}, "output": {"a": {"$sum": 1}, "a.b": {"$sum": 1}}}
        ),
        6_307_900
    );
    assert_eq!(
        message(
            &h,
            doc! {"sortBy": {"ts": 1}, "output": {"a": {"b": {"$sum": "$a"}}}}
        ),
        "Expected a $-prefixed window function, b"
    );
    assert_eq!(
        message(&h, window(doc! {"$expMovingAvg": {"input": "$a", "N": 0}})),
        "'N' must be greater than zero. Got 0"
    );
    assert_eq!(
        message(
            &h,
            window(doc! {"$expMovingAvg": {"input": "$a", "alpha": 1}})
        ),
        "'alpha' must be between 0 and 1 (exclusive), found alpha: 1"
    );
    assert_eq!(
        message(&h, window(doc! {"$locf": "$a", "window": {}})),
        "'window' field is not allowed in $locf"
    );
    assert_eq!(
        message(&h, window(doc! {"$derivative": {"input": "$a"}})),
        "$derivative requires explicit window bounds"
    );
    assert_eq!(
        code(&h, doc! {"output": {"v": {"$linearFill": "$a"}}}),
        605_001
    );
    assert_eq!(
        code(
            &h,
            window(doc! {"$median": {"input": "$a", "method": "discrete"}})
        ),
        2
    );
}

/// NaN and infinities enter and leave a sliding window without leaving anything behind, as
/// MongoDB's removable functions count them apart from the finite values.
#[test]
fn non_finite_values_leave_sliding_windows_as_they_came() {
    let dec = |s: &str| Bson::Decimal128(s.parse().unwrap());
    let (_d, h) = with(vec![
        doc! {"_id": 1, "v": dec("Infinity"), "x": f64::NAN, "y": 1},
        doc! {"_id": 2, "v": dec("1"), "x": 1, "y": 1},
        doc! {"_id": 3, "v": dec("2"), "x": 2, "y": 2},
        doc! {"_id": 4, "v": dec("3"), "x": 3, "y": 3},
    ]);
    let get = |spec: Document| column(&h, doc! {"sortBy": {"_id": 1}, "output": {"r": spec}}, "r");
    let as_text = |v: Vec<Bson>| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(
        as_text(get(doc! {"$sum": "$v", "window": {"documents": [-1, 0]}})),
        as_text(vec![dec("Infinity"), dec("Infinity"), dec("3"), dec("5")])
    );
    assert_eq!(
        get(doc! {"$covariancePop": ["$x", "$y"], "window": {"documents": [-1, 0]}}),
        vec![
            Bson::Null,
            Bson::Double(0.0),
            Bson::Double(0.25),
            Bson::Double(0.25)
        ]
    );
    let nan = |v: &Bson| v.as_f64().is_some_and(f64::is_nan);
    let samp = get(doc! {"$stdDevSamp": "$x", "window": {"documents": [0, 0]}});
    assert!(nan(&samp[0]), "{samp:?}");
    assert_eq!(samp[1], Bson::Null);
    let (_d, h) = with(vec![doc! {"_id": 1, "t": 0, "v": f64::NAN}]);
    let one = column(
        &h,
        doc! {"sortBy": {"t": 1}, "output": {"r": {"$integral": {"input": "$v"}, "window": {"documents": [0, 0]}}}},
        "r",
    );
    assert!(nan(&one[0]), "{one:?}");
}

/// `$integral` checks a document's sort value when the document enters a window, as MongoDB
/// does: one that never does may hold anything.
#[test]
fn integral_checks_only_the_points_its_windows_hold() {
    let (_d, h) = with(vec![
        doc! {"_id": 1, "t": 1, "v": 1},
        doc! {"_id": 2, "t": 2, "v": 2},
        doc! {"_id": 3, "t": "x", "v": 3},
    ]);
    let stage = |w: Document| {
        doc! {"sortBy": {"t": 1}, "output": {"r": {"$integral": {"input": "$v"}, "window": w}}}
    };
    assert_eq!(
        column(&h, stage(doc! {"documents": [-2, -1]}), "r"),
        vec![Bson::Null, Bson::Int32(0), Bson::Double(1.5)]
    );
    assert_eq!(code(&h, stage(doc! {"documents": [-1, 0]})), 5_423_902);
}
