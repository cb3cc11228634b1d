//! Capability: `$lookup`'s `localField`/`foreignField` equality as MongoDB's
//! `{foreignField: {$in: [localField's values]}}` — dotted paths through arrays of documents on
//! either side, an array's elements, null for a missing field, numbers across types — with the
//! joined documents in the foreign collection's order, each once.
//!
//! Method: small `orders` and `products` collections whose joins have one right answer each;
//! every result is compared with the `_id`s it must hold, in order.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly on setup errors"
)]

mod history_common;

use bson::{Bson, Document, doc};
use streamcache::history::History;

fn shop() -> (tempfile::TempDir, History) {
    let (dir, h) = history_common::open();
    h.insert_many(
        "db",
        "orders",
        vec![
            doc! {"_id": 1, "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]},
            doc! {"_id": 2, "lines": [{"sku": "b", "qty": 5}, {"sku": "b", "qty": 1}]},
            doc! {"_id": 3, "lines": []},
            doc! {"_id": 4},
        ],
    )
    .unwrap();
    h.insert_many(
        "db",
        "products",
        vec![
            doc! {"_id": "a", "price": 3},
            doc! {"_id": "b", "price": 5},
            doc! {"_id": "c", "price": 7},
        ],
    )
    .unwrap();
    (dir, h)
}

fn lookup(h: &History, coll: &str, spec: Document) -> Vec<(Bson, Vec<Bson>)> {
    let mut spec = spec;
    spec.insert("as", "j");
    h.aggregate("db", coll, &[doc! {"$lookup": spec}])
        .unwrap()
        .into_iter()
        .map(|d| {
            let ids = d
                .get_array("j")
                .unwrap()
                .iter()
                .map(|j| j.as_document().unwrap().get("_id").unwrap().clone())
                .collect();
            (d.get("_id").unwrap().clone(), ids)
        })
        .collect()
}

fn s(v: &str) -> Bson {
    Bson::String(v.into())
}

#[test]
fn a_local_path_through_an_array_of_documents_looks_up_every_value() {
    let (_d, h) = shop();
    let got = lookup(
        &h,
        "orders",
        doc! {"from": "products", "localField": "lines.sku", "foreignField": "_id"},
    );
    assert_eq!(
        got,
        [
            (Bson::Int32(1), vec![s("a"), s("b")]),
            // "b" twice in the order, once in the join.
            (Bson::Int32(2), vec![s("b")]),
            // No line: nothing to look up.
            (Bson::Int32(3), vec![]),
            // No `lines`: null, which no product `_id` is.
            (Bson::Int32(4), vec![]),
        ]
    );
}

#[test]
fn a_foreign_path_through_an_array_of_documents_matches_any_element() {
    let (_d, h) = shop();
    let got = lookup(
        &h,
        "products",
        doc! {"from": "orders", "localField": "_id", "foreignField": "lines.sku"},
    );
    assert_eq!(
        got,
        [
            (s("a"), vec![Bson::Int32(1)]),
            (s("b"), vec![Bson::Int32(1), Bson::Int32(2)]),
            (s("c"), vec![]),
        ]
    );
}

#[test]
fn missing_is_null_numbers_compare_across_types_and_arrays_by_element_or_whole() {
    let (_d, h) = history_common::open();
    h.insert_many(
        "db",
        "left",
        vec![
            doc! {"_id": 1, "k": 1},
            doc! {"_id": 2},
            doc! {"_id": 3, "k": [[1, 2]]},
            doc! {"_id": 4, "k": "1"},
            doc! {"_id": 5, "k": []},
        ],
    )
    .unwrap();
    h.insert_many(
        "db",
        "right",
        vec![
            doc! {"_id": 10, "k": 1.0},
            doc! {"_id": 11, "k": Bson::Null},
            doc! {"_id": 12},
            doc! {"_id": 13, "k": [1, 2]},
            doc! {"_id": 14, "k": [[1, 2], 3]},
            doc! {"_id": 15, "k": Bson::Int64(1)},
            doc! {"_id": 16, "k": "1"},
        ],
    )
    .unwrap();
    let got = lookup(
        &h,
        "left",
        doc! {"from": "right", "localField": "k", "foreignField": "k"},
    );
    let ids = |v: &[i32]| v.iter().copied().map(Bson::Int32).collect::<Vec<_>>();
    assert_eq!(
        got,
        [
            // 1 equals 1.0 and the long 1, and an array holding 1.
            (Bson::Int32(1), ids(&[10, 13, 15])),
            // Missing is null: a null field and a missing one.
            (Bson::Int32(2), ids(&[11, 12])),
            // [[1, 2]] looks up [1, 2]: the array [1, 2] whole, and as an element.
            (Bson::Int32(3), ids(&[13, 14])),
            // A string is not a number.
            (Bson::Int32(4), ids(&[16])),
            // An empty array looks up nothing, so null.
            (Bson::Int32(5), ids(&[11, 12])),
        ]
    );
}

/// MongoDB's `lookup_equijoin_semantics.js`: a local path whose branches miss the field adds
/// nothing for them (null only when no branch has it), while the foreign side is a query,
/// where a missing branch matches null.
#[test]
fn missing_local_branches_add_nothing_and_only_nothing_found_looks_up_null() {
    let (_d, h) = history_common::open();
    h.insert_many(
        "db",
        "local",
        vec![
            doc! {"_id": 1, "p": [{"k": 1}, {"z": 1}]},
            doc! {"_id": 2, "p": [{"z": 1}]},
            doc! {"_id": 3, "p": {"k": [[]]}},
        ],
    )
    .unwrap();
    h.insert_many(
        "db",
        "foreign",
        vec![
            doc! {"_id": 10, "k": 1},
            doc! {"_id": 11},
            doc! {"_id": 12, "k": Bson::Null},
            doc! {"_id": 13, "k": []},
        ],
    )
    .unwrap();
    let got = lookup(
        &h,
        "local",
        doc! {"from": "foreign", "localField": "p.k", "foreignField": "k"},
    );
    let ids = |v: &[i32]| v.iter().copied().map(Bson::Int32).collect::<Vec<_>>();
    assert_eq!(
        got,
        [
            // Only 1: the branch without `k` adds no null.
            (Bson::Int32(1), ids(&[10])),
            // No branch has `k`: null, which a missing or null field matches.
            (Bson::Int32(2), ids(&[11, 12])),
            // [[]] looks up []: the foreign empty array, whole.
            (Bson::Int32(3), ids(&[13])),
        ]
    );
}
