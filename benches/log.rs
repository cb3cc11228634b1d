//! Log benchmarks, each beside its raw-disk anchor measured in the same run:
//!
//! - append: 100-byte records, 1000 per append, one and three partitions, under
//!   `interval_ms(10)` and `always`, beside the same bytes written to plain files with the same
//!   fsync cadence;
//! - scan: reading a whole log from the start, beside a sequential read of a file of the same
//!   size;
//! - append → tailing reader latency in process under `never` (p50/p99 printed);
//! - HTTP v2 produce, 100 records per request, 4 concurrent clients over loopback (records/s
//!   and p99 per request printed).
//!
//! Run: `cargo bench --bench log -- --warm-up-time 1 --measurement-time 3`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench setup fails loudly"
)]

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use streamcache::clock::{Clock, SystemClock};
use streamcache::log::{FlushPolicy, Log, LogConfig, Record, Routing};

const RECORD_BYTES: usize = 100;
const RECORDS_PER_APPEND: usize = 1000;
const INTERVAL_MS: u64 = 10;
/// Size of the scanned log (the issue asks for 1 GB; 256 MiB keeps one run short on a shared
/// 2-core machine — the ratio, not the absolute time, is the figure).
const SCAN_BYTES: usize = 256 * 1024 * 1024;

fn bench_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn batch() -> Vec<Record> {
    (0..RECORDS_PER_APPEND)
        .map(|i| {
            let mut v = format!("{i:010}").into_bytes();
            v.resize(RECORD_BYTES, b'x');
            Record {
                value: Some(v.into()),
                ..Record::default()
            }
        })
        .collect()
}

fn open_log(dir: &Path, policy: FlushPolicy) -> Log {
    let config = LogConfig {
        flush_policy: policy,
        ..LogConfig::default()
    };
    Log::open(&dir.join("log"), config, SystemClock::shared()).unwrap()
}

/// The bytes one append writes (one encoded batch), for the raw anchor.
fn batch_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    streamcache::log::encode_batch(0, 0, &batch(), &mut out);
    out
}

/// Plain files receiving the same bytes with the same fsync cadence.
struct Raw {
    files: Vec<File>,
    next: usize,
    policy: FlushPolicy,
    clock: SystemClock,
    last_sync_ns: u64,
}

impl Raw {
    fn new(dir: &Path, partitions: usize, policy: FlushPolicy) -> Self {
        let files = (0..partitions)
            .map(|p| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(format!("raw-{p}")))
                    .unwrap()
            })
            .collect();
        Self {
            files,
            next: 0,
            policy,
            clock: SystemClock::new(),
            last_sync_ns: 0,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let p = self.next % self.files.len();
        self.next += 1;
        self.files[p].write_all(bytes).unwrap();
        match self.policy {
            FlushPolicy::Always => self.files[p].sync_data().unwrap(),
            FlushPolicy::IntervalMs(ms) => {
                let now = self.clock.monotonic_ns();
                if now - self.last_sync_ns >= ms * 1_000_000 {
                    for f in &self.files {
                        f.sync_data().unwrap();
                    }
                    self.last_sync_ns = now;
                }
            }
            FlushPolicy::Never => {}
        }
    }
}

fn append(c: &mut Criterion) {
    let records = batch();
    let bytes = batch_bytes();
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Bytes(
        (RECORD_BYTES * RECORDS_PER_APPEND) as u64,
    ));
    for policy in [FlushPolicy::IntervalMs(INTERVAL_MS), FlushPolicy::Always] {
        for partitions in [1u32, 3] {
            let label = format!("{policy}/{partitions}p");
            let dir = bench_dir();
            let log = open_log(dir.path(), policy);
            log.create_topic("bench", Some(partitions), &[], false)
                .unwrap();
            group.bench_function(BenchmarkId::new("log", &label), |b| {
                b.iter(|| log.append("bench", Routing::Auto, records.clone()).unwrap());
            });
            drop(log);
            let raw_dir = bench_dir();
            let mut raw = Raw::new(raw_dir.path(), partitions as usize, policy);
            group.bench_function(BenchmarkId::new("raw", &label), |b| {
                b.iter(|| raw.write(&bytes))
            });
        }
    }
    group.finish();
}

fn scan(c: &mut Criterion) {
    let dir = bench_dir();
    let log = open_log(dir.path(), FlushPolicy::Never);
    log.create_topic("scan", Some(1), &[], false).unwrap();
    let records = batch();
    let appends = SCAN_BYTES / (RECORD_BYTES * RECORDS_PER_APPEND);
    for _ in 0..appends {
        log.append("scan", Routing::Partition(0), records.clone())
            .unwrap();
    }
    let total = log.partition("scan", 0).unwrap().size_bytes().unwrap();
    let raw_path = dir.path().join("raw-scan");
    {
        let mut f = File::create(&raw_path).unwrap();
        let chunk = vec![7u8; 1 << 20];
        let mut left = usize::try_from(total).unwrap();
        while left > 0 {
            let n = left.min(chunk.len());
            f.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
    }
    let end = log.latest_offset("scan", 0).unwrap();
    let mut group = c.benchmark_group("scan");
    group.throughput(Throughput::Bytes(total));
    group.sample_size(10);
    group.bench_function("log_records", |b| {
        b.iter(|| {
            let mut offset = 0;
            let mut n = 0usize;
            while offset < end {
                let got = log.read("scan", 0, offset, 1 << 20).unwrap();
                n += got.len();
                offset = got.last().unwrap().offset + 1;
            }
            assert_eq!(n as u64, end);
        });
    });
    group.bench_function("log_batches", |b| {
        b.iter(|| {
            let mut offset = 0;
            let mut bytes = 0u64;
            while offset < end {
                let got = log.read_batches("scan", 0, offset, 1 << 20).unwrap();
                bytes += got.iter().map(|b| b.len() as u64).sum::<u64>();
                let last = got.last().unwrap();
                offset = streamcache::log::decode_batch_frame(last)
                    .unwrap()
                    .last_offset
                    + 1;
            }
            assert_eq!(bytes, total);
        });
    });
    group.bench_function("raw", |b| {
        b.iter(|| {
            let mut f = File::open(&raw_path).unwrap();
            let mut buf = vec![0u8; 1 << 20];
            let mut n = 0u64;
            loop {
                let k = f.read(&mut buf).unwrap();
                if k == 0 {
                    break;
                }
                n += k as u64;
            }
            assert_eq!(n, total);
        });
    });
    group.finish();
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Append one record, measure until a tailing reader on another thread has read it.
fn tail_latency(c: &mut Criterion) {
    let dir = bench_dir();
    let log = Arc::new(open_log(dir.path(), FlushPolicy::Never));
    log.create_topic("tail", Some(1), &[], false).unwrap();
    let clock = Arc::new(SystemClock::new());
    let (done_tx, done_rx) = std::sync::mpsc::channel::<u64>();
    // Subscribe before the first append so no wake-up is missed.
    let mut rx = log.subscribe("tail", 0).unwrap();
    let reader = {
        let log = log.clone();
        let clock = clock.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut next = 0;
                loop {
                    rx.borrow_and_update();
                    let got = log.read("tail", 0, next, 1 << 16).unwrap();
                    if let Some(last) = got.last() {
                        next = last.offset + 1;
                        if done_tx.send(clock.monotonic_ns()).is_err() {
                            return;
                        }
                        continue;
                    }
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            });
        })
    };
    let one = vec![Record {
        value: Some(vec![b'x'; RECORD_BYTES].into()),
        ..Record::default()
    }];
    let mut samples = Vec::new();
    c.bench_function("tail_latency/never", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t0 = clock.monotonic_ns();
                log.append("tail", Routing::Partition(0), one.clone())
                    .unwrap();
                let t1 = done_rx.recv().unwrap();
                let ns = t1.saturating_sub(t0);
                samples.push(ns);
                total += Duration::from_nanos(ns);
            }
            total
        });
    });
    samples.sort_unstable();
    if !samples.is_empty() {
        println!(
            "tail_latency/never: {} samples, p50 {:.1} µs, p99 {:.1} µs (bar: p99 < 100 µs)",
            samples.len(),
            percentile(&samples, 0.50) as f64 / 1e3,
            percentile(&samples, 0.99) as f64 / 1e3
        );
    }
    drop(log);
    drop(done_rx);
    let _ = reader;
}

/// HTTP v2 produce: 100 records per request, 4 concurrent clients over loopback.
fn http_produce(c: &mut Criterion) {
    const CLIENTS: usize = 4;
    const RECORDS_PER_REQUEST: usize = 100;
    const REQUESTS_PER_CLIENT: usize = 500;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (base, shutdown, engine) = rt.block_on(async {
        let dir = bench_dir();
        let config = streamcache::config::Config {
            data_dir: dir.keep(),
            http: "127.0.0.1:0".parse().unwrap(),
            resp: "127.0.0.1:0".parse().unwrap(),
            log: LogConfig {
                flush_policy: FlushPolicy::IntervalMs(INTERVAL_MS),
                ..LogConfig::default()
            },
            ..streamcache::config::Config::default()
        };
        let engine = Arc::new(streamcache::engine::Engine::open(config).unwrap());
        let bound = streamcache::server::bind(&engine).await.unwrap();
        let base = format!("http://{}/kafka", bound.http_addr());
        let shutdown = streamcache::shutdown::Shutdown::new();
        tokio::spawn(streamcache::server::run(
            engine.clone(),
            bound,
            shutdown.signal(),
        ));
        (base, shutdown, engine)
    });
    let values: Vec<serde_json::Value> = (0..RECORDS_PER_REQUEST)
        .map(|i| serde_json::json!({"value": format!("{i:0>98}")}))
        .collect();
    let body = serde_json::json!({ "records": values }).to_string();
    let clock = SystemClock::new();
    let mut group = c.benchmark_group("http_v2_produce");
    group.sample_size(10);
    group.throughput(Throughput::Elements(
        (CLIENTS * RECORDS_PER_REQUEST * REQUESTS_PER_CLIENT) as u64,
    ));
    let mut latencies = Vec::new();
    group.bench_function("4_clients_100_records", |b| {
        b.iter(|| {
            let lat = rt.block_on(async {
                let tasks: Vec<_> = (0..CLIENTS)
                    .map(|_| {
                        let client = reqwest::Client::new();
                        let url = format!("{base}/topics/http");
                        let body = body.clone();
                        let clock = SystemClock::new();
                        tokio::spawn(async move {
                            let mut lat = Vec::with_capacity(REQUESTS_PER_CLIENT);
                            for _ in 0..REQUESTS_PER_CLIENT {
                                let t0 = clock.monotonic_ns();
                                let resp = client
                                    .post(&url)
                                    .header("content-type", "application/vnd.kafka.json.v2+json")
                                    .body(body.clone())
                                    .send()
                                    .await
                                    .unwrap();
                                assert!(resp.status().is_success());
                                let _ = resp.bytes().await.unwrap();
                                lat.push(clock.monotonic_ns() - t0);
                            }
                            lat
                        })
                    })
                    .collect();
                let mut all = Vec::new();
                for t in tasks {
                    all.extend(t.await.unwrap());
                }
                all
            });
            latencies.extend(lat);
        });
    });
    group.finish();
    let started = clock.monotonic_ns();
    let _ = started;
    latencies.sort_unstable();
    if !latencies.is_empty() {
        println!(
            "http_v2_produce: {} requests, p50 {:.2} ms, p99 {:.2} ms per request",
            latencies.len(),
            percentile(&latencies, 0.50) as f64 / 1e6,
            percentile(&latencies, 0.99) as f64 / 1e6
        );
    }
    shutdown.trigger();
    drop(engine);
}

criterion_group!(benches, append, scan, tail_latency, http_produce);
criterion_main!(benches);
