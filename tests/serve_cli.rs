//! Capability: the `streamcache` binary's lifecycle — ready line, ops endpoints, auth, bad
//! configuration, SIGTERM, the data-directory lock and `config default`.
//!
//! Method: each test starts the real binary as a child process on ports 0 and talks to it over
//! loopback with an HTTP client; exits are awaited with a bound, never slept for.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

mod common;

use std::time::Duration;

use common::{run, send_signal, start, wait_exit};

fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut req = client.get(url);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    })
}

#[test]
fn serve_prints_the_ready_line_and_answers_health() {
    let server = start(&["--ephemeral"]);
    let fields: Vec<&str> = server.ready_line.split_whitespace().collect();
    assert_eq!(fields[0], "streamcache");
    assert_eq!(fields[1], "ready");
    assert!(
        fields[2].starts_with("http=http://127.0.0.1:"),
        "{}",
        server.ready_line
    );
    assert!(
        fields[3].starts_with("resp=127.0.0.1:"),
        "{}",
        server.ready_line
    );
    assert!(
        fields[4].starts_with("dashboard=http://127.0.0.1:"),
        "{}",
        server.ready_line
    );
    assert!(fields[4].ends_with('/'), "{}", server.ready_line);
    assert_eq!(get(&format!("{}/healthz", server.http), None).0, 200);
    assert_eq!(get(&format!("{}/readyz", server.http), None).0, 200);
    let (status, body) = get(&format!("{}/metrics", server.http), None);
    assert_eq!(status, 200);
    assert!(body.contains("process_resident_memory_bytes"), "{body}");
    assert!(
        body.contains("http_requests_total{route=\"/readyz\""),
        "{body}"
    );
}

#[test]
fn auth_token_guards_every_route_but_healthz() {
    let server = start(&["--ephemeral", "--auth-token", "s3cret"]);
    assert_eq!(get(&format!("{}/healthz", server.http), None).0, 200);
    assert_eq!(get(&format!("{}/readyz", server.http), None).0, 401);
    assert_eq!(
        get(&format!("{}/metrics", server.http), Some("wrong")).0,
        401
    );
    let (status, body) = get(&format!("{}/readyz", server.http), Some("s3cret"));
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&format!("{}/no-such-route", server.http), Some("s3cret"));
    assert_eq!(status, 404);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "not_found");
}

#[test]
fn bad_flag_value_exits_2_naming_the_flag() {
    let (code, _out, err) = run(&["--ephemeral", "--http", "not-an-address"], None);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`http`") && err.contains("flag --http"),
        "{err}"
    );
}

#[test]
fn bad_env_value_exits_2_naming_the_variable() {
    let out = common::binary()
        .env("STREAMCACHE_RESP", "127.0.0.1:99999")
        .arg("--ephemeral")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`resp`") && err.contains("env STREAMCACHE_RESP"),
        "{err}"
    );
}

#[test]
fn an_unknown_streamcache_variable_is_warned_about_naming_the_known_one() {
    let mut cmd = common::binary();
    cmd.env("STREAMCACHE_HTPP", "127.0.0.1:1");
    let mut server = common::start_with_stderr(cmd, &["--ephemeral"], std::process::Stdio::piped());
    let child = server.take_child();
    send_signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("STREAMCACHE_HTPP is not a streamcache setting")
            && err.contains("did you mean STREAMCACHE_HTTP?"),
        "{err}"
    );
    // `produce` reads the environment too (STREAMCACHE_URL).
    let out = common::binary()
        .env("STREAMCACHE_ULR", "http://127.0.0.1:1")
        .args(["produce", "--count", "0", "--quiet"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("did you mean STREAMCACHE_URL?"), "{err}");
}

#[test]
fn unknown_key_in_file_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "# comment\nephemeral = true\nhttpp = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let (code, _out, err) = run(&["--config", file.to_str().unwrap()], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("httpp"), "{err}");
    assert!(err.contains("bad.toml:3"), "{err}");
}

#[test]
fn wrong_type_in_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "ephemeral = \"yes\"\n").unwrap();
    let (code, _out, err) = run(&["--config", file.to_str().unwrap()], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.toml:1"), "{err}");
    assert!(err.contains("invalid setting `ephemeral`"), "{err}");
}

/// Runs `serve` with `--data-dir` set to what `data_dir` derives from a regular file (`a-file`
/// in a temporary directory); returns the exit code and stderr.
fn serve_on_data_dir(data_dir: impl Fn(&std::path::Path) -> std::path::PathBuf) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let data_dir = data_dir(&file);
    let args = ["--http", "127.0.0.1:0", "--resp", "127.0.0.1:0"];
    let (code, _out, err) = run(
        &[&["--data-dir", data_dir.to_str().unwrap()][..], &args[..]].concat(),
        None,
    );
    (code, err)
}

#[test]
fn unwritable_data_dir_exits_2_naming_data_dir() {
    let (code, err) = serve_on_data_dir(|file| file.join("data"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`data_dir`") && err.contains("flag --data-dir"),
        "{err}"
    );
}

#[test]
fn a_data_dir_that_is_a_file_exits_2_saying_so() {
    let (code, err) = serve_on_data_dir(std::path::Path::to_path_buf);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`data_dir`") && err.contains("it is a file, not a directory"),
        "{err}"
    );
}

#[test]
fn port_in_use_exits_2_naming_the_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _out, err) = run(
        &["--ephemeral", "--http", &addr, "--resp", "127.0.0.1:0"],
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`http`") && err.contains("flag --http"),
        "{err}"
    );
}

#[test]
fn sigterm_exits_0_within_5_seconds() {
    let mut server = start(&["--ephemeral"]);
    let child = server.take_child();
    send_signal(&child, "TERM");
    let status = wait_exit(child, Duration::from_secs(5)).expect("exit within 5 s");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn second_instance_on_same_data_dir_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let _first = start(&["--data-dir", data]);
    let (code, _out, err) = run(
        &[
            "--data-dir",
            data,
            "--http",
            "127.0.0.1:0",
            "--resp",
            "127.0.0.1:0",
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("in use by another streamcache process"),
        "{err}"
    );
}

#[test]
fn config_default_round_trips_through_the_parser() {
    let (code, out, err) = run(&["config", "default"], None);
    assert_eq!(code, 0, "{err}");
    let parsed =
        streamcache::config::parse_toml(&out, std::path::Path::new("default.toml")).unwrap();
    assert_eq!(parsed, streamcache::config::Config::default());
}

#[test]
fn flags_override_env_which_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "log_level = \"nonsense=[\"\n").unwrap();
    // The file's bad value is overridden by the environment, so the server starts.
    let mut cmd = common::binary();
    cmd.env("STREAMCACHE_LOG_LEVEL", "warn");
    let server = common::start_with(cmd, &["--config", file.to_str().unwrap(), "--ephemeral"]);
    assert_eq!(get(&format!("{}/healthz", server.http), None).0, 200);
    // A flag beats a bad environment value.
    let mut cmd = common::binary();
    cmd.env("STREAMCACHE_HTTP", "garbage");
    let server = common::start_with(cmd, &["--ephemeral", "--http", "127.0.0.1:0"]);
    assert_eq!(get(&format!("{}/healthz", server.http), None).0, 200);
}

#[test]
fn env_ephemeral_false_overrides_the_files_ephemeral_true() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "ephemeral = true\n").unwrap();
    let data = dir.path().join("data");
    let mut cmd = common::binary();
    cmd.env("STREAMCACHE_EPHEMERAL", "false");
    let _server = common::start_with(
        cmd,
        &[
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    // Not ephemeral: the server holds the lock of the named data directory.
    assert!(data.join("LOCK").exists(), "{}", data.display());
}
