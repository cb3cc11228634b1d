//! Capability: the dashboard updates live in a real browser — orders published while the page
//! is open appear in the feed, newest first, without a reload.
//!
//! Method: start the real binary, start Debian's headless `chromium` with a fresh profile and a
//! DevTools port, drive it over the Chrome DevTools Protocol (tokio-tungstenite): open `/`, wait
//! until the page reports its SSE connection live, mark the page, publish orders through
//! `POST /realtime/orders`, then wait until they are shown and check the mark survived (no
//! reload) and that they count as live arrivals; then open the page again and check it fills its
//! feed from the replay buffer without counting the backlog as arrivals. Waits on the page are
//! promises the page resolves from a `MutationObserver` (CDP `Runtime.evaluate` with
//! `awaitPromise`), not polling.
//! A screenshot is saved as `target/tmp/dashboard.png`. Needs the `chromium` package.
#![cfg(feature = "peers")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns unwrap and panic on failure"
)]

mod peers_common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt as _, StreamExt as _};
use peers_common::{ServerProcess, require_program};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Chromium, killed on drop.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `f` every 100 ms until it yields a value, for at most `limit`. Only for what happens
/// before a page exists (Chromium's port file, its target list), which nothing can notify.
async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let poll = async {
        loop {
            if let Some(v) = f().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(limit, poll)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

struct Cdp {
    ws: Ws,
    next_id: u64,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        match self.try_call(method, params).await {
            Ok(v) => v,
            Err(e) => panic!("{method} failed: {e}"),
        }
    }

    /// The result of one CDP call, or its `error` object.
    async fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        self.ws
            .send(Message::Text(
                json!({"id": id, "method": method, "params": params})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .expect("CDP reply")
                .unwrap()
                .unwrap();
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["id"] == json!(id) {
                return match v.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(v["result"].clone()),
                };
            }
        }
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// The value of `check` (a JavaScript function body returning a value, or null while not
    /// yet) once it is non-null: the page re-runs it on every DOM change and resolves a promise
    /// the call awaits; it rejects after 10 s. A page still loading may destroy the context the
    /// promise ran in; the wait then starts again in the new one (at most 5 times).
    async fn wait_until(&mut self, what: &str, check: &str) -> Value {
        let expression = format!(
            "new Promise((resolve, reject) => {{
               const check = () => {{ {check} }};
               let timer;
               const observer = new MutationObserver(() => {{
                 const v = check();
                 if (v !== null && v !== undefined) {{ observer.disconnect(); clearTimeout(timer); resolve(v); }}
               }});
               const now = check();
               if (now !== null && now !== undefined) {{ resolve(now); return; }}
               observer.observe(document, {{subtree: true, childList: true, attributes: true, characterData: true}});
               timer = setTimeout(() => {{ observer.disconnect(); reject(new Error('timed out')); }}, 10000);
             }})"
        );
        for _ in 0..5 {
            let r = self
                .try_call(
                    "Runtime.evaluate",
                    json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
                )
                .await;
            match r {
                Ok(r) if r.get("exceptionDetails").is_none() => {
                    return r["result"]["value"].clone();
                }
                Ok(r) => panic!("waiting for {what}: {}", r["exceptionDetails"]),
                Err(e) if e.to_string().contains("context") => {}
                Err(e) => panic!("waiting for {what}: {e}"),
            }
        }
        panic!("waiting for {what}: the page kept replacing its context")
    }
}

/// Page check: the order numbers in the feed once there are `n`.
fn feed_of_len(n: usize) -> String {
    format!(
        "const a = [...document.querySelectorAll('#feed tr[data-order]')].map(r => r.dataset.order);
         return a.length === {n} ? a : null;"
    )
}

/// Page check: the SSE connection is live and the replayed backlog is over.
const LIVE_AFTER_BACKLOG: &str = "const b = document.body;
    return b && b.dataset.conn === 'live' && b.dataset.replay === 'done' ? true : null;";

fn start_chromium(profile: &Path) -> Browser {
    require_program("chromium", "chromium");
    let child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-port=0",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    Browser(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_orders_appear_on_the_open_dashboard_without_reload() {
    let server = ServerProcess::start(&[]);
    let base = format!("http://{}", server.http);
    let profile = tempfile::tempdir().unwrap();
    let _browser = start_chromium(profile.path());

    // Chromium writes its DevTools port into the profile once it listens.
    let port_file = profile.path().join("DevToolsActivePort");
    let port: u16 = wait_for("DevToolsActivePort", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&port_file).ok();
        async move { text?.lines().next()?.trim().parse().ok() }
    })
    .await;
    let http = reqwest::Client::new();
    let ws_url: String = wait_for("a page target", Duration::from_secs(30), || {
        let req = http
            .get(format!("http://127.0.0.1:{port}/json/list"))
            .send();
        async move {
            let targets: Value = req.await.ok()?.json().await.ok()?;
            targets.as_array()?.iter().find(|t| t["type"] == "page")?["webSocketDebuggerUrl"]
                .as_str()
                .map(str::to_owned)
        }
    })
    .await;
    let (ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let mut cdp = Cdp { ws, next_id: 0 };
    cdp.call("Page.enable", json!({})).await;
    cdp.call("Page.navigate", json!({"url": format!("{base}/")}))
        .await;

    cdp.wait_until("the page's SSE connection to be live", LIVE_AFTER_BACKLOG)
        .await;
    cdp.eval("window.__noReload = 'still here'").await;

    let statuses = ["Shipped", "In Process", "Shipped", "On Hold", "Resolved"];
    for (i, status) in statuses.iter().enumerate() {
        let order = json!({
            "orderNumber": 10100 + i,
            "orderDate": "2026-11-30",
            "status": status,
            "customerNumber": 103 + i,
            "customerName": format!("Customer {i}"),
            "orderLines": [{"productCode": "S10_1678", "productName": "1969 Harley Davidson Ultimate Chopper", "quantityOrdered": 2, "priceEach": 50.0}],
        });
        let resp = http
            .post(format!("{base}/realtime/orders"))
            .json(&json!({"event": "NewOrder", "data": order}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    let shown = cdp
        .wait_until("the published orders", &feed_of_len(statuses.len()))
        .await;
    assert_eq!(
        shown,
        json!(["10104", "10103", "10102", "10101", "10100"]),
        "all orders shown, newest first"
    );
    assert_eq!(
        cdp.eval("window.__noReload").await,
        json!("still here"),
        "the page was not reloaded"
    );
    assert_eq!(
        cdp.eval("document.getElementById('count').textContent")
            .await,
        json!("5")
    );
    assert_eq!(
        cdp.eval("document.getElementById('revenue').textContent")
            .await,
        json!("$500.00")
    );
    let shipped = cdp
        .eval("document.querySelector('#statuses li[data-status=\"Shipped\"]').textContent")
        .await;
    assert_eq!(shipped, json!("Shipped: 2"));
    assert_eq!(
        cdp.eval("document.getElementById('rate').textContent")
            .await,
        json!("5"),
        "orders published while the page is open are live arrivals"
    );

    let shot = cdp
        .call("Page.captureScreenshot", json!({"format": "png"}))
        .await;

    // A page opened later fills its feed from the replay buffer (`?recent=`).
    cdp.call("Page.navigate", json!({"url": format!("{base}/")}))
        .await;
    // The old page's context may still answer right after Page.navigate: look for the new one.
    let new_page =
        format!("if (window.__noReload !== undefined) return null; {LIVE_AFTER_BACKLOG}");
    cdp.wait_until("the new page's backlog to end", &new_page)
        .await;
    let replayed = cdp
        .wait_until("the replayed orders", &feed_of_len(statuses.len()))
        .await;
    assert_eq!(
        replayed,
        json!(["10104", "10103", "10102", "10101", "10100"]),
        "a fresh page shows the buffered orders"
    );
    assert_eq!(
        cdp.eval("window.__noReload === undefined").await,
        json!(true),
        "this one is a new page"
    );
    assert_eq!(
        cdp.eval("document.getElementById('count').textContent")
            .await,
        json!("5"),
        "the backlog counts towards totals"
    );
    assert_eq!(
        cdp.eval("document.getElementById('rate').textContent")
            .await,
        json!("0"),
        "the replayed backlog is not counted as arrivals"
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
}
