//! Capability: `serve` raises its soft open-file limit to the hard limit at start, so log
//! segments and client sockets are not capped by a low default soft limit. Method: start the
//! binary with its soft limit lowered to 256 through the shell's `ulimit`, wait for its ready
//! line, and read the limits the kernel reports for the process.
#![cfg(target_os = "linux")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use std::io::BufRead as _;
use std::process::{Command, Stdio};

/// The soft and hard "Max open files" of process `pid` (`None` = unlimited).
fn open_files(pid: u32) -> (Option<u64>, Option<u64>) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut fields = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .map(|v| v.parse::<u64>().ok());
    (fields.next().flatten(), fields.next().flatten())
}

#[test]
fn serve_raises_the_soft_open_file_limit_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -Sn 256 && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_streamcache"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--http", "127.0.0.1:0", "--resp", "127.0.0.1:0"])
        .args(["--log-level", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let (soft, hard) = open_files(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.contains("http="), "no ready line: {line:?}");
    let wanted = hard.unwrap_or(1 << 20);
    assert_eq!(soft, Some(wanted), "soft limit {soft:?}, hard {hard:?}");
}
