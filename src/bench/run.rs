//! The runs: paced (one order per request at a fixed rate, spread over a few keep-alive
//! connections), batched (requests of many orders at a fixed rate) and max (batched produce
//! over several connections as fast as the server answers, for a fixed time), each with its
//! own SSE listener; plus the cache reader of the paced runs.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::report::RunReport;
use super::sse::Listener;
use super::stats::{Latencies, match_orders};
use super::{
    BATCHED_QUEUE_CAPACITY, CACHE_QUEUE_CAPACITY, CACHE_READS_MAX, CACHE_REPLY_BYTES_MAX,
    DRAIN_TIMEOUT_MS, E2eOptions, Error, MAX_RUN_BATCH, MAX_RUN_CONNECTIONS, ORDERS_PER_RUN_MAX,
    PACED_CONNECTIONS, PACED_QUEUE_CAPACITY, PREPARED_BODY_BYTES_MAX, REQUEST_TIMEOUT_MS,
};
use crate::clock::SharedClock;
use crate::loadgen::{
    CONSECUTIVE_FAILURES_MAX, Connection, Endpoint, Order, OrderGenerator, encode_produce_body,
    parse_endpoint, send_batch,
};

/// The server under test.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The produce endpoint of the `orders` topic (authority and URL prefix included).
    endpoint: Endpoint,
}

impl Target {
    /// Parses a base URL such as `http://127.0.0.1:7070`.
    pub(crate) fn parse(url: &str) -> Result<Self, crate::loadgen::Error> {
        Ok(Self {
            endpoint: parse_endpoint(url, "orders")?,
        })
    }

    fn sse_path(&self) -> String {
        format!("{}/realtime/orders", self.endpoint.prefix)
    }
}

/// Runs every paced rate, then the max run if asked for.
pub(crate) async fn all(
    target: &Target,
    options: &E2eOptions,
    generator: &Arc<Mutex<OrderGenerator>>,
    clock: &SharedClock,
) -> Result<Vec<RunReport>, Error> {
    let mut runs = Vec::new();
    for &rate in &options.rates {
        runs.push(paced(target, rate, options.seconds, generator, clock).await?);
    }
    for &rate in &options.batched {
        runs.push(batched(target, rate, options.seconds, generator, clock).await?);
    }
    if options.max {
        runs.push(max(target, options.seconds, generator, clock).await?);
    }
    Ok(runs)
}

/// What one producing connection did.
#[derive(Debug, Default)]
struct Produced {
    /// (order number, send time) of every acknowledged order.
    sent: Vec<(u64, u64)>,
    acknowledged: u64,
    failed: u64,
    requests: u64,
    last_reply_ns: u64,
    last_error: Option<String>,
}

/// One produce request: the numbers of the orders it carries and its encoded body.
#[derive(Debug)]
struct Request {
    numbers: Vec<u64>,
    body: Bytes,
}

impl Request {
    /// The request carrying `orders`, encoded as `streamcache produce` encodes it.
    fn new(orders: &[Order]) -> Self {
        Self {
            numbers: orders.iter().map(Order::number).collect(),
            body: encode_produce_body(orders),
        }
    }

    /// A request of the generator's next `n` orders.
    fn generate(generator: &Mutex<OrderGenerator>, n: u64) -> Self {
        let orders: Vec<Order> = {
            let mut generator = generator.lock().unwrap_or_else(PoisonError::into_inner);
            (0..n).map(|_| generator.next_record()).collect()
        };
        Self::new(&orders)
    }
}

/// The first requests of a batched run of `total` orders in requests of `batch`, made before
/// its clock starts so that encoding them does not take the cores from the server during the
/// run: as many as fit in `bytes_max` of bodies (the request that crosses it included); the
/// rest are made on schedule.
fn prepare(
    generator: &Mutex<OrderGenerator>,
    total: u64,
    batch: u64,
    bytes_max: usize,
) -> VecDeque<Request> {
    let mut prepared = VecDeque::new();
    let (mut orders, mut bytes) = (0u64, 0usize);
    while orders < total && bytes < bytes_max {
        let request = Request::generate(generator, batch.min(total - orders));
        orders += request.numbers.len() as u64;
        bytes += request.body.len();
        prepared.push_back(request);
    }
    prepared
}

impl Produced {
    fn merge(&mut self, other: Self) {
        self.sent.extend(other.sent);
        self.acknowledged += other.acknowledged;
        self.failed += other.failed;
        self.requests += other.requests;
        self.last_reply_ns = self.last_reply_ns.max(other.last_reply_ns);
        if other.last_error.is_some() {
            self.last_error = other.last_error;
        }
    }

    /// Sends `request` (opening the connection if needed) and books the outcome. Returns
    /// whether the whole request was acknowledged.
    async fn send(
        &mut self,
        connection: &mut Option<Connection>,
        endpoint: &Endpoint,
        request: Request,
        clock: &SharedClock,
    ) -> bool {
        let Request { numbers, body } = request;
        let records = numbers.len() as u64;
        let send_ns = clock.monotonic_ns();
        let outcome = async {
            let c = match connection.as_mut() {
                Some(c) => c,
                None => connection.insert(Connection::open(&endpoint.authority).await?),
            };
            let request = send_batch(c, endpoint, None, body, records);
            tokio::time::timeout(Duration::from_millis(REQUEST_TIMEOUT_MS), request)
                .await
                .map_err(|_| format!("no reply within {REQUEST_TIMEOUT_MS} ms"))?
        }
        .await;
        self.requests += 1;
        self.last_reply_ns = clock.monotonic_ns();
        match outcome {
            Ok((acknowledged, failed, error)) => {
                self.acknowledged += acknowledged;
                self.failed += failed;
                if error.is_some() {
                    self.last_error = error;
                }
                // Only a fully acknowledged request says which orders were stored.
                let whole = failed == 0;
                if whole {
                    self.sent.extend(numbers.into_iter().map(|n| (n, send_ns)));
                }
                whole
            }
            Err(e) => {
                self.failed += records;
                self.last_error = Some(e);
                if let Some(c) = connection.take() {
                    c.close().await;
                }
                false
            }
        }
    }
}

/// Opens a run's SSE listener, keeping the receipts of up to `orders` orders; `cache` gets
/// the customer numbers to read back (paced runs).
async fn listen(
    target: &Target,
    clock: &SharedClock,
    orders: u64,
    cache: Option<mpsc::Sender<u64>>,
) -> Result<Listener, Error> {
    Listener::open(
        &target.endpoint.authority,
        &target.sse_path(),
        clock.clone(),
        usize::try_from(orders).unwrap_or(usize::MAX),
        cache,
    )
    .await
    .map_err(Error::Sse)
}

/// Starts `count` paced connections, each fed by a queue of `capacity` requests.
fn paced_connections(
    target: &Target,
    clock: &SharedClock,
    count: usize,
    capacity: usize,
) -> (Vec<mpsc::Sender<Request>>, Vec<JoinHandle<Produced>>) {
    (0..count)
        .map(|_| {
            let (tx, rx) = mpsc::channel(capacity);
            let task = tokio::spawn(paced_connection(target.endpoint.clone(), rx, clock.clone()));
            (tx, task)
        })
        .unzip()
}

/// A paced connection: sends each queued batch of orders (one order in a paced run,
/// [`MAX_RUN_BATCH`] in a batched one) in its own request.
async fn paced_connection(
    endpoint: Endpoint,
    mut queue: mpsc::Receiver<Request>,
    clock: SharedClock,
) -> Produced {
    let mut produced = Produced::default();
    let mut connection = None;
    while let Some(request) = queue.recv().await {
        produced
            .send(&mut connection, &endpoint, request, &clock)
            .await;
    }
    if let Some(c) = connection {
        c.close().await;
    }
    produced
}

/// A max-run connection: sends batches of [`MAX_RUN_BATCH`] until `deadline_ns`, `orders_max`
/// orders, or [`CONSECUTIVE_FAILURES_MAX`] failed requests in a row.
async fn max_connection(
    endpoint: Endpoint,
    generator: Arc<Mutex<OrderGenerator>>,
    deadline_ns: u64,
    orders_max: u64,
    clock: SharedClock,
) -> Produced {
    let mut produced = Produced::default();
    let mut connection = None;
    let mut failures_in_a_row = 0u32;
    while clock.monotonic_ns() < deadline_ns
        && produced.acknowledged + produced.failed < orders_max
        && failures_in_a_row < CONSECUTIVE_FAILURES_MAX
    {
        let request = Request::generate(&generator, MAX_RUN_BATCH as u64);
        if produced
            .send(&mut connection, &endpoint, request, &clock)
            .await
        {
            failures_in_a_row = 0;
        } else {
            failures_in_a_row += 1;
        }
    }
    if let Some(c) = connection {
        c.close().await;
    }
    produced
}

/// Cache read latencies and misses of one run.
#[derive(Debug, Default)]
struct CacheReads {
    latencies_ns: Vec<u64>,
    misses: u64,
    last_error: Option<String>,
}

/// Reads `customer:{n}` for every queued customer number, up to [`CACHE_READS_MAX`] reads.
async fn cache_reader(
    target: Target,
    mut customers: mpsc::Receiver<u64>,
    clock: SharedClock,
) -> CacheReads {
    let mut reads = CacheReads::default();
    let mut connection: Option<Connection> = None;
    let authority = target.endpoint.authority.as_str();
    while let Some(customer) = customers.recv().await {
        if reads.latencies_ns.len() >= CACHE_READS_MAX {
            continue;
        }
        let path = format!("{}/redis/get/customer:{customer}", target.endpoint.prefix);
        let started_ns = clock.monotonic_ns();
        let outcome = async {
            let c = match connection.as_mut() {
                Some(c) => c,
                None => connection.insert(Connection::open(authority).await?),
            };
            let read = async {
                let response = c.get(authority, &path, "application/json").await?;
                Limited::new(response.into_body(), CACHE_REPLY_BYTES_MAX)
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .map_err(|e| format!("reading the cache reply failed: {e}"))
            };
            tokio::time::timeout(Duration::from_millis(REQUEST_TIMEOUT_MS), read)
                .await
                .map_err(|_| format!("no cache reply within {REQUEST_TIMEOUT_MS} ms"))?
        }
        .await;
        let elapsed_ns = clock.monotonic_ns().saturating_sub(started_ns);
        match outcome {
            Ok(bytes) => {
                let reply: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                if reply.get("result").is_some_and(Value::is_string) {
                    reads.latencies_ns.push(elapsed_ns);
                } else {
                    reads.misses += 1;
                }
            }
            Err(e) => {
                reads.misses += 1;
                reads.last_error = Some(e);
                if let Some(c) = connection.take() {
                    c.close().await;
                }
            }
        }
    }
    if let Some(c) = connection {
        c.close().await;
    }
    reads
}

/// Waits for every producing task and merges what they did.
async fn join_all(tasks: Vec<JoinHandle<Produced>>) -> Produced {
    let mut produced = Produced::default();
    for task in tasks {
        match task.await {
            Ok(p) => produced.merge(p),
            Err(e) => produced.last_error = Some(format!("a producer task failed: {e}")),
        }
    }
    produced
}

/// One paced run at `rate` orders per second for `seconds`.
async fn paced(
    target: &Target,
    rate: u64,
    seconds: u64,
    generator: &Arc<Mutex<OrderGenerator>>,
    clock: &SharedClock,
) -> Result<RunReport, Error> {
    let total = rate.saturating_mul(seconds).min(ORDERS_PER_RUN_MAX);
    let (cache_tx, cache_rx) = mpsc::channel(CACHE_QUEUE_CAPACITY);
    let mut listener = listen(target, clock, total, Some(cache_tx)).await?;
    let reader = tokio::spawn(cache_reader(target.clone(), cache_rx, clock.clone()));
    let (queues, tasks) = paced_connections(target, clock, PACED_CONNECTIONS, PACED_QUEUE_CAPACITY);
    // IMPORTANT: Burst catches up after a late tick, so the offered rate holds on average;
    // the timer's 1 ms granularity makes a 5k/s schedule five orders per millisecond.
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let started_ns = clock.monotonic_ns();
    for (i, queue) in (0..total).zip(queues.iter().cycle()) {
        ticker.tick().await;
        if queue.send(Request::generate(generator, 1)).await.is_err() {
            tracing::warn!(order = i, "a paced connection stopped early");
            break;
        }
    }
    drop(queues);
    let produced = join_all(tasks).await;
    let collected = finish(listener_wait(&mut listener, &produced).await, listener).await?;
    let reads = reader.await.unwrap_or_default();
    Ok(report(
        Shape {
            label: format!("{rate}/s"),
            offered_per_s: Some(rate),
            batch: 1,
        },
        started_ns,
        produced,
        collected,
        Some(reads),
    ))
}

/// One batched run: `rate` orders per second for `seconds`, offered as requests of
/// [`MAX_RUN_BATCH`] orders on a fixed schedule over [`MAX_RUN_CONNECTIONS`] connections. Unlike
/// the max run the producer never takes in more than `rate`, so the run shows whether the
/// pipeline keeps up with that rate (see [`RunReport::is_sustained`]).
async fn batched(
    target: &Target,
    rate: u64,
    seconds: u64,
    generator: &Arc<Mutex<OrderGenerator>>,
    clock: &SharedClock,
) -> Result<RunReport, Error> {
    let total = rate.saturating_mul(seconds).min(ORDERS_PER_RUN_MAX);
    let batch = MAX_RUN_BATCH as u64;
    let mut prepared = prepare(generator, total, batch, PREPARED_BODY_BYTES_MAX);
    let mut listener = listen(target, clock, total, None).await?;
    let (queues, tasks) =
        paced_connections(target, clock, MAX_RUN_CONNECTIONS, BATCHED_QUEUE_CAPACITY);
    // One request every `batch / rate` seconds; Burst catches up after a late tick.
    let interval_ns = batch.saturating_mul(1_000_000_000) / rate.max(1);
    let mut ticker = tokio::time::interval(Duration::from_nanos(interval_ns.max(1)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let started_ns = clock.monotonic_ns();
    let mut queued = 0u64;
    for queue in queues.iter().cycle() {
        if queued >= total {
            break;
        }
        ticker.tick().await;
        let request = match prepared.pop_front() {
            Some(request) => request,
            None => Request::generate(generator, batch.min(total - queued)),
        };
        let n = request.numbers.len() as u64;
        if queue.send(request).await.is_err() {
            tracing::warn!(order = queued, "a batched connection stopped early");
            break;
        }
        queued += n;
    }
    drop(queues);
    let produced = join_all(tasks).await;
    let collected = finish(listener_wait(&mut listener, &produced).await, listener).await?;
    Ok(report(
        Shape {
            label: format!("{rate}/s x{batch}"),
            offered_per_s: Some(rate),
            batch: MAX_RUN_BATCH,
        },
        started_ns,
        produced,
        collected,
        None,
    ))
}

/// The max run: batched produce over [`MAX_RUN_CONNECTIONS`] connections for `seconds`.
async fn max(
    target: &Target,
    seconds: u64,
    generator: &Arc<Mutex<OrderGenerator>>,
    clock: &SharedClock,
) -> Result<RunReport, Error> {
    let mut listener = listen(target, clock, ORDERS_PER_RUN_MAX, None).await?;
    let started_ns = clock.monotonic_ns();
    let deadline_ns = started_ns.saturating_add(seconds.saturating_mul(1_000_000_000));
    let per_connection = ORDERS_PER_RUN_MAX / MAX_RUN_CONNECTIONS as u64;
    let tasks = (0..MAX_RUN_CONNECTIONS)
        .map(|_| {
            tokio::spawn(max_connection(
                target.endpoint.clone(),
                generator.clone(),
                deadline_ns,
                per_connection,
                clock.clone(),
            ))
        })
        .collect();
    let produced = join_all(tasks).await;
    let collected = finish(listener_wait(&mut listener, &produced).await, listener).await?;
    Ok(report(
        Shape {
            label: format!("max {MAX_RUN_CONNECTIONS}x{MAX_RUN_BATCH}"),
            offered_per_s: None,
            batch: MAX_RUN_BATCH,
        },
        started_ns,
        produced,
        collected,
        None,
    ))
}

/// Waits (bounded) until the listener has seen as many events as orders were stored.
async fn listener_wait(listener: &mut Listener, produced: &Produced) -> bool {
    listener
        .wait_for(
            produced.sent.len() as u64,
            Duration::from_millis(DRAIN_TIMEOUT_MS),
        )
        .await
}

/// Stops the listener; a listener that timed out is not an error (the report counts losses).
async fn finish(drained: bool, listener: Listener) -> Result<super::sse::Collected, Error> {
    if !drained {
        tracing::warn!(
            timeout_ms = DRAIN_TIMEOUT_MS,
            "not every NewOrder arrived in time"
        );
    }
    listener.finish().await.map_err(Error::Sse)
}

/// What kind of run a report describes.
struct Shape {
    label: String,
    /// The scheduled rate; `None` for the max run.
    offered_per_s: Option<u64>,
    /// Orders per request.
    batch: usize,
}

/// Builds a run's report from what the producers sent and the listener received.
fn report(
    shape: Shape,
    started_ns: u64,
    produced: Produced,
    collected: super::sse::Collected,
    reads: Option<CacheReads>,
) -> RunReport {
    let matched = match_orders(&produced.sent, &collected.receipts, produced.last_reply_ns);
    let reads = reads.unwrap_or_default();
    RunReport {
        label: shape.label,
        offered_per_s: shape.offered_per_s,
        batch: shape.batch,
        acknowledged: produced.acknowledged,
        failed: produced.failed,
        requests: produced.requests,
        produce_ns: produced.last_reply_ns.saturating_sub(started_ns),
        delivered: matched.latencies_ns.len() as u64,
        pipeline_ns: matched
            .last_receive_ns
            .unwrap_or(started_ns)
            .saturating_sub(started_ns),
        drained: matched.drained,
        drain_ns: matched
            .last_receive_ns
            .unwrap_or(0)
            .saturating_sub(produced.last_reply_ns),
        lost: matched.lost,
        resyncs: collected.resyncs,
        latencies: Latencies::from_samples(matched.latencies_ns),
        cache: Latencies::from_samples(reads.latencies_ns),
        cache_misses: reads.misses,
        last_error: produced.last_error.or(reads.last_error),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use super::{Request, prepare};
    use crate::clock::ManualClock;
    use crate::loadgen::OrderGenerator;

    fn generator() -> Mutex<OrderGenerator> {
        Mutex::new(OrderGenerator::new(7, Arc::new(ManualClock::new(1_000))))
    }

    #[test]
    fn prepared_requests_are_the_requests_the_schedule_would_make() {
        let made = generator();
        let prepared = prepare(&made, 1_250, 500, usize::MAX);
        assert_eq!(counts(&prepared).1, 1_250);
        let on_schedule = generator();
        let sizes: Vec<usize> = prepared.iter().map(|r| r.numbers.len()).collect();
        assert_eq!(sizes, vec![500, 500, 250]);
        for request in &prepared {
            let same = Request::generate(&on_schedule, request.numbers.len() as u64);
            assert_eq!(request.numbers, same.numbers);
            assert_eq!(request.body, same.body);
        }
    }

    /// Requests and orders of a preparation.
    fn counts(prepared: &VecDeque<Request>) -> (usize, usize) {
        let orders = prepared.iter().map(|r| r.numbers.len()).sum();
        (prepared.len(), orders)
    }

    #[test]
    fn preparing_stops_at_the_request_that_crosses_the_byte_budget() {
        let one = prepare(&generator(), 500, 500, usize::MAX);
        let first = one.front().map_or(0, |r| r.body.len());
        // A budget the first body reaches: that one request.
        let prepared = prepare(&generator(), 2_000, 500, first);
        assert_eq!(counts(&prepared), (1, 500));
        // One byte more: the second request crosses it and is the last.
        let prepared = prepare(&generator(), 2_000, 500, first + 1);
        assert_eq!(counts(&prepared), (2, 1_000));
        let prepared = prepare(&generator(), 2_000, 500, 0);
        assert_eq!(counts(&prepared), (0, 0));
    }
}
