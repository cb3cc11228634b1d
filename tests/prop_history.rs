//! Capability: the history key encoding — order-preserving across BSON types (byte order of
//! `encode_key_value` equals MongoDB's value order), prefix-free, round-tripping, and a
//! decoder that never panics, in both key formats (V1 and V2 differ only in numbers).
//!
//! Method: proptest over generated BSON values of every indexable type, including NaN, ±0.0,
//! ±infinity, integers beyond 2^53, nested documents and arrays, and arbitrary bytes for the
//! decoder.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use std::cmp::Ordering;

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, Regex, Timestamp, oid::ObjectId};
use proptest::prelude::*;
use streamcache::history::{KeyFormat, compare_values, decode_key_value, encode_key_value};

fn scalar() -> impl Strategy<Value = Bson> {
    prop_oneof![
        Just(Bson::Null),
        Just(Bson::MinKey),
        Just(Bson::MaxKey),
        any::<bool>().prop_map(Bson::Boolean),
        any::<i32>().prop_map(Bson::Int32),
        any::<i64>().prop_map(Bson::Int64),
        prop_oneof![
            (-3i64..3).prop_map(|d| (1i64 << 53) + d),
            (-3i64..3).prop_map(|d| i64::MAX - d.abs())
        ]
        .prop_map(Bson::Int64),
        any::<f64>().prop_map(Bson::Double),
        prop_oneof![
            Just(f64::NAN),
            Just(0.0),
            Just(-0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(9_223_372_036_854_775_808.0)
        ]
        .prop_map(Bson::Double),
        "[a-c\\x00]{0,4}".prop_map(Bson::String),
        any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(ObjectId::from_bytes(b))),
        any::<i64>().prop_map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms))),
        (any::<u32>(), any::<u32>())
            .prop_map(|(time, increment)| Bson::Timestamp(Timestamp { time, increment })),
        (proptest::collection::vec(any::<u8>(), 0..4), 0u8..3).prop_map(
            |(bytes, st)| Bson::Binary(Binary {
                subtype: BinarySubtype::from(st),
                bytes
            })
        ),
        ("[a-c]{0,3}", "[imsx]{0,2}").prop_map(|(p, o)| Bson::RegularExpression(Regex {
            pattern: p.try_into().unwrap(),
            options: o.try_into().unwrap()
        })),
    ]
}

fn value() -> impl Strategy<Value = Bson> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
            proptest::collection::vec(("[a-c]{0,2}", inner), 0..4).prop_map(|kv| {
                let mut d = Document::new();
                for (k, v) in kv {
                    d.insert(k, v);
                }
                Bson::Document(d)
            }),
        ]
    })
}

fn format() -> impl Strategy<Value = KeyFormat> {
    prop_oneof![
        Just(KeyFormat::V1),
        Just(KeyFormat::V2),
        Just(KeyFormat::V3)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn byte_order_is_mongodb_order(a in value(), b in value(), f in format()) {
        let (ea, eb) = (encode_key_value(&a, f), encode_key_value(&b, f));
        prop_assert_eq!(ea.cmp(&eb), compare_values(&a, &b), "{:?} a={} b={}", f, a, b);
    }

    #[test]
    fn encoding_is_prefix_free(a in value(), b in value(), f in format()) {
        let (ea, eb) = (encode_key_value(&a, f), encode_key_value(&b, f));
        if ea != eb {
            prop_assert!(!eb.starts_with(&ea) && !ea.starts_with(&eb), "{:?} a={} b={}", f, a, b);
        }
    }

    #[test]
    fn round_trip(a in value(), f in format()) {
        let enc = encode_key_value(&a, f);
        let (back, used) = decode_key_value(&enc, f).unwrap();
        prop_assert_eq!(used, enc.len());
        prop_assert_eq!(
            compare_values(&back, &a), Ordering::Equal, "{:?} a={} back={}", f, a, back
        );
        prop_assert_eq!(encode_key_value(&back, f), enc);
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), f in format()) {
        if let Ok((_, used)) = decode_key_value(&bytes, f) {
            prop_assert!(used <= bytes.len());
        }
    }

    #[test]
    fn fuzz_body_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        streamcache::history::fuzz_history_query(&bytes);
    }
}
