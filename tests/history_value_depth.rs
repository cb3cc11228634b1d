//! Capability: no request can make the history store build a value or document nested past
//! `STAGE_DOCUMENT_DEPTH_MAX` — not a `$reduce` that wraps its own `$$value` step after step,
//! nor a pipeline whose stages each nest a document one level deeper — whether the request is
//! an aggregation, a find's `$expr` or a pipeline-style update. Such a request fails with code
//! 15 (Overflow) and the store keeps serving; a value at the limit is returned whole.
//!
//! Method: `$reduce` over `$range` and repeated stages, at the limit and one past it, and far
//! past it on a thread with a 2 MiB stack (the size of the Data API's blocking-pool threads),
//! where a value built without the bound would overflow the stack while being copied,
//! measured or dropped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Bson, Document, bson, doc};
use streamcache::history::{
    Error, FindOptions, History, PIPELINE_STAGES_MAX, STAGE_DOCUMENT_DEPTH_MAX, UpdateOptions,
};

/// The stack of a Data API request's thread (tokio's blocking pool).
const REQUEST_STACK_BYTES: usize = 2 * 1024 * 1024;

/// Steps of a `$reduce` far past the limit: without the bound, the value it builds would
/// overflow a [`REQUEST_STACK_BYTES`] stack.
const FAR_PAST: i32 = 100_000;

/// Runs `f` on a thread with a [`REQUEST_STACK_BYTES`] stack.
fn on_request_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(REQUEST_STACK_BYTES)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// A store holding `db.c`: `{_id: 1, n: <n>}`.
fn store_with_n(n: i32) -> (tempfile::TempDir, History) {
    let (dir, h) = history_common::open();
    h.insert_one("db", "c", doc! {"_id": 1, "n": n}).unwrap();
    (dir, h)
}

/// `$reduce` over `n` steps (`$n` of the document), each step's result `in` given `$$value`.
fn reduce(initial: Bson, body: Bson) -> Bson {
    bson!({"$reduce": {"input": {"$range": [0, "$n"]}, "initialValue": initial, "in": body}})
}

/// `[[…[]…]]`: `levels` arrays, each holding the next.
fn nested_arrays(levels: usize) -> Bson {
    (1..levels).fold(Bson::Array(Vec::new()), |inner, _| Bson::Array(vec![inner]))
}

/// The nesting depth of a value as a field of a top-level document (a document or array
/// there is at depth 2), walked without recursion.
fn field_depth(v: &Bson) -> usize {
    let mut deepest = 1;
    let mut stack = vec![(v, 2)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Bson::Array(items) => {
                deepest = deepest.max(depth);
                stack.extend(items.iter().map(|x| (x, depth + 1)));
            }
            Bson::Document(d) => {
                deepest = deepest.max(depth);
                stack.extend(d.values().map(|x| (x, depth + 1)));
            }
            _ => {}
        }
    }
    deepest
}

fn assert_too_deep(e: &Error, depth: usize) {
    assert_eq!((e.code(), e.code_name()), (15, "Overflow"), "{e}");
    assert_eq!(
        e.to_string(),
        format!("nesting depth {depth} exceeds the limit of {STAGE_DOCUMENT_DEPTH_MAX} levels")
    );
}

fn project_v(v: Bson) -> Vec<Document> {
    vec![doc! {"$project": {"_id": 0, "v": v}}]
}

#[test]
fn reduce_builds_a_value_up_to_the_depth_limit() {
    // `initialValue: []` is one array; each step wraps the value in one more. As the field
    // `v`, n steps reach depth n + 2.
    let at_max = STAGE_DOCUMENT_DEPTH_MAX - 2;
    let wrap = || reduce(bson!([]), bson!(["$$value"]));

    let (_d, h) = store_with_n(i32::try_from(at_max).unwrap());
    let out = h.aggregate("db", "c", &project_v(wrap())).unwrap();
    let v = out[0].get("v").unwrap();
    assert_eq!(field_depth(v), STAGE_DOCUMENT_DEPTH_MAX);
    assert_eq!(v, &nested_arrays(at_max + 1));
    // The same value in a find's `$expr` and in a pipeline-style update.
    let filter = doc! {"$expr": {"$isArray": wrap()}};
    assert_eq!(
        h.find("db", "c", &filter, &FindOptions::default())
            .unwrap()
            .len(),
        1
    );
    h.update(
        "db",
        "c",
        &doc! {"_id": 1},
        &[doc! {"$set": {"v": {"$size": wrap()}}}],
        UpdateOptions::default(),
    )
    .unwrap();

    let (_d, h) = store_with_n(i32::try_from(at_max + 1).unwrap());
    let e = h.aggregate("db", "c", &project_v(wrap())).unwrap_err();
    assert_too_deep(&e, STAGE_DOCUMENT_DEPTH_MAX + 1);
    let e = h
        .find("db", "c", &filter, &FindOptions::default())
        .unwrap_err();
    assert_too_deep(&e, STAGE_DOCUMENT_DEPTH_MAX + 1);
    let e = h
        .update(
            "db",
            "c",
            &doc! {"_id": 1},
            &[doc! {"$set": {"v": {"$size": wrap()}}}],
            UpdateOptions::default(),
        )
        .unwrap_err();
    assert_too_deep(&e, STAGE_DOCUMENT_DEPTH_MAX + 1);

    // Over constant operands the pipeline is folded when it is built: the same limit.
    let constant = |n: usize| {
        bson!({"$reduce": {
            "input": {"$range": [0, i32::try_from(n).unwrap()]},
            "initialValue": [], "in": ["$$value"],
        }})
    };
    assert_eq!(
        field_depth(
            h.aggregate("db", "c", &project_v(constant(at_max)))
                .unwrap()[0]
                .get("v")
                .unwrap()
        ),
        STAGE_DOCUMENT_DEPTH_MAX
    );
    let e = h
        .aggregate("db", "c", &project_v(constant(at_max + 1)))
        .unwrap_err();
    assert_too_deep(&e, STAGE_DOCUMENT_DEPTH_MAX + 1);
}

#[test]
fn a_reduce_nesting_far_past_the_limit_fails_instead_of_overflowing_the_stack() {
    on_request_stack(|| {
        let (_d, h) = store_with_n(FAR_PAST);
        // Each operator that places a value inside the one it builds, fed its own result.
        let bodies = [
            (bson!([]), bson!(["$$value"])),
            (bson!({}), bson!({"x": "$$value"})),
            (bson!([]), bson!({"$map": {"input": [0], "in": "$$value"}})),
            (
                bson!({}),
                bson!({"$setField": {"field": "x", "input": {"$literal": {}}, "value": "$$value"}}),
            ),
            (
                bson!([]),
                bson!({"$zip": {
                    "inputs": [[0], []], "useLongestLength": true, "defaults": [0, "$$value"],
                }}),
            ),
            (
                bson!({}),
                bson!({"$mergeObjects": [{"$arrayToObject": [[["x", {"$objectToArray": "$$value"}]]]}]}),
            ),
        ];
        for (initial, body) in bodies {
            let e = h
                .aggregate("db", "c", &project_v(reduce(initial, body.clone())))
                .unwrap_err();
            assert_eq!(e.code(), 15, "{body}: {e}");
        }
        let wrap = reduce(bson!([]), bson!(["$$value"]));
        let filter = doc! {"$expr": {"$isArray": wrap.clone()}};
        let e = h
            .find("db", "c", &filter, &FindOptions::default())
            .unwrap_err();
        assert_eq!(e.code(), 15);
        // In an update the write fails and the store goes on serving.
        let e = h
            .update(
                "db",
                "c",
                &doc! {"_id": 1},
                &[doc! {"$set": {"v": wrap}}],
                UpdateOptions::default(),
            )
            .unwrap_err();
        assert_eq!(e.code(), 15);
        assert!(!h.is_poisoned());
        assert_eq!(
            h.find("db", "c", &doc! {}, &FindOptions::default())
                .unwrap(),
            vec![doc! {"_id": 1, "n": FAR_PAST}]
        );
    });
}

/// `count` stages, each setting `a.b` to the input's `a`: the document nests one level deeper
/// per stage (`a` alone is depth 2).
fn nesting_stages(count: usize) -> Vec<Document> {
    vec![doc! {"$set": {"a.b": "$a"}}; count]
}

#[test]
fn stages_nest_a_document_up_to_the_depth_limit() {
    let (_d, h) = history_common::open();
    h.insert_one("db", "c", doc! {"_id": 1, "a": 1}).unwrap();
    // After k stages the innermost document is at depth k + 1.
    let at_max = STAGE_DOCUMENT_DEPTH_MAX - 1;
    let out = h.aggregate("db", "c", &nesting_stages(at_max)).unwrap();
    assert_eq!(
        field_depth(out[0].get("a").unwrap()),
        STAGE_DOCUMENT_DEPTH_MAX
    );
    let e = h
        .aggregate("db", "c", &nesting_stages(at_max + 1))
        .unwrap_err();
    assert_too_deep(&e, STAGE_DOCUMENT_DEPTH_MAX + 1);

    // `$group` by the whole document nests it one level deeper per stage too.
    let grouping = |count: usize| vec![doc! {"$group": {"_id": "$$ROOT"}}; count];
    let (_d, h) = history_common::open();
    h.insert_one("db", "g", doc! {"_id": 1}).unwrap();
    // After k stages `_id` holds k - 1 documents inside it: the innermost at depth k + 1.
    let out = h.aggregate("db", "g", &grouping(at_max)).unwrap();
    assert_eq!(
        field_depth(out[0].get("_id").unwrap()),
        STAGE_DOCUMENT_DEPTH_MAX
    );
    let e = h.aggregate("db", "g", &grouping(at_max + 1)).unwrap_err();
    assert_too_deep(&e, STAGE_DOCUMENT_DEPTH_MAX + 1);
}

#[test]
fn stages_nesting_far_past_the_limit_fail_instead_of_overflowing_the_stack() {
    on_request_stack(|| {
        let (_d, h) = history_common::open();
        h.insert_one("db", "c", doc! {"_id": 1, "a": 1}).unwrap();
        // The longest path nests the document 98 levels deeper per stage.
        let path = vec!["a"; 99].join(".");
        let stages = vec![doc! {"$set": {path: "$a"}}; PIPELINE_STAGES_MAX];
        let e = h.aggregate("db", "c", &stages).unwrap_err();
        assert_eq!(e.code(), 15);
        let e = h
            .update(
                "db",
                "c",
                &doc! {"_id": 1},
                &stages,
                UpdateOptions::default(),
            )
            .unwrap_err();
        assert_eq!(e.code(), 15);
        let facets = vec![doc! {"$facet": {"f": [{"$match": {}}]}}; PIPELINE_STAGES_MAX];
        assert_eq!(h.aggregate("db", "c", &facets).unwrap_err().code(), 15);
        assert!(!h.is_poisoned());
        assert_eq!(
            h.find("db", "c", &doc! {}, &FindOptions::default())
                .unwrap(),
            vec![doc! {"_id": 1, "a": 1}]
        );
    });
}
