//! Capability: JOLT behaviours the upstream fixtures do not cover, pinned to what the Java
//! implementation (jolt-core) does. Method: apply small specs through the public API and
//! compare with the output jolt-core gives for the same spec and input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use serde_json::{Value, json};
use streamcache::transform::Spec;

fn apply(spec: Value, input: Value) -> Value {
    Spec::parse(&spec).unwrap().apply(&input).unwrap()
}

/// `CardinalitySpec.parse` splits nothing: `a|b` is a key literally named `a|b`, and `&`
/// is a plain character.
#[test]
fn cardinality_keys_are_literal_except_at_and_stars() {
    let spec = json!([{"operation": "cardinality", "spec": {"a|b": "MANY", "&": "MANY"}}]);
    assert_eq!(
        apply(spec.clone(), json!({"a": 1, "b": 2, "&": 3})),
        json!({"a": 1, "b": 2, "&": [3]})
    );
    assert_eq!(apply(spec, json!({"a|b": 1})), json!({"a|b": [1]}));
    let stars = json!([{"operation": "cardinality", "spec": {"x*": "MANY", "*": "ONE"}}]);
    assert_eq!(
        apply(stars, json!({"xa": 1, "y": [4, 5]})),
        json!({"xa": [1], "y": 4})
    );
    let bad = json!([{"operation": "cardinality", "spec": {"a@": "MANY"}}]);
    assert!(Spec::parse(&bad).is_err());
}

/// `divideAndRound` rounds the quotient's exact binary value half up, as
/// `new BigDecimal(double).setScale(d, HALF_UP)` does: a price of 3 / 20 = 0.15 (stored as
/// 0.1499…) rounds to 0.1 at one digit.
#[test]
fn divide_and_round_matches_big_decimal() {
    let spec = json!([{"operation": "modify-overwrite-beta", "spec": {
        "r": "=divideAndRound(1, @(1,a), @(1,b))",
        "pair": "=divideAndRound(2, @(1,ops))"
    }}]);
    assert_eq!(
        apply(spec, json!({"a": 3, "b": 20, "ops": [10, 3]})),
        json!({"a": 3, "b": 20, "ops": [10, 3], "r": 0.1, "pair": 3.33})
    );
}
