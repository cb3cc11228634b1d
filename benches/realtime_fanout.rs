//! Benchmark: the real-time hub in-process, no sockets — publish one ~400 B `NewOrder` and
//! receive it on 1, 100 and 1000 subscribers (building the Pusher frame once, as the WebSocket
//! path does); the cost of checking one signed HTTP API publish (HMAC-SHA256 + MD5); and that
//! publish whole through the HTTP application (`api::router`: auth and metrics layers,
//! signature, body, hub), without a socket. These are the server's own share of the publish →
//! pusher-js latency measured in `docs/benchmarks.md`.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark fails loudly when its fixed inputs are broken"
)]

use std::hint::black_box;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use streamcache::clock::ManualClock;
use streamcache::config::Config;
use streamcache::engine::Engine;
use streamcache::realtime::{
    Delivery, Hub, RealtimeConfig, SignedRequest, body_md5, check_request, sign_request,
};
use tower::ServiceExt as _;

/// The signing time of [`signed_publish`]; the engine's clock reads it.
const NOW_S: u64 = 1_700_000_000;

/// A publish of [`order`] to `orders` as the Pusher SDK sends it: its body and its signed
/// query parameters.
fn signed_publish() -> (String, Vec<(String, String)>) {
    let body = json!({"name": "NewOrder", "data": order().to_string(), "channels": ["orders"]})
        .to_string();
    let mut params = vec![
        ("auth_key".to_owned(), "streamcache-key".to_owned()),
        ("auth_timestamp".to_owned(), NOW_S.to_string()),
        ("auth_version".to_owned(), "1.0".to_owned()),
        ("body_md5".to_owned(), body_md5(body.as_bytes())),
    ];
    let sig = sign_request(
        "streamcache-secret",
        "POST",
        "/apps/streamcache/events",
        &params,
    );
    params.push(("auth_signature".to_owned(), sig));
    (body, params)
}

/// A fixed order of about 400 bytes.
fn order() -> Value {
    json!({
        "orderNumber": 10100,
        "orderDate": "2026-11-30",
        "status": "In Process",
        "customerNumber": 363,
        "customerName": "Online Diecast Creations Co.",
        "orderLines": [
            {"productCode": "S18_1749", "productName": "1917 Grand Touring Sedan", "quantityOrdered": 30, "priceEach": 136.0},
            {"productCode": "S18_2248", "productName": "1911 Ford Town Car", "quantityOrdered": 50, "priceEach": 55.09},
            {"productCode": "S18_4409", "productName": "1932 Alfa Romeo 8C2300", "quantityOrdered": 22, "priceEach": 75.46}
        ]
    })
}

fn fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let payload = order();
    let mut group = c.benchmark_group("realtime_fanout");
    for subscribers in [1_usize, 100, 1000] {
        let hub = Hub::new(
            &RealtimeConfig::default(),
            1,
            streamcache::clock::SystemClock::shared(),
        );
        let mut subs: Vec<_> = (0..subscribers)
            .map(|_| hub.subscribe("orders", None).expect("subscribe"))
            .collect();
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(subscribers),
            &subscribers,
            |b, _| {
                b.iter(|| {
                    hub.publish("orders", "NewOrder", payload.clone(), None)
                        .expect("publish");
                    rt.block_on(async {
                        for sub in &mut subs {
                            match sub.recv().await {
                                Delivery::Event(e) => {
                                    black_box(e.pusher_frame().len());
                                }
                                Delivery::Resync { .. } => panic!("a subscriber fell behind"),
                            }
                        }
                    });
                });
            },
        );
    }
    group.finish();
}

fn signing(c: &mut Criterion) {
    let (body, params) = signed_publish();
    c.bench_function("pusher_check_signed_publish", |b| {
        b.iter(|| {
            let req = SignedRequest {
                method: "POST",
                path: "/apps/streamcache/events",
                params: &params,
                body: body.as_bytes(),
            };
            check_request(
                black_box(&req),
                "streamcache-key",
                "streamcache-secret",
                NOW_S,
            )
            .expect("valid signature");
        });
    });
}

fn http_publish(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = Config {
        ephemeral: true,
        ..Config::default()
    };
    let engine = Arc::new(
        Engine::open_with_clock(config, ManualClock::shared(NOW_S * 1000)).expect("engine"),
    );
    let app = streamcache::api::router(engine);
    let (body, params) = signed_publish();
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let uri = format!("/apps/streamcache/events?{}", query.join("&"));
    c.bench_function("pusher_http_publish_in_process", |b| {
        b.iter(|| {
            let req = Request::builder()
                .method("POST")
                .uri(&uri)
                .header("content-type", "application/json")
                .body(Body::from(body.clone()))
                .expect("request");
            rt.block_on(async {
                let resp = app.clone().oneshot(req).await.expect("infallible");
                assert_eq!(resp.status(), StatusCode::OK);
                black_box(resp.into_body().collect().await.expect("body").to_bytes());
            });
        });
    });
}

criterion_group!(benches, fanout, signing, http_publish);
criterion_main!(benches);
