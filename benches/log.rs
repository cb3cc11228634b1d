//! Log benchmarks, each beside its raw-disk anchor measured in the same run:
//!
//! - append: 100-byte records, 1000 per append, one and three partitions, under
//!   `interval_ms(10)` and `always`, beside the same bytes written to plain files with the same
//!   fsync cadence;
//! - scan: reading a whole 1 GiB log from the start (verified batches with and without the read
//!   helper, lazily decoded record
//!   views, owned records), each interleaved with a sequential read of a file of the same size;
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
/// Size of the scanned log: 1 GiB (the 1 GB). It and its raw twin live in a temporary
/// directory removed when the scan bench ends.
const SCAN_BYTES: usize = 1024 * 1024 * 1024;
/// Bytes per read on both sides of the scan: one `fetch` budget, one `read()` buffer.
const SCAN_READ_BYTES: usize = 1 << 20;

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
    open_log_with(dir, policy, true)
}

/// The log in `dir` with `policy`, reading with or without the parallel read helper.
fn open_log_with(dir: &Path, policy: FlushPolicy, parallel_read: bool) -> Log {
    let config = LogConfig {
        flush_policy: policy,
        parallel_read,
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

/// A log in a fresh directory (kept alive by the returned guard) with topic `bench` of
/// `partitions` partitions under `policy`.
fn bench_topic(policy: FlushPolicy, partitions: u32) -> (tempfile::TempDir, Log) {
    let dir = bench_dir();
    let log = open_log(dir.path(), policy);
    log.create_topic("bench", Some(partitions), &[], false)
        .unwrap();
    (dir, log)
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
            let (_dir, log) = bench_topic(policy, partitions);
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

/// The same appends and raw writes interleaved one for one, so disk noise from other
/// processes hits both sides alike; prints both throughputs and their ratio.
fn append_paired(c: &mut Criterion) {
    let records = batch();
    let bytes = batch_bytes();
    let clock = SystemClock::new();
    let mut group = c.benchmark_group("append_paired");
    group.throughput(Throughput::Bytes(
        (RECORD_BYTES * RECORDS_PER_APPEND) as u64,
    ));
    for policy in [FlushPolicy::IntervalMs(INTERVAL_MS), FlushPolicy::Always] {
        for partitions in [1u32, 3] {
            let label = format!("{policy}/{partitions}p");
            let (_dir, log) = bench_topic(policy, partitions);
            let raw_dir = bench_dir();
            let mut raw = Raw::new(raw_dir.path(), partitions as usize, policy);
            let (mut log_ns, mut raw_ns, mut n) = (0u64, 0u64, 0u64);
            group.bench_function(&label, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let t0 = clock.monotonic_ns();
                        log.append("bench", Routing::Auto, records.clone()).unwrap();
                        let t1 = clock.monotonic_ns();
                        raw.write(&bytes);
                        let t2 = clock.monotonic_ns();
                        log_ns += t1 - t0;
                        raw_ns += t2 - t1;
                        n += 1;
                        total += Duration::from_nanos(t1 - t0);
                    }
                    total
                });
            });
            if n > 0 {
                let mb_s = |ns: u64| {
                    (n * (RECORD_BYTES * RECORDS_PER_APPEND) as u64) as f64 / ns as f64 * 1e3
                };
                println!(
                    "append_paired/{label}: {n} appends, log {:.0} MB/s, raw {:.0} MB/s, log/raw {:.2} (bar >= 0.80)",
                    mb_s(log_ns),
                    mb_s(raw_ns),
                    raw_ns as f64 / log_ns as f64
                );
            }
        }
    }
    group.finish();
}

/// fsyncs every file under `dir`, so writeback of the scan's setup does not run during it.
fn fsync_tree(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            fsync_tree(&path);
        } else {
            File::open(&path).unwrap().sync_all().unwrap();
        }
    }
}

/// One full pass over the raw file with a reused buffer; returns the bytes read.
fn raw_pass(path: &Path, buf: &mut [u8]) -> u64 {
    let mut f = File::open(path).unwrap();
    let mut n = 0u64;
    loop {
        let k = f.read(buf).unwrap();
        if k == 0 {
            return n;
        }
        n += k as u64;
    }
}

/// One full pass over the raw file that also computes CRC-32C (the log's own `crc32c`) over
/// every `piece` bytes — a hand-written verified read, the floor of any checked scan.
fn raw_crc_pass(path: &Path, buf: &mut [u8], piece: usize) -> u64 {
    let mut f = File::open(path).unwrap();
    let (mut n, mut acc) = (0u64, 0u32);
    loop {
        let k = f.read(buf).unwrap();
        if k == 0 {
            std::hint::black_box(acc);
            return n;
        }
        for p in buf[..k].chunks(piece) {
            acc ^= streamcache::log::crc32c(p);
        }
        n += k as u64;
    }
}

/// The consumer read path at three depths, each over the whole log from offset 0.
#[derive(Clone, Copy)]
enum ScanKind {
    /// `Log::fetch`: whole verified batches (framing + CRC-32C per batch), as shipped to a
    /// Kafka consumer.
    Batches,
    /// `Log::fetch` + `RecordBatch::records`: every record decoded lazily, borrowed.
    RecordViews,
    /// `Log::read`: every record decoded into an owned `StoredRecord` (Bytes slices).
    StoredRecords,
}

/// One full pass of the log; returns (records, value bytes) seen.
fn log_pass(log: &Log, end: u64, kind: ScanKind) -> (u64, u64) {
    let (mut offset, mut records, mut bytes) = (0u64, 0u64, 0u64);
    while offset < end {
        match kind {
            ScanKind::Batches => {
                let got = log.fetch("scan", 0, offset, SCAN_READ_BYTES).unwrap();
                for b in &got {
                    records += u64::from(b.info().record_count);
                    bytes += b.bytes().len() as u64;
                }
                offset = got.last().unwrap().info().last_offset + 1;
            }
            ScanKind::RecordViews => {
                let got = log.fetch("scan", 0, offset, SCAN_READ_BYTES).unwrap();
                for b in &got {
                    for r in b.records() {
                        let r = r.unwrap();
                        if r.offset >= offset {
                            records += 1;
                            bytes += r.value.map_or(0, |v| v.len() as u64);
                        }
                    }
                }
                offset = got.last().unwrap().info().last_offset + 1;
            }
            ScanKind::StoredRecords => {
                let got = log.read("scan", 0, offset, SCAN_READ_BYTES).unwrap();
                records += got.len() as u64;
                bytes += got
                    .iter()
                    .map(|r| r.value.as_ref().map_or(0, |v| v.len() as u64))
                    .sum::<u64>();
                offset = got.last().unwrap().offset + 1;
            }
        }
    }
    (records, bytes)
}

/// Scan from the start of a 1 GiB log beside sequential `read()`s of files of the same size,
/// interleaved pass for pass (alternating which goes first) so page-cache and CPU noise hit
/// both sides alike; prints each depth's throughput and its ratio to raw.
fn scan(c: &mut Criterion) {
    let dir = bench_dir();
    let mut log = open_log(dir.path(), FlushPolicy::Never);
    log.create_topic("scan", Some(1), &[], false).unwrap();
    let records = batch();
    let appends = SCAN_BYTES / (RECORD_BYTES * RECORDS_PER_APPEND);
    for _ in 0..appends {
        log.append("scan", Routing::Partition(0), records.clone())
            .unwrap();
    }
    let total = log.partition("scan", 0).unwrap().size_bytes().unwrap();
    // Two raw twins of the same size. `raw-appends` receives the log's bytes the way the log
    // wrote them, one batch per write; `raw-1mib` is written in 1 MiB writes. The page cache
    // keeps the folio sizes the writes produced, and a read of large folios copies about twice
    // as fast, so the twin written like the log is the like-for-like anchor.
    let raw_path = dir.path().join("raw-appends");
    let raw_big_path = dir.path().join("raw-1mib");
    {
        let bytes = batch_bytes();
        let mut f = File::create(&raw_path).unwrap();
        for _ in 0..appends {
            f.write_all(&bytes).unwrap();
        }
        let mut f = File::create(&raw_big_path).unwrap();
        let chunk = vec![7u8; 1 << 20];
        let mut left = usize::try_from(total).unwrap();
        while left > 0 {
            let n = left.min(chunk.len());
            f.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
    }
    assert_eq!(std::fs::metadata(&raw_path).unwrap().len(), total);
    log.flush().unwrap();
    fsync_tree(dir.path());
    let end = log.latest_offset("scan", 0).unwrap();
    let clock = SystemClock::new();
    let mut buf = vec![0u8; SCAN_READ_BYTES];
    let mut group = c.benchmark_group("scan");
    group.throughput(Throughput::Bytes(total));
    group.sample_size(10);
    let piece = usize::try_from(total).unwrap() / appends;
    for (name, kind, parallel) in [
        ("batches", ScanKind::Batches, true),
        ("batches_one_thread", ScanKind::Batches, false),
        ("record_views", ScanKind::RecordViews, true),
        ("stored_records", ScanKind::StoredRecords, true),
    ] {
        if log.config().parallel_read != parallel {
            drop(log);
            log = open_log_with(dir.path(), FlushPolicy::Never, parallel);
        }
        let (mut log_ns, mut passes) = (0u64, 0u64);
        let (mut raw_ns, mut raw_crc_ns, mut raw_big_ns) = (0u64, 0u64, 0u64);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total_log = Duration::ZERO;
                for i in 0..iters {
                    let log_first = (passes + i) % 2 == 0;
                    let mut anchors = |raw_ns: &mut u64, raw_crc_ns: &mut u64, big_ns: &mut u64| {
                        let t0 = clock.monotonic_ns();
                        assert_eq!(raw_pass(&raw_path, &mut buf), total);
                        let t1 = clock.monotonic_ns();
                        assert_eq!(raw_crc_pass(&raw_path, &mut buf, piece), total);
                        let t2 = clock.monotonic_ns();
                        assert_eq!(raw_pass(&raw_big_path, &mut buf), total);
                        *raw_ns += t1 - t0;
                        *raw_crc_ns += t2 - t1;
                        *big_ns += clock.monotonic_ns() - t2;
                    };
                    if !log_first {
                        anchors(&mut raw_ns, &mut raw_crc_ns, &mut raw_big_ns);
                    }
                    let t0 = clock.monotonic_ns();
                    let (n, _) = log_pass(&log, end, kind);
                    let dt = clock.monotonic_ns() - t0;
                    assert_eq!(n, end);
                    log_ns += dt;
                    total_log += Duration::from_nanos(dt);
                    if log_first {
                        anchors(&mut raw_ns, &mut raw_crc_ns, &mut raw_big_ns);
                    }
                }
                passes += iters;
                total_log
            });
        });
        if passes > 0 {
            let gib_s = |ns: u64| (passes * total) as f64 / ns as f64 * 1e9 / (1u64 << 30) as f64;
            let ratio = |anchor_ns: u64| anchor_ns as f64 / log_ns as f64;
            println!(
                "scan/{name}: {passes} passes of {total} bytes, log {:.2} GiB/s; raw (written like the log) {:.2} GiB/s, raw+crc32c {:.2} GiB/s, raw (1 MiB writes) {:.2} GiB/s; log/raw {:.2} (bar >= 0.80), log/(raw+crc32c) {:.2}, log/raw-1MiB {:.2}",
                gib_s(log_ns),
                gib_s(raw_ns),
                gib_s(raw_crc_ns),
                gib_s(raw_big_ns),
                ratio(raw_ns),
                ratio(raw_crc_ns),
                ratio(raw_big_ns)
            );
        }
    }
    group.finish();
    drop(log);
    // Removes the 2 GiB of scratch data now rather than at the end of the process.
    drop(dir);
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
    // The data directory lives until the end of this function and is removed then: each run
    // writes hundreds of MB.
    let dir = bench_dir();
    let (base, shutdown, engine) = rt.block_on(async {
        let config = streamcache::config::Config {
            data_dir: dir.path().to_owned(),
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
            shutdown.clone(),
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
    drop(rt);
    drop(dir);
}

criterion_group!(
    benches,
    append,
    append_paired,
    scan,
    tail_latency,
    http_produce
);
criterion_main!(benches);
