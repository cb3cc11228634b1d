//! Capability: aggregation expressions as MongoDB 7.0 evaluates them — conditionals, booleans,
//! arithmetic, strings, conversions, arrays, sets, objects and dates, with MongoDB's null and
//! missing rules and its error codes and messages — and a pipeline built before any document
//! is read: an unknown operator, a wrong operand count or an expression nested past
//! `EXPRESSION_DEPTH_MAX` fails even over an empty collection. Also `$replaceRoot`,
//! `$replaceWith` and `$sortByCount`.
//!
//! Method: one document holding a value of each type; each table row is an expression, run
//! as `{$project: {_id: 0, v: <expression>}}` through `History::aggregate`, and the value
//! MongoDB gives for `v` (or leaves missing), or its error code and message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Bson, Decimal128, Document, bson, doc, oid::ObjectId};
use streamcache::history::{
    EXPRESSION_DEPTH_MAX, FindOptions, History, REGEX_PATTERN_BYTES_MAX, STAGE_DOCUMENT_BYTES_MAX,
};

/// The store's clock (`history_common::START_MS`).
const START_MS: i64 = 1_700_000_000_000;
/// 2021-03-04T05:06:07.089Z, a Thursday.
const D_MS: i64 = 1_614_834_367_089;
const OID: &str = "5f5b5c5d5e5f606162636465";

fn dec(s: &str) -> Bson {
    Bson::Decimal128(s.parse::<Decimal128>().unwrap())
}

fn date(ms: i64) -> Bson {
    Bson::DateTime(bson::DateTime::from_millis(ms))
}

/// A date written as RFC 3339 text (`2024-03-10T07:30:00Z`).
fn at(text: &str) -> Bson {
    Bson::DateTime(bson::DateTime::parse_rfc3339_str(text).unwrap())
}

fn open() -> (tempfile::TempDir, History) {
    let (dir, h) = history_common::open();
    h.insert_one(
        "db",
        "x",
        doc! {
            "_id": 1, "i": 7, "neg": -7, "l": 5_i64, "f": 2.5, "dec": dec("1.25"),
            "s": "Hello", "sp": "  hi  ", "utf": "héllo", "n": null, "t": true,
            "arr": [1, 2, 3], "objs": [{"k": "a", "v": 1}, {"k": "b", "v": 2}],
            "o": {"a": 1, "b": 2}, "d": date(D_MS), "oid": ObjectId::parse_str(OID).unwrap(),
        },
    )
    .unwrap();
    // A collection that exists and holds no document.
    h.insert_one("db", "empty", doc! {"_id": 1}).unwrap();
    h.delete("db", "empty", &doc! {}, true).unwrap();
    (dir, h)
}

/// What a case expects.
enum Want {
    /// This value for `v`.
    Value(Bson),
    /// `v` left out (the expression's value is missing).
    Missing,
    /// A run-time error: code and MongoDB's message after the executor's prefix.
    Run(i32, &'static str),
    /// A parse error: code and MongoDB's message after `$project`'s context.
    Parse(i32, &'static str),
    /// An error folding constant operands when the pipeline is built: code and MongoDB's
    /// message after its optimizer's context.
    Fold(i32, &'static str),
}

use Want::{Fold, Missing, Parse, Run};

fn v(b: impl Into<Bson>) -> Want {
    Want::Value(b.into())
}

fn check(h: &History, cases: Vec<(Bson, Want)>) {
    for (e, want) in cases {
        let got = h
            .aggregate("db", "x", &[doc! {"$project": {"_id": 0, "v": e.clone()}}])
            .map(|out| out[0].get("v").cloned())
            .map_err(|err| (err.code(), err.to_string()));
        let want = match want {
            Want::Value(b) => Ok(Some(b)),
            Want::Missing => Ok(None),
            Want::Run(code, m) => Err((
                code,
                format!("PlanExecutor error during aggregation :: caused by :: {m}"),
            )),
            Want::Parse(code, m) => Err((code, format!("Invalid $project :: caused by :: {m}"))),
            Want::Fold(code, m) => Err((
                code,
                format!("Failed to optimize pipeline :: caused by :: {m}"),
            )),
        };
        assert_eq!(got, want, "{e}");
    }
}

#[test]
fn conditionals_choose_by_mongodb_truthiness() {
    let (_d, h) = open();
    let branches = bson!([
        {"case": {"$lt": ["$i", 0]}, "then": "neg"},
        {"case": {"$gt": ["$i", 5]}, "then": "big"},
    ]);
    check(
        &h,
        vec![
            (
                bson!({"$cond": [{"$gt": ["$i", 5]}, "big", "small"]}),
                v("big"),
            ),
            (bson!({"$cond": {"if": "$n", "then": 1, "else": 2}}), v(2)),
            (bson!({"$cond": {"if": 0, "then": 1, "else": 2}}), v(2)),
            (bson!({"$cond": {"if": "", "then": 1, "else": 2}}), v(1)),
            (bson!({"$cond": {"if": [], "then": 1, "else": 2}}), v(1)),
            (
                bson!({"$cond": {"if": "$missing", "then": 1, "else": "$missing"}}),
                Missing,
            ),
            (
                bson!({"$cond": {"if": true, "then": 1}}),
                Parse(17082, "Missing 'else' parameter to $cond"),
            ),
            (
                bson!({"$cond": {"if": true, "then": 1, "else": 2, "x": 1}}),
                Parse(17083, "Unrecognized parameter to $cond: x"),
            ),
            (
                bson!({"$cond": [true, 1]}),
                Parse(
                    16020,
                    "Expression $cond takes exactly 3 arguments. 2 were passed in.",
                ),
            ),
            (
                bson!({"$switch": {"branches": branches.clone(), "default": "other"}}),
                v("big"),
            ),
            (
                bson!({"$switch": {"branches": [{"case": "$n", "then": 1}], "default": "$missing"}}),
                Missing,
            ),
            (
                bson!({"$switch": {"branches": [{"case": {"$lt": ["$i", 0]}, "then": 1}]}}),
                Run(
                    40066,
                    "$switch could not find a matching branch for an input, and no default was specified.",
                ),
            ),
            (
                bson!({"$switch": {"branches": []}}),
                Parse(40068, "$switch requires at least one branch."),
            ),
            (
                bson!({"$switch": {"branches": [{"case": true}]}}),
                Parse(
                    40065,
                    "$switch requires each branch have a 'then' expression.",
                ),
            ),
            (
                bson!({"$switch": 1}),
                Parse(
                    40060,
                    "$switch requires an object as an argument, found: int",
                ),
            ),
            (bson!({"$ifNull": ["$missing", "$n", "x"]}), v("x")),
            (bson!({"$ifNull": ["$i", "x"]}), v(7)),
            (
                bson!({"$ifNull": ["$i"]}),
                Parse(1_257_300, "$ifNull needs at least two arguments, had: 1"),
            ),
        ],
    );
}

#[test]
fn booleans_treat_false_null_missing_and_zero_as_false() {
    let (_d, h) = open();
    check(
        &h,
        vec![
            (bson!({"$and": [1, "x", true, [], {}]}), v(true)),
            (bson!({"$and": [1, 0]}), v(false)),
            (bson!({"$and": []}), v(true)),
            (bson!({"$and": ["$missing"]}), v(false)),
            (bson!({"$and": [f64::NAN]}), v(true)),
            (bson!({"$and": [dec("0")]}), v(false)),
            (bson!({"$or": [null, 0, "$missing", false, 0.0]}), v(false)),
            (bson!({"$or": [false, [0]]}), v(true)),
            (bson!({"$or": []}), v(false)),
            (bson!({"$not": [0]}), v(true)),
            (bson!({"$not": "$n"}), v(true)),
            (bson!({"$not": ["$i"]}), v(false)),
            (
                bson!({"$not": [1, 2]}),
                Parse(
                    16020,
                    "Expression $not takes exactly 1 arguments. 2 were passed in.",
                ),
            ),
        ],
    );
}

#[test]
fn arithmetic_keeps_the_operand_types_mongodb_keeps() {
    let (_d, h) = open();
    check(
        &h,
        vec![
            (bson!({"$mod": ["$i", 3]}), v(1)),
            (bson!({"$mod": ["$neg", 3]}), v(-1)),
            (bson!({"$mod": ["$l", 3]}), v(2_i64)),
            (bson!({"$mod": ["$f", 1]}), v(0.5)),
            (bson!({"$mod": [dec("7.5"), 2]}), v(dec("1.5"))),
            (bson!({"$mod": ["$n", 2]}), v(Bson::Null)),
            (bson!({"$mod": [1, 0]}), Fold(16610, "can't $mod by zero")),
            (
                bson!({"$mod": ["$s", 2]}),
                Run(
                    16611,
                    "$mod only supports numeric types, not string and int",
                ),
            ),
            (bson!({"$abs": "$neg"}), v(7)),
            (bson!({"$abs": -2.5}), v(2.5)),
            (bson!({"$abs": i32::MIN}), v(2_147_483_648_i64)),
            (bson!({"$abs": dec("-1.5")}), v(dec("1.5"))),
            (bson!({"$abs": "$missing"}), v(Bson::Null)),
            (
                bson!({"$abs": i64::MIN}),
                Fold(28680, "can't take $abs of long long min"),
            ),
            (
                bson!({"$abs": "$s"}),
                Run(28765, "$abs only supports numeric types, not string"),
            ),
            (bson!({"$ceil": 2.1}), v(3.0)),
            (bson!({"$ceil": 5}), v(5)),
            (bson!({"$floor": -2.1}), v(-3.0)),
            (bson!({"$floor": dec("-2.5")}), v(dec("-3"))),
            (bson!({"$ceil": "$n"}), v(Bson::Null)),
            (bson!({"$round": [2.5]}), v(2.0)),
            (bson!({"$round": [3.5]}), v(4.0)),
            (bson!({"$round": [2.675, 2]}), v(2.67)),
            (bson!({"$round": [1234, -2]}), v(1200)),
            (bson!({"$round": [1250, -2]}), v(1200)),
            (bson!({"$round": [1350, -2]}), v(1400)),
            (bson!({"$round": ["$l", 1]}), v(5_i64)),
            (bson!({"$round": [dec("1.2345"), 2]}), v(dec("1.23"))),
            (bson!({"$round": [dec("1.2"), 3]}), v(dec("1.200"))),
            (bson!({"$round": ["$n", 1]}), v(Bson::Null)),
            (
                bson!({"$round": [1.5, 101]}),
                Fold(
                    51083,
                    "cannot apply $round with precision value 101 value must be in [-20, 100]",
                ),
            ),
            (
                bson!({"$round": [1.5, 1.5]}),
                Fold(
                    51082,
                    "precision argument to  $round must be a integral value",
                ),
            ),
            (
                bson!({"$round": ["$s"]}),
                Run(51081, "$round only supports numeric types, not string"),
            ),
            (
                bson!({"$round": [1, 2, 3]}),
                Parse(
                    28667,
                    "Expression $round takes at least 1 arguments, and at most 2, but 3 were passed in.",
                ),
            ),
            (bson!({"$trunc": [-2.7]}), v(-2.0)),
            (bson!({"$trunc": [2.789, 2]}), v(2.78)),
            (bson!({"$trunc": [1299, -2]}), v(1200)),
            (bson!({"$sqrt": 16}), v(4.0)),
            (bson!({"$sqrt": "$missing"}), v(Bson::Null)),
            (
                bson!({"$sqrt": -1}),
                Fold(28714, "$sqrt's argument must be greater than or equal to 0"),
            ),
            (bson!({"$pow": [2, 10]}), v(1024)),
            (bson!({"$pow": [2, 40]}), v(1_099_511_627_776_i64)),
            (bson!({"$pow": [2, -1]}), v(0.5)),
            (bson!({"$pow": [2.0, 3]}), v(8.0)),
            (bson!({"$pow": [-1, -3]}), v(-1)),
            (
                bson!({"$pow": [0, -1]}),
                Fold(
                    28764,
                    "$pow cannot take a base of 0 and a negative exponent",
                ),
            ),
            (
                bson!({"$pow": ["$s", 2]}),
                Run(28762, "$pow's base must be numeric, not string"),
            ),
            (bson!({"$exp": 0}), v(1.0)),
            (bson!({"$ln": 1}), v(0.0)),
            (
                bson!({"$ln": 0}),
                Fold(28766, "$ln's argument must be a positive number, but is 0"),
            ),
            (bson!({"$log10": 1000}), v(3.0)),
            (
                bson!({"$log10": -1}),
                Fold(
                    28761,
                    "$log10's argument must be a positive number, but is -1",
                ),
            ),
            (bson!({"$log": [8, 2]}), v(3.0)),
            (
                bson!({"$log": [8, 1]}),
                Fold(
                    28759,
                    "$log's base must be a positive number not equal to 1, but is 1",
                ),
            ),
        ],
    );
}

#[test]
fn string_operators_coerce_and_refuse_as_mongodb_does() {
    let (_d, h) = open();
    check(
        &h,
        vec![
            // $toUpper/$toLower write a number as its text (a double as C's %g), null as "",
            // and change ASCII letters only.
            (bson!({"$toUpper": 2.5}), v("2.5")),
            (bson!({"$toLower": 1_234_567.0}), v("1.23457e+06")),
            (bson!({"$toUpper": "$i"}), v("7")),
            (bson!({"$toUpper": "$n"}), v("")),
            (bson!({"$toUpper": "$utf"}), v("HéLLO")),
            (bson!({"$toLower": "$s"}), v("hello")),
            (
                bson!({"$toUpper": [[1]]}),
                Fold(16007, "can't convert from BSON type array to String"),
            ),
            (bson!({"$substrBytes": ["$s", 1, 3]}), v("ell")),
            (bson!({"$substr": ["$s", 1, -1]}), v("ello")),
            (bson!({"$substrBytes": ["$s", 10, 2]}), v("")),
            (bson!({"$substrBytes": ["$i", 0, 1]}), v("7")),
            (
                bson!({"$substrBytes": ["$utf", 2, 1]}),
                Run(
                    28656,
                    "$substrBytes:  Invalid range, starting index is a UTF-8 continuation byte.",
                ),
            ),
            (
                bson!({"$substrBytes": ["$utf", 0, 2]}),
                Run(
                    28657,
                    "$substrBytes:  Invalid range, ending index is in the middle of a UTF-8 character.",
                ),
            ),
            (
                bson!({"$substrBytes": ["$s", "a", 1]}),
                Run(
                    16034,
                    "$substrBytes:  starting index must be a numeric type (is BSON type string)",
                ),
            ),
            (
                bson!({"$substrBytes": ["$s", -1, 1]}),
                Run(
                    50752,
                    "$substrBytes:  starting index must be non-negative (got: -1)",
                ),
            ),
            (
                bson!({"$substr": ["$s", 1]}),
                Parse(
                    16020,
                    "Expression $substrBytes takes exactly 3 arguments. 2 were passed in.",
                ),
            ),
            (bson!({"$substrCP": ["$utf", 1, 3]}), v("éll")),
            (
                bson!({"$substrCP": ["$s", 1.5, 1]}),
                Run(
                    34451,
                    "$substrCP: starting index cannot be represented as a 32-bit integral value: 1.5",
                ),
            ),
            (
                bson!({"$substrCP": ["$s", 0, -1]}),
                Run(34454, "$substrCP: length must be a nonnegative integer."),
            ),
            (bson!({"$strLenBytes": "$utf"}), v(6)),
            (bson!({"$strLenCP": "$utf"}), v(5)),
            (
                bson!({"$strLenCP": "$i"}),
                Run(34471, "$strLenCP requires a string argument, found: int"),
            ),
            (
                bson!({"$strLenBytes": "$missing"}),
                Run(
                    34473,
                    "$strLenBytes requires a string argument, found: missing",
                ),
            ),
            (
                bson!({"$split": ["a,b,,c", ","]}),
                v(bson!(["a", "b", "", "c"])),
            ),
            (bson!({"$split": ["$n", ","]}), v(Bson::Null)),
            (
                bson!({"$split": ["a", ""]}),
                Fold(40087, "$split requires a non-empty separator"),
            ),
            (
                bson!({"$split": [1, ","]}),
                Fold(
                    40085,
                    "$split requires an expression that evaluates to a string as a first argument, found: int",
                ),
            ),
            (bson!({"$trim": {"input": "$sp"}}), v("hi")),
            (bson!({"$ltrim": {"input": "$sp"}}), v("hi  ")),
            (
                bson!({"$rtrim": {"input": "xxhixx", "chars": "x"}}),
                v("xxhi"),
            ),
            (bson!({"$trim": {"input": "$n"}}), v(Bson::Null)),
            (
                bson!({"$trim": {"input": 1}}),
                Fold(
                    50699,
                    "$trim requires its input to be a string, got 1 (of type int) instead.",
                ),
            ),
            (
                bson!({"$trim": {"chars": "x"}}),
                Parse(50695, "$trim requires an 'input' field"),
            ),
            (
                bson!({"$trim": "x"}),
                Parse(
                    50696,
                    "$trim only supports an object as an argument, found: string",
                ),
            ),
            (bson!({"$indexOfBytes": ["$s", "l"]}), v(2)),
            (bson!({"$indexOfBytes": ["$s", "l", 3]}), v(3)),
            (bson!({"$indexOfBytes": ["$s", "z"]}), v(-1)),
            (bson!({"$indexOfBytes": ["$n", "a"]}), v(Bson::Null)),
            (
                bson!({"$indexOfBytes": ["$s", 1]}),
                Run(
                    40092,
                    "$indexOfBytes requires a string as the second argument, found: int",
                ),
            ),
            (
                bson!({"$indexOfBytes": ["$s", "l", -1]}),
                Run(
                    40097,
                    "$indexOfBytes requires a nonnegative starting index, found: -1",
                ),
            ),
            (bson!({"$strcasecmp": ["$s", "HELLO"]}), v(0)),
            (bson!({"$strcasecmp": ["a", "B"]}), v(-1)),
            (bson!({"$strcasecmp": ["$n", ""]}), v(0)),
        ],
    );
}

#[test]
fn conversions_follow_mongodbs_table_with_on_error_and_on_null() {
    let (_d, h) = open();
    check(
        &h,
        vec![
            (bson!({"$type": "$i"}), v("int")),
            (bson!({"$type": "$l"}), v("long")),
            (bson!({"$type": "$arr"}), v("array")),
            (bson!({"$type": "$missing"}), v("missing")),
            (bson!({"$isNumber": "$dec"}), v(true)),
            (bson!({"$isNumber": "$s"}), v(false)),
            (bson!({"$isNumber": "$missing"}), v(false)),
            (bson!({"$isArray": "$arr"}), v(true)),
            (bson!({"$isArray": "$o"}), v(false)),
            (bson!({"$toString": 2.5}), v("2.5")),
            (bson!({"$toString": 1.0}), v("1")),
            (bson!({"$toString": 1e20}), v("1e+20")),
            (bson!({"$toString": 0.1}), v("0.1")),
            (bson!({"$toString": "$t"}), v("true")),
            (bson!({"$toString": "$d"}), v("2021-03-04T05:06:07.089Z")),
            (bson!({"$toString": "$oid"}), v(OID)),
            (bson!({"$toString": "$dec"}), v("1.25")),
            (bson!({"$toString": "$n"}), v(Bson::Null)),
            (bson!({"$toString": "$missing"}), v(Bson::Null)),
            (
                bson!({"$toString": "$arr"}),
                Run(
                    241,
                    "Unsupported conversion from array to string in $convert with no onError value",
                ),
            ),
            (bson!({"$toInt": "42"}), v(42)),
            (bson!({"$toInt": 2.9}), v(2)),
            (bson!({"$toInt": "$t"}), v(1)),
            (bson!({"$toInt": "$n"}), v(Bson::Null)),
            (
                bson!({"$toInt": "4.5"}),
                Fold(
                    241,
                    "Failed to parse number '4.5' in $convert with no onError value: Did not consume whole string.",
                ),
            ),
            (
                bson!({"$toInt": 3e9}),
                Fold(
                    241,
                    "Conversion would overflow target type in $convert with no onError value: 3e+09",
                ),
            ),
            (bson!({"$toLong": "$d"}), v(D_MS)),
            (bson!({"$toLong": "9000000000"}), v(9_000_000_000_i64)),
            (bson!({"$toDouble": "1.5e3"}), v(1500.0)),
            (bson!({"$toDouble": "$t"}), v(1.0)),
            (
                bson!({"$toDouble": "abc"}),
                Fold(
                    241,
                    "Failed to parse number 'abc' in $convert with no onError value: Did not consume any digits",
                ),
            ),
            (bson!({"$toDecimal": 2.5}), v(dec("2.50000000000000"))),
            (bson!({"$toDecimal": "1.1"}), v(dec("1.1"))),
            (bson!({"$toBool": 0}), v(false)),
            (bson!({"$toBool": "false"}), v(true)),
            (bson!({"$toBool": "$n"}), v(Bson::Null)),
            (
                bson!({"$toDate": "2021-03-04T05:06:07.089Z"}),
                v(date(D_MS)),
            ),
            (bson!({"$toDate": "$l"}), v(date(5))),
            (
                bson!({"$toDate": 5}),
                Fold(
                    241,
                    "Unsupported conversion from int to date in $convert with no onError value",
                ),
            ),
            (
                bson!({"$toObjectId": OID}),
                v(ObjectId::parse_str(OID).unwrap()),
            ),
            (
                bson!({"$convert": {"input": "abc", "to": "int", "onError": -1}}),
                v(-1),
            ),
            (
                bson!({"$convert": {"input": "$missing", "to": "int", "onNull": 0}}),
                v(0),
            ),
            (bson!({"$convert": {"input": "1", "to": 16}}), v(1)),
            (bson!({"$convert": {"input": 1, "to": null}}), v(Bson::Null)),
            (
                bson!({"$convert": {"input": 1, "to": "foo"}}),
                Fold(2, "Unknown type name: foo"),
            ),
            (
                bson!({"$convert": {"input": 1}}),
                Parse(9, "Missing 'to' parameter to $convert"),
            ),
            (
                bson!({"$convert": {"input": 1, "to": "int", "x": 1}}),
                Parse(9, "$convert found an unknown argument: x"),
            ),
        ],
    );
}

#[test]
fn array_operators_bind_variables_and_refuse_non_arrays() {
    let (_d, h) = open();
    check(
        &h,
        vec![
            (bson!({"$arrayElemAt": ["$arr", 0]}), v(1)),
            (bson!({"$arrayElemAt": ["$arr", -1]}), v(3)),
            (bson!({"$arrayElemAt": ["$arr", 5]}), Missing),
            (bson!({"$arrayElemAt": ["$n", 0]}), v(Bson::Null)),
            (
                bson!({"$arrayElemAt": ["$s", 0]}),
                Run(
                    28689,
                    "$arrayElemAt's first argument must be an array, but is string",
                ),
            ),
            (
                bson!({"$arrayElemAt": ["$arr", "x"]}),
                Run(
                    28690,
                    "$arrayElemAt's second argument must be a numeric value, but is string",
                ),
            ),
            (
                bson!({"$arrayElemAt": ["$arr", 1.5]}),
                Run(
                    28691,
                    "$arrayElemAt's second argument must be representable as a 32-bit integer: 1.5",
                ),
            ),
            (bson!({"$first": "$arr"}), v(1)),
            (bson!({"$last": "$arr"}), v(3)),
            (bson!({"$first": [[]]}), Missing),
            (
                bson!({"$first": "$s"}),
                Run(28689, "$first's argument must be an array, but is string"),
            ),
            (
                bson!({"$concatArrays": ["$arr", [4]]}),
                v(bson!([1, 2, 3, 4])),
            ),
            (bson!({"$concatArrays": ["$arr", "$n"]}), v(Bson::Null)),
            (
                bson!({"$concatArrays": ["$arr", 1]}),
                Run(28664, "$concatArrays only supports arrays, not int"),
            ),
            (bson!({"$slice": ["$arr", 2]}), v(bson!([1, 2]))),
            (bson!({"$slice": ["$arr", -2]}), v(bson!([2, 3]))),
            (bson!({"$slice": ["$arr", 1, 1]}), v(bson!([2]))),
            (bson!({"$slice": ["$arr", -2, 5]}), v(bson!([2, 3]))),
            (
                bson!({"$slice": ["$arr", 1, 0]}),
                Run(28729, "Third argument to $slice must be positive: 0"),
            ),
            (
                bson!({"$slice": ["$s", 1]}),
                Run(
                    28724,
                    "First argument to $slice must be an array, but is of type: string",
                ),
            ),
            (
                bson!({"$slice": ["$arr"]}),
                Parse(
                    28667,
                    "Expression $slice takes at least 2 arguments, and at most 3, but 1 were passed in.",
                ),
            ),
            (bson!({"$reverseArray": "$arr"}), v(bson!([3, 2, 1]))),
            (bson!({"$reverseArray": "$n"}), v(Bson::Null)),
            (
                bson!({"$reverseArray": "$s"}),
                Run(
                    34435,
                    "The argument to $reverseArray must be an array, but was of type: string",
                ),
            ),
            (
                bson!({"$filter": {"input": "$arr", "cond": {"$gte": ["$$this", 2]}}}),
                v(bson!([2, 3])),
            ),
            (
                bson!({"$filter": {"input": "$arr", "as": "x", "cond": {"$eq": ["$$x", 1]}}}),
                v(bson!([1])),
            ),
            (
                bson!({"$filter": {"input": "$arr", "cond": true, "limit": 1}}),
                v(bson!([1])),
            ),
            (
                bson!({"$filter": {"input": "$s", "cond": true}}),
                Run(28651, "input to $filter must be an array not string"),
            ),
            (
                bson!({"$filter": {"input": "$arr"}}),
                Parse(28650, "Missing 'cond' parameter to $filter"),
            ),
            (
                bson!({"$filter": {"input": "$arr", "cond": "$$nope"}}),
                Parse(17276, "Use of undefined variable: nope"),
            ),
            (
                bson!({"$map": {"input": "$arr", "in": {"$multiply": ["$$this", 10]}}}),
                v(bson!([10, 20, 30])),
            ),
            (
                bson!({"$map": {"input": "$objs", "as": "o", "in": "$$o.k"}}),
                v(bson!(["a", "b"])),
            ),
            (
                bson!({"$map": {"input": "$arr", "in": "$$ROOT.i"}}),
                v(bson!([7, 7, 7])),
            ),
            (
                bson!({"$map": {"input": [1], "in": "$$CURRENT.s"}}),
                v(bson!(["Hello"])),
            ),
            (bson!({"$map": {"input": "$n", "in": 1}}), v(Bson::Null)),
            (
                bson!({"$map": {"input": 1, "in": 1}}),
                Fold(16883, "input to $map must be an array not int"),
            ),
            (
                bson!({"$reduce": {"input": "$arr", "initialValue": 0, "in": {"$add": ["$$value", "$$this"]}}}),
                v(6),
            ),
            (
                bson!({"$reduce": {"input": ["a", "b"], "initialValue": "", "in": {"$concat": ["$$value", "$$this"]}}}),
                v("ab"),
            ),
            (
                bson!({"$reduce": {"input": "$s", "initialValue": 0, "in": 1}}),
                Run(
                    40080,
                    "$reduce requires that 'input' be an array, found: \"Hello\"",
                ),
            ),
            (
                bson!({"$reduce": {"input": "$arr", "in": 1}}),
                Parse(40078, "$reduce requires 'initialValue' to be specified"),
            ),
            (
                bson!({"$let": {"vars": {"x": 2}, "in": {"$multiply": ["$$x", "$i"]}}}),
                v(14),
            ),
            (bson!({"$range": [0, 5]}), v(bson!([0, 1, 2, 3, 4]))),
            (bson!({"$range": [0, 10, 3]}), v(bson!([0, 3, 6, 9]))),
            (bson!({"$range": [5, 0, -2]}), v(bson!([5, 3, 1]))),
            (
                bson!({"$range": [0, 5, 0]}),
                Fold(34449, "$range requires a non-zero step value"),
            ),
            (
                bson!({"$range": ["a", 5]}),
                Fold(
                    34443,
                    "$range requires a numeric starting value, found value of type: string",
                ),
            ),
            (
                bson!({"$range": [0, 1.5]}),
                Fold(
                    34446,
                    "$range requires an ending value that can be represented as a 32-bit integer, found value: 1.5",
                ),
            ),
        ],
    );
}

#[test]
fn set_operators_treat_arrays_as_sets_in_mongodbs_order() {
    let (_d, h) = open();
    check(
        &h,
        vec![
            // One of each equal value (the first given), in MongoDB's order.
            (
                bson!({"$setUnion": [[3, 1, 1.0, "a"], [2, 1]]}),
                v(bson!([1, 2, 3, "a"])),
            ),
            (bson!({"$setUnion": []}), v(bson!([]))),
            (bson!({"$setUnion": ["$arr", "$n"]}), v(Bson::Null)),
            (bson!({"$setUnion": ["$arr", "$missing"]}), v(Bson::Null)),
            (
                bson!({"$setUnion": ["$arr", "$i"]}),
                Run(
                    17043,
                    "All operands of $setUnion must be arrays. One argument is of type: int",
                ),
            ),
            (
                bson!({"$setIntersection": [[3, 2, 1, 2], [2, 3, 4]]}),
                v(bson!([2, 3])),
            ),
            (bson!({"$setIntersection": []}), v(bson!([]))),
            (
                bson!({"$setIntersection": ["$arr", "$s"]}),
                Run(
                    17047,
                    "All operands of $setIntersection must be arrays. One argument is of type: string",
                ),
            ),
            // The first array's order, each value once, less the second's.
            (
                bson!({"$setDifference": [[3, 1, 3, 2], [2]]}),
                v(bson!([3, 1])),
            ),
            (bson!({"$setDifference": ["$n", "$s"]}), v(Bson::Null)),
            (
                bson!({"$setDifference": ["$s", [1]]}),
                Run(
                    17048,
                    "both operands of $setDifference must be arrays. First argument is of type: string",
                ),
            ),
            (
                bson!({"$setDifference": [[1], "$s"]}),
                Run(
                    17049,
                    "both operands of $setDifference must be arrays. Second argument is of type: string",
                ),
            ),
            (
                bson!({"$setDifference": [[1]]}),
                Parse(
                    16020,
                    "Expression $setDifference takes exactly 2 arguments. 1 were passed in.",
                ),
            ),
            (bson!({"$setEquals": [[1, 2, 2], [2, 1.0]]}), v(true)),
            (
                bson!({"$setEquals": [[1, 2, 2], [2, 1.0], "$arr"]}),
                v(false),
            ),
            (
                bson!({"$setEquals": [[1]]}),
                Parse(17045, "$setEquals needs at least two arguments had: 1"),
            ),
            (
                bson!({"$setEquals": [[1], "$n"]}),
                Run(
                    17044,
                    "All operands of $setEquals must be arrays. 2-th argument is of type: null",
                ),
            ),
            (bson!({"$setIsSubset": [[1, 1], "$arr"]}), v(true)),
            (bson!({"$setIsSubset": [[4], "$arr"]}), v(false)),
            (
                bson!({"$setIsSubset": ["$n", []]}),
                Run(
                    17046,
                    "both operands of $setIsSubset must be arrays. First argument is of type: null",
                ),
            ),
            (
                bson!({"$setIsSubset": [[], "$missing"]}),
                Run(
                    17042,
                    "both operands of $setIsSubset must be arrays. Second argument is of type: missing",
                ),
            ),
            (bson!({"$anyElementTrue": [[0, null, false]]}), v(false)),
            (bson!({"$anyElementTrue": [[0, "x"]]}), v(true)),
            (bson!({"$allElementsTrue": [[1, [], "x"]]}), v(true)),
            (bson!({"$allElementsTrue": [[]]}), v(true)),
            (bson!({"$allElementsTrue": [[1, 0]]}), v(false)),
            (
                bson!({"$anyElementTrue": ["$s"]}),
                Run(
                    17041,
                    "$anyElementTrue's argument must be an array, but is string",
                ),
            ),
            (
                bson!({"$allElementsTrue": "$missing"}),
                Run(
                    17040,
                    "$allElementsTrue's argument must be an array, but is missing",
                ),
            ),
            (
                bson!({"$anyElementTrue": [1, 2]}),
                Parse(
                    16020,
                    "Expression $anyElementTrue takes exactly 1 arguments. 2 were passed in.",
                ),
            ),
            // $sortArray: whole values, or documents by a pattern.
            (
                bson!({"$sortArray": {"input": [3, 1, "a", 2], "sortBy": -1}}),
                v(bson!(["a", 3, 2, 1])),
            ),
            (
                bson!({"$sortArray": {"input": "$objs", "sortBy": {"v": -1}}}),
                v(bson!([{"k": "b", "v": 2}, {"k": "a", "v": 1}])),
            ),
            (
                bson!({"$sortArray": {"input": "$n", "sortBy": 1}}),
                v(Bson::Null),
            ),
            (
                bson!({"$sortArray": {"input": "$s", "sortBy": 1}}),
                Run(
                    2_942_504,
                    "The input argument to $sortArray must be an array, but was of type: string",
                ),
            ),
            (
                bson!({"$sortArray": 1}),
                Parse(
                    2_942_500,
                    "$sortArray requires an object as an argument, found: int",
                ),
            ),
            (
                bson!({"$sortArray": {"input": [], "x": 1}}),
                Parse(2_942_501, "$sortArray found an unknown argument: x"),
            ),
            (
                bson!({"$sortArray": {"sortBy": 1}}),
                Parse(2_942_502, "$sortArray requires 'input' to be specified"),
            ),
            (
                bson!({"$sortArray": {"input": []}}),
                Parse(2_942_503, "$sortArray requires 'sortBy' to be specified"),
            ),
            (
                bson!({"$sortArray": {"input": [], "sortBy": 2}}),
                Parse(2_942_506, "The $sort element value must be either 1 or -1"),
            ),
        ],
    );
}

#[test]
fn object_operators_merge_and_reshape() {
    let (_d, h) = open();
    check(
        &h,
        vec![
            (
                bson!({"$mergeObjects": ["$o", {"b": 3, "c": 4}]}),
                v(doc! {"a": 1, "b": 3, "c": 4}),
            ),
            (
                bson!({"$mergeObjects": ["$o", "$n"]}),
                v(doc! {"a": 1, "b": 2}),
            ),
            (
                bson!({"$mergeObjects": ["$o", 1]}),
                Run(
                    40400,
                    "$mergeObjects requires object inputs, but input 1 is of type int",
                ),
            ),
            (
                bson!({"$objectToArray": "$o"}),
                v(bson!([{"k": "a", "v": 1}, {"k": "b", "v": 2}])),
            ),
            (bson!({"$objectToArray": "$n"}), v(Bson::Null)),
            (
                bson!({"$objectToArray": "$i"}),
                Run(
                    40390,
                    "$objectToArray requires a document input, found: int",
                ),
            ),
            (bson!({"$arrayToObject": "$objs"}), v(doc! {"a": 1, "b": 2})),
            (
                bson!({"$arrayToObject": [[["x", 1], ["y", 2]]]}),
                v(doc! {"x": 1, "y": 2}),
            ),
            (
                bson!({"$arrayToObject": "$i"}),
                Run(40386, "$arrayToObject requires an array input, found: int"),
            ),
            (bson!({"$getField": "s"}), v("Hello")),
            (bson!({"$getField": {"field": "a", "input": "$o"}}), v(1)),
            (
                bson!({"$getField": {"field": "zz", "input": "$o"}}),
                Missing,
            ),
            (
                bson!({"$getField": {"field": "a", "input": "$n"}}),
                v(Bson::Null),
            ),
        ],
    );
}

#[test]
fn date_operators_read_utc_or_a_fixed_offset() {
    let (_d, h) = open();
    check(
        &h,
        vec![
            // $$NOW is the store's clock when the pipeline is built.
            (bson!("$$NOW"), v(date(START_MS))),
            (bson!({"$subtract": ["$$NOW", "$d"]}), v(START_MS - D_MS)),
            (bson!({"$year": "$d"}), v(2021)),
            (bson!({"$month": "$d"}), v(3)),
            (bson!({"$dayOfMonth": "$d"}), v(4)),
            (bson!({"$hour": "$d"}), v(5)),
            (bson!({"$minute": "$d"}), v(6)),
            (bson!({"$second": "$d"}), v(7)),
            (bson!({"$millisecond": "$d"}), v(89)),
            (bson!({"$dayOfWeek": "$d"}), v(5)),
            (bson!({"$dayOfYear": "$d"}), v(63)),
            (bson!({"$isoWeek": "$d"}), v(9)),
            (bson!({"$isoDayOfWeek": "$d"}), v(4)),
            (bson!({"$year": ["$d"]}), v(2021)),
            (bson!({"$year": "$oid"}), v(2020)),
            (bson!({"$hour": {"date": "$d", "timezone": "+02:00"}}), v(7)),
            (bson!({"$hour": {"date": "$d", "timezone": "-0530"}}), v(23)),
            (bson!({"$hour": {"date": "$d", "timezone": "UTC"}}), v(5)),
            (bson!({"$year": "$n"}), v(Bson::Null)),
            // Paris is at CET (+01:00) in March before the change.
            (
                bson!({"$hour": {"date": "$d", "timezone": "Europe/Paris"}}),
                v(6),
            ),
            (
                bson!({"$year": "$s"}),
                Run(16006, "can't convert from BSON type string to Date"),
            ),
            (
                bson!({"$year": ["$d", 1]}),
                Parse(
                    40536,
                    "$year accepts exactly one argument if given an array, but was given 2",
                ),
            ),
            (
                bson!({"$month": {"date": "$d", "x": 1}}),
                Parse(40535, "unrecognized option to $month: \"x\""),
            ),
            (
                bson!({"$dateToString": {"date": "$d"}}),
                v("2021-03-04T05:06:07.089Z"),
            ),
            (
                bson!({"$dateToString": {"date": "$d", "format": "%Y/%m/%d %H:%M:%S.%L"}}),
                v("2021/03/04 05:06:07.089"),
            ),
            (
                bson!({"$dateToString": {"date": "$d", "format": "%j %w %u %U %V %G %Z %z %%"}}),
                v("063 5 4 09 09 2021 0 +0000 %"),
            ),
            (
                bson!({"$dateToString": {"date": "$d", "timezone": "+01:30", "format": "%H:%M %z %Z"}}),
                v("06:36 +0130 90"),
            ),
            (
                bson!({"$dateToString": {"date": "$d", "timezone": "+01:00"}}),
                v("2021-03-04T06:06:07.089"),
            ),
            (
                bson!({"$dateToString": {"date": "$missing", "onNull": "none"}}),
                v("none"),
            ),
            (bson!({"$dateToString": {"date": "$n"}}), v(Bson::Null)),
            (
                bson!({"$dateToString": {"date": "$d", "format": "%Q"}}),
                Parse(18536, "Invalid format character '%Q' in format string"),
            ),
            (
                bson!({"$dateToString": {"date": "$d", "format": "%"}}),
                Parse(18535, "Unmatched '%' at end of format string"),
            ),
            (
                bson!({"$dateToString": {"date": "$d", "format": 1}}),
                Run(
                    18533,
                    "$dateToString requires that 'format' be a string, found: int with value 1",
                ),
            ),
            (
                bson!({"$dateToString": {"format": "%Y"}}),
                Parse(18628, "Missing 'date' parameter to $dateToString"),
            ),
            (
                bson!({"$dateFromString": {"dateString": "2021-03-04T05:06:07.089Z"}}),
                v(date(D_MS)),
            ),
            (
                bson!({"$dateFromString": {"dateString": "2021-03-04T07:06:07.089+02:00"}}),
                v(date(D_MS)),
            ),
            (
                bson!({"$dateFromString": {"dateString": "2021-03-04"}}),
                v(date(1_614_816_000_000)),
            ),
            (
                bson!({"$dateFromString": {"dateString": "2021-03-04T06:06:07.089", "timezone": "+01:00"}}),
                v(date(D_MS)),
            ),
            (
                bson!({"$dateFromString": {"dateString": "04/03/2021", "format": "%d/%m/%Y"}}),
                v(date(1_614_816_000_000)),
            ),
            (
                bson!({"$dateFromString": {"dateString": "garbage", "onError": "bad"}}),
                v("bad"),
            ),
            (
                bson!({"$dateFromString": {"dateString": "$n", "onNull": "none"}}),
                v("none"),
            ),
        ],
    );
    let e = h
        .aggregate(
            "db",
            "x",
            &[doc! {"$project": {"v": {"$dateFromString": {"dateString": "2021-02-30"}}}}],
        )
        .unwrap_err();
    assert_eq!((e.code(), e.code_name()), (241, "ConversionFailure"));
    assert!(
        e.to_string()
            .contains("Error parsing date string '2021-02-30'"),
        "{e}"
    );
}

/// IANA zones, DST included. Rows marked "jstests" are MongoDB's own expectations
/// (`jstests/aggregation/expressions/date_to_string.js`, `date_add_subtract.js`,
/// `date_diff.js`, `date_trunc.js`, `date_from_parts.js`,
/// `date_expressions_with_timezones.js`); the others are worked by hand from
/// `date_time_support.cpp` and timelib 2022's `do_adjust_timezone`, the reasoning beside them.
/// New York changes 2024-03-10 at 07:00Z (02:00 EST → 03:00 EDT) and 2024-11-03 at 06:00Z
/// (02:00 EDT → 01:00 EST); Paris 2020-10-25 and 2024-10-27 at 01:00Z (03:00 CEST → 02:00 CET).
#[test]
fn date_operators_read_iana_time_zones() {
    const NY: &str = "America/New_York";
    const PARIS: &str = "Europe/Paris";
    let (_d, h) = open();
    let mut cases = Vec::new();
    // $dateToString with "%Y-%m-%d %H:%M:%S %z (%Z minutes)": (date, zone, text).
    let texts = [
        // jstests: summer and winter instants.
        (
            "2017-07-04T14:56:42.911Z",
            "UTC",
            "2017-07-04 14:56:42 +0000 (0 minutes)",
        ),
        (
            "2017-07-04T14:56:42.911Z",
            "Europe/London",
            "2017-07-04 15:56:42 +0100 (60 minutes)",
        ),
        (
            "2017-07-04T14:56:42.911Z",
            NY,
            "2017-07-04 10:56:42 -0400 (-240 minutes)",
        ),
        (
            "2017-07-04T14:56:42.911Z",
            "Australia/Eucla",
            "2017-07-04 23:41:42 +0845 (525 minutes)",
        ),
        (
            "2017-07-04T14:56:42.911Z",
            "Asia/Kathmandu",
            "2017-07-04 20:41:42 +0545 (345 minutes)",
        ),
        (
            "2017-01-04T15:08:51.911Z",
            NY,
            "2017-01-04 10:08:51 -0500 (-300 minutes)",
        ),
        (
            "2017-12-04T15:09:14.911Z",
            NY,
            "2017-12-04 10:09:14 -0500 (-300 minutes)",
        ),
        // jstests: an offset in seconds (Caracas Mean Time, -4:27:40); %z and %Z drop them.
        (
            "1900-07-10T11:41:22.418Z",
            "America/Caracas",
            "1900-07-10 07:13:42 -0427 (-267 minutes)",
        ),
        // Southern hemisphere: Adelaide keeps ACDT (+10:30) in January, ACST (+09:30) in July.
        (
            "2021-01-15T00:00:00Z",
            "Australia/Adelaide",
            "2021-01-15 10:30:00 +1030 (630 minutes)",
        ),
        (
            "2021-07-15T00:00:00Z",
            "Australia/Adelaide",
            "2021-07-15 09:30:00 +0930 (570 minutes)",
        ),
    ];
    let format = "%Y-%m-%d %H:%M:%S %z (%Z minutes)";
    cases.extend(texts.map(|(d, tz, want)| {
        let e = bson!({"$dateToString": {"date": at(d), "format": format, "timezone": tz}});
        (e, v(want))
    }));
    // $dateAdd: (start, unit, amount, zone, result).
    let adds = [
        // jstests: a day keeps the local clock across the change, 24 hours do not.
        (
            "2020-10-24T18:10:00Z",
            "hour",
            24,
            PARIS,
            "2020-10-25T18:10:00Z",
        ),
        (
            "2020-10-24T18:10:00Z",
            "day",
            1,
            PARIS,
            "2020-10-25T19:10:00Z",
        ),
        (
            "2021-01-30T23:30:00Z",
            "month",
            1,
            PARIS,
            "2021-02-27T23:30:00Z",
        ),
        // Noon EST on the 9th, a day on: noon EDT on the 10th, 23 hours later.
        ("2024-03-09T17:00:00Z", "day", 1, NY, "2024-03-10T16:00:00Z"),
        (
            "2024-03-09T17:00:00Z",
            "hour",
            24,
            NY,
            "2024-03-10T17:00:00Z",
        ),
        // 02:30 EST on the 9th, a day on, is 02:30 on the 10th, inside the gap: timelib reads
        // it at the offset before the gap (EST), which is 03:30 EDT.
        ("2024-03-09T07:30:00Z", "day", 1, NY, "2024-03-10T07:30:00Z"),
        // 01:30 on 2024-11-03 comes twice. timelib keeps the start's DST flag: from 01:30 EDT
        // the day before it lands on 01:30 EDT, from 01:30 EST the day after on 01:30 EST.
        ("2024-11-02T05:30:00Z", "day", 1, NY, "2024-11-03T05:30:00Z"),
        (
            "2024-11-04T06:30:00Z",
            "day",
            -1,
            NY,
            "2024-11-03T06:30:00Z",
        ),
    ];
    cases.extend(adds.map(|(start, unit, amount, tz, want)| {
        let e = bson!({"$dateAdd": {"startDate": at(start), "unit": unit, "amount": amount, "timezone": tz}});
        (e, v(at(want)))
    }));
    // $dateDiff: (start, end, unit, zone, boundaries crossed).
    let diffs = [
        // From midnight EDT to midnight EST the next day: one local day, 25 hours (24 on the
        // local clock, plus the hour the offset changed by).
        (
            "2024-11-03T04:00:00Z",
            "2024-11-04T05:00:00Z",
            "day",
            NY,
            1_i64,
        ),
        (
            "2024-11-03T04:00:00Z",
            "2024-11-04T05:00:00Z",
            "hour",
            NY,
            25,
        ),
        (
            "2024-11-03T04:00:00Z",
            "2024-11-04T05:00:00Z",
            "minute",
            NY,
            1500,
        ),
        // A minute apart but on two local days in New York, one UTC day.
        ("2024-11-03T03:59:00Z", "2024-11-03T04:00:00Z", "day", NY, 1),
        (
            "2024-11-03T03:59:00Z",
            "2024-11-03T04:00:00Z",
            "day",
            "UTC",
            0,
        ),
        // Kolkata's hours turn at :30 UTC: 10:30 to 11:10 local crosses one.
        (
            "2021-03-04T05:00:00Z",
            "2021-03-04T05:40:00Z",
            "hour",
            "Asia/Kolkata",
            1,
        ),
        (
            "2021-03-04T05:00:00Z",
            "2021-03-04T05:40:00Z",
            "hour",
            "UTC",
            0,
        ),
        // jstests.
        (
            "2020-11-01T18:23:36Z",
            "2020-11-02T00:00:00Z",
            "hour",
            NY,
            6,
        ),
    ];
    cases.extend(diffs.map(|(start, end, unit, tz, want)| {
        let e = bson!({"$dateDiff": {"startDate": at(start), "endDate": at(end), "unit": unit, "timezone": tz}});
        (e, v(want))
    }));
    // $dateTrunc: (date, unit, zone, bin start).
    let truncs = [
        // To the day: local midnight, EDT on the fall-back day and EST on the spring-forward day.
        ("2024-11-03T12:00:00Z", "day", NY, "2024-11-03T04:00:00Z"),
        ("2024-03-10T12:00:00Z", "day", NY, "2024-03-10T05:00:00Z"),
        // Hours are bins of 3 600 000 ms from 2000-01-01T00:00 local (05:00Z in New York):
        // each 01:30 of the fold truncates to its own 01:00.
        ("2024-11-03T05:30:00Z", "hour", NY, "2024-11-03T05:00:00Z"),
        ("2024-11-03T06:30:00Z", "hour", NY, "2024-11-03T06:00:00Z"),
        // In Kolkata they start at :30 UTC (2000-01-01T00:00+05:30).
        (
            "2021-03-04T05:06:07.089Z",
            "hour",
            "Asia/Kolkata",
            "2021-03-04T04:30:00Z",
        ),
        // Santiago springs forward at midnight (2024-09-08 00:00 -04 is 01:00 -03): the day
        // starts at the first instant after the gap.
        (
            "2024-09-08T12:00:00Z",
            "day",
            "America/Santiago",
            "2024-09-08T04:00:00Z",
        ),
        // Adelaide's month starts at local midnight in ACDT (+10:30).
        (
            "2021-01-15T00:00:00Z",
            "month",
            "Australia/Adelaide",
            "2020-12-31T13:30:00Z",
        ),
    ];
    cases.extend(truncs.map(|(d, unit, tz, want)| {
        let e = bson!({"$dateTrunc": {"date": at(d), "unit": unit, "timezone": tz}});
        (e, v(at(want)))
    }));
    // $dateFromParts: ([year, month, day, hour, minute], zone, instant). A time in the gap is
    // read at the offset before it (02:30 EST is 03:30 EDT); one in the fold takes the DST flag
    // the zone had at 1970-01-01T00:00Z, standard time in both zones here, so the later of the
    // two instants.
    let from_parts = [
        ([2024, 3, 10, 2, 30], NY, "2024-03-10T07:30:00Z"),
        ([2024, 11, 3, 1, 30], NY, "2024-11-03T06:30:00Z"),
        ([2024, 10, 27, 2, 30], PARIS, "2024-10-27T01:30:00Z"),
        (
            [2021, 1, 15, 10, 30],
            "Australia/Adelaide",
            "2021-01-15T00:00:00Z",
        ),
        // jstests.
        (
            [2017, 6, 19, 0, 0],
            "America/Chicago",
            "2017-06-19T05:00:00Z",
        ),
        ([2017, 1, 1, 0, 0], "Asia/Tokyo", "2016-12-31T15:00:00Z"),
    ];
    cases.extend(from_parts.map(|([y, mo, d, hr, mi], tz, want)| {
        let e = bson!({"$dateFromParts": {"year": y, "month": mo, "day": d, "hour": hr, "minute": mi, "timezone": tz}});
        (e, v(at(want)))
    }));
    cases.extend([
        // jstests.
        (
            bson!({"$dayOfMonth": {"date": at("2017-06-17T15:00:33.101Z"), "timezone": "Australia/Sydney"}}),
            v(18),
        ),
        (
            bson!({"$dayOfMonth": {"date": at("2017-06-16T00:00:00Z"), "timezone": NY}}),
            v(15),
        ),
        (
            bson!({"$hour": {"date": at("2021-07-01T12:00:00Z"), "timezone": PARIS}}),
            v(14),
        ),
        (
            bson!({"$dateToParts": {"date": "$d", "timezone": "Asia/Kolkata"}}),
            v(doc! {"year": 2021, "month": 3, "day": 4, "hour": 10, "minute": 36, "second": 7, "millisecond": 89}),
        ),
        // The default format keeps the `Z` for MongoDB's UTC zone only (no name, `UTC`, a zero
        // offset); `Etc/UTC` is a zone of the database like any other.
        (
            bson!({"$dateToString": {"date": "$d", "timezone": PARIS}}),
            v("2021-03-04T06:06:07.089"),
        ),
        (
            bson!({"$dateToString": {"date": "$d", "timezone": "Etc/UTC"}}),
            v("2021-03-04T05:06:07.089"),
        ),
        (
            bson!({"$dateToString": {"date": "$d", "timezone": "+00:00"}}),
            v("2021-03-04T05:06:07.089Z"),
        ),
        // jstests.
        (
            bson!({"$dateSubtract": {"startDate": at("2020-12-31T12:10:05Z"), "unit": "month", "amount": 3, "timezone": PARIS}}),
            v(at("2020-09-30T11:10:05Z")),
        ),
        (
            bson!({"$dateSubtract": {"startDate": at("2021-01-31T03:00:00Z"), "unit": "month", "amount": 2, "timezone": NY}}),
            v(at("2020-12-01T03:00:00Z")),
        ),
        (
            bson!({"$dateDiff": {"startDate": at("2021-01-17T05:00:00Z"), "endDate": at("2021-01-17T04:59:00Z"), "unit": "week", "timezone": NY, "startOfWeek": "sunday"}}),
            v(-1_i64),
        ),
        (
            bson!({"$dateTrunc": {"date": at("2021-12-01T18:23:36Z"), "unit": "hour", "binSize": 4, "timezone": NY}}),
            v(at("2021-12-01T17:00:00Z")),
        ),
        (
            bson!({"$dateTrunc": {"date": at("2000-01-30T18:00:00Z"), "unit": "week", "binSize": 2, "timezone": NY, "startOfWeek": "mon"}}),
            v(at("2000-01-17T05:00:00Z")),
        ),
        (
            bson!({"$dateFromParts": {"year": 2017, "month": 6, "day": 23, "hour": 14, "minute": 27, "second": 37, "millisecond": 742, "timezone": "Europe/Berlin"}}),
            v(at("2017-06-23T12:27:37.742Z")),
        ),
        // $dateFromString reads a text without a zone as $dateFromParts does.
        (
            bson!({"$dateFromString": {"dateString": "2024-11-03T01:30:00", "timezone": NY}}),
            v(at("2024-11-03T06:30:00Z")),
        ),
        (
            bson!({"$dateFromString": {"dateString": "2017-07-04T12:00:00", "timezone": PARIS}}),
            v(at("2017-07-04T10:00:00Z")),
        ),
        // A text with its own zone takes a `timezone` only when that is UTC (constant
        // operands: the error comes when the pipeline is optimized).
        (
            bson!({"$dateFromString": {"dateString": "2017-07-04T12:00:00Z", "timezone": "UTC"}}),
            v(at("2017-07-04T12:00:00Z")),
        ),
        (
            bson!({"$dateFromString": {"dateString": "2017-07-04T12:00:00Z", "timezone": PARIS}}),
            Fold(
                241,
                "you cannot pass in a date/time string with time zone information ('Z') together with a timezone argument",
            ),
        ),
        (
            bson!({"$dateFromString": {"dateString": "2017-07-04T12:00:00+02:00", "timezone": "+02:00"}}),
            Fold(
                241,
                "you cannot pass in a date/time string with GMT offset together with a timezone argument",
            ),
        ),
        (
            bson!({"$dateFromString": {"dateString": "2017-07-04T12:00:00+02:00", "timezone": PARIS, "onError": "bad"}}),
            v("bad"),
        ),
        // Names are the database's, spelled exactly: no other case, no `Z`.
        (
            bson!({"$hour": {"date": "$d", "timezone": "europe/paris"}}),
            Run(40485, "unrecognized time zone identifier: \"europe/paris\""),
        ),
        (
            bson!({"$hour": {"date": "$d", "timezone": "Z"}}),
            Run(40485, "unrecognized time zone identifier: \"Z\""),
        ),
        (
            bson!({"$dateTrunc": {"date": "$d", "unit": "day", "timezone": "America/Invalid"}}),
            Run(
                40485,
                "$dateTrunc parameter 'timezone' value parsing failed :: caused by :: unrecognized time zone identifier: \"America/Invalid\"",
            ),
        ),
    ]);
    check(&h, cases);
}

#[test]
fn date_arithmetic_adds_diffs_and_truncates_in_the_local_calendar() {
    let (_d, h) = open();
    check(
        &h,
        vec![
            // $dateAdd / $dateSubtract: months in the calendar, a day past the end clamped.
            (
                bson!({"$dateAdd": {"startDate": "$d", "unit": "month", "amount": 1}}),
                v(date(1_617_512_767_089)),
            ),
            (
                bson!({"$dateAdd": {"startDate": date(1_612_094_400_000), "unit": "month", "amount": 1}}),
                v(date(1_614_513_600_000)),
            ),
            (
                bson!({"$dateAdd": {"startDate": "$d", "unit": "year", "amount": 1.0, "timezone": "+05:00"}}),
                v(date(1_646_370_367_089)),
            ),
            // At -05:00 2021-03-01T02:00Z is still February 28th: a month on is March 28th.
            (
                bson!({"$dateAdd": {"startDate": {"$add": ["$d", 0, -270_367_089_i64]}, "unit": "month", "amount": 1, "timezone": "-05:00"}}),
                v(date(1_616_983_200_000)),
            ),
            (
                bson!({"$dateAdd": {"startDate": "$d", "unit": "hour", "amount": -5}}),
                v(date(1_614_816_367_089)),
            ),
            (
                bson!({"$dateSubtract": {"startDate": "$d", "unit": "week", "amount": 2}}),
                v(date(1_613_624_767_089)),
            ),
            (
                bson!({"$dateAdd": {"startDate": "$n", "unit": "day", "amount": 1}}),
                v(Bson::Null),
            ),
            (
                bson!({"$dateAdd": {"startDate": "$d", "unit": "day", "amount": "$missing"}}),
                v(Bson::Null),
            ),
            (
                bson!({"$dateAdd": {"startDate": "$s", "unit": "day", "amount": 1}}),
                Run(
                    5_166_403,
                    "$dateAdd requires startDate to be convertible to a date",
                ),
            ),
            (
                bson!({"$dateAdd": {"startDate": "$d", "unit": "day", "amount": 1.5}}),
                Run(5_166_405, "$dateAdd expects integer amount of time units"),
            ),
            (
                bson!({"$dateAdd": {"startDate": "$d", "unit": "$s", "amount": 1}}),
                Run(
                    9,
                    "$dateAdd parameter 'unit' value parsing failed :: caused by :: unknown time unit value: Hello",
                ),
            ),
            (
                bson!({"$dateSubtract": {"startDate": "$d", "unit": "millisecond", "amount": i64::MIN}}),
                Run(
                    6_045_000,
                    "invalid $dateSubtract 'amount' parameter value: -9223372036854775808",
                ),
            ),
            // MongoDB's isDateAddAmountValid: |amount| under the unit's count in the days of
            // an unsigned 64-bit millisecond range, rounded up (213 503 982 335 days;
            // 584 942 418 years = 213 503 982 335 / 365 + 1), else 5976500 before adding.
            (
                bson!({"$dateAdd": {"startDate": "$d", "unit": "year", "amount": i64::MAX}}),
                Run(
                    5_976_500,
                    "invalid dateAdd 'amount' parameter value: 9223372036854775807 year",
                ),
            ),
            (
                bson!({"$dateAdd": {"startDate": "$d", "unit": "month", "amount": 400_000_000_000_000_000_i64}}),
                Run(
                    5_976_500,
                    "invalid dateAdd 'amount' parameter value: 400000000000000000 month",
                ),
            ),
            (
                bson!({"$dateAdd": {"startDate": "$d", "unit": "year", "amount": 584_942_418}}),
                Run(
                    5_976_500,
                    "invalid dateAdd 'amount' parameter value: 584942418 year",
                ),
            ),
            (
                bson!({"$dateSubtract": {"startDate": "$d", "unit": "day", "amount": 213_503_982_335_i64}}),
                Run(
                    5_976_500,
                    "invalid dateAdd 'amount' parameter value: -213503982335 day",
                ),
            ),
            // Within the bound, past every date: the sum's own check (a year count that once
            // overflowed the day arithmetic).
            (
                bson!({"$dateAdd": {"startDate": "$d", "unit": "year", "amount": 584_942_417}}),
                Run(5_166_406, "dateAdd overflowed"),
            ),
            (
                bson!({"$dateSubtract": {"startDate": "$d", "unit": "day", "amount": 213_503_982_334_i64}}),
                Run(5_166_406, "dateAdd overflowed"),
            ),
            (
                bson!({"$dateAdd": {"startDate": "$d", "unit": "millisecond", "amount": i64::MAX}}),
                Run(5_166_406, "dateAdd overflowed"),
            ),
            (
                bson!({"$dateAdd": {"startDate": "$d", "unit": "days", "amount": 1}}),
                Parse(
                    9,
                    "$dateAdd parameter 'unit' value parsing failed :: caused by :: unknown time unit value: days",
                ),
            ),
            (
                bson!({"$dateAdd": {"startDate": "$d", "unit": 1, "amount": 1}}),
                Parse(
                    5_439_013,
                    "$dateAdd requires 'unit' to be a string, but got int",
                ),
            ),
            (
                bson!({"$dateAdd": 1}),
                Parse(5_166_400, "$dateAdd expects an object as its argument"),
            ),
            (
                bson!({"$dateSubtract": {"startDate": "$d", "unit": "day"}}),
                Parse(
                    5_166_402,
                    "$dateSubtract requires startDate, unit, and amount to be present",
                ),
            ),
            (
                bson!({"$dateAdd": {"startDate": "$d", "unit": "day", "amount": 1, "x": 1}}),
                Parse(
                    5_166_401,
                    "Unrecognized argument to $dateAdd: x. Expected arguments are startDate, unit, amount, and optionally timezone.",
                ),
            ),
            // $dateDiff: unit boundaries crossed, in the local calendar; a long.
            (
                bson!({"$dateDiff": {"startDate": "$d", "endDate": {"$dateAdd": {"startDate": "$d", "unit": "day", "amount": 45}}, "unit": "month"}}),
                v(1_i64),
            ),
            (
                bson!({"$dateDiff": {"startDate": date(1_640_991_600_000), "endDate": date(1_640_998_800_000), "unit": "year"}}),
                v(1_i64),
            ),
            (
                bson!({"$dateDiff": {"startDate": date(1_640_991_600_000), "endDate": date(1_640_998_800_000), "unit": "year", "timezone": "-05:00"}}),
                v(0_i64),
            ),
            // Thursday to the next Sunday noon: one week boundary from Sunday, none from Monday.
            (
                bson!({"$dateDiff": {"startDate": "$d", "endDate": date(1_615_118_400_000), "unit": "week"}}),
                v(1_i64),
            ),
            (
                bson!({"$dateDiff": {"startDate": "$d", "endDate": date(1_615_118_400_000), "unit": "week", "startOfWeek": "MON"}}),
                v(0_i64),
            ),
            (
                bson!({"$dateDiff": {"startDate": "$d", "endDate": date(D_MS - 1), "unit": "millisecond"}}),
                v(-1_i64),
            ),
            (
                bson!({"$dateDiff": {"startDate": "$d", "endDate": "$n", "unit": "day"}}),
                v(Bson::Null),
            ),
            (
                bson!({"$dateDiff": {"startDate": "$s", "endDate": "$d", "unit": "day"}}),
                Run(
                    5_166_307,
                    "$dateDiff requires 'startDate' to be a date, but got string",
                ),
            ),
            (
                bson!({"$dateDiff": {"startDate": "$d", "endDate": "$d", "unit": "day", "timezone": "Mars/Base"}}),
                Run(
                    40485,
                    "$dateDiff parameter 'timezone' value parsing failed :: caused by :: unrecognized time zone identifier: \"Mars/Base\"",
                ),
            ),
            (
                bson!({"$dateDiff": {"startDate": "$d", "unit": "day"}}),
                Parse(5_166_304, "Missing 'endDate' parameter to $dateDiff"),
            ),
            (
                bson!({"$dateDiff": {"startDate": "$d", "endDate": "$d", "unit": "week", "startOfWeek": "someday"}}),
                Parse(
                    5_439_016,
                    "$dateDiff parameter 'startOfWeek' value cannot be recognized as a day of a week: someday",
                ),
            ),
            // $dateTrunc: bins counted from 2000-01-01 local.
            (
                bson!({"$dateTrunc": {"date": "$d", "unit": "day"}}),
                v(date(1_614_816_000_000)),
            ),
            (
                bson!({"$dateTrunc": {"date": "$d", "unit": "hour", "binSize": 2}}),
                v(date(1_614_830_400_000)),
            ),
            (
                bson!({"$dateTrunc": {"date": "$d", "unit": "week"}}),
                v(date(1_614_470_400_000)),
            ),
            (
                bson!({"$dateTrunc": {"date": "$d", "unit": "week", "startOfWeek": "monday"}}),
                v(date(1_614_556_800_000)),
            ),
            (
                bson!({"$dateTrunc": {"date": "$d", "unit": "quarter"}}),
                v(date(1_609_459_200_000)),
            ),
            (
                bson!({"$dateTrunc": {"date": "$d", "unit": "month", "binSize": 5}}),
                v(date(1_604_188_800_000)),
            ),
            (
                bson!({"$dateTrunc": {"date": "$d", "unit": "day", "timezone": "+05:00"}}),
                v(date(1_614_798_000_000)),
            ),
            // MongoDB's truncateDate allows day-or-longer bins up to 10^11 units (5439006
            // past it); hour bins have no such bound. Both bins here start at the reference.
            (
                bson!({"$dateTrunc": {"date": "$d", "unit": "day", "binSize": 100_000_000_000_i64}}),
                v(date(946_684_800_000)),
            ),
            (
                bson!({"$dateTrunc": {"date": "$d", "unit": "year", "binSize": 100_000_000_001_i64}}),
                Run(5_439_006, "dateTrunc unsupported binSize value"),
            ),
            (
                bson!({"$dateTrunc": {"date": "$d", "unit": "hour", "binSize": 100_000_000_001_i64}}),
                v(date(946_684_800_000)),
            ),
            (
                bson!({"$dateTrunc": {"date": "$d", "unit": "day", "binSize": 0}}),
                Run(
                    5_439_018,
                    "$dateTrunc requires 'binSize' to be greater than 0, but got value 0",
                ),
            ),
            (
                bson!({"$dateTrunc": {"date": "$d", "unit": "day", "binSize": 1.5}}),
                Run(
                    5_439_017,
                    "$dateTrunc requires 'binSize' to be a 64-bit integer, but got value '1.5' of type double",
                ),
            ),
            (
                bson!({"$dateTrunc": {"date": "$s", "unit": "day"}}),
                Run(
                    5_166_307,
                    "$dateTrunc requires 'date' to be a date, but got string",
                ),
            ),
            (
                bson!({"$dateTrunc": {"date": "$d"}}),
                Parse(5_439_010, "Missing 'unit' parameter to $dateTrunc"),
            ),
            (
                bson!({"$dateTrunc": {"date": "$d", "unit": "day", "x": 1}}),
                Parse(
                    5_439_008,
                    "Unrecognized argument to $dateTrunc: x. Expected arguments are date, unit, and optionally, binSize, timezone, startOfWeek",
                ),
            ),
        ],
    );
}

/// Runs `pipeline` over the empty collection `db.empty`.
fn on_empty(h: &History, pipeline: &[Document]) -> (i32, String, String) {
    let e = h.aggregate("db", "empty", pipeline).unwrap_err();
    (e.code(), e.code_name().to_owned(), e.to_string())
}

#[test]
fn a_malformed_expression_fails_the_pipeline_before_any_document_is_read() {
    let (_d, h) = open();
    let unknown = |stage: &str| vec![doc! {stage: {"v": {"$add": [{"$foo": 1}]}}}];
    for (pipeline, want) in [
        // At the head of a $project field the projection parser reports it, in its words.
        (
            vec![doc! {"$project": {"v": {"$foo": 1}}}],
            (
                31325,
                "Location31325",
                "Invalid $project :: caused by :: Unknown expression $foo",
            ),
        ),
        (
            unknown("$project"),
            (
                168,
                "InvalidPipelineOperator",
                "Invalid $project :: caused by :: Unrecognized expression '$foo'",
            ),
        ),
        (
            unknown("$addFields"),
            (
                168,
                "InvalidPipelineOperator",
                "Invalid $addFields :: caused by :: Unrecognized expression '$foo'",
            ),
        ),
        (
            unknown("$set"),
            (
                168,
                "InvalidPipelineOperator",
                "Invalid $set :: caused by :: Unrecognized expression '$foo'",
            ),
        ),
        (
            vec![doc! {"$group": {"_id": {"$foo": "$x"}}}],
            (
                168,
                "InvalidPipelineOperator",
                "Unrecognized expression '$foo'",
            ),
        ),
        (
            vec![doc! {"$group": {"_id": null, "n": {"$sum": {"$eq": [1]}}}}],
            (
                16020,
                "Location16020",
                "Expression $eq takes exactly 2 arguments. 1 were passed in.",
            ),
        ),
        (
            vec![doc! {"$match": {}}, doc! {"$replaceWith": {"$foo": 1}}],
            (
                168,
                "InvalidPipelineOperator",
                "Unrecognized expression '$foo'",
            ),
        ),
        // Constant operands are evaluated then, as MongoDB's optimizer folds them.
        (
            vec![doc! {"$project": {"v": {"$divide": [1, 0]}}}],
            (
                2,
                "BadValue",
                "Failed to optimize pipeline :: caused by :: can't $divide by zero",
            ),
        ),
        (
            vec![doc! {"$group": {"_id": {"$add": [1, "a"]}}}],
            (
                14,
                "TypeMismatch",
                "Failed to optimize pipeline :: caused by :: $add only supports numeric or date types, not string",
            ),
        ),
        (
            vec![doc! {"$project": {"v": "$$nope"}}],
            (
                17276,
                "Location17276",
                "Invalid $project :: caused by :: Use of undefined variable: nope",
            ),
        ),
    ] {
        let (code, name, message) = on_empty(&h, &pipeline);
        assert_eq!(
            (code, name.as_str(), message.as_str()),
            want,
            "{pipeline:?}"
        );
    }
    // An operator MongoDB has that this store does not is named as unsupported.
    let (code, _, message) = on_empty(&h, &[doc! {"$project": {"v": {"$toHashedIndexKey": "$x"}}}]);
    assert_eq!(
        (code, message.as_str()),
        (115, "unsupported: expression operator $toHashedIndexKey")
    );
}

/// `{$abs: … {$abs: 1}}` with `n` operators: n + 1 expressions deep.
fn nested_abs(n: usize) -> Bson {
    (0..n).fold(Bson::Int32(1), |inner, _| bson!({"$abs": inner}))
}

#[test]
fn expression_depth_is_limited_when_the_pipeline_is_built() {
    let (_d, h) = open();
    let at_max = nested_abs(EXPRESSION_DEPTH_MAX - 1);
    let out = h
        .aggregate("db", "x", &[doc! {"$project": {"_id": 0, "v": at_max}}])
        .unwrap();
    assert_eq!(out, vec![doc! {"v": 1}]);
    let over = nested_abs(EXPRESSION_DEPTH_MAX);
    let (code, name, message) = on_empty(&h, &[doc! {"$project": {"v": over}}]);
    assert_eq!((code, name.as_str()), (15, "Overflow"));
    assert_eq!(
        message,
        format!(
            "nesting depth {} exceeds the limit of {EXPRESSION_DEPTH_MAX} levels",
            EXPRESSION_DEPTH_MAX + 1
        )
    );
}

#[test]
fn replace_root_replace_with_and_sort_by_count() {
    let (_d, h) = open();
    assert_eq!(
        h.aggregate("db", "x", &[doc! {"$replaceRoot": {"newRoot": "$o"}}])
            .unwrap(),
        vec![doc! {"a": 1, "b": 2}]
    );
    assert_eq!(
        h.aggregate(
            "db",
            "x",
            &[doc! {"$replaceWith": {"$mergeObjects": ["$o", {"x": "$i"}]}}]
        )
        .unwrap(),
        vec![doc! {"a": 1, "b": 2, "x": 7}]
    );
    h.insert_many(
        "db",
        "o",
        vec![
            doc! {"_id": 1, "c": "a", "p": {"q": 1}},
            doc! {"_id": 2, "c": "b", "p": {"q": 2}},
            doc! {"_id": 3, "c": "a"},
        ],
    )
    .unwrap();
    assert_eq!(
        h.aggregate("db", "o", &[doc! {"$sortByCount": "$c"}])
            .unwrap(),
        vec![doc! {"_id": "a", "count": 2}, doc! {"_id": "b", "count": 1}]
    );
    let e = h
        .aggregate("db", "o", &[doc! {"$replaceRoot": {"newRoot": "$p"}}])
        .unwrap_err();
    assert_eq!((e.code(), e.code_name()), (40228, "Location40228"));
    assert_eq!(
        e.to_string(),
        "PlanExecutor error during aggregation :: caused by :: 'newRoot' expression  must \
         evaluate to an object, but resulting value was: MISSING. Type of resulting value: \
         'missing'. Input document: {_id: 3, c: \"a\"}"
    );
    let e = h
        .aggregate("db", "o", &[doc! {"$replaceWith": "$c"}])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "PlanExecutor error during aggregation :: caused by :: 'replacement document' must \
         evaluate to an object, but resulting value was: \"a\". Type of resulting value: \
         'string'. Input document: {_id: 1, c: \"a\", p: {q: 1}}"
    );
    let (code, _, message) = on_empty(&h, &[doc! {"$replaceRoot": {}}]);
    assert_eq!(
        (code, message.as_str()),
        (
            40414,
            "BSON field '$replaceRoot.newRoot' is missing but a required field"
        )
    );
}

fn regex(pattern: &str, options: &str) -> Bson {
    Bson::RegularExpression(bson::Regex {
        pattern: pattern.to_owned().try_into().unwrap(),
        options: options.to_owned().try_into().unwrap(),
    })
}

#[test]
fn trigonometry_checks_domains_and_keeps_decimal_results_decimal() {
    let (_d, h) = open();
    let minus_i = bson!({"$multiply": ["$i", -1]});
    check(
        &h,
        vec![
            (bson!({"$sin": "$n"}), v(Bson::Null)),
            (bson!({"$cos": "$missing"}), v(Bson::Null)),
            (bson!({"$atan2": ["$n", "$s"]}), v(Bson::Null)),
            (bson!({"$sin": 0}), v(0.0)),
            (bson!({"$cosh": 0}), v(1.0)),
            (bson!({"$cos": "$l"}), v(0.283_662_185_463_226_25)),
            (bson!({"$tan": "$neg"}), v(-0.871_447_982_724_318_8)),
            (bson!({"$asinh": "$l"}), v(2.312_438_341_272_752_5)),
            (bson!({"$atan2": ["$i", "$l"]}), v(0.950_546_840_812_075_2)),
            (
                bson!({"$degreesToRadians": "$i"}),
                v(0.122_173_047_639_603_07),
            ),
            (
                bson!({"$degreesToRadians": "$dec"}),
                v(dec("0.02181661564992911971154613460610766")),
            ),
            (
                bson!({"$radiansToDegrees": "$dec"}),
                v(dec("71.61972439135290109599769351763146")),
            ),
            (bson!({"$type": {"$sin": "$dec"}}), v("decimal")),
            (bson!({"$type": {"$atan2": ["$i", "$dec"]}}), v("decimal")),
            (
                bson!({"$type": {"$acos": "$l"}}),
                Run(50989, "cannot apply $acos to 5, value must in [-1,1]"),
            ),
            (
                bson!({"$eq": [{"$acos": {"$literal": f64::NAN}}, f64::NAN]}),
                v(true),
            ),
            (
                bson!({"$sin": "$s"}),
                Run(28765, "$sin only supports numeric types, not string"),
            ),
            (
                bson!({"$acos": minus_i.clone()}),
                Run(50989, "cannot apply $acos to -7, value must in [-1,1]"),
            ),
            (
                bson!({"$atanh": "$f"}),
                Run(50989, "cannot apply $atanh to 2.5, value must in [-1,1]"),
            ),
            (
                bson!({"$asin": "$dec"}),
                Run(50989, "cannot apply $asin to 1.25, value must in [-1,1]"),
            ),
            (
                bson!({"$acosh": 0.5}),
                Fold(50989, "cannot apply $acosh to 0.5, value must in [1,inf]"),
            ),
            (
                bson!({"$sin": f64::INFINITY}),
                Fold(50989, "cannot apply $sin to inf, value must in (-inf,inf)"),
            ),
            (
                bson!({"$atan2": ["$s", "$n"]}),
                Run(51044, "$atan2 only supports numeric types, not string"),
            ),
            (
                bson!({"$atan2": ["$i", "$s"]}),
                Run(51045, "$atan2 only supports numeric types, not string"),
            ),
            (
                bson!({"$atan2": [1]}),
                Parse(
                    16020,
                    "Expression $atan2 takes exactly 2 arguments. 1 were passed in.",
                ),
            ),
            (
                bson!({"$sin": [1, 2]}),
                Parse(
                    16020,
                    "Expression $sin takes exactly 1 arguments. 2 were passed in.",
                ),
            ),
        ],
    );
}

#[test]
fn regex_operators_match_find_and_find_all_by_code_points() {
    let (_d, h) = open();
    let m =
        |s: &str, idx: i32, captures: Bson| bson!({"match": s, "idx": idx, "captures": captures});
    check(
        &h,
        vec![
            (
                bson!({"$regexMatch": {"input": "$s", "regex": "^h", "options": "i"}}),
                v(true),
            ),
            (
                bson!({"$regexMatch": {"input": "$s", "regex": "^h"}}),
                v(false),
            ),
            (
                bson!({"$regexMatch": {"input": "$s", "regex": regex("^h", "i")}}),
                v(true),
            ),
            (
                bson!({"$regexMatch": {"input": "$s", "regex": regex("^h", ""), "options": "i"}}),
                v(true),
            ),
            (
                bson!({"$regexMatch": {"input": "$n", "regex": "a"}}),
                v(false),
            ),
            (
                bson!({"$regexMatch": {"input": "$s", "regex": "$n"}}),
                v(false),
            ),
            (
                bson!({"$regexFind": {"input": "$utf", "regex": "l+"}}),
                v(m("ll", 2, bson!([]))),
            ),
            (
                bson!({"$regexFind": {"input": "$utf", "regex": "(é)(x)?"}}),
                v(m("é", 1, bson!(["é", null]))),
            ),
            (
                bson!({"$regexFind": {"input": "$s", "regex": "z"}}),
                v(Bson::Null),
            ),
            (
                bson!({"$regexFind": {"input": "$missing", "regex": "z"}}),
                v(Bson::Null),
            ),
            (
                bson!({"$regexFindAll": {"input": "$utf", "regex": "l"}}),
                v(bson!([m("l", 2, bson!([])), m("l", 3, bson!([]))])),
            ),
            (
                bson!({"$regexFindAll": {"input": "$utf", "regex": "(?:é|o)"}}),
                v(bson!([m("é", 1, bson!([])), m("o", 4, bson!([]))])),
            ),
            // An empty match moves one code point on; the end of the input is not tried.
            (
                bson!({"$regexFindAll": {"input": "$utf", "regex": "x*"}}),
                v(bson!([
                    m("", 0, bson!([])),
                    m("", 1, bson!([])),
                    m("", 2, bson!([])),
                    m("", 3, bson!([])),
                    m("", 4, bson!([])),
                ])),
            ),
            (
                bson!({"$regexFindAll": {"input": "", "regex": "x*"}}),
                v(bson!([m("", 0, bson!([]))])),
            ),
            (
                bson!({"$regexFindAll": {"input": "$n", "regex": "a"}}),
                v(bson!([])),
            ),
            (
                bson!({"$regexMatch": {"input": "$i", "regex": "a"}}),
                Run(51104, "$regexMatch needs 'input' to be of type string"),
            ),
            (
                bson!({"$regexFind": {"input": "$s", "regex": "$i"}}),
                Run(
                    51105,
                    "$regexFind needs 'regex' to be of type string or regex",
                ),
            ),
            // A constant pattern is compiled when the pipeline is built.
            (
                bson!({"$regexFind": {"input": "$s", "regex": 5}}),
                Fold(
                    51105,
                    "$regexFind needs 'regex' to be of type string or regex",
                ),
            ),
            (
                bson!({"$regexMatch": {"input": "$s", "regex": "a", "options": 1}}),
                Fold(51106, "$regexMatch needs 'options' to be of type string"),
            ),
            (
                bson!({"$regexMatch": {"input": "$s", "regex": regex("h", "i"), "options": "m"}}),
                Fold(
                    51107,
                    "$regexMatch: found regex option(s) specified in both 'regex' and 'option' fields",
                ),
            ),
            (
                bson!({"$regexFind": {"input": "$s", "regex": "a", "options": "z"}}),
                Fold(51108, "$regexFind invalid flag in regex options: z"),
            ),
            (
                bson!({"$regexFindAll": {"input": "$s", "regex": "a\u{0}b"}}),
                Fold(
                    51109,
                    "$regexFindAll: regular expression cannot contain an embedded null byte",
                ),
            ),
            (
                bson!({"$regexMatch": "x"}),
                Parse(
                    51103,
                    "$regexMatch expects an object of named arguments but found: string",
                ),
            ),
            (
                bson!({"$regexMatch": {"regex": "a"}}),
                Parse(31022, "$regexMatch requires 'input' parameter"),
            ),
            (
                bson!({"$regexFind": {"input": "$s"}}),
                Parse(31023, "$regexFind requires 'regex' parameter"),
            ),
            (
                bson!({"$regexFindAll": {"input": "$s", "regex": "a", "x": 1}}),
                Parse(31024, "$regexFindAll found an unknown argument: x"),
            ),
        ],
    );
    // In a query's `$expr` too.
    let found = |pattern: &str| {
        h.find(
            "db",
            "x",
            &doc! {"$expr": {"$regexMatch": {"input": "$s", "regex": pattern}}},
            &FindOptions::default(),
        )
        .unwrap()
        .len()
    };
    assert_eq!((found("^H"), found("^h")), (1, 0));
    // A pattern the engine refuses is 51111, with the engine's reason.
    let e = h
        .aggregate(
            "db",
            "x",
            &[doc! {"$project": {"v": {"$regexMatch": {"input": "$s", "regex": "$s"}}}}],
        )
        .unwrap();
    assert_eq!(e, vec![doc! {"_id": 1, "v": true}]);
    let err = h
        .aggregate(
            "db",
            "x",
            &[doc! {"$project": {"v": {"$regexMatch": {"input": "$s", "regex": "("}}}}],
        )
        .unwrap_err();
    assert_eq!(err.code(), 51111);
    assert!(
        err.to_string().starts_with(
            "Failed to optimize pipeline :: caused by :: Invalid Regex in $regexMatch: "
        ),
        "{err}"
    );
}

#[test]
fn regex_pattern_length_is_limited_at_the_boundary() {
    let (_d, h) = open();
    let at_max = "a".repeat(REGEX_PATTERN_BYTES_MAX);
    check(
        &h,
        vec![
            (
                bson!({"$regexMatch": {"input": "$s", "regex": at_max.clone()}}),
                v(false),
            ),
            (
                bson!({"$regexMatch": {"input": "$s", "regex": format!("{at_max}a")}}),
                Fold(
                    51111,
                    "Invalid Regex in $regexMatch: regular expression is 32765 bytes, more than the limit of 32764",
                ),
            ),
        ],
    );
}

#[test]
fn replace_and_index_of_code_points_follow_mongodbs_string_rules() {
    let (_d, h) = open();
    check(
        &h,
        vec![
            (
                bson!({"$replaceOne": {"input": "$s", "find": "l", "replacement": "L"}}),
                v("HeLlo"),
            ),
            (
                bson!({"$replaceAll": {"input": "$s", "find": "l", "replacement": "L"}}),
                v("HeLLo"),
            ),
            (
                bson!({"$replaceAll": {"input": "$s", "find": "", "replacement": "-"}}),
                v("-H-e-l-l-o-"),
            ),
            (
                bson!({"$replaceOne": {"input": "$s", "find": "", "replacement": "-"}}),
                v("-Hello"),
            ),
            (
                bson!({"$replaceOne": {"input": "$s", "find": "z", "replacement": "-"}}),
                v("Hello"),
            ),
            (
                bson!({"$replaceAll": {"input": "$n", "find": "a", "replacement": "b"}}),
                v(Bson::Null),
            ),
            (
                bson!({"$replaceAll": {"input": "$s", "find": "$missing", "replacement": "b"}}),
                v(Bson::Null),
            ),
            // Every operand's type is checked before a null one gives null.
            (
                bson!({"$replaceAll": {"input": "$n", "find": 1, "replacement": "b"}}),
                Run(
                    51745,
                    "$replaceAll requires that 'find' be a string, found: 1",
                ),
            ),
            (
                bson!({"$replaceOne": {"input": "$i", "find": "a", "replacement": "b"}}),
                Run(
                    51746,
                    "$replaceOne requires that 'input' be a string, found: 7",
                ),
            ),
            // MongoDB does not fold these over constants: the error comes when a document is read.
            (
                bson!({"$replaceAll": {"input": "abc", "find": "b", "replacement": true}}),
                Run(
                    51744,
                    "$replaceAll requires that 'replacement' be a string, found: true",
                ),
            ),
            (
                bson!({"$replaceOne": "x"}),
                Parse(
                    51751,
                    "$replaceOne requires an object as an argument, found: string",
                ),
            ),
            (
                bson!({"$replaceOne": {"input": "a", "find": "b", "x": 1}}),
                Parse(51750, "$replaceOne found an unknown argument: x"),
            ),
            (
                bson!({"$replaceAll": {"find": "b", "replacement": "c"}}),
                Parse(51749, "$replaceAll requires 'input' to be specified"),
            ),
            (
                bson!({"$replaceAll": {"input": "a", "replacement": "c"}}),
                Parse(51748, "$replaceAll requires 'find' to be specified"),
            ),
            (
                bson!({"$replaceOne": {"input": "a", "find": "b"}}),
                Parse(51747, "$replaceOne requires 'replacement' to be specified"),
            ),
            (bson!({"$indexOfCP": ["$utf", "l"]}), v(2)),
            (bson!({"$indexOfCP": ["$utf", "é"]}), v(1)),
            (bson!({"$indexOfCP": ["$utf", "l", 3]}), v(3)),
            (bson!({"$indexOfCP": ["$utf", "l", 0, 2]}), v(-1)),
            (bson!({"$indexOfCP": ["$utf", "lo", 3, 4]}), v(3)),
            (bson!({"$indexOfCP": ["$utf", "", 2]}), v(2)),
            (bson!({"$indexOfCP": ["$utf", "", 5]}), v(-1)),
            (bson!({"$indexOfCP": ["", "", 5]}), v(0)),
            (bson!({"$indexOfCP": ["$n", "a"]}), v(Bson::Null)),
            (
                bson!({"$indexOfCP": ["$utf", "$n"]}),
                Run(
                    40094,
                    "$indexOfCP requires a string as the second argument, found: null",
                ),
            ),
            (
                bson!({"$indexOfCP": ["$i", "a"]}),
                Run(
                    40093,
                    "$indexOfCP requires a string as the first argument, found: int",
                ),
            ),
            (
                bson!({"$indexOfCP": ["$utf", "l", -1]}),
                Run(
                    40097,
                    "$indexOfCP requires a nonnegative starting index, found: -1",
                ),
            ),
            (
                bson!({"$indexOfCP": ["$utf", "l", "$f"]}),
                Run(
                    40096,
                    "$indexOfCPrequires an integral starting index, found a value of type: double, with value: 2.5",
                ),
            ),
            (
                bson!({"$indexOfArray": [[1, 2], 2, "$f"]}),
                Run(
                    40096,
                    "$indexOfArrayrequires an integral starting index, found a value of type: double, with value: 2.5",
                ),
            ),
            (
                bson!({"$indexOfCP": ["a"]}),
                Parse(
                    28667,
                    "Expression $indexOfCP takes at least 2 arguments, and at most 4, but 1 were passed in.",
                ),
            ),
        ],
    );
}

#[test]
fn zip_transposes_arrays_with_defaults_only_when_lengths_differ() {
    let (_d, h) = open();
    check(
        &h,
        vec![
            (
                bson!({"$zip": {"inputs": ["$arr", ["a", "b"]]}}),
                v(bson!([[1, "a"], [2, "b"]])),
            ),
            (
                bson!({"$zip": {"inputs": ["$arr", ["a"]], "useLongestLength": true}}),
                v(bson!([[1, "a"], [2, null], [3, null]])),
            ),
            (
                bson!({"$zip": {"inputs": ["$arr", ["a"]], "useLongestLength": true, "defaults": [0, "z"]}}),
                v(bson!([[1, "a"], [2, "z"], [3, "z"]])),
            ),
            // Equal lengths: the defaults are not evaluated.
            (
                bson!({"$zip": {
                    "inputs": ["$arr", [4, 5, 6]],
                    "useLongestLength": true,
                    "defaults": [{"$divide": ["$i", 0]}, 0],
                }}),
                v(bson!([[1, 4], [2, 5], [3, 6]])),
            ),
            (bson!({"$zip": {"inputs": ["$arr", "$n"]}}), v(Bson::Null)),
            // The first null input gives null before a later non-array is seen.
            (
                bson!({"$zip": {"inputs": ["$missing", "$s"]}}),
                v(Bson::Null),
            ),
            (
                bson!({"$zip": {"inputs": ["$arr", "$s"]}}),
                Run(
                    34468,
                    "$zip found a non-array expression in input: \"Hello\"",
                ),
            ),
            (
                bson!({"$zip": {"inputs": [[1], 5]}}),
                Run(34468, "$zip found a non-array expression in input: 5"),
            ),
            (
                bson!({"$zip": 1}),
                Parse(
                    34460,
                    "$zip only supports an object as an argument, found int",
                ),
            ),
            (
                bson!({"$zip": {"inputs": 1}}),
                Parse(34461, "inputs must be an array of expressions, found int"),
            ),
            (
                bson!({"$zip": {"inputs": [[1]], "defaults": 1}}),
                Parse(34462, "defaults must be an array of expressions, found int"),
            ),
            (
                bson!({"$zip": {"inputs": [[1]], "useLongestLength": 1}}),
                Parse(34463, "useLongestLength must be a bool, found object"),
            ),
            (
                bson!({"$zip": {"inputs": [[1]], "x": 1}}),
                Parse(34464, "$zip found an unknown argument: x"),
            ),
            (
                bson!({"$zip": {"inputs": []}}),
                Parse(34465, "$zip requires at least one input array"),
            ),
            (
                bson!({"$zip": {"inputs": [[1]], "defaults": [1]}}),
                Parse(
                    34466,
                    "cannot specify defaults unless useLongestLength is true",
                ),
            ),
            (
                bson!({"$zip": {"inputs": [[1], [2]], "useLongestLength": true, "defaults": [1]}}),
                Parse(34467, "defaults and inputs must have the same length"),
            ),
        ],
    );
}

#[test]
fn date_parts_round_trip_and_carry_overflowing_parts() {
    let (_d, h) = open();
    check(
        &h,
        vec![
            (
                bson!({"$dateToParts": {"date": "$d"}}),
                v(
                    bson!({"year": 2021, "month": 3, "day": 4, "hour": 5, "minute": 6, "second": 7, "millisecond": 89}),
                ),
            ),
            (
                bson!({"$dateToParts": {"date": "$d", "iso8601": true}}),
                v(
                    bson!({"isoWeekYear": 2021, "isoWeek": 9, "isoDayOfWeek": 4, "hour": 5, "minute": 6, "second": 7, "millisecond": 89}),
                ),
            ),
            (
                bson!({"$dateToParts": {"date": "$d", "timezone": "-06:00"}}),
                v(
                    bson!({"year": 2021, "month": 3, "day": 3, "hour": 23, "minute": 6, "second": 7, "millisecond": 89}),
                ),
            ),
            (bson!({"$dateToParts": {"date": "$n"}}), v(Bson::Null)),
            (
                bson!({"$dateToParts": {"date": "$d", "timezone": "$n"}}),
                v(Bson::Null),
            ),
            (
                bson!({"$dateToParts": {"date": "$d", "iso8601": "$missing"}}),
                v(Bson::Null),
            ),
            (
                bson!({"$dateToParts": {"date": "$d", "iso8601": "$s"}}),
                Run(40521, "iso8601 must evaluate to a bool, found string"),
            ),
            (
                bson!({"$dateToParts": {"date": "$s"}}),
                Run(16006, "can't convert from BSON type string to Date"),
            ),
            (
                bson!({"$dateToParts": {"date": "$d", "timezone": "$i"}}),
                Run(40517, "timezone must evaluate to a string, found int"),
            ),
            (
                bson!({"$dateToParts": 1}),
                Parse(
                    40524,
                    "$dateToParts only supports an object as its argument",
                ),
            ),
            (
                bson!({"$dateToParts": {"timezone": "UTC"}}),
                Parse(40522, "Missing 'date' parameter to $dateToParts"),
            ),
            (
                bson!({"$dateToParts": {"date": "$d", "x": 1}}),
                Parse(40520, "Unrecognized argument to $dateToParts: x"),
            ),
            (
                bson!({"$dateFromParts": {"year": 2021, "month": 3, "day": 4, "hour": 5, "minute": 6, "second": 7, "millisecond": 89}}),
                v(date(D_MS)),
            ),
            (
                bson!({"$dateFromParts": {"year": 2021, "month": 3, "day": 4, "hour": 10, "minute": 36, "second": 7, "millisecond": 89, "timezone": "+05:30"}}),
                v(date(D_MS)),
            ),
            (
                bson!({"$dateFromParts": {"isoWeekYear": 2021, "isoWeek": 9, "isoDayOfWeek": 4, "hour": 5, "minute": 6, "second": 7, "millisecond": 89}}),
                v(date(D_MS)),
            ),
            (
                bson!({"$dateFromParts": {"isoWeekYear": 2017}}),
                v(date(1_483_315_200_000)),
            ),
            (
                bson!({"$dateFromParts": {"year": 2017, "month": 14, "day": 1}}),
                v(date(1_517_443_200_000)),
            ),
            (
                bson!({"$dateFromParts": {"year": 2017, "month": 1, "day": 0}}),
                v(date(1_483_142_400_000)),
            ),
            (
                bson!({"$dateFromParts": {"year": 2017, "hour": -1}}),
                v(date(1_483_225_200_000)),
            ),
            (
                bson!({"$dateFromParts": {"year": 2017, "month": 0}}),
                v(date(1_480_550_400_000)),
            ),
            (
                bson!({"$dateFromParts": {"year": 1970, "second": 100_000}}),
                v(date(100_000_000)),
            ),
            (
                bson!({"$dateFromParts": {"year": "$i", "month": "$n"}}),
                v(Bson::Null),
            ),
            (
                bson!({"$dateFromParts": {"year": 2021, "hour": "$missing"}}),
                v(Bson::Null),
            ),
            (
                bson!({"$dateFromParts": {"year": 2021, "timezone": "$n"}}),
                v(Bson::Null),
            ),
            // The year and the bounded parts at their limits and one past.
            (
                bson!({"$dateFromParts": {"year": 9999}}),
                v(date(253_370_764_800_000)),
            ),
            (
                bson!({"$dateFromParts": {"year": 1}}),
                v(date(-62_135_596_800_000)),
            ),
            (
                bson!({"$dateFromParts": {"year": 10_000}}),
                Fold(
                    40523,
                    "'year' must evaluate to an integer in the range 1 to 9999, found 10000",
                ),
            ),
            (
                bson!({"$dateFromParts": {"year": {"$multiply": ["$i", 10_000]}, "month": 1}}),
                Run(
                    40523,
                    "'year' must evaluate to an integer in the range 1 to 9999, found 70000",
                ),
            ),
            (
                bson!({"$dateFromParts": {"isoWeekYear": 0}}),
                Fold(
                    31095,
                    "'isoWeekYear' must evaluate to an integer in the range 1 to 9999, found 0",
                ),
            ),
            (
                bson!({"$dateFromParts": {"year": 2021, "month": 32_767}}),
                v(date(87_775_488_000_000)),
            ),
            (
                bson!({"$dateFromParts": {"year": 2021, "month": 32_768}}),
                Fold(
                    31034,
                    "'month' must evaluate to a value in the range [-32768, 32767]; value 32768 is not in range",
                ),
            ),
            (
                bson!({"$dateFromParts": {"year": 2021, "minute": -32_769}}),
                Fold(
                    31034,
                    "'minute' must evaluate to a value in the range [-32768, 32767]; value -32769 is not in range",
                ),
            ),
            (
                bson!({"$dateFromParts": {"year": "$s"}}),
                Run(
                    40515,
                    "'year' must evaluate to an integer, found string with value \"Hello\"",
                ),
            ),
            (
                bson!({"$dateFromParts": {"year": 2021, "day": 1.5}}),
                Fold(
                    40515,
                    "'day' must evaluate to an integer, found double with value 1.5",
                ),
            ),
            (
                bson!({"$dateFromParts": 1}),
                Parse(
                    40519,
                    "$dateFromParts only supports an object as its argument",
                ),
            ),
            (
                bson!({"$dateFromParts": {}}),
                Parse(
                    40516,
                    "$dateFromParts requires either 'year' or 'isoWeekYear' to be present",
                ),
            ),
            (
                bson!({"$dateFromParts": {"year": 2021, "isoWeek": 1}}),
                Parse(
                    40489,
                    "$dateFromParts does not allow mixing natural dates with ISO dates",
                ),
            ),
            (
                bson!({"$dateFromParts": {"isoWeekYear": 2021, "day": 1}}),
                Parse(
                    40525,
                    "$dateFromParts does not allow mixing ISO dates with natural dates",
                ),
            ),
            (
                bson!({"$dateFromParts": {"year": 2021, "foo": 1}}),
                Parse(40518, "Unrecognized argument to $dateFromParts: foo"),
            ),
            // $week: weeks from Sunday, the days before the first Sunday in week 0.
            (bson!({"$week": "$d"}), v(9)),
            (bson!({"$week": date(1_609_545_600_000)}), v(0)),
            (bson!({"$week": {"date": date(1_609_632_000_000)}}), v(1)),
            (bson!({"$week": "$n"}), v(Bson::Null)),
            (
                bson!({"$week": "$s"}),
                Run(16006, "can't convert from BSON type string to Date"),
            ),
        ],
    );
}

#[test]
fn set_field_and_unset_field_take_a_constant_field_name() {
    let (_d, h) = open();
    check(
        &h,
        vec![
            (
                bson!({"$setField": {"field": "a", "input": "$o", "value": 24}}),
                v(bson!({"a": 24, "b": 2})),
            ),
            (
                bson!({"$setField": {"field": "c", "input": "$o", "value": "$i"}}),
                v(bson!({"a": 1, "b": 2, "c": 7})),
            ),
            (
                bson!({"$setField": {"field": "a.b", "input": "$o", "value": 1}}),
                v(bson!({"a": 1, "b": 2, "a.b": 1})),
            ),
            (
                bson!({"$setField": {"field": {"$literal": "$x"}, "input": "$o", "value": 1}}),
                v(bson!({"a": 1, "b": 2, "$x": 1})),
            ),
            (
                bson!({"$setField": {"field": "a", "input": "$o", "value": "$$REMOVE"}}),
                v(bson!({"b": 2})),
            ),
            (
                bson!({"$unsetField": {"field": "b", "input": "$o"}}),
                v(bson!({"a": 1})),
            ),
            (
                bson!({"$setField": {"field": "a", "input": "$n", "value": {"$divide": ["$i", 0]}}}),
                v(Bson::Null),
            ),
            (
                bson!({"$unsetField": {"field": "a", "input": "$missing"}}),
                v(Bson::Null),
            ),
            (
                bson!({"$setField": {"field": "a", "input": "$s", "value": 0}}),
                Run(
                    4_161_105,
                    "$setField requires 'input' to evaluate to type Object",
                ),
            ),
            // Not folded over constants; $unsetField reports as $setField, as in MongoDB.
            (
                bson!({"$unsetField": {"field": "a", "input": true}}),
                Run(
                    4_161_105,
                    "$setField requires 'input' to evaluate to type Object",
                ),
            ),
            (
                bson!({"$setField": 5}),
                Parse(
                    4_161_100,
                    "$setField only supports an object as its argument",
                ),
            ),
            (
                bson!({"$setField": {"input": {"a": "b"}}}),
                Parse(4_161_102, "$setField requires 'field' to be specified"),
            ),
            (
                bson!({"$setField": {"field": "a", "input": {"a": "b"}}}),
                Parse(4_161_103, "$setField requires 'value' to be specified"),
            ),
            (
                bson!({"$unsetField": {"field": "a", "value": "foo"}}),
                Parse(4_161_101, "$unsetField found an unknown argument: value"),
            ),
            (
                bson!({"$setField": {"field": "foo", "value": 0}}),
                Parse(4_161_109, "$setField requires 'input' to be specified"),
            ),
            (
                bson!({"$setField": {"field": true, "input": {"a": "b"}, "value": 24}}),
                Parse(
                    4_161_107,
                    "$setField requires 'field' to evaluate to type String, but got bool",
                ),
            ),
            (
                bson!({"$unsetField": {"field": null, "input": {}}}),
                Parse(
                    4_161_107,
                    "$unsetField requires 'field' to evaluate to type String, but got null",
                ),
            ),
            (
                bson!({"$setField": {"field": {"a": 1}, "input": {"a": 1}, "value": 24}}),
                Parse(
                    4_161_106,
                    "$setField requires 'field' to evaluate to a constant, but got a non-constant argument",
                ),
            ),
            (
                bson!({"$setField": {"field": "$field_path", "input": {}, "value": 0}}),
                Parse(
                    4_161_108,
                    "'$CURRENT.field_path' is a field path reference which is not allowed in this context. Did you mean {$literal: '$CURRENT.field_path'}?",
                ),
            ),
        ],
    );
}

#[test]
fn std_dev_sizes_and_timestamp_parts_as_expressions() {
    let (_d, h) = open();
    let ts = Bson::Timestamp(bson::Timestamp {
        time: 1_700_000_000,
        increment: 3,
    });
    let bin = Bson::Binary(bson::Binary {
        subtype: bson::spec::BinarySubtype::Generic,
        bytes: vec![1, 2, 3],
    });
    check(
        &h,
        vec![
            (bson!({"$stdDevPop": "$arr"}), v(0.816_496_580_927_726)),
            (bson!({"$stdDevSamp": "$arr"}), v(1.0)),
            (bson!({"$stdDevPop": ["$i", "$l", "$s"]}), v(1.0)),
            (
                bson!({"$stdDevSamp": ["$i", "$l"]}),
                v(std::f64::consts::SQRT_2),
            ),
            (bson!({"$stdDevPop": "$i"}), v(0.0)),
            (bson!({"$stdDevSamp": ["$i"]}), v(Bson::Null)),
            (bson!({"$stdDevPop": "$n"}), v(Bson::Null)),
            (bson!({"$stdDevPop": "$s"}), v(Bson::Null)),
            (bson!({"$stdDevPop": []}), v(Bson::Null)),
            (bson!({"$stdDevPop": ["$arr", "$arr"]}), v(Bson::Null)),
            (bson!({"$bsonSize": "$o"}), v(19)),
            (bson!({"$bsonSize": "$n"}), v(Bson::Null)),
            (
                bson!({"$bsonSize": "$s"}),
                Run(31393, "$bsonSize requires a document input, found: string"),
            ),
            (bson!({"$binarySize": "$utf"}), v(6)),
            (bson!({"$binarySize": bin}), v(3)),
            (bson!({"$binarySize": "$missing"}), v(Bson::Null)),
            (
                bson!({"$binarySize": "$i"}),
                Run(
                    51276,
                    "$binarySize requires a string or BinData argument, found: int",
                ),
            ),
            (bson!({"$tsSecond": ts.clone()}), v(1_700_000_000_i64)),
            (bson!({"$tsIncrement": ts}), v(3_i64)),
            (bson!({"$tsIncrement": "$n"}), v(Bson::Null)),
            (
                bson!({"$tsSecond": "$s"}),
                Run(
                    5_687_301,
                    " Argument to $tsSecond must be a timestamp, but is string",
                ),
            ),
            (
                bson!({"$tsIncrement": "$d"}),
                Run(
                    5_687_302,
                    " Argument to $tsIncrement must be a timestamp, but is date",
                ),
            ),
        ],
    );
}

#[test]
fn a_replacement_result_is_held_to_the_stage_document_limit() {
    let (_d, h) = open();
    let run = |k: usize| {
        h.aggregate(
            "db",
            "x",
            &[
                doc! {"$project": {"_id": 0, "v": {"$strLenBytes": {"$replaceOne": {
                    "input": "$s", "find": "H", "replacement": "r".repeat(k),
                }}}}},
            ],
        )
    };
    // "Hello" with its one-byte "H" replaced: 4 bytes and the replacement.
    let at_max = STAGE_DOCUMENT_BYTES_MAX - 4;
    assert_eq!(
        run(at_max).unwrap(),
        vec![doc! {"v": i32::try_from(STAGE_DOCUMENT_BYTES_MAX).unwrap()}]
    );
    assert_eq!(run(at_max + 1).unwrap_err().code(), 10334);
}
