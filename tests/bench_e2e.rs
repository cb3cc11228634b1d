//! Capability: `streamcache bench e2e` measures the reference pipeline end to end — it starts
//! its own server in-process, produces orders at a fixed rate while an SSE client listens on
//! `orders`, prints the results table with no lost events, and writes an SVG latency plot.
//!
//! Method: the real binary run once with a one-second, 200 orders/s run; its exit status,
//! stdout table and plot file are checked. The run is bounded by the command's own timeouts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: helpers outside #[test] fns"
)]

use std::process::Command;

/// Checks that every tag in `svg` is closed in order (a small well-formedness check: the
/// plot is hand-written text, so this is what a parser would reject first).
fn check_balanced_tags(svg: &str) {
    let mut open: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("every tag ends") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                open.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap();
            open.push(name.to_owned());
        }
    }
    assert!(open.is_empty(), "unclosed tags: {open:?}");
}

#[test]
fn bench_e2e_prints_a_lossless_table_and_writes_an_svg_plot() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plots").join("e2e.svg");
    let output = Command::new(env!("CARGO_BIN_EXE_streamcache"))
        .args(["bench", "e2e", "--seconds", "1", "--rates", "200", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        output.status
    );

    let header = stdout.lines().find(|l| l.starts_with("run ")).unwrap();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(&columns[..3], ["run", "offered/s", "produced/s"]);
    let row: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("200/s"))
        .unwrap_or_else(|| panic!("no 200/s row:\n{stdout}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[1], "200", "offered rate: {stdout}");
    assert_eq!(row[4], "200", "every order arrived as a NewOrder: {stdout}");
    assert_eq!(row[5], "0", "lost events: {stdout}");
    let p50: f64 = row[6].parse().unwrap();
    let p99: f64 = row[7].parse().unwrap();
    assert!(p50 > 0.0 && p50 <= p99, "{stdout}");
    assert!(
        row[10].parse::<f64>().is_ok(),
        "cache p50 measured: {stdout}"
    );
    assert!(stdout.contains("lost events: 0"), "{stdout}");

    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    check_balanced_tags(&svg);
    assert_eq!(svg.matches("<polyline").count(), 1);
    assert!(svg.contains(">200/s</text>"));
}
