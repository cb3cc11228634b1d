//! Capability: JOLT invariants. Method: proptest over generated JSON and generated specs —
//! an identity shift returns its input; `default` never overwrites a present value; `remove`
//! then `default` with the same paths restores the input; parsing arbitrary text and applying
//! arbitrary valid specs to arbitrary JSON never panics. Also replays the committed fuzz corpora
//! (`fuzz/corpus/jolt_spec`, `fuzz/corpus/jolt_apply`) through the fuzz bodies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use streamcache::transform::{Spec, fuzz_jolt_apply, fuzz_jolt_spec};

fn key() -> impl Strategy<Value = String> {
    "[a-z0-9_-]{1,6}"
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        "[ -~]{0,8}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(key(), json_value(), 0..8).prop_map(|m| m.into_iter().collect())
}

/// Left-hand keys from every part of the grammar.
fn lhs_key() -> impl Strategy<Value = String> {
    prop_oneof![
        key(),
        Just("*".to_owned()),
        key().prop_map(|k| format!("{k}*")),
        key().prop_map(|k| format!("*{k}*")),
        (key(), key()).prop_map(|(a, b)| format!("{a}|{b}*")),
        Just("&".to_owned()),
        Just("&1".to_owned()),
        Just("@".to_owned()),
        key().prop_map(|k| format!("@(1,{k})")),
        Just("$".to_owned()),
        Just("$(0,1)".to_owned()),
        key().prop_map(|k| format!("#{k}")),
        Just("[0]".to_owned()),
        key().prop_map(|k| format!("\\{k}")),
    ]
}

/// Right-hand output paths from every part of the grammar.
fn rhs_path() -> impl Strategy<Value = String> {
    let element = prop_oneof![
        key(),
        Just("&".to_owned()),
        Just("&(1,0)".to_owned()),
        Just("&2".to_owned()),
        Just("[]".to_owned()),
        Just("[1]".to_owned()),
        Just("[&0]".to_owned()),
        Just("[#2]".to_owned()),
        key().prop_map(|k| format!("@(1,{k})")),
    ];
    prop::collection::vec(element, 0..4).prop_map(|parts| parts.join("."))
}

fn modify_rhs() -> impl Strategy<Value = Value> {
    prop_oneof![
        scalar(),
        key().prop_map(|k| Value::from(format!("@(1,{k})"))),
        key().prop_map(|k| Value::from(format!("^{k}"))),
        Just(json!("=toUpper")),
        Just(json!("=concat(@(1,a), '-', ^b)")),
        Just(json!("=divideAndRound(2, @(1,a), 3)")),
        Just(json!(["=notNull", "=size", 3])),
        Just(json!("=split(',', @(1,a))")),
        Just(json!("=elementAt(1, @(1,a))")),
    ]
}

/// A generated spec body: leaves from `leaf`, keys from `lhs_key`.
fn spec_tree(leaf: BoxedStrategy<Value>) -> impl Strategy<Value = Value> {
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop::collection::btree_map(lhs_key(), inner, 1..4)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    })
    .prop_filter("root must be an object", Value::is_object)
}

fn any_chain() -> impl Strategy<Value = Value> {
    let shift = spec_tree(rhs_path().prop_map(Value::from).boxed())
        .prop_map(|s| json!({"operation": "shift", "spec": s}));
    let default =
        spec_tree(scalar().boxed()).prop_map(|s| json!({"operation": "default", "spec": s}));
    let remove =
        spec_tree(Just(json!("")).boxed()).prop_map(|s| json!({"operation": "remove", "spec": s}));
    let cardinality = spec_tree(prop_oneof![Just(json!("ONE")), Just(json!("MANY"))].boxed())
        .prop_map(|s| json!({"operation": "cardinality", "spec": s}));
    let modify = (
        spec_tree(modify_rhs().boxed()),
        prop_oneof![
            Just("modify-overwrite-beta"),
            Just("modify-default-beta"),
            Just("modify-define-beta")
        ],
    )
        .prop_map(|(s, op)| json!({"operation": op, "spec": s}));
    let op = prop_oneof![
        shift,
        default,
        remove,
        cardinality,
        modify,
        Just(json!({"operation": "sort"}))
    ];
    prop::collection::vec(op, 1..4).prop_map(Value::Array)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn identity_shift_returns_its_input(input in json_value()) {
        let spec = Spec::parse(&json!([{"operation": "shift", "spec": {"@": ""}}])).unwrap();
        prop_assert_eq!(spec.apply(&input).unwrap(), input);
    }

    #[test]
    fn star_to_ampersand_shift_returns_an_object(input in object()) {
        let spec = Spec::parse(&json!([{"operation": "shift", "spec": {"*": "&"}}])).unwrap();
        let out = spec.apply(&Value::Object(input.clone())).unwrap();
        let expected = if input.is_empty() { Value::Null } else { Value::Object(input) };
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn default_never_overwrites_a_present_value(input in object(), defaults in object()) {
        let spec = Spec::parse(&json!([{"operation": "default", "spec": defaults}])).unwrap();
        let out = spec.apply(&Value::Object(input.clone())).unwrap();
        prop_assert!(preserved(&Value::Object(input), &out), "{}", out);
    }

    #[test]
    fn remove_then_default_restores(input in object()) {
        let remove: Map<String, Value> = input.keys().map(|k| (k.clone(), json!(""))).collect();
        let chain = json!([
            {"operation": "remove", "spec": remove},
            {"operation": "default", "spec": input},
        ]);
        let spec = Spec::parse(&chain).unwrap();
        let out = spec.apply(&Value::Object(input.clone())).unwrap();
        prop_assert_eq!(out, Value::Object(input));
    }

    #[test]
    fn applying_any_valid_spec_never_panics(chain in any_chain(), input in json_value(), context in json_value()) {
        if let Ok(spec) = Spec::parse(&chain) {
            let first = spec.apply_with_context(&input, &context);
            // Deterministic: the same spec on the same input gives the same result.
            let second = spec.apply_with_context(&input, &context);
            prop_assert_eq!(first.ok(), second.ok());
        }
    }

    #[test]
    fn parsing_any_text_never_panics(text in "[\\[\\]{}\":,.*&@$#|()\\\\^=a-z0-9 ]{0,64}") {
        fuzz_jolt_spec(text.as_bytes());
        fuzz_jolt_apply(format!("{text}\n{{\"a\":[1,{{\"b\":2}}]}}").as_bytes());
    }
}

/// Every non-null value of `before` is still in `after` at the same place (defaults may only
/// add to containers).
fn preserved(before: &Value, after: &Value) -> bool {
    match (before, after) {
        (Value::Null, _) => true,
        (Value::Object(b), Value::Object(a)) => b
            .iter()
            .all(|(k, v)| v.is_null() || a.get(k).is_some_and(|av| preserved(v, av))),
        (Value::Array(b), Value::Array(a)) => {
            b.len() <= a.len() && b.iter().zip(a).all(|(bv, av)| preserved(bv, av))
        }
        (b, a) => b == a,
    }
}

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no seeds", dir.display());
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn fuzz_corpora_replay_without_panicking() {
    for seed in corpus("jolt_spec") {
        fuzz_jolt_spec(&seed);
    }
    for seed in corpus("jolt_apply") {
        fuzz_jolt_apply(&seed);
    }
}
