//! Capability: Pusher protocol conformance against the official clients — pusher-js 8.6.0
//! subscribes and the `pusher` 5.3.4 Node SDK publishes (the `pusher-client` harness from the
//! shared tools).
//!
//! Method: start the real binary (`--ephemeral`, HTTP and RESP on port 0), read its ready line,
//! install the harness with npm in a temporary directory (or use an installed copy named by
//! `PUSHER_CLIENT_DIR`), then run it with N=1000 on `orders` and N=100 on a `private-` and a
//! `presence-` channel; every run must end `M passed, 0 failed`. Needs Debian's `nodejs` and
//! `npm`.
#![cfg(feature = "peers")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns unwrap and panic on failure"
)]

mod peers_common;

use std::process::Command;

use peers_common::{ServerProcess, pusher_client_dir, require_program};

fn run_harness(dir: &std::path::Path, port: u16, channel: &str, n: u32) -> String {
    let out = Command::new("node")
        .arg("client.mjs")
        .current_dir(dir)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("APP_KEY", "streamcache-key")
        .env("APP_ID", "streamcache")
        .env("APP_SECRET", "streamcache-secret")
        .env("CHANNEL", channel)
        .env("EVENT", "NewOrder")
        .env("N", n.to_string())
        .env("TIMEOUT_S", "60")
        .output()
        .expect("run node client.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = stdout.lines().last().unwrap_or_default().to_owned();
    let (passed, failed) = last
        .split_once(" passed, ")
        .and_then(|(p, f)| {
            Some((
                p.trim().parse::<u32>().ok()?,
                f.trim_end_matches(" failed").trim().parse::<u32>().ok()?,
            ))
        })
        .unwrap_or_else(|| {
            panic!(
                "no `N passed, M failed` line from the harness on {channel}:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let latency = stdout
        .lines()
        .find(|l| l.starts_with("latency"))
        .unwrap_or_default();
    println!("{channel} N={n}: {last}; {latency}");
    assert_eq!(failed, 0, "pusher-client on {channel}:\n{stdout}");
    assert!(
        passed > n * 2,
        "pusher-client on {channel} ran its checks:\n{stdout}"
    );
    latency.to_owned()
}

#[test]
fn official_pusher_clients_pass_on_public_private_and_presence_channels() {
    require_program("node", "nodejs");
    let dir = pusher_client_dir();
    let server = ServerProcess::start(&[]);
    assert!(
        server.ready_line.contains("pusher_key=streamcache-key"),
        "{}",
        server.ready_line
    );
    let port = server.http.port();
    run_harness(dir.path(), port, "orders", 1000);
    run_harness(dir.path(), port, "private-orders", 100);
    run_harness(dir.path(), port, "presence-orders", 100);
}
