//! Capability: Pusher protocol conformance against the official clients — pusher-js 8.6.0
//! subscribes and the `pusher` 5.3.4 Node SDK publishes (the `pusher-client` harness from the
//! shared tools).
//!
//! Method: start the real binary (`--ephemeral`, HTTP and RESP on port 0), read its ready line,
//! install the harness with npm in a temporary directory (or use an installed copy named by
//! `PUSHER_CLIENT_DIR`), then run it with N=1000 on `orders` and N=100 on a `private-` and a
//! `presence-` channel; every run must end `M passed, 0 failed`. Then
//! `tests/fixtures/pusher/signin.mjs`, run in the same directory, signs two users in with
//! pusher-js `signin()`, sends to one with the SDK's `sendToUser` and ends its connection with
//! `terminateUserConnections`. Needs Debian's `nodejs` and `npm`.
#![cfg(feature = "peers")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns unwrap and panic on failure"
)]

mod peers_common;

use std::process::{Command, Output};

use peers_common::{ServerProcess, pusher_client_dir, require_program};

/// The `passed` and `failed` counts of a harness's last line.
fn counts(last: &str) -> Option<(u32, u32)> {
    let (p, f) = last.split_once(" passed, ")?;
    Some((
        p.trim().parse().ok()?,
        f.trim_end_matches(" failed").trim().parse().ok()?,
    ))
}

/// Runs `script` with node in `dir` against the server on `port` (the default app), with `env`.
fn node(dir: &std::path::Path, script: &str, port: u16, env: &[(&str, String)]) -> Output {
    Command::new("node")
        .arg(script)
        .current_dir(dir)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("APP_KEY", "streamcache-key")
        .env("APP_ID", "streamcache")
        .env("APP_SECRET", "streamcache-secret")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap_or_else(|e| panic!("run node {script}: {e}"))
}

fn run_harness(dir: &std::path::Path, port: u16, channel: &str, n: u32) -> String {
    let env = [
        ("CHANNEL", channel.to_owned()),
        ("EVENT", "NewOrder".to_owned()),
        ("N", n.to_string()),
        ("TIMEOUT_S", "60".to_owned()),
    ];
    let out = node(dir, "client.mjs", port, &env);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = stdout.lines().last().unwrap_or_default().to_owned();
    let (passed, failed) = counts(&last).unwrap_or_else(|| {
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
    run_signin(dir.path(), port);
}

/// Runs `signin.mjs` in the harness directory; every check must pass.
fn run_signin(dir: &std::path::Path, port: u16) {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pusher/signin.mjs");
    std::fs::copy(&script, dir.join("signin.mjs")).expect("copy signin.mjs");
    let out = node(dir, "signin.mjs", port, &[("TIMEOUT_S", "30".to_owned())]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = stdout.lines().last().unwrap_or_default();
    println!("user sign-in: {last}");
    assert_eq!(
        counts(last),
        Some((7, 0)),
        "signin.mjs:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
