//! Benchmark: the reference order spec (`transform::REFERENCE_ORDER_SPEC`, shift + remove) on a
//! ~1 KB order, beside a hand-written `serde_json` function that produces the same output (the
//! floor for this transform). Bar: JOLT ≥ 0.5× the hand-written function's ops/s. After the
//! criterion groups, prints both rates (best of ten alternating rounds) and their ratio.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark fails loudly when its fixed inputs are broken"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use serde_json::{Map, Value, json};
use streamcache::transform::{REFERENCE_ORDER_SPEC, Spec};

/// A fixed order of about 1 KB.
fn order() -> Value {
    json!({
        "orderNumber": 10100,
        "customerNumber": 363,
        "orderDate": "2026-11-30T10:00:00Z",
        "requiredDate": "2026-12-07",
        "shippedDate": null,
        "status": "In Process",
        "comments": "Leave at the back door",
        "salesRep": {"employeeNumber": 1216, "office": "4", "commissionRate": 0.05},
        "customer": {
            "name": "Online Diecast Creations Co.",
            "email": "orders@diecast.example",
            "phone": "6035558647",
            "creditLimit": 114200.0,
            "address": {
                "line1": "2304 Long Airport Avenue",
                "city": "Nashua",
                "state": "NH",
                "postalCode": "62005",
                "country": "USA",
                "geo": {"lat": 42.7654, "lon": -71.4676}
            }
        },
        "items": [
            {"productCode": "S18_1749", "quantity": 30, "priceEach": 136.0, "costPrice": 86.7, "warehouseBin": "A-12-3"},
            {"productCode": "S18_2248", "quantity": 50, "priceEach": 55.09, "costPrice": 33.1, "warehouseBin": "B-02-1"},
            {"productCode": "S18_4409", "quantity": 22, "priceEach": 75.46, "costPrice": 43.2, "warehouseBin": "C-07-9"},
            {"productCode": "S24_3969", "quantity": 49, "priceEach": 35.29, "costPrice": 21.8, "warehouseBin": "A-01-4"}
        ],
        "total": 10223.83,
        "currency": "USD",
        "audit": {"createdBy": "checkout-svc", "ip": "10.1.2.3", "userAgent": "Mozilla/5.0", "trace": "4bf92f3577b34da6"}
    })
}

/// The same transform written by hand.
fn hand_written(order: &Value) -> Value {
    let mut out = Map::new();
    let Value::Object(src) = order else {
        return Value::Null;
    };
    for key in [
        "orderNumber",
        "customerNumber",
        "orderDate",
        "requiredDate",
        "status",
        "comments",
    ] {
        if let Some(v) = src.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(Value::Object(customer)) = src.get("customer") {
        if let Some(v) = customer.get("name") {
            out.insert("customerName".to_owned(), v.clone());
        }
        let mut contact = Map::new();
        for key in ["email", "phone"] {
            if let Some(v) = customer.get(key) {
                contact.insert(key.to_owned(), v.clone());
            }
        }
        if !contact.is_empty() {
            out.insert("contact".to_owned(), Value::Object(contact));
        }
        if let Some(address) = customer.get("address") {
            let mut address = address.clone();
            if let Value::Object(a) = &mut address {
                a.shift_remove("geo");
            }
            out.insert("shippingAddress".to_owned(), address);
        }
    }
    if let Some(items) = src.get("items") {
        let mut items = items.clone();
        if let Value::Array(list) = &mut items {
            for item in list {
                if let Value::Object(i) = item {
                    i.shift_remove("warehouseBin");
                    i.shift_remove("costPrice");
                }
            }
        }
        out.insert("items".to_owned(), items);
    }
    for key in ["total", "currency"] {
        if let Some(v) = src.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

fn bench(c: &mut Criterion) {
    let spec = Spec::parse_str(REFERENCE_ORDER_SPEC).expect("the reference spec parses");
    let order = order();
    assert_eq!(
        spec.apply(&order).expect("applies"),
        hand_written(&order),
        "both produce the same output"
    );
    let mut group = c.benchmark_group("transform_apply/order_1kb");
    group.bench_function("jolt_reference_spec", |b| {
        b.iter(|| spec.apply(black_box(&order)))
    });
    group.bench_function("hand_written_serde_json", |b| {
        b.iter(|| hand_written(black_box(&order)))
    });
    group.finish();
}

/// Ops/s of `f` over a fixed number of iterations.
#[expect(
    clippy::disallowed_methods,
    reason = "a benchmark reads the wall clock to report a rate"
)]
fn rate(iterations: u32, mut f: impl FnMut()) -> f64 {
    let start = std::time::Instant::now();
    for _ in 0..iterations {
        f();
    }
    f64::from(iterations) / start.elapsed().as_secs_f64()
}

/// Rates from alternating rounds, best round of each: on a shared, noisy machine the best
/// round is the closest to the code's own speed.
fn ratio_report() {
    let spec = Spec::parse_str(REFERENCE_ORDER_SPEC).expect("the reference spec parses");
    let order = order();
    let (mut jolt, mut hand) = (0f64, 0f64);
    for _ in 0..10 {
        jolt = jolt.max(rate(20_000, || {
            black_box(spec.apply(black_box(&order)).ok());
        }));
        hand = hand.max(rate(20_000, || {
            black_box(hand_written(black_box(&order)));
        }));
    }
    println!(
        "transform_apply order_1kb: jolt {jolt:.0} ops/s, hand-written {hand:.0} ops/s, ratio {:.2} (bar >= 0.50)",
        jolt / hand
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratio_report();
}
