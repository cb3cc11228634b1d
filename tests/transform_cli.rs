//! Capability: the `streamcache transform` subcommand. Method: run the built binary on spec,
//! input and context files in a temporary directory (and on stdin), and check stdout, stderr
//! and the exit code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamcache"))
        .arg("transform")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The binary may exit (a rejected spec) before reading stdin: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn transforms_a_file_with_context() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(
        &dir,
        "spec.json",
        r#"[{"operation":"shift","spec":{"a":"b"}},{"operation":"modify-overwrite-beta","spec":{"c":"^k"}}]"#,
    );
    let input = write(&dir, "in.json", r#"{"a": 1}"#);
    let context = write(&dir, "ctx.json", r#"{"k": "v"}"#);
    let out = run(
        &["--spec", &spec, "--input", &input, "--context", &context],
        "",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value, serde_json::json!({"b": 1, "c": "v"}));
}

#[test]
fn reads_stdin_and_accepts_a_single_operation() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(&dir, "spec.json", r#"{"operation":"sort"}"#);
    let out = run(&["--spec", &spec], r#"{"b":1,"a":2}"#);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        r#"{"a":2,"b":1}"#
    );
}

#[test]
fn bad_spec_exits_2_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(
        &dir,
        "spec.json",
        r#"[{"operation":"remove","spec":{"a":{"b":"nope"}}}]"#,
    );
    let out = run(&["--spec", &spec], "{}");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("/0/spec/a/b"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(&dir, "spec.json", r#"{"operation":"sort"}"#);
    let out = run(&["--spec", &spec], "{not json");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("standard input")
    );
    let missing = run(&["--spec", &spec, "--input", "/nonexistent/in.json"], "");
    assert_eq!(missing.status.code(), Some(2));
}

/// `text` padded with spaces after it to exactly `len` bytes.
fn padded(text: &str, len: usize) -> String {
    format!("{text}{}", " ".repeat(len - text.len()))
}

#[test]
fn spec_input_and_context_are_read_up_to_their_limits() {
    use streamcache::cli::commands::TRANSFORM_INPUT_BYTES_MAX;
    use streamcache::transform::SPEC_BYTES_MAX;
    let dir = tempfile::tempdir().unwrap();
    let spec = r#"{"operation":"sort"}"#;
    let doc = r#"{"b":1,"a":2}"#;
    let at_max = write(&dir, "spec.json", &padded(spec, SPEC_BYTES_MAX));
    let input = write(&dir, "in.json", &padded(doc, TRANSFORM_INPUT_BYTES_MAX));
    let context = write(&dir, "ctx.json", &padded("{}", TRANSFORM_INPUT_BYTES_MAX));
    let out = run(
        &["--spec", &at_max, "--input", &input, "--context", &context],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"a":2,"b":1}"#
    );
    let out = run(
        &["--spec", &at_max],
        &padded(doc, TRANSFORM_INPUT_BYTES_MAX),
    );
    assert!(out.status.success(), "{out:?}");

    let limit = |out: &Output, max: usize| {
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("limit of {max}")), "{stderr}");
    };
    let past = write(&dir, "big-spec.json", &padded(spec, SPEC_BYTES_MAX + 1));
    limit(
        &run(&["--spec", &past, "--input", &input], ""),
        SPEC_BYTES_MAX,
    );
    let spec = write(&dir, "spec-small.json", spec);
    let big = write(
        &dir,
        "big.json",
        &padded(doc, TRANSFORM_INPUT_BYTES_MAX + 1),
    );
    limit(
        &run(&["--spec", &spec, "--input", &big], ""),
        TRANSFORM_INPUT_BYTES_MAX,
    );
    limit(
        &run(&["--spec", &spec, "--input", &input, "--context", &big], ""),
        TRANSFORM_INPUT_BYTES_MAX,
    );
    limit(
        &run(
            &["--spec", &spec],
            &padded(doc, TRANSFORM_INPUT_BYTES_MAX + 1),
        ),
        TRANSFORM_INPUT_BYTES_MAX,
    );
}
