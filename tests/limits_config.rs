//! Capability: the top-level configuration ceilings at max and max + 1 —
//! `HTTP_BODY_BYTES_MAX` (`http_body_bytes_max`), `HTTP_REQUEST_TIMEOUT_MS_MAX`
//! (`http_request_timeout_ms`) and `SHUTDOWN_DRAIN_MS_MAX` (`shutdown_drain_ms`).
//!
//! Method: write a TOML file setting one of them and load it with `config::load`, the boundary
//! every configuration passes before anything starts: the ceiling itself loads and takes effect,
//! one more is refused naming the setting, the file and line it came from, and the range.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns: a failed unwrap is a failed test"
)]

use std::path::PathBuf;

use streamcache::config::{
    self, Config, HTTP_BODY_BYTES_MAX, HTTP_REQUEST_TIMEOUT_MS_MAX, Loaded, Origin, Overrides,
    SHUTDOWN_DRAIN_MS_MAX,
};

/// Loads a configuration file holding `text` (in a temporary directory) with no overrides.
fn load(text: &str) -> (PathBuf, Result<Loaded, config::Error>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("streamcache.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = config::load(Some(&path), &Overrides::default());
    (path, loaded, dir)
}

/// Checks one ceiling: `setting = max` on line 2 loads and `read` sees it; `setting = max + 1`
/// is refused with the documented error.
fn check_ceiling(setting: &str, max: u64, read: fn(&Config) -> u64) {
    // A comment first, so the reported line is not trivially 1.
    let file = |value: u64| format!("# limits\n{setting} = {value}\n");

    let (_, loaded, _dir) = load(&file(max));
    let loaded = loaded.unwrap_or_else(|e| panic!("{setting} = {max}: {e}"));
    assert_eq!(read(&loaded.config), max, "{setting}");

    let (path, refused, _dir) = load(&file(max + 1));
    let err = refused.map(|_| ()).unwrap_err();
    assert_eq!(err.setting, setting);
    assert_eq!(
        err.origin,
        Origin::File {
            path: path.clone(),
            line: Some(2)
        },
        "{setting}"
    );
    assert_eq!(err.reason, format!("{} is outside 1..={max}", max + 1));
    assert_eq!(
        err.to_string(),
        format!(
            "invalid setting `{setting}` (from file {}:2): {} is outside 1..={max}",
            path.display(),
            max + 1
        )
    );
}

#[test]
fn http_body_bytes_max_at_the_ceiling_and_past_it() {
    check_ceiling("http_body_bytes_max", HTTP_BODY_BYTES_MAX, |c| {
        c.http_body_bytes_max
    });
}

#[test]
fn http_request_timeout_ms_at_the_ceiling_and_past_it() {
    check_ceiling(
        "http_request_timeout_ms",
        HTTP_REQUEST_TIMEOUT_MS_MAX,
        |c| c.http_request_timeout_ms,
    );
}

#[test]
fn shutdown_drain_ms_at_the_ceiling_and_past_it() {
    check_ceiling("shutdown_drain_ms", SHUTDOWN_DRAIN_MS_MAX, |c| {
        c.shutdown_drain_ms
    });
}

#[test]
fn the_defaults_sit_below_their_ceilings() {
    // Config may lower a limit but never raise it past the constant; the defaults must load.
    let d = Config::default();
    assert!(d.http_body_bytes_max <= HTTP_BODY_BYTES_MAX);
    assert!(d.http_request_timeout_ms <= HTTP_REQUEST_TIMEOUT_MS_MAX);
    assert!(d.shutdown_drain_ms <= SHUTDOWN_DRAIN_MS_MAX);
    let (_, loaded, _dir) = load("");
    assert_eq!(loaded.unwrap().config, d);
}
