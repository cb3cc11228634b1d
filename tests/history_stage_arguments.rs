//! Capability: malformed arguments of `$limit`, `$skip`, `$unwind`, `$count`, `$sortByCount`
//! and `$replaceRoot` are refused when the pipeline is parsed, with MongoDB 7.0's codes and
//! messages (`document_source_limit.cpp`, `document_source_skip.cpp`, `bsonelement.cpp`'s
//! `parseIntegerElementToLong`, `document_source_unwind.cpp`, `field_path.cpp`,
//! `document_source_count.cpp`, `document_source_sort_by_count.cpp`, the `$replaceRoot` IDL),
//! and the values they accept work.
//!
//! Method: each case runs `aggregate` on a small collection and compares the error's code,
//! code name and message; an error found at parse time comes before any document is read,
//! so the same pipeline on an empty collection fails the same way.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Bson, Decimal128, Document, doc};
use streamcache::history::History;

fn store() -> (tempfile::TempDir, History) {
    history_common::open_with(vec![
        doc! {"_id": 1, "a": [1, 2], "k": "x"},
        doc! {"_id": 2, "a": [3], "k": "y"},
        doc! {"_id": 3, "k": "x"},
    ])
}

/// The error of `stage` alone: its code, code name and message. The same on an empty
/// collection (the stage failed when parsed).
fn refusal(h: &History, stage: Document) -> (i32, String, String) {
    let e = h
        .aggregate("db", "c", std::slice::from_ref(&stage))
        .unwrap_err();
    let empty = h.aggregate("db", "empty", &[stage]).unwrap_err();
    assert_eq!(empty.to_string(), e.to_string());
    (e.code(), e.code_name().to_owned(), e.to_string())
}

fn decimal(s: &str) -> Bson {
    Bson::Decimal128(s.parse::<Decimal128>().unwrap())
}

#[test]
fn limit_and_skip_take_non_negative_integers_as_mongodb_reads_them() {
    let (_dir, h) = store();
    let cases: Vec<(Bson, &str)> = vec![
        (Bson::Int32(-1), "Expected a non-negative number in: S: -1"),
        (Bson::Int64(-1), "Expected a non-negative number in: S: -1"),
        (
            Bson::Double(-1.0),
            "Expected a non-negative number in: S: -1.0",
        ),
        (Bson::Double(1.5), "Expected an integer: S: 1.5"),
        // Not integral is found before negative.
        (Bson::Double(-1.5), "Expected an integer: S: -1.5"),
        (
            Bson::Double(f64::NAN),
            "Expected an integer, but found NaN in: S: nan.0",
        ),
        (
            Bson::Double(f64::INFINITY),
            "Cannot represent as a 64-bit integer: S: inf.0",
        ),
        (
            Bson::Double(-f64::INFINITY),
            "Cannot represent as a 64-bit integer: S: -inf.0",
        ),
        (
            Bson::Double(1e19),
            "Cannot represent as a 64-bit integer: S: 1e+19.0",
        ),
        (
            Bson::Double(9_223_372_036_854_775_808.0),
            "Cannot represent as a 64-bit integer: S: 9.223372036854776e+18",
        ),
        (
            decimal("1.5"),
            "Cannot represent as a 64-bit integer: S: 1.5",
        ),
        (
            decimal("9223372036854775808"),
            "Cannot represent as a 64-bit integer: S: 9223372036854775808",
        ),
        (decimal("-1"), "Expected a non-negative number in: S: -1"),
        (Bson::String("5".into()), "Expected a number in: S: \"5\""),
        (Bson::Boolean(true), "Expected a number in: S: true"),
        (Bson::Null, "Expected a number in: S: null"),
    ];
    for (stage, code) in [("$limit", 5_107_201), ("$skip", 5_107_200)] {
        for (value, reason) in &cases {
            let (got, name, message) = refusal(&h, doc! {stage: value.clone()});
            let expected = format!(
                "invalid argument to {stage} stage: {}",
                reason.replace("S:", &format!("{stage}:"))
            );
            assert_eq!(
                (got, name.as_str(), message.as_str()),
                (code, format!("Location{code}").as_str(), expected.as_str()),
                "{stage}: {value}"
            );
        }
    }
    // A $limit of 0 is not positive; a $skip of 0 skips nothing.
    assert_eq!(
        refusal(&h, doc! {"$limit": 0}),
        (
            15958,
            "Location15958".to_owned(),
            "the limit must be positive".to_owned()
        )
    );
    assert_eq!(
        refusal(&h, doc! {"$limit": 0.0}).0,
        15958,
        "zero as a double"
    );
    assert_eq!(
        h.aggregate("db", "c", &[doc! {"$skip": 0}]).unwrap().len(),
        3
    );
    // Integral doubles, longs, exact decimals and the largest long are counts.
    for value in [
        Bson::Double(2.0),
        Bson::Int64(2),
        decimal("2"),
        decimal("2.0"),
    ] {
        let limited = h
            .aggregate("db", "c", &[doc! {"$limit": value.clone()}])
            .unwrap();
        assert_eq!(limited.len(), 2, "$limit: {value}");
        let skipped = h
            .aggregate("db", "c", &[doc! {"$skip": value.clone()}])
            .unwrap();
        assert_eq!(skipped.len(), 1, "$skip: {value}");
    }
    let all = h
        .aggregate("db", "c", &[doc! {"$limit": i64::MAX}])
        .unwrap();
    assert_eq!(all.len(), 3);
    let none = h.aggregate("db", "c", &[doc! {"$skip": i64::MAX}]).unwrap();
    assert!(none.is_empty());
}

#[test]
fn unwind_checks_its_options_in_order_then_its_path() {
    let (_dir, h) = store();
    let cases: Vec<(Bson, i32, &str)> = vec![
        (
            Bson::Int32(1),
            15981,
            "expected either a string or an object as specification for $unwind stage, got int",
        ),
        (
            Bson::Array(vec![]),
            15981,
            "expected either a string or an object as specification for $unwind stage, got array",
        ),
        (
            Bson::Document(doc! {"path": 1}),
            28808,
            "expected a string as the path for $unwind stage, got int",
        ),
        (
            Bson::Document(doc! {"path": "$a", "preserveNullAndEmptyArrays": 1}),
            28809,
            "expected a boolean for the preserveNullAndEmptyArrays option to $unwind stage, got int",
        ),
        (
            Bson::Document(doc! {"path": "$a", "includeArrayIndex": ""}),
            28810,
            "expected a non-empty string for the includeArrayIndex  option to $unwind stage, got string",
        ),
        (
            Bson::Document(doc! {"path": "$a", "includeArrayIndex": 5}),
            28810,
            "expected a non-empty string for the includeArrayIndex  option to $unwind stage, got int",
        ),
        (
            Bson::Document(doc! {"includeArrayIndex": "$i"}),
            28822,
            "includeArrayIndex option to $unwind stage should not be prefixed with a '$': $i",
        ),
        (
            Bson::Document(doc! {"path": "$a", "foo": 1}),
            28811,
            "unrecognized option to $unwind stage: foo",
        ),
        (
            Bson::String(String::new()),
            28812,
            "no path specified to $unwind stage",
        ),
        (
            Bson::Document(doc! {}),
            28812,
            "no path specified to $unwind stage",
        ),
        (
            Bson::Document(doc! {"path": ""}),
            28812,
            "no path specified to $unwind stage",
        ),
        (
            Bson::String("a".into()),
            28818,
            "path option to $unwind stage should be prefixed with a '$': a",
        ),
        (
            Bson::String("$".into()),
            40352,
            "FieldPath cannot be constructed with empty string",
        ),
        (
            Bson::String("$a.".into()),
            40353,
            "FieldPath must not end with a '.'.",
        ),
        (
            Bson::String("$a..b".into()),
            15998,
            "FieldPath field names may not be empty strings.",
        ),
        (
            Bson::String("$a.$b".into()),
            16410,
            "FieldPath field names may not start with '$'. Consider using $getField or $setField.",
        ),
        (
            Bson::Document(doc! {"path": "$a", "includeArrayIndex": "i."}),
            40353,
            "FieldPath must not end with a '.'.",
        ),
    ];
    for (spec, code, message) in cases {
        let (got, _, text) = refusal(&h, doc! {"$unwind": spec.clone()});
        assert_eq!((got, text.as_str()), (code, message), "{spec}");
    }
    // A dotted index field is a path.
    let unwound = h
        .aggregate(
            "db",
            "c",
            &[doc! {"$unwind": {"path": "$a", "includeArrayIndex": "at.i"}}],
        )
        .unwrap();
    assert_eq!(
        unwound[1],
        doc! {"_id": 1, "a": 2, "k": "x", "at": {"i": 1_i64}}
    );
}

#[test]
fn count_and_sort_by_count_and_replace_root_name_what_is_wrong() {
    let (_dir, h) = store();
    let cases: Vec<(Document, i32, &str, &str)> = vec![
        (
            doc! {"$count": 1},
            40156,
            "Location40156",
            "the count field must be a non-empty string",
        ),
        (
            doc! {"$count": ""},
            40157,
            "Location40157",
            "the count field must be a non-empty string",
        ),
        (
            doc! {"$count": "$a.b"},
            40158,
            "Location40158",
            "the count field cannot be a $-prefixed path",
        ),
        (
            doc! {"$count": "a\u{0}b"},
            40159,
            "Location40159",
            "the count field cannot contain a null byte",
        ),
        (
            doc! {"$count": "a.b"},
            40160,
            "Location40160",
            "the count field cannot contain '.'",
        ),
        (
            doc! {"$count": "_id"},
            15948,
            "Location15948",
            "a group's _id may only be specified once",
        ),
        (
            doc! {"$sortByCount": {"a": 1}},
            40147,
            "Location40147",
            "the sortByCount field must be defined as a $-prefixed path or an expression inside an object",
        ),
        (
            doc! {"$sortByCount": {}},
            40147,
            "Location40147",
            "the sortByCount field must be defined as a $-prefixed path or an expression inside an object",
        ),
        (
            doc! {"$sortByCount": "k"},
            40148,
            "Location40148",
            "the sortByCount field must be defined as a $-prefixed path or an expression inside an object",
        ),
        (
            doc! {"$sortByCount": 1},
            40149,
            "Location40149",
            "the sortByCount field must be specified as a string or as an object",
        ),
        (
            doc! {"$sortByCount": [ "$k" ]},
            40149,
            "Location40149",
            "the sortByCount field must be specified as a string or as an object",
        ),
        (
            doc! {"$replaceRoot": {}},
            40414,
            "IDLFailedToParse",
            "BSON field '$replaceRoot.newRoot' is missing but a required field",
        ),
        (
            doc! {"$replaceRoot": {"newRoot": "$$ROOT", "foo": 1}},
            40415,
            "IDLUnknownField",
            "BSON field '$replaceRoot.foo' is an unknown field.",
        ),
    ];
    for (stage, code, name, message) in cases {
        let (got, got_name, text) = refusal(&h, stage.clone());
        assert_eq!(
            (got, got_name.as_str(), text.as_str()),
            (code, name, message),
            "{stage}"
        );
    }
    let counted = h
        .aggregate("db", "c", &[doc! {"$sortByCount": "$k"}])
        .unwrap();
    assert_eq!(
        counted,
        [doc! {"_id": "x", "count": 2}, doc! {"_id": "y", "count": 1}]
    );
    let n = h.aggregate("db", "c", &[doc! {"$count": "n"}]).unwrap();
    assert_eq!(n, [doc! {"n": 3}]);
}
