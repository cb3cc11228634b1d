//! The command line: subcommands, flags and where each flag's value came from.
//!
//! `main.rs` parses with [`parse`] and dispatches, the client subcommands to [`commands`]. The
//! types here are plain data so tests can build a [`ServeArgs`] without a process.
//! `streamcache` with no subcommand means `serve`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{Origin, Overrides};

pub mod commands;

/// `streamcache` — Kafka, Redis, MongoDB, JOLT and Pusher stand-ins in one binary.
#[derive(Debug, Parser)]
#[command(
    name = "streamcache",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Settings for `serve` when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// What to do; absent means `serve`.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every engine and listener until SIGINT or SIGTERM (the default).
    Serve(ServeArgs),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Apply a JOLT spec (a chain, or one operation) to a JSON document and print the result.
    Transform(TransformArgs),
    /// Send realistic orders (classicmodels shape) through the REST Proxy API.
    Produce(ProduceArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `streamcache bench …`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// HTTP produce → `NewOrder` on SSE latency, throughput and cache reads of the reference
    /// pipeline.
    E2e(BenchE2eArgs),
}

/// `streamcache bench e2e …`.
#[derive(Debug, Clone, Args)]
pub struct BenchE2eArgs {
    /// Base URL of a running streamcache [default: start one in-process on an ephemeral data
    /// directory].
    #[arg(long)]
    pub url: Option<String>,
    /// Length of each run, in seconds.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub seconds: u64,
    /// Paced runs, in orders per second (one order per request).
    #[arg(
        long,
        value_name = "R,R",
        value_delimiter = ',',
        default_value = "1000,5000"
    )]
    pub rates: Vec<u64>,
    /// Batched runs, in orders per second offered in requests of 500 orders (the
    /// sustained-throughput bar is judged on these).
    #[arg(long, value_name = "R,R", value_delimiter = ',')]
    pub batched: Vec<u64>,
    /// Also run batched produce as fast as the server answers.
    #[arg(long)]
    pub max: bool,
    /// Seed of the order generator.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Where to write the SVG latency plot (`--out docs/e2e-latency.svg` replaces the plot in
    /// docs/benchmarks.md).
    #[arg(long, value_name = "FILE", default_value = "target/e2e-latency.svg")]
    pub out: PathBuf,
}

/// `streamcache transform …`.
#[derive(Debug, Clone, Args)]
pub struct TransformArgs {
    /// JOLT spec file: a chain `[{"operation": …, "spec": …}]` or one such object.
    #[arg(long, value_name = "SPEC_FILE")]
    pub spec: PathBuf,
    /// Input JSON file [default: standard input].
    #[arg(long, value_name = "INPUT_FILE")]
    pub input: Option<PathBuf>,
    /// Context JSON file, read by modify specs with `^path`.
    #[arg(long, value_name = "CONTEXT_FILE")]
    pub context: Option<PathBuf>,
}

/// `streamcache produce …`: the load generator's flags.
#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    /// Base URL of a running streamcache; orders go to URL/kafka/topics/TOPIC.
    #[arg(long, env = "STREAMCACHE_URL", default_value = "http://127.0.0.1:7070")]
    pub url: String,
    /// Orders per second [default: as fast as the server answers].
    #[arg(long, value_name = "N")]
    pub rate: Option<u64>,
    /// Orders to send.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub count: u64,
    /// Seed of the order generator; the same seed sends the same orders.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Topic to produce to.
    #[arg(long, default_value = "orders")]
    pub topic: String,
    /// Most orders per request.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub batch: usize,
    /// Bearer token, when the server requires one.
    #[arg(long, env = "STREAMCACHE_AUTH_TOKEN", value_name = "TOKEN")]
    pub auth_token: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `streamcache config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the complete default configuration as commented TOML.
    Default,
}

/// Flags shared by `serve` and the bare command. Each also reads `STREAMCACHE_<NAME>`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long, env = "STREAMCACHE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the log, history and metadata [default: ./streamcache-data].
    #[arg(long, env = "STREAMCACHE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<String>,
    /// HTTP listen address; port 0 picks a free port [default: 127.0.0.1:7070].
    #[arg(long, env = "STREAMCACHE_HTTP", value_name = "ADDR")]
    pub http: Option<String>,
    /// RESP (Redis protocol) listen address; port 0 picks a free port [default: 127.0.0.1:6380].
    #[arg(long, env = "STREAMCACHE_RESP", value_name = "ADDR")]
    pub resp: Option<String>,
    /// Require `Authorization: Bearer TOKEN` on HTTP and `AUTH TOKEN` on RESP.
    #[arg(long, env = "STREAMCACHE_AUTH_TOKEN", value_name = "TOKEN")]
    pub auth_token: Option<String>,
    /// Use a temporary data directory, removed on exit (for test suites).
    #[arg(long, env = "STREAMCACHE_EPHEMERAL")]
    pub ephemeral: bool,
    /// Log filter, e.g. `info` or `streamcache=debug` [default: info].
    #[arg(long, env = "STREAMCACHE_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log format on stderr: `human` or `json` [default: human].
    #[arg(long, env = "STREAMCACHE_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
}

/// A parsed command line together with the origin of each serve setting.
#[derive(Debug)]
pub struct Parsed {
    /// The parsed command line.
    pub cli: Cli,
    /// The serve settings given by flag or environment variable, each with its origin.
    pub overrides: Overrides,
}

/// Parses `args` (including the program name).
///
/// # Errors
/// Returns clap's error for an unknown flag or subcommand; the caller prints it and exits 2.
pub fn parse<I, T>(args: I) -> Result<Parsed, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let serve_matches = match matches.subcommand() {
        Some(("serve", sub)) => sub,
        _ => &matches,
    };
    let overrides = overrides_from(serve_matches);
    Ok(Parsed { cli, overrides })
}

/// The prefix of the environment variables the command line reads.
pub const ENV_PREFIX: &str = "STREAMCACHE_";

/// Most edits (insertions, deletions, substitutions) between an unknown `STREAMCACHE_*` name and
/// a known one for the known one to be suggested.
const ENV_SUGGESTION_EDITS_MAX: usize = 2;

/// Warnings for the environment variables among `names` that look like streamcache's own
/// (`STREAMCACHE_…`, in any case) but are none of those the command line reads: such a variable
/// is ignored, unlike an unknown key in the configuration file, which is an error. Each warning
/// names the variable and, when one is within [`ENV_SUGGESTION_EDITS_MAX`] edits of it, the known
/// one it was probably meant to be. Sorted by name.
pub fn unknown_env_vars<I>(names: I) -> Vec<String>
where
    I: IntoIterator<Item = OsString>,
{
    let known = known_env_vars();
    let mut unknown: Vec<String> = names
        .into_iter()
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| {
            name.get(..ENV_PREFIX.len())
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(ENV_PREFIX))
                && !known.contains(name)
        })
        .collect();
    unknown.sort();
    unknown
        .into_iter()
        .map(|name| {
            let upper = name.to_ascii_uppercase();
            let closest = known
                .iter()
                .map(|k| (edit_distance(&upper, k), k))
                .filter(|(edits, _)| *edits <= ENV_SUGGESTION_EDITS_MAX)
                .min();
            match closest {
                Some((_, k)) => format!(
                    "environment variable {name} is not a streamcache setting and is ignored; did you mean {k}?"
                ),
                None => format!(
                    "environment variable {name} is not a streamcache setting and is ignored (known: {})",
                    known.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
                ),
            }
        })
        .collect()
}

/// Every environment variable the command line reads, from its clap definitions.
fn known_env_vars() -> std::collections::BTreeSet<String> {
    fn collect(cmd: &clap::Command, out: &mut std::collections::BTreeSet<String>) {
        for arg in cmd.get_arguments() {
            if let Some(env) = arg.get_env().and_then(|env| env.to_str()) {
                out.insert(env.to_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            collect(sub, out);
        }
    }
    let mut out = std::collections::BTreeSet::new();
    collect(&Cli::command(), &mut out);
    out
}

/// Levenshtein distance between `a` and `b`, by bytes.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let above = row.get(j + 1).copied().unwrap_or(0);
            let left = row.get(j).copied().unwrap_or(0);
            let here = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(left + 1);
            diagonal = above;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = here;
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

/// Collects the serve settings that were given explicitly, with where they came from.
fn overrides_from(m: &ArgMatches) -> Overrides {
    let mut out = Overrides::default();
    for (id, flag, env) in [
        ("data_dir", "--data-dir", "STREAMCACHE_DATA_DIR"),
        ("http", "--http", "STREAMCACHE_HTTP"),
        ("resp", "--resp", "STREAMCACHE_RESP"),
        ("auth_token", "--auth-token", "STREAMCACHE_AUTH_TOKEN"),
        ("log_level", "--log-level", "STREAMCACHE_LOG_LEVEL"),
        ("log_format", "--log-format", "STREAMCACHE_LOG_FORMAT"),
    ] {
        let origin = match m.value_source(id) {
            Some(ValueSource::CommandLine) => Origin::Flag(flag),
            Some(ValueSource::EnvVariable) => Origin::Env(env),
            _ => continue,
        };
        if let Ok(Some(value)) = m.try_get_one::<String>(id) {
            out.set(id, value.clone(), origin);
        }
    }
    // The environment's value is kept whether true or false: `STREAMCACHE_EPHEMERAL=false`
    // overrides a file's `ephemeral = true`, as env beats the file for every setting.
    let origin = match m.value_source("ephemeral") {
        Some(ValueSource::CommandLine) => Some(Origin::Flag("--ephemeral")),
        Some(ValueSource::EnvVariable) => Some(Origin::Env("STREAMCACHE_EPHEMERAL")),
        _ => None,
    };
    if let Some(origin) = origin {
        out.set("ephemeral", m.get_flag("ephemeral").to_string(), origin);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("HTTP", "HTTP"), 0);
        assert_eq!(edit_distance("HTP", "HTTP"), 1);
        assert_eq!(edit_distance("HTTPS", "HTTP"), 1);
        assert_eq!(edit_distance("HTTX", "HTTP"), 1);
        assert_eq!(edit_distance("", "RESP"), 4);
        assert_eq!(edit_distance("LOGLEVEL", "LOG_LEVEL"), 1);
    }

    #[test]
    fn unknown_streamcache_variables_are_named_with_the_closest_known_one() {
        let names = [
            "STREAMCACHE_HTTP",
            "STREAMCACHE_URL",
            "STREAMCACHE_LOGLEVEL",
            "streamcache_data_dir",
            "STREAMCACHE_MAXMEMORY",
            "PATH",
            "STREAMCACHEX",
        ]
        .map(OsString::from);
        let warnings = unknown_env_vars(names);
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert!(
            warnings[0].starts_with("environment variable STREAMCACHE_LOGLEVEL ")
                && warnings[0].ends_with("did you mean STREAMCACHE_LOG_LEVEL?"),
            "{warnings:#?}"
        );
        assert!(
            warnings[1].starts_with("environment variable STREAMCACHE_MAXMEMORY ")
                && warnings[1].contains("known: STREAMCACHE_AUTH_TOKEN, ")
                && !warnings[1].contains("did you mean"),
            "{warnings:#?}"
        );
        assert!(
            warnings[2].starts_with("environment variable streamcache_data_dir ")
                && warnings[2].ends_with("did you mean STREAMCACHE_DATA_DIR?"),
            "{warnings:#?}"
        );
    }
}
