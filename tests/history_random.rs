//! Capability: MongoDB's random operators — the `$rand` expression (a new double in `[0, 1)` at
//! every evaluation) and the `$sampleRate` query operator (`{$expr: {$lt: [{$rand: {}}, x]}}`),
//! with MongoDB's parse errors.
//!
//! Method: 2,000 documents through `find` and `aggregate`; the draws are checked for range,
//! for differing from one another, and for a mean and a selected share far inside what a
//! uniform source gives (the bounds are more than seven standard deviations wide).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly on setup errors"
)]

mod history_common;

use bson::{Bson, Document, doc};
use streamcache::history::{FindOptions, History};

const DOCS: i32 = 2_000;

fn open() -> (tempfile::TempDir, History) {
    let (dir, h) = history_common::open();
    let docs: Vec<Document> = (0..DOCS)
        .map(|i| doc! {"_id": i, "items": [{"q": i}]})
        .collect();
    h.insert_many("db", "c", docs).unwrap();
    (dir, h)
}

/// `(code, message)` of a failed aggregation.
fn aggregate_error(h: &History, pipeline: &[Document]) -> (i32, String) {
    let e = h.aggregate("db", "c", pipeline).unwrap_err();
    (e.code(), e.to_string())
}

#[test]
fn rand_gives_a_new_double_in_zero_to_one_at_every_evaluation() {
    let (_d, h) = open();
    // `{}` and `[]` are both the no-argument form.
    let out = h
        .aggregate(
            "db",
            "c",
            &[doc! {"$project": {"_id": 0, "a": {"$rand": {}}, "b": {"$rand": []}}}],
        )
        .unwrap();
    assert_eq!(out.len(), DOCS as usize);
    let mut draws = Vec::new();
    for d in &out {
        let (Ok(a), Ok(b)) = (d.get_f64("a"), d.get_f64("b")) else {
            panic!("not two doubles: {d}");
        };
        draws.extend([a, b]);
    }
    assert!(draws.iter().all(|x| (0.0..1.0).contains(x)), "{draws:?}");
    let mut distinct = draws.clone();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    assert_eq!(distinct.len(), draws.len(), "every evaluation draws anew");
    // 4,000 uniform draws: the mean's standard deviation is 0.0046.
    let mean = draws.iter().sum::<f64>() / 4_000.0;
    assert!((0.465..0.535).contains(&mean), "mean {mean}");
    // Inside an expression, and never folded away as a constant.
    let out = h
        .aggregate(
            "db",
            "c",
            &[
                doc! {"$project": {"r": {"$multiply": [{"$rand": {}}, 10]}}},
                doc! {"$group": {"_id": null, "values": {"$addToSet": {"$floor": "$r"}}}},
            ],
        )
        .unwrap();
    let values = out[0].get_array("values").unwrap();
    assert_eq!(values.len(), 10, "{values:?}");
}

#[test]
fn rand_refuses_arguments_as_mongodb_does() {
    let (_d, h) = open();
    let with = |arg: Bson| aggregate_error(&h, &[doc! {"$project": {"r": {"$rand": arg}}}]);
    for arg in [
        Bson::Document(doc! {"x": 1}),
        Bson::Array(vec![Bson::Int32(1)]),
    ] {
        assert_eq!(
            with(arg),
            (
                3_040_501,
                "Invalid $project :: caused by :: $rand does not currently accept arguments"
                    .to_owned()
            )
        );
    }
    for arg in [Bson::Int32(5), Bson::String("s".into()), Bson::Null] {
        assert_eq!(
            with(arg),
            (
                10065,
                "Invalid $project :: caused by :: invalid parameter: expected an object ($rand)"
                    .to_owned()
            )
        );
    }
}

#[test]
fn sample_rate_keeps_about_that_share_of_the_documents() {
    let (_d, h) = open();
    let find = |filter: Document| h.find("db", "c", &filter, &FindOptions::default());
    assert!(find(doc! {"$sampleRate": 0}).unwrap().is_empty());
    assert_eq!(find(doc! {"$sampleRate": 1}).unwrap().len(), DOCS as usize);
    // 2,000 documents at 0.5: the count's standard deviation is 22.
    let half = find(doc! {"$sampleRate": 0.5}).unwrap().len();
    assert!((840..1_160).contains(&half), "{half} of {DOCS}");
    // With other conditions (1,000 documents at 0.25: standard deviation 14), in `find` and in
    // `$match`.
    let low = find(doc! {"_id": {"$lt": 1_000}, "$sampleRate": 0.25}).unwrap();
    assert!(low.iter().all(|d| d.get_i32("_id").unwrap() < 1_000));
    assert!((150..350).contains(&low.len()), "{}", low.len());
    let matched = h
        .aggregate(
            "db",
            "c",
            &[doc! {"$match": {"$sampleRate": 0.5}}, doc! {"$count": "n"}],
        )
        .unwrap();
    let n = matched[0].get_i32("n").unwrap();
    assert!((840..1_160).contains(&n), "{n} of {DOCS}");
}

#[test]
fn sample_rate_refuses_what_mongodb_refuses() {
    let (_d, h) = open();
    let refused = |filter: Document| {
        let e = h
            .find("db", "c", &filter, &FindOptions::default())
            .unwrap_err();
        (e.code(), e.to_string())
    };
    let not_numeric = refused(doc! {"$sampleRate": "half"});
    assert_eq!(not_numeric.0, 2);
    assert!(
        not_numeric
            .1
            .contains("argument to $sampleRate must be a numeric type"),
        "{not_numeric:?}"
    );
    for rate in [
        Bson::Double(1.000_001),
        Bson::Int32(-1),
        Bson::Double(f64::NAN),
    ] {
        let (code, message) = refused(doc! {"$sampleRate": rate});
        assert_eq!(code, 2);
        assert!(
            message.contains("numeric argument to $sampleRate must be in [0, 1]"),
            "{message}"
        );
    }
    let (code, message) = refused(doc! {"items": {"$elemMatch": {"$sampleRate": 0.5}}});
    assert_eq!(code, 2);
    assert!(
        message.contains("$sampleRate can only be applied to the top-level document"),
        "{message}"
    );
}
