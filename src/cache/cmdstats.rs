//! INFO's `commandstats` and `errorstats`, kept as Redis 7.0.15 keeps them: per command (and
//! per subcommand of a container such as CONFIG or XGROUP) the calls, the time spent running
//! them, the calls rejected before running (wrong arity, NOAUTH, OOM, a command not allowed
//! in the subscribed state, one refused while queueing in MULTI) and the calls that ran and
//! answered an error (`call()`, `rejectCommand`); and every error reply counted by its code,
//! the text up to the first space within its first 32 bytes, `ERR` when there is none
//! (`afterErrorReply`). A blocked command counts one call, when it answers.
//!
//! The per-command counters are atomics in a table parallel to the command table, so a call
//! costs two relaxed additions and two monotonic clock reads; the error codes sit behind a
//! mutex taken only on an error reply.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cache::resp::command::{self, Spec};
use crate::cache::resp::frame::Frame;

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
    ("xinfo", &["consumers", "groups", "help", "stream"]),
];

/// One command's counters.
#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    nanos: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    fn reset(&self) {
        for c in [&self.calls, &self.nanos, &self.rejected, &self.failed] {
            c.store(0, Ordering::Relaxed);
        }
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
}

impl Default for CommandStats {
    fn default() -> Self {
        let subs: usize = SUBCOMMANDS.iter().map(|(_, s)| s.len()).sum();
        Self {
            commands: command::all().map(|_| Counters::default()).collect(),
            subcommands: (0..subs).map(|_| Counters::default()).collect(),
            errors: Mutex::new(BTreeMap::new()),
            total_errors: AtomicU64::new(0),
        }
    }
}

/// Where a call of `spec` with `args` is counted: the command's own counters, a container's
/// subcommand's, or none (a container called with an unknown subcommand, which Redis rejects
/// before it has a command to count against).
fn slot<'a>(stats: &'a CommandStats, spec: &'static Spec, args: &[&[u8]]) -> Option<&'a Counters> {
    let mut base = 0usize;
    for (container, subs) in SUBCOMMANDS {
        if *container == spec.name {
            let sub = args.get(1)?;
            let i = subs
                .iter()
                .position(|s| s.as_bytes().eq_ignore_ascii_case(sub))?;
            return stats.subcommands.get(base + i);
        }
        base += subs.len();
    }
    stats.commands.get(command::index_of(spec))
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
        let mut lines: Vec<(String, String)> = Vec::new();
        for (spec, c) in command::all().zip(self.commands.iter()) {
            if SUBCOMMANDS.iter().any(|(name, _)| *name == spec.name) {
                continue;
            }
            if let Some(line) = c.line() {
                lines.push((spec.name.to_owned(), line));
            }
        }
        let mut counters = self.subcommands.iter();
        for (container, subs) in SUBCOMMANDS {
            for sub in *subs {
                if let Some(line) = counters.next().and_then(Counters::line) {
                    lines.push((format!("{container}|{sub}"), line));
                }
            }
        }
        lines.sort();
        for (name, line) in lines {
            let _ = write!(out, "cmdstat_{name}:{line}\r\n");
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
    fn error_codes_stop_at_the_limit() {
        let s = CommandStats::default();
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
