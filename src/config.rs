//! Configuration: built-in defaults, a TOML file, `STREAMCACHE_*` environment variables and
//! flags, applied in that order (later wins).
//!
//! Every error names the setting and where its value came from (`flag --http`,
//! `env STREAMCACHE_HTTP`, `file streamcache.toml:3`), so `main` can print one line and exit 2
//! before anything starts. Engine sections (`[log]`, `[cache]`, …) are defined by their modules and
//! composed here.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Ceiling for `http_body_bytes_max`, in bytes. The default (8 MiB) fits a 1000-record produce of
/// 1 KiB JSON values with room to spare; config may raise it up to this, never past it, so one
/// client cannot make the server buffer gigabytes.
pub const HTTP_BODY_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Largest configuration file, in bytes (flows may carry inline JOLT specs).
pub const CONFIG_FILE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Longest a request handler may run before it is answered with 408, in milliseconds (long
/// polls such as `GET …/records?timeout=` stay below it). Streaming bodies (SSE) are not cut.
pub const HTTP_REQUEST_TIMEOUT_MS_MAX: u64 = 10 * 60 * 1000;

/// Longest shutdown waits for in-flight requests before closing them, in milliseconds.
pub const SHUTDOWN_DRAIN_MS_MAX: u64 = 60 * 1000;

/// The whole configuration, as the TOML file spells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding every engine's files.
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub http: SocketAddr,
    /// RESP listen address.
    pub resp: SocketAddr,
    /// Bearer token for HTTP and password for RESP `AUTH`; `None` leaves both open.
    pub auth_token: Option<String>,
    /// Use a temporary data directory that is removed on exit.
    pub ephemeral: bool,
    /// `tracing` filter directive for stderr logs.
    pub log_level: String,
    /// Log line format on stderr.
    pub log_format: LogFormat,
    /// HTTP request body limit in bytes (at most [`HTTP_BODY_BYTES_MAX`]).
    pub http_body_bytes_max: u64,
    /// HTTP handler timeout in milliseconds (at most [`HTTP_REQUEST_TIMEOUT_MS_MAX`]).
    pub http_request_timeout_ms: u64,
    /// How long shutdown waits for in-flight requests, in milliseconds.
    pub shutdown_drain_ms: u64,
    /// The `[log]` section: the Kafka stand-in.
    #[serde(default)]
    pub log: crate::log::LogConfig,
    /// The `[cache]` section (Redis stand-in).
    #[serde(default)]
    pub cache: crate::cache::CacheConfig,
    /// The MongoDB stand-in: durability and change-feed retention.
    #[serde(default)]
    pub history: crate::history::HistoryConfig,
    /// `[realtime]`: Pusher app, SSE, replay buffer and watchers.
    #[serde(default)]
    pub realtime: crate::realtime::RealtimeConfig,
    /// Pipeline flows; the default is the reference flow.
    #[serde(default)]
    pub pipeline: crate::pipeline::PipelineConfig,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Human,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./streamcache-data"),
            http: SocketAddr::from(([127, 0, 0, 1], 7070)),
            resp: SocketAddr::from(([127, 0, 0, 1], 6380)),
            auth_token: None,
            ephemeral: false,
            log_level: "info".to_owned(),
            log_format: LogFormat::Human,
            http_body_bytes_max: 8 * 1024 * 1024,
            http_request_timeout_ms: 60_000,
            shutdown_drain_ms: 5_000,
            log: crate::log::LogConfig::default(),
            cache: crate::cache::CacheConfig::default(),
            history: crate::history::HistoryConfig::default(),
            realtime: crate::realtime::RealtimeConfig::default(),
            pipeline: crate::pipeline::PipelineConfig::default(),
        }
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// A configuration file, with the 1-based line of the setting when known.
    File {
        /// The file as given on the command line.
        path: PathBuf,
        /// 1-based line number.
        line: Option<usize>,
    },
    /// An environment variable.
    Env(&'static str),
    /// A command-line flag.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => write!(f, "built-in default"),
            Self::File {
                path,
                line: Some(line),
            } => write!(f, "file {}:{line}", path.display()),
            Self::File { path, line: None } => write!(f, "file {}", path.display()),
            Self::Env(name) => write!(f, "env {name}"),
            Self::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// Settings given by flag or environment variable, keyed by setting name.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Setting name → (raw value, origin).
    values: BTreeMap<&'static str, (String, Origin)>,
}

impl Overrides {
    /// Records `value` for setting `name`.
    pub fn set(&mut self, name: &'static str, value: String, origin: Origin) {
        self.values.insert(name, (value, origin));
    }
}

/// A configuration that cannot be used, naming the setting and the origin of its value.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{setting}` (from {origin}): {reason}")]
pub struct Error {
    /// The setting's name as the TOML file spells it.
    pub setting: String,
    /// Where the bad value came from.
    pub origin: Origin,
    /// What is wrong with it.
    pub reason: String,
}

/// The loaded configuration and where each top-level setting came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// Origin of every top-level setting that was not left at its default.
    pub origins: BTreeMap<String, Origin>,
}

impl Loaded {
    /// Where `setting` got its value.
    #[must_use]
    pub fn origin(&self, setting: &str) -> Origin {
        self.origins
            .get(setting)
            .cloned()
            .unwrap_or(Origin::Default)
    }
}

/// Where the configuration came from, kept so a reload (`POST /pipeline/reload`, SIGHUP) reads
/// the same file, environment and flags again.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// The `--config` file, if any.
    pub file: Option<PathBuf>,
    /// Values given by flag or environment variable.
    pub overrides: Overrides,
}

impl ConfigSource {
    /// Loads the configuration from this source again.
    ///
    /// # Errors
    /// As [`load`].
    pub fn load(&self) -> Result<Loaded, Error> {
        load(self.file.as_deref(), &self.overrides)
    }
}

/// Builds the effective configuration from defaults, an optional file and the overrides.
///
/// # Errors
/// An unreadable or unparsable file, an unknown key, a value of the wrong type or an
/// out-of-range limit, each naming the setting and its origin.
pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Loaded, Error> {
    let mut origins = BTreeMap::new();
    let mut config = match file {
        None => Config::default(),
        Some(path) => {
            let text =
                crate::files::read_text_at_most(path, CONFIG_FILE_BYTES_MAX).map_err(|e| {
                    Error {
                        setting: "config".into(),
                        origin: Origin::File {
                            path: path.to_owned(),
                            line: None,
                        },
                        reason: format!("cannot read the file: {e}"),
                    }
                })?;
            let config = parse_toml(&text, path)?;
            if let Ok(table) = text.parse::<toml::Table>() {
                for key in table.keys() {
                    let line = line_of_key(&text, key);
                    origins.insert(
                        key.clone(),
                        Origin::File {
                            path: path.to_owned(),
                            line,
                        },
                    );
                }
            }
            config
        }
    };
    for (name, (value, origin)) in &overrides.values {
        apply_override(&mut config, name, value, origin)?;
        origins.insert((*name).to_owned(), origin.clone());
    }
    let loaded = Loaded { config, origins };
    check(&loaded)?;
    Ok(loaded)
}

/// Parses configuration text; errors point at `path:line` and name the setting by its dotted
/// path (`cache.connections_max`, `pipeline.flows[0].name`).
///
/// # Errors
/// Unknown keys, wrong types and TOML syntax errors, with the line of the fault.
pub fn parse_toml(text: &str, path: &Path) -> Result<Config, Error> {
    let error = |e: &toml::de::Error, setting: String| Error {
        setting,
        origin: Origin::File {
            path: path.to_owned(),
            line: e.span().map(|span| line_of_offset(text, span.start)),
        },
        reason: e.message().trim().to_owned(),
    };
    let deserializer =
        toml::Deserializer::parse(text).map_err(|e| error(&e, "config".to_owned()))?;
    serde_path_to_error::deserialize::<_, Config>(deserializer).map_err(|e| {
        let setting = setting_of(&e.path().to_string(), e.inner().message());
        error(e.inner(), setting)
    })
}

/// The setting a deserialisation error is about: the dotted path where it happened (an unknown
/// key's path ends with that key), extended by the key a "missing field `name`" names.
fn setting_of(path: &str, message: &str) -> String {
    let at = (path != ".").then_some(path);
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(key, _)| key);
    match (at, missing) {
        (Some(at), Some(key)) => format!("{at}.{key}"),
        (None, Some(key)) => key.to_owned(),
        (Some(at), None) => at.to_owned(),
        (None, None) => "config".to_owned(),
    }
}

/// Applies one flag or environment value.
fn apply_override(
    config: &mut Config,
    name: &str,
    value: &str,
    origin: &Origin,
) -> Result<(), Error> {
    let bad = |reason: String| Error {
        setting: name.to_owned(),
        origin: origin.clone(),
        reason,
    };
    match name {
        "data_dir" => config.data_dir = PathBuf::from(value),
        "http" => config.http = parse_addr(value).map_err(bad)?,
        "resp" => config.resp = parse_addr(value).map_err(bad)?,
        "auth_token" => config.auth_token = Some(value.to_owned()),
        "ephemeral" => {
            config.ephemeral = value
                .parse()
                .map_err(|_| bad(format!("`{value}` is not one of `true`, `false`")))?;
        }
        "log_level" => config.log_level = value.to_owned(),
        "log_format" => {
            config.log_format = match value {
                "human" => LogFormat::Human,
                "json" => LogFormat::Json,
                other => return Err(bad(format!("`{other}` is not one of `human`, `json`"))),
            }
        }
        other => return Err(bad(format!("`{other}` is not a setting"))),
    }
    Ok(())
}

/// Parses a listen address such as `127.0.0.1:7070` or `[::1]:0`.
fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    value
        .parse::<SocketAddr>()
        .map_err(|_| format!("`{value}` is not an address of the form IP:PORT"))
}

/// Checks relationships and limits the types cannot express.
fn check(loaded: &Loaded) -> Result<(), Error> {
    let c = &loaded.config;
    let over = |setting: &str, value: u64, max: u64| Error {
        setting: setting.to_owned(),
        origin: loaded.origin(setting),
        reason: format!("{value} is outside 1..={max}"),
    };
    if c.http_body_bytes_max == 0 || c.http_body_bytes_max > HTTP_BODY_BYTES_MAX {
        return Err(over(
            "http_body_bytes_max",
            c.http_body_bytes_max,
            HTTP_BODY_BYTES_MAX,
        ));
    }
    if c.http_request_timeout_ms == 0 || c.http_request_timeout_ms > HTTP_REQUEST_TIMEOUT_MS_MAX {
        return Err(over(
            "http_request_timeout_ms",
            c.http_request_timeout_ms,
            HTTP_REQUEST_TIMEOUT_MS_MAX,
        ));
    }
    if c.shutdown_drain_ms == 0 || c.shutdown_drain_ms > SHUTDOWN_DRAIN_MS_MAX {
        return Err(over(
            "shutdown_drain_ms",
            c.shutdown_drain_ms,
            SHUTDOWN_DRAIN_MS_MAX,
        ));
    }
    if c.log_level
        .parse::<tracing_subscriber::EnvFilter>()
        .is_err()
    {
        return Err(Error {
            setting: "log_level".into(),
            origin: loaded.origin("log_level"),
            reason: format!(
                "`{}` is not a log filter such as `info` or `streamcache=debug`",
                c.log_level
            ),
        });
    }
    if let Err(e) = c.log.check() {
        return Err(Error {
            setting: "log".into(),
            origin: loaded.origin("log"),
            reason: e.to_string(),
        });
    }
    if c.cache.connections_max == 0 || c.cache.connections_max > crate::cache::CONNECTIONS_MAX {
        return Err(Error {
            setting: "cache.connections_max".into(),
            origin: loaded.origin("cache"),
            reason: format!(
                "{} is outside 1..={}",
                c.cache.connections_max,
                crate::cache::CONNECTIONS_MAX
            ),
        });
    }
    if let Err((setting, reason)) = c.history.check() {
        return Err(Error {
            setting: format!("history.{setting}"),
            origin: loaded.origin("history"),
            reason,
        });
    }
    if let Err(e) = c.realtime.check() {
        return Err(Error {
            setting: "realtime".into(),
            origin: loaded.origin("realtime"),
            reason: e.to_string(),
        });
    }
    if let Err(e) = crate::pipeline::check(&c.pipeline) {
        return Err(Error {
            setting: "pipeline".into(),
            origin: loaded.origin("pipeline"),
            reason: e.to_string(),
        });
    }
    if c.auth_token.as_deref() == Some("") {
        return Err(Error {
            setting: "auth_token".into(),
            origin: loaded.origin("auth_token"),
            reason: "the token is empty".into(),
        });
    }
    Ok(())
}

/// The settings outside `[pipeline]` whose values differ between `running`, the configuration
/// the process was started with, and `new`, one read again by a reload: a reload applies only
/// the flows, so each of these keeps its old value until a restart. Named by dotted path as the
/// file spells them (`cache.maxmemory`, `http`); a list (`realtime.webhooks`) is named whole.
/// `data_dir` is not compared while both are ephemeral (the directory in use is then a
/// temporary one, whatever the setting says).
#[must_use]
pub fn restart_required(running: &Config, new: &Config) -> Vec<String> {
    let as_json = |config: &Config| {
        let mut config = config.clone();
        config.pipeline = crate::pipeline::PipelineConfig { flows: Vec::new() };
        if running.ephemeral && new.ephemeral {
            config.data_dir = PathBuf::new();
        }
        // Every field serialises (paths and addresses as strings, the rest plain values), so
        // the fallback is never taken; it would only hide differences, never invent them.
        serde_json::to_value(&config).unwrap_or_default()
    };
    let mut changed = Vec::new();
    changed_paths("", &as_json(running), &as_json(new), &mut changed);
    changed
}

/// Appends to `out` the dotted path of every value that differs between `old` and `new`,
/// descending into objects (a key present in one only counts as a change).
fn changed_paths(
    prefix: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    let path = |key: &str| {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, old_value) in old {
                match new.get(key) {
                    Some(new_value) => changed_paths(&path(key), old_value, new_value, out),
                    None => out.push(path(key)),
                }
            }
            for key in new.keys().filter(|key| !old.contains_key(*key)) {
                out.push(path(key));
            }
        }
        (old, new) if old != new => out.push(prefix.to_owned()),
        _ => {}
    }
}

/// 1-based line of byte `offset` in `text`.
fn line_of_offset(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |head| head.matches('\n').count() + 1)
}

/// 1-based line where top-level `key` is first assigned (`key = …`, a dotted `key.sub = …`) or
/// where a table under it starts (`[key]`, `[key.sub]`, `[[key.sub]]`).
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    // What follows the key: `=` or `.` in an assignment, `]` or `.` in a table header.
    let after_key =
        |rest: &str, ends: [char; 2]| rest.trim_start().starts_with(|c: char| ends.contains(&c));
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            match line.strip_prefix('[') {
                Some(header) => header
                    .trim_start_matches('[')
                    .trim_start()
                    .strip_prefix(key)
                    .is_some_and(|rest| after_key(rest, [']', '.'])),
                None => line
                    .strip_prefix(key)
                    .is_some_and(|rest| after_key(rest, ['=', '.'])),
            }
        })
        .map(|i| i + 1)
}

/// The complete default configuration as commented TOML (`streamcache config default`).
///
/// Parsing this text yields exactly [`Config::default`].
#[must_use]
pub fn default_toml() -> String {
    let d = Config::default();
    let mut out = String::new();
    out.push_str(&format!(
        "# streamcache configuration. Precedence: flags > STREAMCACHE_* env vars > this file > defaults.\n\
         \n\
         # Directory for the log, history and metadata (flag --data-dir, env STREAMCACHE_DATA_DIR).\n\
         data_dir = \"{}\"\n\
         # HTTP listener: REST Proxy, Upstash, Data API, Pusher, SSE, dashboard and ops (--http). Port 0 = any free port.\n\
         http = \"{}\"\n\
         # RESP listener for Redis clients (--resp). Port 0 = any free port.\n\
         resp = \"{}\"\n\
         # Bearer token for HTTP and AUTH password for RESP (--auth-token). Unset = no auth.\n\
         # auth_token = \"change-me\"\n\
         # Temporary data directory removed on exit (--ephemeral).\n\
         ephemeral = {}\n\
         # Log filter (--log-level), e.g. \"info\" or \"streamcache=debug,info\".\n\
         log_level = \"{}\"\n\
         # Log format on stderr (--log-format): \"human\" or \"json\".\n\
         log_format = \"human\"\n\
         # Largest accepted HTTP request body in bytes (at most {HTTP_BODY_BYTES_MAX}).\n\
         http_body_bytes_max = {}\n\
         # HTTP handler timeout in milliseconds (at most {HTTP_REQUEST_TIMEOUT_MS_MAX}).\n\
         http_request_timeout_ms = {}\n\
         # How long shutdown waits for in-flight requests, in milliseconds.\n\
         shutdown_drain_ms = {}\n",
        d.data_dir.display(),
        d.http,
        d.resp,
        d.ephemeral,
        d.log_level,
        d.http_body_bytes_max,
        d.http_request_timeout_ms,
        d.shutdown_drain_ms,
    ));
    out.push_str(&crate::log::LogConfig::default_toml());
    out.push_str(&crate::cache::CacheConfig::default_toml());
    out.push_str(&crate::history::HistoryConfig::default_toml());
    out.push_str(&crate::realtime::default_toml_section());
    out.push_str(&crate::pipeline::reference_toml());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_offset_counts_newlines() {
        assert_eq!(line_of_offset("a\nb\nc", 0), 1);
        assert_eq!(line_of_offset("a\nb\nc", 2), 2);
        assert_eq!(line_of_offset("a\nb\nc", 4), 3);
    }

    #[test]
    fn line_of_key_finds_assignment_and_table() {
        let text = "# c\nhttp = \"x\"\n[log]\n";
        assert_eq!(line_of_key(text, "http"), Some(2));
        assert_eq!(line_of_key(text, "log"), Some(3));
        assert_eq!(line_of_key(text, "resp"), None);
        let nested = "# c\n\n[[pipeline.flows]]\n[ cache ] # c\nhistory.x = 1\nlog_level = \"i\"\n";
        assert_eq!(line_of_key(nested, "pipeline"), Some(3));
        assert_eq!(line_of_key(nested, "cache"), Some(4));
        assert_eq!(line_of_key(nested, "history"), Some(5));
        assert_eq!(line_of_key(nested, "log"), None);
    }

    #[test]
    fn a_bad_value_is_refused_naming_its_dotted_setting_and_line() {
        let refused = |text: &str| {
            let err = parse_toml(text, Path::new("c.toml"))
                .map(|_| ())
                .unwrap_err();
            let line = match err.origin {
                Origin::File { line, .. } => line,
                other => panic!("{other:?}"),
            };
            (err.setting, line)
        };
        let top = refused("# c\nhttp_body_bytes_max = \"abc\"\n");
        assert_eq!(top, ("http_body_bytes_max".to_owned(), Some(2)));
        let nested = refused("[cache]\nconnections_max = \"x\"\n");
        assert_eq!(nested, ("cache.connections_max".to_owned(), Some(2)));
        let unknown = refused("[log]\nsegment_bytes_max = 1\n");
        assert_eq!(unknown, ("log.segment_bytes_max".to_owned(), Some(2)));
        let missing = refused("[[pipeline.flows]]\nname = \"f\"\n");
        assert_eq!(missing.0, "pipeline.flows[0].source");
        assert_eq!(refused("http = \n").0, "config");
    }

    #[test]
    fn restart_required_names_changed_settings_outside_the_pipeline() {
        let running = Config::default();
        assert!(serde_json::to_value(&running).is_ok());
        assert!(restart_required(&running, &running).is_empty());
        let mut new = running.clone();
        new.pipeline.flows.clear();
        assert!(restart_required(&running, &new).is_empty(), "flows reload");
        new.http_body_bytes_max += 1;
        new.cache.connections_max += 1;
        new.auth_token = Some("t".into());
        assert_eq!(
            restart_required(&running, &new),
            ["auth_token", "http_body_bytes_max", "cache.connections_max"]
        );
        let mut moved = running.clone();
        moved.data_dir = PathBuf::from("elsewhere");
        assert_eq!(restart_required(&running, &moved), ["data_dir"]);
        // While ephemeral the engine runs in a temporary directory, whatever `data_dir` says.
        let ephemeral = Config {
            ephemeral: true,
            ..running.clone()
        };
        let moved = Config {
            data_dir: PathBuf::from("elsewhere"),
            ..ephemeral.clone()
        };
        assert!(restart_required(&ephemeral, &moved).is_empty());
    }

    #[test]
    fn config_file_at_max_and_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("streamcache.toml");
        let line = "# streamcache\n";
        let padded = |len: usize| format!("{line}{}", " ".repeat(len - line.len()));
        std::fs::write(&path, padded(CONFIG_FILE_BYTES_MAX)).unwrap();
        assert!(load(Some(&path), &Overrides::default()).is_ok());
        std::fs::write(&path, padded(CONFIG_FILE_BYTES_MAX + 1)).unwrap();
        let err = load(Some(&path), &Overrides::default())
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains("limit of 16777216 bytes"), "{err}");
    }
}
