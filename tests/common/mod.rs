//! Shared helpers for integration tests: starting the `streamcache` binary as a child process
//! and reading its ready line.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a child may take to print its ready line before the test fails.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `streamcache serve` child, killed on drop.
pub(crate) struct Server {
    /// The child process; `None` once taken by [`Server::take_child`].
    pub(crate) child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub(crate) http: String,
    /// `127.0.0.1:PORT` of the RESP listener.
    pub(crate) resp: String,
    /// The whole ready line.
    pub(crate) ready_line: String,
}

impl Server {
    /// Takes the child out, e.g. to signal it and wait for its exit.
    pub(crate) fn take_child(&mut self) -> Child {
        self.child.take().expect("child not taken yet")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The binary under test.
pub(crate) fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_streamcache"))
}

/// Starts `streamcache` with `args` (ports default to 0) and waits for its ready line.
pub(crate) fn start(args: &[&str]) -> Server {
    start_with(binary(), args)
}

/// Like [`start`], on a prepared command (environment, working directory).
pub(crate) fn start_with(cmd: Command, args: &[&str]) -> Server {
    start_with_stderr(cmd, args, Stdio::inherit())
}

/// Like [`start_with`], with the child's stderr going to `stderr` (piped, to read its logs).
pub(crate) fn start_with_stderr(mut cmd: Command, args: &[&str], stderr: Stdio) -> Server {
    let mut full: Vec<&str> = args.to_vec();
    if !args.contains(&"--http") {
        full.extend(["--http", "127.0.0.1:0"]);
    }
    if !args.contains(&"--resp") {
        full.extend(["--resp", "127.0.0.1:0"]);
    }
    let mut child = cmd
        .args(&full)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn streamcache");
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let ready_line = rx
        .recv_timeout(READY_TIMEOUT)
        .expect("ready line within the timeout");
    let field = |name: &str| {
        ready_line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("ready line lacks {name}=: {ready_line}"))
            .to_owned()
    };
    let http = field("http");
    let resp = field("resp");
    Server {
        child: Some(child),
        http,
        resp,
        ready_line,
    }
}

/// Runs the binary to completion with `args`, returning (exit code, stdout, stderr).
pub(crate) fn run(args: &[&str], dir: Option<&Path>) -> (i32, String, String) {
    let mut cmd = binary();
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd.args(args).output().expect("run streamcache");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends `signal` (e.g. "TERM", "KILL") to the child via kill(1).
pub(crate) fn send_signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} failed");
}

/// Waits for `child` to exit within `limit`. On timeout the child is killed and `None` returned.
pub(crate) fn wait_exit(mut child: Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    // `Child::wait` blocks; a helper thread lets the test bound the wait on a condition
    // (the exit) instead of sleeping.
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(limit) {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            None
        }
    }
}
