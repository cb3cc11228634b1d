//! Capability: the transform module's named limits. Method: build specs and documents exactly
//! at each `*_MAX` and one past it through the public API, and check the first is accepted and
//! the second rejected with the variant that carries the limit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use serde_json::{Value, json};
use streamcache::transform::{
    ARRAY_INDEX_MAX, COPY_BYTES_MAX, COPY_VALUES_MAX, DOCUMENT_DEPTH_MAX, Error, INPUT_DEPTH_MAX,
    PATH_ELEMENTS_MAX, SPEC_BYTES_MAX, SPEC_DEPTH_MAX, SPEC_OPERATIONS_MAX, Spec,
};

/// `depth` nested arrays around `1`.
fn nested(depth: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..depth {
        v = Value::Array(vec![v]);
    }
    v
}

#[test]
fn spec_bytes_at_max_and_past_it() {
    let base = r#"[{"operation":"sort"}]"#;
    let at_max = format!("{base}{}", " ".repeat(SPEC_BYTES_MAX - base.len()));
    assert!(Spec::parse_str(&at_max).is_ok());
    let past = format!("{at_max} ");
    assert!(
        matches!(Spec::parse_str(&past), Err(Error::SpecTooLarge { len, max }) if len == SPEC_BYTES_MAX + 1 && max == SPEC_BYTES_MAX)
    );
}

/// A default chain whose spec nests to `depth` containers in total (chain array included).
fn default_chain_of_depth(depth: usize) -> Value {
    // chain array (1) > operation object (2) > spec object (3) > …
    let mut spec = json!({"leaf": 1});
    for _ in 0..depth - 3 {
        spec = json!({ "a": spec });
    }
    json!([{ "operation": "default", "spec": spec }])
}

#[test]
fn spec_depth_at_max_and_past_it() {
    assert!(Spec::parse(&default_chain_of_depth(SPEC_DEPTH_MAX)).is_ok());
    let err = Spec::parse(&default_chain_of_depth(SPEC_DEPTH_MAX + 1)).unwrap_err();
    assert!(
        matches!(err, Error::SpecTooDeep { max, .. } if max == SPEC_DEPTH_MAX),
        "{err}"
    );
}

#[test]
fn operations_at_max_and_past_it() {
    let chain = |n: usize| Value::Array(vec![json!({"operation": "sort"}); n]);
    assert_eq!(
        Spec::parse(&chain(SPEC_OPERATIONS_MAX)).unwrap().len(),
        SPEC_OPERATIONS_MAX
    );
    let err = Spec::parse(&chain(SPEC_OPERATIONS_MAX + 1)).unwrap_err();
    assert!(
        matches!(err, Error::TooManyOperations { len, max } if len == SPEC_OPERATIONS_MAX + 1 && max == SPEC_OPERATIONS_MAX)
    );
}

#[test]
fn path_elements_at_max_and_past_it() {
    let shift =
        |n: usize| json!([{ "operation": "shift", "spec": { "x": vec!["a"; n].join(".") } }]);
    let spec = Spec::parse(&shift(PATH_ELEMENTS_MAX)).unwrap();
    let out = spec.apply(&json!({"x": 7})).unwrap();
    let mut cur = &out;
    for _ in 0..PATH_ELEMENTS_MAX {
        cur = &cur["a"];
    }
    assert_eq!(cur, &json!(7));
    let err = Spec::parse(&shift(PATH_ELEMENTS_MAX + 1)).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSpec { path, .. } if path == "/0/spec/x"),
        "{err}"
    );
}

#[test]
fn input_and_context_depth_at_max_and_past_it() {
    let spec = Spec::parse_str(r#"[{"operation":"sort"}]"#).unwrap();
    assert_eq!(
        spec.apply(&nested(INPUT_DEPTH_MAX)).unwrap(),
        nested(INPUT_DEPTH_MAX)
    );
    assert!(
        matches!(spec.apply(&nested(INPUT_DEPTH_MAX + 1)), Err(Error::InputTooDeep { max }) if max == INPUT_DEPTH_MAX)
    );
    assert!(
        spec.apply_with_context(&json!({}), &nested(INPUT_DEPTH_MAX))
            .is_ok()
    );
    assert!(matches!(
        spec.apply_with_context(&json!({}), &nested(INPUT_DEPTH_MAX + 1)),
        Err(Error::ContextTooDeep { max }) if max == INPUT_DEPTH_MAX
    ));
}

#[test]
fn array_index_at_max_and_past_it() {
    let shift = |i: usize| {
        Spec::parse(&json!([{ "operation": "shift", "spec": { "x": format!("out[{i}]") } }]))
            .unwrap()
    };
    let out = shift(ARRAY_INDEX_MAX).apply(&json!({"x": 1})).unwrap();
    assert_eq!(out["out"].as_array().unwrap().len(), ARRAY_INDEX_MAX + 1);
    let err = shift(ARRAY_INDEX_MAX + 1)
        .apply(&json!({"x": 1}))
        .unwrap_err();
    assert!(
        matches!(err, Error::ArrayIndexTooLarge { index, max, operation: 0 } if index == ARRAY_INDEX_MAX + 1 && max == ARRAY_INDEX_MAX)
    );
    // An index computed from the input is held to the same limit.
    let by_ref =
        Spec::parse(&json!([{ "operation": "shift", "spec": { "*": "out[&0]" } }])).unwrap();
    assert!(
        by_ref
            .apply(&json!({ ARRAY_INDEX_MAX.to_string(): 1 }))
            .is_ok()
    );
    assert!(matches!(
        by_ref.apply(&json!({ (ARRAY_INDEX_MAX + 1).to_string(): 1 })),
        Err(Error::ArrayIndexTooLarge { .. })
    ));
}

#[test]
fn document_depth_between_operations_at_max_and_past_it() {
    // Each step nests the whole document PATH_ELEMENTS_MAX levels deeper.
    let step =
        json!({ "operation": "shift", "spec": { "@": vec!["a"; PATH_ELEMENTS_MAX].join(".") } });
    let steps = DOCUMENT_DEPTH_MAX / PATH_ELEMENTS_MAX;
    let chain = Spec::parse(&Value::Array(vec![step; steps + 1])).unwrap();
    // A scalar input reaches exactly DOCUMENT_DEPTH_MAX after `steps` operations: accepted.
    assert!(chain.apply(&json!(1)).is_ok());
    // One container more in the input puts it one past the limit.
    let err = chain.apply(&json!([1])).unwrap_err();
    assert!(
        matches!(err, Error::Transform { operation, .. } if operation == steps - 1),
        "{err}"
    );
}

#[test]
fn copy_budget_at_max_and_past_it() {
    let identity = Spec::parse_str(r#"[{"operation":"shift","spec":{"@":""}}]"#).unwrap();
    // The array itself plus its elements: exactly COPY_VALUES_MAX values copied.
    let at_max = Value::Array(vec![json!(0); COPY_VALUES_MAX - 1]);
    assert_eq!(identity.apply(&at_max).unwrap(), at_max);
    let past = Value::Array(vec![json!(0); COPY_VALUES_MAX]);
    let err = identity.apply(&past).map(|_| ()).unwrap_err();
    assert!(
        matches!(err, Error::TooManyCopies { operation: 0, max } if max == COPY_VALUES_MAX),
        "{err}"
    );
    // A modify spec that copies the document into itself for every key stops at the budget.
    let doubling =
        Spec::parse_str(r#"[{"operation":"modify-overwrite-beta","spec":{"*":"@1"}}]"#).unwrap();
    let keys: serde_json::Map<String, Value> =
        (0..64).map(|i| (format!("k{i}"), json!(i))).collect();
    assert!(matches!(
        doubling.apply(&Value::Object(keys)),
        Err(Error::TooManyCopies { .. })
    ));
}

/// `split`'s separator, which may come from the input, compiles up to `SPLIT_REGEX_BYTES_MAX`
/// bytes; with a longer one the function fails and writes nothing, as with an invalid one.
#[test]
fn split_separator_at_max_and_past_it() {
    use streamcache::transform::SPLIT_REGEX_BYTES_MAX;
    let spec = Spec::parse(&json!([{
        "operation": "modify-overwrite-beta",
        "spec": { "parts": "=split(@(1,sep),@(1,text))" }
    }]))
    .unwrap();
    let input = |len: usize| {
        let sep = "x".repeat(len);
        json!({ "sep": sep, "text": format!("a{sep}b") })
    };
    let at_max = spec.apply(&input(SPLIT_REGEX_BYTES_MAX)).unwrap();
    assert_eq!(at_max["parts"], json!(["a", "b"]));
    let past = spec.apply(&input(SPLIT_REGEX_BYTES_MAX + 1)).unwrap();
    assert_eq!(past.get("parts"), None, "{past}");
}

#[test]
fn copied_bytes_at_max_and_past_it() {
    let identity = Spec::parse_str(r#"[{"operation":"shift","spec":{"@":""}}]"#).unwrap();
    // One key byte plus a string: exactly COPY_BYTES_MAX bytes copied.
    let at_max = json!({ "k": "x".repeat(COPY_BYTES_MAX - 1) });
    assert_eq!(identity.apply(&at_max).unwrap(), at_max);
    let past = json!({ "k": "x".repeat(COPY_BYTES_MAX) });
    let err = identity.apply(&past).map(|_| ()).unwrap_err();
    assert!(
        matches!(err, Error::CopiedTooManyBytes { operation: 0, max } if max == COPY_BYTES_MAX),
        "{err}"
    );
    // One long field copied into every line: few values, many bytes.
    let fan_out = Spec::parse_str(
        r#"[{"operation":"shift","spec":{"lines":{"*":{"@(2,id)":"lines[&1].id"}}}}]"#,
    )
    .unwrap();
    let lines = vec![json!({}); 100];
    let doc = json!({ "id": "x".repeat(COPY_BYTES_MAX / 100 + 1), "lines": lines });
    assert!(matches!(
        fan_out.apply(&doc),
        Err(Error::CopiedTooManyBytes { .. })
    ));
    // A string doubled by `concat`, operation after operation, stops at the budget.
    let step =
        json!({"operation": "modify-overwrite-beta", "spec": {"s": "=concat(@(1,s),@(1,s))"}});
    let doubling = Spec::parse(&Value::Array(vec![step; 40])).unwrap();
    assert!(matches!(
        doubling.apply(&json!({"s": "ab"})),
        Err(Error::CopiedTooManyBytes { .. })
    ));
}
