//! Capability: `$bucketAuto`'s `granularity` — bucket boundaries rounded to a series of
//! preferred numbers (R5…R80, 1-2-5, E6…E192) or to powers of two, as MongoDB 7.0 rounds and
//! absorbs them; keys that are not non-negative numbers refused with MongoDB's codes.
//!
//! Method: the cases of MongoDB's `document_source_bucket_auto_test.cpp`, the manual's
//! `things` example and `granularity_near_zero.js`, with their expected buckets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Bson, Document, doc};

/// `$bucketAuto` by `x` over documents with these `x` values (`Bson::Undefined`: no `x`):
/// each bucket's `(min, max, count)`, or the error code.
fn buckets(values: &[Bson], n: i32, granularity: &str) -> Result<Vec<(Bson, Bson, i32)>, i32> {
    let docs: Vec<Document> = values
        .iter()
        .map(|x| match x {
            Bson::Undefined => doc! {},
            x => doc! {"x": x.clone()},
        })
        .collect();
    let (_d, h) = history_common::open_with(docs);
    let out = h
        .aggregate(
            "db",
            "c",
            &[doc! {"$bucketAuto": {"groupBy": "$x", "buckets": n, "granularity": granularity}}],
        )
        .map_err(|e| e.code())?;
    Ok(out
        .iter()
        .map(|b| {
            let id = b.get_document("_id").unwrap();
            (
                id.get("min").cloned().unwrap(),
                id.get("max").cloned().unwrap(),
                b.get_i32("count").unwrap(),
            )
        })
        .collect())
}

fn ints(values: &[i32]) -> Vec<Bson> {
    values.iter().map(|v| Bson::Int32(*v)).collect()
}

fn d(x: f64) -> Bson {
    Bson::Double(x)
}

#[test]
fn r5_boundaries_as_mongodbs_unit_tests() {
    // Maxima rounded up, the first minimum rounded down (a zero stays the int it was).
    assert_eq!(
        buckets(&ints(&[24, 15, 30, 50, 0]), 2, "R5"),
        Ok(vec![(Bson::Int32(0), d(25.0), 3), (d(25.0), d(63.0), 2)])
    );
    assert_eq!(
        buckets(&ints(&[24, 15, 30, 50, 1]), 2, "R5"),
        Ok(vec![(d(0.63), d(25.0), 3), (d(25.0), d(63.0), 2)])
    );
    // The last bucket takes the rest, its max rounded up too.
    assert_eq!(
        buckets(&ints(&[24, 15, 30, 9, 3, 7, 101]), 5, "R5"),
        Ok(vec![
            (d(2.5), d(4.0), 1),
            (d(4.0), d(10.0), 2),
            (d(10.0), d(16.0), 1),
            (d(16.0), d(25.0), 1),
            (d(25.0), d(160.0), 2),
        ])
    );
    // Keys below the rounded boundary are absorbed, even all of them.
    assert_eq!(
        buckets(&ints(&[0, 5, 10, 15, 30]), 2, "R5"),
        Ok(vec![(Bson::Int32(0), d(16.0), 4), (d(16.0), d(40.0), 1)])
    );
    assert_eq!(
        buckets(&ints(&[0, 5, 10, 14, 15]), 2, "R5"),
        Ok(vec![(Bson::Int32(0), d(16.0), 5)])
    );
    // A zero max becomes the next key rounded down.
    assert_eq!(
        buckets(&ints(&[0, 0, 1, 1]), 2, "R5"),
        Ok(vec![(Bson::Int32(0), d(0.63), 2), (d(0.63), d(1.6), 2)])
    );
    // A key equal to the boundary starts the next bucket.
    assert_eq!(
        buckets(&[d(1.5), d(1.6)], 2, "R5"),
        Ok(vec![(d(1.0), d(1.6), 1), (d(1.6), d(2.5), 1)])
    );
    assert_eq!(
        buckets(&ints(&[1, 1, 1, 1, 2]), 2, "R5"),
        Ok(vec![(d(0.63), d(1.6), 4), (d(1.6), d(2.5), 1)])
    );
    let inf = f64::INFINITY;
    assert_eq!(
        buckets(&[d(1.0), d(1.0), d(1.0), d(inf)], 2, "R5"),
        Ok(vec![(d(0.63), d(1.6), 3), (d(1.6), d(inf), 1)])
    );
    // 1..8 (MongoDB 7.0.12's answer, 63 × 0.1 included).
    assert_eq!(
        buckets(&ints(&[1, 2, 3, 4, 5, 6, 7, 8]), 2, "R5"),
        Ok(vec![
            (d(0.63), d(6.300_000_000_000_001), 6),
            (d(6.300_000_000_000_001), d(10.0), 2)
        ])
    );
}

#[test]
fn the_manuals_things_in_five_buckets() {
    let things: Vec<Bson> = (0..100).map(Bson::Int32).collect();
    let triples = |v: &[(f64, f64, i32)]| -> Vec<(f64, f64, i32)> { v.to_vec() };
    let as_f64 = |b: Vec<(Bson, Bson, i32)>| -> Vec<(f64, f64, i32)> {
        b.into_iter()
            .map(|(min, max, n)| {
                (
                    min.as_f64().or(min.as_i32().map(f64::from)).unwrap(),
                    max.as_f64().or(max.as_i32().map(f64::from)).unwrap(),
                    n,
                )
            })
            .collect()
    };
    assert_eq!(
        as_f64(buckets(&things, 5, "R20").unwrap()),
        triples(&[
            (0.0, 20.0, 20),
            (20.0, 40.0, 20),
            (40.0, 63.0, 23),
            (63.0, 90.0, 27),
            (90.0, 100.0, 10)
        ])
    );
    assert_eq!(
        as_f64(buckets(&things, 5, "1-2-5").unwrap()),
        triples(&[(0.0, 20.0, 20), (20.0, 50.0, 30), (50.0, 100.0, 50)])
    );
    // Powers of two are ints, as `$pow` makes them.
    assert_eq!(
        buckets(&things, 5, "POWERSOF2"),
        Ok(vec![
            (Bson::Int32(0), Bson::Int32(32), 32),
            (Bson::Int32(32), Bson::Int32(64), 32),
            (Bson::Int32(64), Bson::Int32(128), 36),
        ])
    );
    assert_eq!(
        buckets(&ints(&[1, 2, 3, 4, 5, 6, 7, 8]), 2, "POWERSOF2"),
        Ok(vec![
            (d(0.5), Bson::Int32(8), 7),
            (Bson::Int32(8), Bson::Int32(16), 1)
        ])
    );
    assert_eq!(
        buckets(&[d(0.5), d(0.9), d(1.0), d(1.2)], 4, "E6"),
        Ok(vec![
            (d(0.470_000_000_000_000_03), d(0.68), 1),
            (d(0.68), d(1.0), 1),
            (d(1.0), d(1.5), 2)
        ])
    );
}

#[test]
fn keys_must_be_non_negative_numbers() {
    for (values, code) in [
        (vec![Bson::Int32(0), d(f64::NAN), Bson::Int32(1)], 40259),
        (vec![Bson::Int32(0), "test".into(), Bson::Int32(1)], 40258),
        (vec![Bson::Int32(1), Bson::Null], 40258),
        (vec![Bson::Int32(1), Bson::Undefined], 40258),
        (vec![Bson::Int32(0), Bson::Int32(-1), Bson::Int32(1)], 40260),
        (vec![d(-5.0), Bson::Int32(1)], 40260),
    ] {
        assert_eq!(buckets(&values, 2, "R5"), Err(code), "{values:?}");
    }
    // The smallest double rounds down to zero (granularity_near_zero.js).
    assert_eq!(
        buckets(&[d(f64::from_bits(1))], 8, "R80"),
        Ok(vec![(d(0.0), d(1.02e-321), 1)])
    );
}
