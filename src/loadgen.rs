//! `streamcache produce`: a load generator that sends realistic orders, shaped like the
//! "classicmodels" sample schema, through the REST Proxy v2 produce API.
//!
//! Orders are deterministic for a seed: a seeded [`Xoshiro256PlusPlus`] picks customers,
//! products, quantities, statuses and comments, and dates come from the injected clock only.
//! Requests go over one HTTP/1.1 keep-alive connection (hyper's client connection, since hyper is
//! already built for the server side), paced by a tokio interval when a rate is set.

use std::borrow::Cow;
use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::http1;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::IndexedRandom as _;
use rand::{RngExt as _, SeedableRng as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::clock::SharedClock;
use crate::shutdown::ShutdownSignal;

// Limits.

/// Most records in one produce request (the REST Proxy accepts more, but larger bodies only
/// add latency per request).
pub const PRODUCE_BATCH_MAX: usize = 1000;
/// Highest `--rate`, in orders per second.
pub const PRODUCE_RATE_MAX: u64 = 1_000_000;
/// Most orders one run sends (`--count`): a thousand seconds at [`PRODUCE_RATE_MAX`]. It keeps
/// every order number (at most [`first_order_number`]'s 999 910 100 plus the count) far below
/// 2^53, so JSON readers that hold numbers as doubles read each one exactly.
pub const PRODUCE_COUNT_MAX: u64 = 1_000_000_000;

// The highest first order number is a seed's ≡ 9 999 (mod 10 000).
const _: () = assert!(first_order_number(9_999) + PRODUCE_COUNT_MAX < 1 << 53);
/// Largest produce response read, in bytes (a 1000-record reply is about 80 KiB).
pub const RESPONSE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Failed requests in a row after which the run stops (the server is gone or refuses).
pub const CONSECUTIVE_FAILURES_MAX: u32 = 10;
/// Paced runs send at least this many requests per second, so `--rate` is smooth even with a
/// large `--batch`.
pub const PACED_REQUESTS_PER_SECOND_MIN: u64 = 10;

/// The REST Proxy v2 content type for JSON keys and values.
pub const CONTENT_TYPE_JSON_V2: &str = "application/vnd.kafka.json.v2+json";

/// Milliseconds in a day.
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Why a run could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `--url` is not an `http://host[:port][/prefix]` URL.
    #[error("`{url}` is not an http://host[:port] URL: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An option is out of range.
    #[error("`--{option}` = {value} is outside {range}")]
    Option {
        /// The option's name.
        option: &'static str,
        /// The value given.
        value: u64,
        /// The accepted range.
        range: String,
    },
    /// The topic name is not a Kafka topic name.
    #[error("`{0}` is not a topic name (1 to 249 bytes of A-Z a-z 0-9 . _ -)")]
    Topic(String),
}

/// What `streamcache produce` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceOptions {
    /// Base URL of the streamcache HTTP listener; requests go to `{url}/kafka/topics/{topic}`.
    pub url: String,
    /// The topic.
    pub topic: String,
    /// Orders per second; `None` sends as fast as the server answers.
    pub rate: Option<u64>,
    /// Orders to send.
    pub count: u64,
    /// Seed of the order generator.
    pub seed: u64,
    /// Most records per request (1 to [`PRODUCE_BATCH_MAX`]).
    pub batch: usize,
    /// Bearer token, if the server requires one.
    pub auth_token: Option<String>,
    /// Draw a progress bar on stderr (only when stderr is a terminal).
    pub progress: bool,
}

impl Default for ProduceOptions {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:7070".into(),
            topic: "orders".into(),
            rate: None,
            count: 1000,
            seed: 1,
            batch: 100,
            auth_token: None,
            progress: true,
        }
    }
}

/// The closing summary of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Orders sent (acknowledged + failed).
    pub sent: u64,
    /// Orders the server stored (`error_code` null).
    pub acknowledged: u64,
    /// Orders refused one by one, or lost with a failed request.
    pub failed: u64,
    /// Requests made.
    pub requests: u64,
    /// Monotonic time the run took, in nanoseconds (from the injected clock).
    pub elapsed_ns: u64,
    /// The last error seen, if any.
    pub last_error: Option<String>,
    /// Why the run stopped before `count`, if it did.
    pub stopped_early: Option<String>,
}

impl Summary {
    /// Orders acknowledged per second, if any time passed.
    #[must_use]
    pub fn rate_per_s(&self) -> Option<f64> {
        #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
        (self.elapsed_ns > 0).then(|| self.acknowledged as f64 * 1e9 / self.elapsed_ns as f64)
    }

    /// Whether every order was acknowledged and the run was complete.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.failed == 0 && self.stopped_early.is_none()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[expect(clippy::cast_precision_loss, reason = "seconds for display")]
        let seconds = self.elapsed_ns as f64 / 1e9;
        write!(
            f,
            "sent {}, acknowledged {}, failed {} in {} requests over {seconds:.3} s",
            self.sent, self.acknowledged, self.failed, self.requests
        )?;
        if let Some(rate) = self.rate_per_s() {
            write!(f, " ({rate:.0} acknowledged/s)")?;
        }
        if let Some(reason) = &self.stopped_early {
            write!(f, "; stopped early: {reason}")?;
        } else if let Some(error) = &self.last_error {
            write!(f, "; last error: {error}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Orders

/// A customer of the sample schema.
struct Customer {
    number: u32,
    name: &'static str,
    city: &'static str,
    country: &'static str,
    sales_rep: u32,
}

/// Customers from the classicmodels sample database.
#[rustfmt::skip]
const CUSTOMERS: &[Customer] = &[
    Customer { number: 103, name: "Atelier graphique", city: "Nantes", country: "France", sales_rep: 1370 },
    Customer { number: 112, name: "Signal Gift Stores", city: "Las Vegas", country: "USA", sales_rep: 1166 },
    Customer { number: 114, name: "Australian Collectors, Co.", city: "Melbourne", country: "Australia", sales_rep: 1611 },
    Customer { number: 119, name: "La Rochelle Gifts", city: "Nantes", country: "France", sales_rep: 1370 },
    Customer { number: 121, name: "Baane Mini Imports", city: "Stavern", country: "Norway", sales_rep: 1504 },
    Customer { number: 124, name: "Mini Gifts Distributors Ltd.", city: "San Rafael", country: "USA", sales_rep: 1165 },
    Customer { number: 125, name: "Havel & Zbyszek Co", city: "Warszawa", country: "Poland", sales_rep: 1702 },
    Customer { number: 128, name: "Blauer See Auto, Co.", city: "Frankfurt", country: "Germany", sales_rep: 1504 },
    Customer { number: 129, name: "Mini Wheels Co.", city: "San Francisco", country: "USA", sales_rep: 1165 },
    Customer { number: 131, name: "Land of Toys Inc.", city: "NYC", country: "USA", sales_rep: 1323 },
    Customer { number: 141, name: "Euro+ Shopping Channel", city: "Madrid", country: "Spain", sales_rep: 1370 },
    Customer { number: 144, name: "Volvo Model Replicas, Co", city: "Luleå", country: "Sweden", sales_rep: 1504 },
    Customer { number: 145, name: "Danish Wholesale Imports", city: "Kobenhavn", country: "Denmark", sales_rep: 1401 },
    Customer { number: 146, name: "Saveley & Henriot, Co.", city: "Lyon", country: "France", sales_rep: 1337 },
    Customer { number: 148, name: "Dragon Souveniers, Ltd.", city: "Singapore", country: "Singapore", sales_rep: 1621 },
    Customer { number: 151, name: "Muscle Machine Inc", city: "NYC", country: "USA", sales_rep: 1286 },
    Customer { number: 157, name: "Diecast Classics Inc.", city: "Allentown", country: "USA", sales_rep: 1216 },
    Customer { number: 161, name: "Technics Stores Inc.", city: "Burlingame", country: "USA", sales_rep: 1165 },
    Customer { number: 166, name: "Handji Gifts& Co", city: "Singapore", country: "Singapore", sales_rep: 1612 },
    Customer { number: 167, name: "Herkku Gifts", city: "Bergen", country: "Norway", sales_rep: 1504 },
    Customer { number: 171, name: "Daedalus Designs Imports", city: "Lille", country: "France", sales_rep: 1370 },
    Customer { number: 175, name: "Gift Depot Inc.", city: "Bridgewater", country: "USA", sales_rep: 1323 },
];

const _: () = assert!(!CUSTOMERS.is_empty());

/// A product of the sample schema, with its MSRP in cents.
struct Product {
    code: &'static str,
    name: &'static str,
    msrp_cents: u64,
}

/// Products from the classicmodels sample database.
#[rustfmt::skip]
const PRODUCTS: &[Product] = &[
    Product { code: "S10_1678", name: "1969 Harley Davidson Ultimate Chopper", msrp_cents: 9570 },
    Product { code: "S10_1949", name: "1952 Alpine Renault 1300", msrp_cents: 21430 },
    Product { code: "S10_2016", name: "1996 Moto Guzzi 1100i", msrp_cents: 11894 },
    Product { code: "S10_4698", name: "2003 Harley-Davidson Eagle Drag Bike", msrp_cents: 19366 },
    Product { code: "S10_4757", name: "1972 Alfa Romeo GTA", msrp_cents: 13600 },
    Product { code: "S10_4962", name: "1962 LanciaA Delta 16V", msrp_cents: 14774 },
    Product { code: "S12_1099", name: "1968 Ford Mustang", msrp_cents: 19457 },
    Product { code: "S12_1108", name: "2001 Ferrari Enzo", msrp_cents: 20780 },
    Product { code: "S12_3148", name: "1969 Corvair Monza", msrp_cents: 15108 },
    Product { code: "S18_1749", name: "1917 Grand Touring Sedan", msrp_cents: 17000 },
    Product { code: "S18_2248", name: "1911 Ford Town Car", msrp_cents: 6054 },
    Product { code: "S18_3232", name: "1992 Ferrari 360 Spider red", msrp_cents: 16961 },
    Product { code: "S24_2000", name: "1960 BSA Gold Star DBD34", msrp_cents: 7617 },
    Product { code: "S24_3856", name: "1956 Porsche 356A Coupe", msrp_cents: 14032 },
    Product { code: "S32_1268", name: "1980's GM Manhattan Express", msrp_cents: 9631 },
    Product { code: "S700_2824", name: "1982 Camaro Z28", msrp_cents: 10115 },
];

const _: () = assert!(PRODUCTS.len() >= ORDER_LINES_MAX);

/// Order statuses of the sample schema with their weights (most orders ship).
const STATUSES: &[(&str, u32)] = &[
    ("Shipped", 70),
    ("In Process", 8),
    ("Resolved", 6),
    ("On Hold", 6),
    ("Cancelled", 5),
    ("Disputed", 5),
];

/// Comments in the style of the sample data.
const COMMENTS: &[&str] = &[
    "Check on availability.",
    "Customer requested that delivery be made before the weekend.",
    "Customer requested that FedEx Ground is used for this shipping.",
    "Difficult to negotiate with customer. We need more marketing materials.",
    "Customer credit limit exceeded. Will ship when a payment is received.",
    "Customer claims the cars were damaged in transit. Investigating.",
    "Order was placed by mistake; customer asked to cancel.",
    "Can we deliver the new Ford Mustang models by end-of-quarter?",
];

/// Most lines in one generated order.
const ORDER_LINES_MAX: usize = 6;

/// Generates classicmodels-shaped orders, deterministic for a seed and a clock reading.
///
/// ```
/// use streamcache::clock::ManualClock;
/// use streamcache::loadgen::{OrderGenerator, first_order_number};
///
/// let clock = ManualClock::shared(1_796_032_800_000); // 2026-11-30T10:00:00Z
/// let (key, order) = OrderGenerator::new(7, clock.clone()).next_order();
/// assert_eq!(order["orderNumber"], first_order_number(7));
/// assert_eq!(order["orderDate"], "2026-11-30");
/// assert_eq!(key, order["customerNumber"].to_string());
/// // The same seed and clock give the same order.
/// assert_eq!(OrderGenerator::new(7, clock).next_order().1, order);
/// ```
#[derive(Debug)]
pub struct OrderGenerator {
    rng: Xoshiro256PlusPlus,
    next_number: u64,
    clock: SharedClock,
}

impl OrderGenerator {
    /// A generator whose order numbers start at [`first_order_number`]`(seed)`.
    #[must_use]
    pub fn new(seed: u64, clock: SharedClock) -> Self {
        Self {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            next_number: first_order_number(seed),
            clock,
        }
    }

    /// The next order: its record key (the customer number) and its JSON value.
    pub fn next_order(&mut self) -> (String, Value) {
        let order = self.next_record();
        // Serialising an `Order` cannot fail: every field is a string, integer, finite float,
        // option or list of those, and map keys are field names.
        let value = serde_json::to_value(&order).unwrap_or_default();
        (order.key(), value)
    }

    /// The next order as a typed record: the same order (and the same random draws) as
    /// [`OrderGenerator::next_order`] returns, ready to be encoded without a `Value`.
    pub fn next_record(&mut self) -> Order {
        let number = self.next_number;
        self.next_number += 1;
        let rng = &mut self.rng;
        let customer = CUSTOMERS.choose(rng).unwrap_or(&CUSTOMERS[0]);
        let status = pick_status(rng.random_range(0..STATUS_WEIGHT_TOTAL));
        let day = self.clock.now_ms() / DAY_MS;
        let required = day + rng.random_range(7..=14);
        let shipped = matches!(status, "Shipped" | "Resolved" | "Disputed")
            .then(|| civil_date(day + rng.random_range(1..=6)));
        let comment_chance = if status == "Shipped" { 0.1 } else { 0.8 };
        let comments = rng
            .random_bool(comment_chance)
            .then(|| COMMENTS.choose(rng).copied().unwrap_or(""));
        let line_count = rng.random_range(1..=ORDER_LINES_MAX);
        let products: Vec<&Product> = PRODUCTS.sample(rng, line_count).collect();
        let order_lines = products
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                // IMPORTANT: the price is drawn before the quantity; the order of draws is
                // what makes a seed reproduce the same orders.
                let cents = p.msrp_cents * rng.random_range(85..=100u64) / 100;
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "cents below 2^52 convert exactly"
                )]
                let price_each = cents as f64 / 100.0;
                OrderLine {
                    order_line_number: i + 1,
                    product_code: p.code,
                    product_name: p.name,
                    quantity_ordered: rng.random_range(20..=50u32),
                    price_each,
                }
            })
            .collect();
        Order {
            order_number: number,
            order_date: civil_date(day),
            required_date: civil_date(required),
            shipped_date: shipped,
            status,
            comments,
            customer_number: customer.number,
            customer: OrderCustomer {
                customer_name: customer.name,
                city: customer.city,
                country: customer.country,
                sales_rep_employee_number: customer.sales_rep,
            },
            order_lines,
        }
    }
}

/// One generated order. It serialises (field order included) to the JSON value that
/// [`OrderGenerator::next_order`] returns, so produce bodies are written straight from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    order_number: u64,
    order_date: String,
    required_date: String,
    shipped_date: Option<String>,
    status: &'static str,
    comments: Option<&'static str>,
    customer_number: u32,
    customer: OrderCustomer,
    order_lines: Vec<OrderLine>,
}

impl Order {
    /// The order number (unique per generator).
    #[must_use]
    pub fn number(&self) -> u64 {
        self.order_number
    }

    /// The record key: the customer number as text.
    #[must_use]
    pub fn key(&self) -> String {
        self.customer_number.to_string()
    }
}

/// The customer embedded in an [`Order`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderCustomer {
    customer_name: &'static str,
    city: &'static str,
    country: &'static str,
    sales_rep_employee_number: u32,
}

/// One line of an [`Order`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderLine {
    order_line_number: usize,
    product_code: &'static str,
    product_name: &'static str,
    quantity_ordered: u32,
    price_each: f64,
}

/// Sum of the status weights.
const STATUS_WEIGHT_TOTAL: u32 = {
    let mut total = 0;
    let mut i = 0;
    while i < STATUSES.len() {
        total += STATUSES[i].1;
        i += 1;
    }
    total
};

/// The status whose cumulative weight range holds `roll` (in `0..STATUS_WEIGHT_TOTAL`).
fn pick_status(mut roll: u32) -> &'static str {
    for (status, weight) in STATUSES {
        if roll < *weight {
            return status;
        }
        roll -= weight;
    }
    "Shipped"
}

/// The first order number of a run with `seed`: runs with different seeds (below 10 000) and
/// fewer than 100 000 orders never share a number, so history upserts do not overwrite
/// another run's orders.
#[must_use]
pub const fn first_order_number(seed: u64) -> u64 {
    10_100 + (seed % 10_000) * 100_000
}

/// `YYYY-MM-DD` for a count of days since 1970-01-01 (proleptic Gregorian calendar).
#[must_use]
pub fn civil_date(days_since_epoch: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm, on unsigned days (dates before 1970 never occur).
    let z = days_since_epoch + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// Where requests go.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// `host:port` to connect to and send as `Host`.
    pub(crate) authority: String,
    /// Request path, `{prefix}/kafka/topics/{topic}`.
    pub(crate) path: String,
    /// The URL's path prefix without a trailing `/` (empty for a server at the root).
    pub(crate) prefix: String,
}

/// Parses `--url` and builds the produce path for `topic`.
pub(crate) fn parse_endpoint(url: &str, topic: &str) -> Result<Endpoint, Error> {
    let bad = |reason: &str| Error::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url.parse().map_err(|_| bad("cannot parse it"))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("only http:// is supported"));
    }
    let authority = uri.authority().ok_or_else(|| bad("it has no host"))?;
    if uri.query().is_some() {
        return Err(bad("it has a query"));
    }
    let port = authority.port_u16().unwrap_or(80);
    let prefix = uri.path().trim_end_matches('/');
    Ok(Endpoint {
        authority: format!("{}:{port}", authority.host()),
        path: format!("{prefix}/kafka/topics/{topic}"),
        prefix: prefix.to_owned(),
    })
}

/// One keep-alive HTTP/1.1 connection and the task driving it.
pub(crate) struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
}

impl Connection {
    pub(crate) async fn open(authority: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(authority)
            .await
            .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
        // Small request/response exchanges: send each as soon as it is written.
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {authority} failed: {e}"))?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "produce connection closed");
            }
        });
        Ok(Self { sender, driver })
    }

    /// Closes the connection and waits for its driver task.
    pub(crate) async fn close(self) {
        drop(self.sender);
        let _ = self.driver.await;
    }

    /// Drops the connection without waiting for its driver task, which is aborted (for a
    /// request abandoned mid-exchange, whose reply may never come).
    pub(crate) fn abort(self) {
        self.driver.abort();
    }

    /// Sends `GET {path}` and returns the response with its body still streaming (an SSE
    /// stream, or a small reply the caller reads with a limit).
    pub(crate) async fn get(
        &mut self,
        authority: &str,
        path: &str,
        accept: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        self.sender
            .ready()
            .await
            .map_err(|e| format!("connection lost: {e}"))?;
        let request = Request::get(path)
            .header(HOST, authority)
            .header(ACCEPT, accept)
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("bad request: {e}"))?;
        self.sender
            .send_request(request)
            .await
            .map_err(|e| format!("request failed: {e}"))
    }
}

/// The REST Proxy v2 JSON produce body for `orders` (record key and value each), written
/// straight from the typed orders.
pub(crate) fn encode_produce_body(orders: &[Order]) -> Bytes {
    #[derive(Serialize)]
    struct Body<'a> {
        records: Vec<Item<'a>>,
    }
    #[derive(Serialize)]
    struct Item<'a> {
        key: String,
        value: &'a Order,
    }
    let body = Body {
        records: orders
            .iter()
            .map(|value| Item {
                key: value.key(),
                value,
            })
            .collect(),
    };
    // About 700 bytes per order; one allocation for the whole body in the common case.
    let mut bytes = Vec::with_capacity(orders.len().saturating_mul(768).saturating_add(16));
    // Writing plain fields into a `Vec` cannot fail (see `next_order`).
    let _ = serde_json::to_writer(&mut bytes, &body);
    Bytes::from(bytes)
}

/// Sends one produce request; returns how many records were acknowledged and failed.
pub(crate) async fn send_batch(
    connection: &mut Connection,
    endpoint: &Endpoint,
    auth_token: Option<&str>,
    body: Bytes,
    records: u64,
) -> Result<(u64, u64, Option<String>), String> {
    connection
        .sender
        .ready()
        .await
        .map_err(|e| format!("connection lost: {e}"))?;
    let mut request = Request::post(endpoint.path.as_str())
        .header(HOST, endpoint.authority.as_str())
        .header(CONTENT_TYPE, CONTENT_TYPE_JSON_V2)
        .header(ACCEPT, "application/vnd.kafka.v2+json");
    if let Some(token) = auth_token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| format!("bad request: {e}"))?;
    let response = connection
        .sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let bytes = Limited::new(response.into_body(), RESPONSE_BYTES_MAX)
        .collect()
        .await
        .map_err(|e| format!("reading the response failed: {e}"))?
        .to_bytes();
    // A reply that is not the expected JSON accounts for no record (all count as failed).
    let reply: ProduceReply<'_> = serde_json::from_slice(&bytes).unwrap_or_default();
    if status != StatusCode::OK {
        let message = reply.message.as_deref().unwrap_or("");
        return Ok((0, records, Some(format!("HTTP {status}: {message}"))));
    }
    Ok(count_offsets(&reply, records))
}

/// The parts of a produce reply (or an error body) the load generator reads. Typed, so the
/// offsets' other fields are skipped without building a tree per record.
#[derive(Debug, Default, Deserialize)]
struct ProduceReply<'a> {
    #[serde(default)]
    offsets: Vec<OffsetReply<'a>>,
    #[serde(default, borrow)]
    message: Option<Cow<'a, str>>,
}

/// One record's outcome in a produce reply.
#[derive(Debug, Deserialize)]
struct OffsetReply<'a> {
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default, borrow)]
    error: Option<Cow<'a, str>>,
}

/// Counts acknowledged and failed records in a produce reply's `offsets`; records the reply
/// does not account for count as failed.
fn count_offsets(reply: &ProduceReply<'_>, records: u64) -> (u64, u64, Option<String>) {
    let offsets = &reply.offsets;
    let mut acknowledged = 0u64;
    let mut last_error = None;
    for entry in offsets
        .iter()
        .take(usize::try_from(records).unwrap_or(usize::MAX))
    {
        match entry.error_code {
            None => acknowledged += 1,
            Some(code) => {
                let message = entry.error.as_deref().unwrap_or("");
                last_error = Some(format!("error_code {code}: {message}"));
            }
        }
    }
    if (offsets.len() as u64) < records && last_error.is_none() {
        last_error = Some(format!(
            "the reply has {} offsets for {records} records",
            offsets.len()
        ));
    }
    (acknowledged, records - acknowledged, last_error)
}

// ---------------------------------------------------------------------------------------------
// The run

/// Checks the options and returns the endpoint and the records per request.
fn check_options(options: &ProduceOptions) -> Result<(Endpoint, usize), Error> {
    let topic = &options.topic;
    if crate::log::check_topic_name(topic).is_err() {
        return Err(Error::Topic(topic.clone()));
    }
    if options.batch == 0 || options.batch > PRODUCE_BATCH_MAX {
        return Err(Error::Option {
            option: "batch",
            value: options.batch as u64,
            range: format!("1..={PRODUCE_BATCH_MAX}"),
        });
    }
    if options.count > PRODUCE_COUNT_MAX {
        return Err(Error::Option {
            option: "count",
            value: options.count,
            range: format!("0..={PRODUCE_COUNT_MAX}"),
        });
    }
    let mut batch = options.batch;
    if let Some(rate) = options.rate {
        if rate == 0 || rate > PRODUCE_RATE_MAX {
            return Err(Error::Option {
                option: "rate",
                value: rate,
                range: format!("1..={PRODUCE_RATE_MAX}"),
            });
        }
        let paced = usize::try_from(rate / PACED_REQUESTS_PER_SECOND_MIN).unwrap_or(usize::MAX);
        batch = batch.min(paced.max(1));
    }
    Ok((parse_endpoint(&options.url, topic)?, batch))
}

/// Sends `options.count` orders and returns the summary. Stops early (with the summary saying
/// why) when `shutdown` fires or after [`CONSECUTIVE_FAILURES_MAX`] failed requests in a row.
///
/// # Errors
/// Only for unusable options (bad URL, topic, batch or rate); failures while sending are
/// counted in the summary instead.
pub async fn produce(
    options: &ProduceOptions,
    clock: SharedClock,
    mut shutdown: ShutdownSignal,
) -> Result<Summary, Error> {
    let (endpoint, batch) = check_options(options)?;
    let mut generator = OrderGenerator::new(options.seed, clock.clone());
    let mut progress = Progress::new(options.progress, options.count, clock.clone());
    let mut ticker = options.rate.map(|rate| {
        #[expect(clippy::cast_precision_loss, reason = "a pacing period")]
        let period = Duration::from_secs_f64(batch as f64 / rate as f64);
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
        ticker
    });
    let started_ns = clock.monotonic_ns();
    let mut summary = Summary::default();
    let mut connection: Option<Connection> = None;
    let mut failures_in_a_row = 0u32;
    while summary.sent < options.count {
        let stopping = match ticker.as_mut() {
            // A signal whose trigger is gone also resolves `wait`: that counts as a stop too.
            Some(ticker) => tokio::select! {
                biased;
                () = shutdown.wait() => true,
                _ = ticker.tick() => false,
            },
            None => shutdown.is_triggered(),
        };
        if stopping {
            summary.stopped_early = Some("interrupted".into());
            break;
        }
        let n = (options.count - summary.sent).min(batch as u64);
        let orders: Vec<Order> = (0..n).map(|_| generator.next_record()).collect();
        let body = encode_produce_body(&orders);
        let exchange = async {
            let c = match connection.as_mut() {
                Some(c) => c,
                None => connection.insert(Connection::open(&endpoint.authority).await?),
            };
            send_batch(c, &endpoint, options.auth_token.as_deref(), body, n).await
        };
        // IMPORTANT: the wait for a connection or a reply ends on shutdown too. Ctrl-C only
        // triggers it (the default SIGINT action is replaced), so a server that accepts and
        // never answers would otherwise hold the run, and the terminal, indefinitely.
        let outcome = tokio::select! {
            biased;
            () = shutdown.wait() => None,
            outcome = exchange => Some(outcome),
        };
        summary.sent += n;
        summary.requests += 1;
        let Some(outcome) = outcome else {
            // The orders' fate is unknown; they count as lost with the abandoned request.
            summary.failed += n;
            summary.last_error = Some("interrupted while waiting for the server".into());
            summary.stopped_early = Some("interrupted".into());
            // Not `close`: its driver may be waiting on the reply that never comes.
            if let Some(c) = connection.take() {
                c.abort();
            }
            break;
        };
        match outcome {
            Ok((acknowledged, failed, error)) => {
                summary.acknowledged += acknowledged;
                summary.failed += failed;
                if error.is_some() {
                    summary.last_error = error;
                }
                failures_in_a_row = if acknowledged == 0 {
                    failures_in_a_row + 1
                } else {
                    0
                };
            }
            Err(e) => {
                summary.failed += n;
                summary.last_error = Some(e);
                failures_in_a_row += 1;
                if let Some(c) = connection.take() {
                    c.close().await;
                }
            }
        }
        progress.update(&summary);
        if failures_in_a_row >= CONSECUTIVE_FAILURES_MAX {
            summary.stopped_early = Some(format!(
                "{failures_in_a_row} requests in a row failed; last error: {}",
                summary.last_error.as_deref().unwrap_or("none")
            ));
            break;
        }
    }
    if let Some(c) = connection.take() {
        c.close().await;
    }
    summary.elapsed_ns = clock.monotonic_ns().saturating_sub(started_ns);
    progress.finish(&summary);
    Ok(summary)
}

/// A one-line progress bar on stderr, redrawn at most ten times a second.
#[derive(Debug)]
struct Progress {
    enabled: bool,
    total: u64,
    clock: SharedClock,
    started_ns: u64,
    drawn_ns: Option<u64>,
}

/// Shortest time between two redraws, in nanoseconds.
const PROGRESS_REDRAW_NS: u64 = 100_000_000;

impl Progress {
    fn new(wanted: bool, total: u64, clock: SharedClock) -> Self {
        let started_ns = clock.monotonic_ns();
        Self {
            enabled: wanted && std::io::stderr().is_terminal(),
            total,
            clock,
            started_ns,
            drawn_ns: None,
        }
    }

    fn update(&mut self, summary: &Summary) {
        if !self.enabled {
            return;
        }
        let now = self.clock.monotonic_ns();
        if self
            .drawn_ns
            .is_some_and(|t| now.saturating_sub(t) < PROGRESS_REDRAW_NS)
        {
            return;
        }
        self.drawn_ns = Some(now);
        let line = progress_line(summary, self.total, now.saturating_sub(self.started_ns));
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}");
        let _ = err.flush();
    }

    fn finish(&mut self, summary: &Summary) {
        if self.enabled {
            self.drawn_ns = None;
            self.update(summary);
            eprintln!();
        }
    }
}

/// Width of the bar in characters.
const PROGRESS_BAR_WIDTH: u64 = 30;

/// `[#########---------]  4500/10000 orders  1500/s  failed 0`.
#[must_use]
pub fn progress_line(summary: &Summary, total: u64, elapsed_ns: u64) -> String {
    let filled = (summary.sent.min(total) * PROGRESS_BAR_WIDTH)
        .checked_div(total)
        .unwrap_or(PROGRESS_BAR_WIDTH);
    let bar: String = (0..PROGRESS_BAR_WIDTH)
        .map(|i| if i < filled { '#' } else { '-' })
        .collect();
    #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
    let rate = if elapsed_ns == 0 {
        0.0
    } else {
        summary.sent as f64 * 1e9 / elapsed_ns as f64
    };
    format!(
        "[{bar}] {}/{total} orders  {rate:.0}/s  failed {}",
        summary.sent, summary.failed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_date_matches_known_days() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(20_422), "2025-11-30");
        assert_eq!(civil_date(20_787), "2026-11-30");
    }

    #[test]
    fn status_weights_cover_every_roll() {
        assert_eq!(pick_status(0), "Shipped");
        assert_eq!(pick_status(69), "Shipped");
        assert_eq!(pick_status(70), "In Process");
        assert_eq!(pick_status(STATUS_WEIGHT_TOTAL - 1), "Disputed");
    }

    #[test]
    fn endpoint_parsing_accepts_http_with_prefix_and_rejects_others() {
        let e = parse_endpoint("http://127.0.0.1:7070", "orders").unwrap();
        assert_eq!(
            (e.authority.as_str(), e.path.as_str()),
            ("127.0.0.1:7070", "/kafka/topics/orders")
        );
        let e = parse_endpoint("http://localhost/base/", "t").unwrap();
        assert_eq!(
            (e.authority.as_str(), e.path.as_str()),
            ("localhost:80", "/base/kafka/topics/t")
        );
        assert!(parse_endpoint("https://x", "t").is_err());
        assert!(parse_endpoint("127.0.0.1:7070", "t").is_err());
        assert!(parse_endpoint("http://x/?a=1", "t").is_err());
    }

    #[test]
    fn offsets_are_counted_per_record() {
        let body = br#"{"key_schema_id": null, "offsets": [
            {"partition": 0, "offset": 1, "error_code": null, "error": null},
            {"partition": null, "offset": null, "error_code": 50002, "error": "bo\u006fm"}
        ]}"#;
        let reply: ProduceReply<'_> = serde_json::from_slice(body).unwrap();
        let (ack, failed, error) = count_offsets(&reply, 3);
        assert_eq!((ack, failed), (1, 2));
        assert_eq!(error.as_deref(), Some("error_code 50002: boom"));
        let empty: ProduceReply<'_> = serde_json::from_slice(b"{}").unwrap();
        assert_eq!(count_offsets(&empty, 2).1, 2);
        let error: ProduceReply<'_> =
            serde_json::from_slice(br#"{"error_code": 40401, "message": "Topic not found"}"#)
                .unwrap();
        assert_eq!(error.message.as_deref(), Some("Topic not found"));
    }

    #[test]
    fn summary_reads_as_one_line_with_the_acknowledged_rate() {
        let s = Summary {
            sent: 100,
            acknowledged: 90,
            failed: 10,
            requests: 2,
            elapsed_ns: 2_000_000_000,
            last_error: Some("error_code 50002: boom".into()),
            stopped_early: None,
        };
        assert_eq!(
            s.to_string(),
            "sent 100, acknowledged 90, failed 10 in 2 requests over 2.000 s \
             (45 acknowledged/s); last error: error_code 50002: boom"
        );
        assert!(!s.is_clean());
    }

    #[test]
    fn progress_line_shows_bar_counts_and_rate() {
        let s = Summary {
            sent: 50,
            failed: 2,
            ..Summary::default()
        };
        let line = progress_line(&s, 100, 1_000_000_000);
        assert_eq!(
            line,
            format!(
                "[{}{}] 50/100 orders  50/s  failed 2",
                "#".repeat(15),
                "-".repeat(15)
            )
        );
    }

    #[test]
    fn batch_and_rate_limits_at_max_and_max_plus_one() {
        let at = |batch, rate| ProduceOptions {
            batch,
            rate,
            ..ProduceOptions::default()
        };
        assert!(check_options(&at(PRODUCE_BATCH_MAX, None)).is_ok());
        assert!(check_options(&at(PRODUCE_BATCH_MAX + 1, None)).is_err());
        assert!(check_options(&at(0, None)).is_err());
        assert!(check_options(&at(10, Some(PRODUCE_RATE_MAX))).is_ok());
        assert!(check_options(&at(10, Some(PRODUCE_RATE_MAX + 1))).is_err());
        assert!(check_options(&at(10, Some(0))).is_err());
        let counting = |count| ProduceOptions {
            count,
            ..ProduceOptions::default()
        };
        assert!(check_options(&counting(PRODUCE_COUNT_MAX)).is_ok());
        let err = check_options(&counting(PRODUCE_COUNT_MAX + 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`--count` = {} is outside 0..={PRODUCE_COUNT_MAX}",
                PRODUCE_COUNT_MAX + 1
            )
        );
        // Paced runs send at least ten requests a second.
        assert_eq!(check_options(&at(100, Some(50))).unwrap().1, 5);
        assert_eq!(check_options(&at(100, Some(5))).unwrap().1, 1);
        assert_eq!(check_options(&at(100, Some(100_000))).unwrap().1, 100);
    }
}
