//! Benchmark: the reference pipeline's order spec (`transform::REFERENCE_ORDER_SPEC`, shift +
//! remove) on a ~1 KB classicmodels order, beside a hand-written `serde_json` function that produces the same output (the
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

/// A fixed classicmodels order of about 1 KB, shaped as `streamcache produce` sends it.
fn order() -> Value {
    json!({
        "orderNumber": 10100,
        "orderDate": "2026-11-30",
        "requiredDate": "2026-12-07",
        "shippedDate": null,
        "status": "In Process",
        "comments": "Check on availability of the 1969 Harley Davidson before shipping.",
        "customerNumber": 363,
        "customer": {
            "customerName": "Online Diecast Creations Co.",
            "city": "Nashua",
            "country": "USA",
            "salesRepEmployeeNumber": 1216
        },
        "orderLines": [
            {"orderLineNumber": 1, "productCode": "S18_1749", "productName": "1917 Grand Touring Sedan", "quantityOrdered": 30, "priceEach": 136.0},
            {"orderLineNumber": 2, "productCode": "S18_2248", "productName": "1911 Ford Town Car", "quantityOrdered": 50, "priceEach": 55.09},
            {"orderLineNumber": 3, "productCode": "S18_4409", "productName": "1932 Alfa Romeo 8C2300 Spider Sport", "quantityOrdered": 22, "priceEach": 75.46},
            {"orderLineNumber": 4, "productCode": "S24_3969", "productName": "1936 Mercedes Benz 500k Roadster", "quantityOrdered": 49, "priceEach": 35.29}
        ]
    })
}

/// The same transform written by hand: keep the order's fields, flatten `customer`, keep four
/// fields of each order line, drop `comments`.
/// Each output object is created with room for exactly the fields it gets.
fn hand_written(order: &Value) -> Value {
    let Value::Object(src) = order else {
        return Value::Null;
    };
    let mut out = Map::with_capacity(10);
    for key in [
        "orderNumber",
        "orderDate",
        "requiredDate",
        "shippedDate",
        "status",
        "customerNumber",
        "customerName",
        "city",
        "country",
    ] {
        if let Some(v) = src.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(Value::Object(customer)) = src.get("customer") {
        for key in ["customerName", "city", "country"] {
            if let Some(v) = customer.get(key) {
                out.insert(key.to_owned(), v.clone());
            }
        }
    }
    if let Some(Value::Array(lines)) = src.get("orderLines") {
        let lines = lines
            .iter()
            .map(|line| {
                let mut kept = Map::with_capacity(4);
                for key in ["productCode", "productName", "quantityOrdered", "priceEach"] {
                    if let Some(v) = line.get(key) {
                        kept.insert(key.to_owned(), v.clone());
                    }
                }
                Value::Object(kept)
            })
            .collect();
        out.insert("orderLines".to_owned(), Value::Array(lines));
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
