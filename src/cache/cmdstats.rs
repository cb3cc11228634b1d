//! INFO's `commandstats` and `errorstats`, kept as Redis 7.0.15 keeps them: per command (and
//! per subcommand of a container such as CONFIG or XGROUP) the calls, the time spent running
//! them, the calls rejected before running (wrong arity, NOAUTH, OOM, a command not allowed
//! in the subscribed state, one refused while queueing in MULTI) and the calls that ran and
//! answered an error (`call()`, `rejectCommand`); and every error reply counted by its code,
//! the text up to the first space within its first 32 bytes, `ERR` when there is none
//! (`afterErrorReply`). A blocked command counts one call, when it answers.
//!
//! The per-command counters are atomics in a table parallel to the command table, so a call
//! costs three relaxed additions (with `latency-tracking`, one in its run-time histogram) and
//! two monotonic clock reads; the error codes sit behind a mutex taken only on an error reply.
//! The same table holds each command's latency histogram (INFO `latencystats`, LATENCY
//! HISTOGRAM) and feeds the latency monitor's `command`/`fast-command` events
//! ([`crate::cache::latency`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::cache::latency::{self, Counts, LazyHistogram, Monitor};
use crate::cache::resp::command::{self, Spec};
use crate::cache::resp::frame::Frame;
use crate::clock::SharedClock;

/// Most distinct error codes kept: a new code past it is counted in `total_error_replies`
/// only (Redis 7.2's `ERROR_STATS_NUMBER`; 7.0 has no bound, but its codes come from its own
/// source and scripts, as this cache's come from its own source).
pub(crate) const ERROR_CODES_MAX: usize = 128;

/// Bytes of an error reply searched for the space that ends its code (Redis's 32).
const ERROR_CODE_SEARCH_BYTES: usize = 32;

/// The subcommands of the container commands, as Redis 7.0.15 names them in
/// `cmdstat_<container>|<subcommand>`.
static SUBCOMMANDS: &[(&str, &[&str])] = &[
    (
        "client",
        &[
            "caching",
            "getname",
            "getredir",
            "help",
            "id",
            "info",
            "kill",
            "list",
            "no-evict",
            "pause",
            "reply",
            "setname",
            "tracking",
            "trackinginfo",
            "unblock",
            "unpause",
        ],
    ),
    (
        "cluster",
        &[
            "addslots",
            "addslotsrange",
            "bumpepoch",
            "count-failure-reports",
            "countkeysinslot",
            "delslots",
            "delslotsrange",
            "failover",
            "flushslots",
            "forget",
            "getkeysinslot",
            "help",
            "info",
            "keyslot",
            "links",
            "meet",
            "myid",
            "nodes",
            "replicas",
            "replicate",
            "reset",
            "saveconfig",
            "set-config-epoch",
            "setslot",
            "shards",
            "slaves",
            "slots",
        ],
    ),
    (
        "command",
        &[
            "count",
            "docs",
            "getkeys",
            "getkeysandflags",
            "help",
            "info",
            "list",
        ],
    ),
    ("config", &["get", "help", "resetstat", "rewrite", "set"]),
    (
        "latency",
        &[
            "doctor",
            "graph",
            "help",
            "histogram",
            "history",
            "latest",
            "reset",
        ],
    ),
    (
        "function",
        &[
            "delete", "dump", "flush", "help", "kill", "list", "load", "restore", "stats",
        ],
    ),
    (
        "memory",
        &["doctor", "help", "malloc-stats", "purge", "stats", "usage"],
    ),
    (
        "object",
        &["encoding", "freq", "help", "idletime", "refcount"],
    ),
    (
        "pubsub",
        &[
            "channels",
            "help",
            "numpat",
            "numsub",
            "shardchannels",
            "shardnumsub",
        ],
    ),
    (
        "xgroup",
        &[
            "create",
            "createconsumer",
            "delconsumer",
            "destroy",
            "help",
            "setid",
        ],
    ),
    ("slowlog", &["get", "help", "len", "reset"]),
    ("xinfo", &["consumers", "groups", "help", "stream"]),
];

/// The commands Redis 7.0.15 flags `fast` (O(1) or O(log N)), whose slow runs the latency
/// monitor files as `fast-command` rather than `command`. Sorted.
static FAST: &[&str] = &[
    "append",
    "asking",
    "auth",
    "bitfield_ro",
    "bzpopmax",
    "bzpopmin",
    "dbsize",
    "decr",
    "decrby",
    "discard",
    "echo",
    "exists",
    "expire",
    "expireat",
    "expiretime",
    "get",
    "getbit",
    "getdel",
    "getex",
    "getset",
    "hdel",
    "hello",
    "hexists",
    "hget",
    "hincrby",
    "hincrbyfloat",
    "hlen",
    "hmget",
    "hmset",
    "hset",
    "hsetnx",
    "hstrlen",
    "incr",
    "incrby",
    "incrbyfloat",
    "lastsave",
    "llen",
    "lolwut",
    "lpop",
    "lpush",
    "lpushx",
    "mget",
    "move",
    "multi",
    "persist",
    "pexpire",
    "pexpireat",
    "pexpiretime",
    "pfadd",
    "ping",
    "pttl",
    "publish",
    "quit",
    "readonly",
    "readwrite",
    "renamenx",
    "reset",
    "role",
    "rpop",
    "rpush",
    "rpushx",
    "sadd",
    "scard",
    "select",
    "setnx",
    "sismember",
    "smismember",
    "smove",
    "spop",
    "spublish",
    "srem",
    "strlen",
    "swapdb",
    "time",
    "touch",
    "ttl",
    "type",
    "unlink",
    "unwatch",
    "watch",
    "xack",
    "xadd",
    "xautoclaim",
    "xclaim",
    "xdel",
    "xlen",
    "xsetid",
    "zadd",
    "zcard",
    "zcount",
    "zincrby",
    "zlexcount",
    "zmscore",
    "zpopmax",
    "zpopmin",
    "zrank",
    "zrem",
    "zrevrank",
    "zscore",
];

/// One command's counters.
#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    nanos: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    latency: LazyHistogram,
}

impl Counters {
    fn reset(&self) {
        for c in [&self.calls, &self.nanos, &self.rejected, &self.failed] {
            c.store(0, Ordering::Relaxed);
        }
        self.latency.reset();
    }

    /// `calls=…,usec=…,usec_per_call=…,rejected_calls=…,failed_calls=…`, or `None` when the
    /// command has neither run nor been rejected (Redis lists only those).
    fn line(&self) -> Option<String> {
        let calls = self.calls.load(Ordering::Relaxed);
        let rejected = self.rejected.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        if calls == 0 && rejected == 0 && failed == 0 {
            return None;
        }
        let usec = self.nanos.load(Ordering::Relaxed) / 1000;
        let per_call = if calls == 0 {
            0.0
        } else {
            usec as f64 / calls as f64
        };
        Some(format!(
            "calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}"
        ))
    }
}

/// The counters behind INFO commandstats and errorstats.
#[derive(Debug)]
pub(crate) struct CommandStats {
    /// One per entry of the command table, in its order.
    commands: Box<[Counters]>,
    /// One per (container, subcommand) of [`SUBCOMMANDS`], in its order.
    subcommands: Box<[Counters]>,
    /// Error replies by code.
    errors: Mutex<BTreeMap<Box<str>, u64>>,
    /// Every error reply (`total_error_replies`).
    total_errors: AtomicU64,
    /// `latency-tracking`: whether calls are recorded in the histograms.
    tracking: AtomicBool,
    /// `latency-tracking-info-percentiles`.
    info_percentiles: Mutex<Vec<f64>>,
    /// The latency monitor (LATENCY LATEST, HISTORY, GRAPH, DOCTOR, RESET).
    pub(crate) monitor: Monitor,
}

impl CommandStats {
    /// Empty counters; the monitor stamps its samples with `clock`.
    pub(crate) fn new(clock: SharedClock) -> Self {
        let subs: usize = SUBCOMMANDS.iter().map(|(_, s)| s.len()).sum();
        Self {
            commands: command::all().map(|_| Counters::default()).collect(),
            subcommands: (0..subs).map(|_| Counters::default()).collect(),
            errors: Mutex::new(BTreeMap::new()),
            total_errors: AtomicU64::new(0),
            tracking: AtomicBool::new(true),
            info_percentiles: Mutex::new(vec![50.0, 99.0, 99.9]),
            monitor: Monitor::new(clock),
        }
    }
}

/// Where a call of `spec` with `args` is counted: the command's own counters, a container's
/// subcommand's, or none (a container called with an unknown subcommand, which Redis rejects
/// before it has a command to count against).
fn slot<'a>(stats: &'a CommandStats, spec: &'static Spec, args: &[&[u8]]) -> Option<&'a Counters> {
    match container(spec) {
        Some((base, subs)) => {
            let sub = args.get(1)?;
            let i = subs
                .iter()
                .position(|s| s.as_bytes().eq_ignore_ascii_case(sub))?;
            stats.subcommands.get(base + i)
        }
        None => stats.commands.get(command::index_of(spec)),
    }
}

/// For a container command, the place of its first subcommand among all of [`SUBCOMMANDS`]
/// and its subcommands; `None` for any other command.
fn container(spec: &Spec) -> Option<(usize, &'static [&'static str])> {
    let mut base = 0usize;
    for (container, subs) in SUBCOMMANDS {
        if *container == spec.name {
            return Some((base, subs));
        }
        base += subs.len();
    }
    None
}

/// The name Redis gives a call of `spec` with `args` in its errors (`c->cmd->fullname`):
/// `container|subcommand` for a known subcommand of a container (`client|getname`), else the
/// command's name.
pub(crate) fn full_name(spec: &'static Spec, args: &[&[u8]]) -> Cow<'static, str> {
    let sub = container(spec)
        .zip(args.get(1))
        .and_then(|((_, subs), sub)| subs.iter().find(|s| s.as_bytes().eq_ignore_ascii_case(sub)));
    match sub {
        Some(sub) => Cow::Owned(format!("{}|{sub}", spec.name)),
        None => Cow::Borrowed(spec.name),
    }
}

/// Redis's refusal of a call of a container command with a subcommand it lacks, made when the
/// command is looked up, before any other check (`commandCheckExistence`): `unknown
/// subcommand 'x'. Try CLIENT HELP.` (the subcommand cut at 128 bytes, line breaks as spaces).
/// `None` for a known subcommand or any other command.
pub(crate) fn unknown_subcommand(spec: &'static Spec, args: &[&[u8]]) -> Option<String> {
    let (_, subs) = container(spec)?;
    let sub = args.get(1)?;
    if subs.iter().any(|s| s.as_bytes().eq_ignore_ascii_case(sub)) {
        return None;
    }
    let cut = sub.get(..128).unwrap_or(sub);
    let shown = String::from_utf8_lossy(cut).replace(['\r', '\n'], " ");
    Some(format!(
        "ERR unknown subcommand '{shown}'. Try {} HELP.",
        spec.name.to_uppercase()
    ))
}

/// The code of an error reply's text (without its `-`).
fn error_code(text: &str) -> &str {
    let head = text
        .get(..text.len().min(ERROR_CODE_SEARCH_BYTES))
        .unwrap_or(text);
    match head.find(' ') {
        Some(end) => text.get(..end).unwrap_or("ERR"),
        None => "ERR",
    }
}

impl CommandStats {
    /// Counts one error reply with `text`.
    pub(crate) fn error(&self, text: &str) {
        self.total_errors.fetch_add(1, Ordering::Relaxed);
        let code = error_code(text);
        let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = errors.get_mut(code) {
            *n += 1;
        } else if errors.len() < ERROR_CODES_MAX {
            errors.insert(code.into(), 1);
        }
    }

    /// Counts the error replies in `reply`: itself, or each element of an EXEC's array when
    /// `nested`.
    pub(crate) fn errors_in(&self, reply: &Frame, nested: bool) {
        match reply {
            Frame::Error(text) => self.error(text),
            Frame::Array(items) if nested => {
                for item in items {
                    if let Frame::Error(text) = item {
                        self.error(text);
                    }
                }
            }
            _ => {}
        }
    }

    /// Counts a call of `spec` that ran for `nanos` and answered `reply` (a failed call when
    /// that is an error, which is counted too). An EXEC's array holds its commands' replies,
    /// each counted with its own command, so only an error EXEC answers itself fails it.
    pub(crate) fn call(&self, spec: &'static Spec, args: &[&[u8]], nanos: u64, reply: &Frame) {
        let failed = reply.is_error();
        if failed {
            self.errors_in(reply, false);
        }
        if let Some(c) = slot(self, spec, args) {
            c.calls.fetch_add(1, Ordering::Relaxed);
            c.nanos.fetch_add(nanos, Ordering::Relaxed);
            if failed {
                c.failed.fetch_add(1, Ordering::Relaxed);
            }
            if self.tracking.load(Ordering::Relaxed) {
                c.latency.record(nanos);
            }
        }
        if self.monitor.threshold_ms() != 0 {
            let fast = FAST.binary_search(&spec.name).is_ok();
            let event = if fast { "fast-command" } else { "command" };
            self.monitor.observe(event, nanos);
        }
    }

    /// Counts a call of `spec` refused before it ran with the error `reply`.
    pub(crate) fn rejected(&self, spec: &'static Spec, args: &[&[u8]], reply: &Frame) {
        self.errors_in(reply, false);
        if let Some(c) = slot(self, spec, args) {
            c.rejected.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `total_error_replies`.
    pub(crate) fn total_errors(&self) -> u64 {
        self.total_errors.load(Ordering::Relaxed)
    }

    /// CONFIG RESETSTAT.
    pub(crate) fn reset(&self) {
        for c in self.commands.iter().chain(self.subcommands.iter()) {
            c.reset();
        }
        self.errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.total_errors.store(0, Ordering::Relaxed);
    }

    /// INFO's `# Commandstats` section.
    pub(crate) fn write_commandstats(&self, out: &mut String) {
        out.push_str("# Commandstats\r\n");
        let mut lines: Vec<(String, String)> = self
            .named()
            .into_iter()
            .filter_map(|(name, c)| c.line().map(|line| (name, line)))
            .collect();
        lines.sort();
        for (name, line) in lines {
            let _ = write!(out, "cmdstat_{name}:{line}\r\n");
        }
        out.push_str("\r\n");
    }

    /// `latency-tracking`.
    pub(crate) fn set_tracking(&self, on: bool) {
        self.tracking.store(on, Ordering::Relaxed);
    }

    /// `latency-tracking-info-percentiles`.
    pub(crate) fn set_info_percentiles(&self, percentiles: Vec<f64>) {
        *self
            .info_percentiles
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = percentiles;
    }

    /// Every command's counters under its full name: a plain command's, and each container's
    /// subcommands' (`config|get`; a container counts nothing of its own), in table order.
    fn named(&self) -> Vec<(String, &Counters)> {
        let mut out: Vec<(String, &Counters)> = command::all()
            .zip(self.commands.iter())
            .filter(|(spec, _)| !SUBCOMMANDS.iter().any(|(name, _)| *name == spec.name))
            .map(|(spec, c)| (spec.name.to_owned(), c))
            .collect();
        let mut counters = self.subcommands.iter();
        for (container, subs) in SUBCOMMANDS {
            for sub in *subs {
                if let Some(c) = counters.next() {
                    out.push((format!("{container}|{sub}"), c));
                }
            }
        }
        out
    }

    /// Every command (and subcommand) with recorded runs, by full name (`config|get`), sorted.
    fn histograms(&self) -> Vec<(String, Counts)> {
        let mut out: Vec<(String, Counts)> = self
            .named()
            .into_iter()
            .filter_map(|(name, c)| c.latency.counts().map(|counts| (name, counts)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// LATENCY HISTOGRAM's commands: every one with runs when `names` is empty, else each
    /// named command with runs (a container standing for its subcommands, `container|sub`
    /// for one of them), in the order named; unknown names are skipped.
    pub(crate) fn latency_histograms(&self, names: &[&[u8]]) -> Vec<(String, Counts)> {
        let all = self.histograms();
        if names.is_empty() {
            return all;
        }
        let mut out = Vec::new();
        let mut all: Vec<Option<(String, Counts)>> = all.into_iter().map(Some).collect();
        for name in names {
            let name = String::from_utf8_lossy(name).to_ascii_lowercase();
            let container = format!("{name}|");
            for entry in all.iter_mut() {
                if entry
                    .as_ref()
                    .is_some_and(|(n, _)| *n == name || n.starts_with(&container))
                    && let Some(found) = entry.take()
                {
                    out.push(found);
                }
            }
        }
        out
    }

    /// INFO's `# Latencystats` section (its lines only while `latency-tracking` is on).
    pub(crate) fn write_latencystats(&self, out: &mut String) {
        out.push_str("# Latencystats\r\n");
        if self.tracking.load(Ordering::Relaxed) {
            let percentiles = self
                .info_percentiles
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            for (name, counts) in self.histograms() {
                let _ = write!(
                    out,
                    "latency_percentiles_usec_{name}:{}\r\n",
                    latency::info_line(&counts, &percentiles)
                );
            }
        }
        out.push_str("\r\n");
    }

    /// INFO's `# Errorstats` section.
    pub(crate) fn write_errorstats(&self, out: &mut String) {
        out.push_str("# Errorstats\r\n");
        let errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        for (code, n) in errors.iter() {
            let _ = write!(out, "errorstat_{code}:count={n}\r\n");
        }
        out.push_str("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_the_first_word_within_32_bytes() {
        assert_eq!(error_code("WRONGTYPE Operation against a key"), "WRONGTYPE");
        assert_eq!(error_code("ERR syntax error"), "ERR");
        assert_eq!(error_code("NOSPACEATALL"), "ERR");
        let long = format!("{} x", "A".repeat(40));
        assert_eq!(error_code(&long), "ERR");
    }

    #[test]
    fn fast_commands_are_sorted_for_binary_search() {
        assert!(FAST.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn error_codes_stop_at_the_limit() {
        let s = CommandStats::new(std::sync::Arc::new(crate::clock::ManualClock::new(0)));
        for i in 0..ERROR_CODES_MAX + 1 {
            s.error(&format!("E{i} text"));
        }
        s.error("E0 again");
        assert_eq!(s.total_errors(), ERROR_CODES_MAX as u64 + 2);
        let mut out = String::new();
        s.write_errorstats(&mut out);
        assert_eq!(out.matches("errorstat_").count(), ERROR_CODES_MAX);
        assert!(out.contains("errorstat_E0:count=2\r\n"), "{out}");
        assert!(!out.contains(&format!("errorstat_E{ERROR_CODES_MAX}:")));
    }
}
