//! MONITOR: every command the server runs, as one line per command, streamed to the clients
//! that asked for it.
//!
//! A line is Redis's `replicationFeedMonitors` text: `+<seconds>.<microseconds> [<db> <peer>]
//! "arg" "arg"…\r\n`, the peer being the client's `ip:port` or `lua` for a command a script
//! called. Arguments are quoted as Redis's `sdscatrepr` quotes them, and the secrets AUTH and
//! HELLO carry are shown as `"(redacted)"`. As in Redis, a command is fed after it ran (so the
//! commands of a transaction come before its EXEC), except the script commands, fed before
//! the commands they call; commands refused before running (unknown, wrong arity, NOAUTH, OOM,
//! BUSY) and Redis's administrative commands (its `admin` flag: CONFIG, CLIENT KILL, SLOWLOG
//! GET, MONITOR itself…) are not fed.
//!
//! A monitor is fed through its connection's [`Outbox`] under the `client-output-buffer-limit`
//! of Redis's replica class (monitors are replicas to Redis): one that stops reading is
//! disconnected, never fed a stream with a gap. With no monitor the feed costs one atomic load
//! per command.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use hashbrown::HashMap;

use crate::cache::pubsub::{Message, ObufLimit, Outbox};

/// Who ran a fed command.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin<'a> {
    /// A client, by its `ip:port`.
    Client(&'a str),
    /// A script, through `redis.call` or `redis.pcall`.
    Lua,
}

/// The registered monitors.
#[derive(Debug, Default)]
pub(crate) struct Monitors {
    /// Connection id → its outbox.
    clients: Mutex<HashMap<u64, Arc<Outbox>>>,
    /// `clients.len()`, read without the lock on every command.
    count: AtomicUsize,
}

impl Monitors {
    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Outbox>>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether any client monitors: the only cost of the feed when none does.
    pub(crate) fn is_active(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// Registers `client`; returns false when it already monitors (Redis ignores a second
    /// MONITOR).
    pub(crate) fn add(&self, client: u64, outbox: &Arc<Outbox>) -> bool {
        let mut clients = self.clients();
        let added = clients.insert(client, outbox.clone()).is_none();
        self.count.store(clients.len(), Ordering::Relaxed);
        added
    }

    /// Unregisters `client` (RESET, or its connection closed); returns whether it monitored.
    pub(crate) fn remove(&self, client: u64) -> bool {
        let mut clients = self.clients();
        let removed = clients.remove(&client).is_some();
        self.count.store(clients.len(), Ordering::Relaxed);
        removed
    }

    /// Feeds one command, run at wall-clock `now_ms` in database `db` by `origin`, to every
    /// monitor, unless it is one Redis does not show ([`is_hidden`]).
    pub(crate) fn feed(
        &self,
        now_ms: u64,
        db: usize,
        origin: Origin<'_>,
        args: &[&[u8]],
        limit: ObufLimit,
    ) {
        if is_hidden(args) {
            return;
        }
        let line = line(now_ms, db, origin, args);
        for outbox in self.clients().values() {
            outbox.deliver(Message::Monitor(line.clone()), now_ms, limit);
        }
    }
}

/// Whether Redis keeps `args` from monitors: commands (or subcommands) with its `admin` flag in
/// Redis 7.0.15's command table, which is what puts them in the `admin` ACL category. (The
/// script commands' `skip_monitor` flag only means they are fed before they run rather than
/// after, which their callers see to.)
pub(crate) fn is_hidden(args: &[&[u8]]) -> bool {
    args.is_empty() || crate::cache::resp::categories::of_call(args).contains(&"admin")
}

/// Which arguments of `args` a monitor sees as `"(redacted)"`: AUTH's, and HELLO's after its
/// `AUTH` option (Redis's `redactClientCommandArgument`).
fn redacted(args: &[&[u8]]) -> impl Fn(usize) -> bool {
    let name = args.first().copied().unwrap_or_default();
    let auth_from = if name.eq_ignore_ascii_case(b"auth") {
        Some((1, usize::MAX))
    } else if name.eq_ignore_ascii_case(b"hello") {
        args.iter()
            .position(|a| a.eq_ignore_ascii_case(b"auth"))
            .map(|at| (at + 1, at + 2))
    } else {
        None
    };
    move |i| auth_from.is_some_and(|(from, to)| i >= from && i <= to)
}

/// The line a monitor receives for `args` (see the module documentation).
pub(crate) fn line(now_ms: u64, db: usize, origin: Origin<'_>, args: &[&[u8]]) -> Bytes {
    let mut out = Vec::with_capacity(48 + args.iter().map(|a| a.len() + 3).sum::<usize>());
    // The injected clock reads milliseconds; the microseconds Redis prints end in 000.
    let _ = write!(out, "+{}.{:03}000 [{db} ", now_ms / 1000, now_ms % 1000);
    match origin {
        Origin::Client(peer) => out.extend_from_slice(peer.as_bytes()),
        Origin::Lua => out.extend_from_slice(b"lua"),
    }
    out.extend_from_slice(b"] ");
    let hide = redacted(args);
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        if hide(i) {
            out.extend_from_slice(b"\"(redacted)\"");
        } else {
            quote(&mut out, arg);
        }
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// Redis's `sdscatrepr`: `bytes` in double quotes, with `\\`, `\"`, `\n`, `\r`, `\t`, `\a`,
/// `\b` escaped and every other unprintable byte as `\xHH`.
fn quote(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            other => {
                let _ = write!(out, "\\x{other:02x}");
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::{Origin, is_hidden, line};

    fn text(args: &[&[u8]], origin: Origin<'_>) -> String {
        String::from_utf8_lossy(&line(1_700_000_000_123, 3, origin, args)).into_owned()
    }

    #[test]
    fn a_line_is_redis_text_with_quoted_arguments() {
        assert_eq!(
            text(
                &[b"set", b"foo", b"a \"b\"\\\n\x01\xff"],
                Origin::Client("127.0.0.1:5000")
            ),
            "+1700000000.123000 [3 127.0.0.1:5000] \"set\" \"foo\" \"a \\\"b\\\"\\\\\\n\\x01\\xff\"\r\n"
        );
        assert_eq!(
            text(&[b"get", b"k"], Origin::Lua),
            "+1700000000.123000 [3 lua] \"get\" \"k\"\r\n"
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let peer = Origin::Client("1.2.3.4:5");
        assert!(text(&[b"AUTH", b"pw"], peer).ends_with("\"AUTH\" \"(redacted)\"\r\n"));
        assert!(
            text(&[b"auth", b"user", b"pw"], peer)
                .ends_with("\"auth\" \"(redacted)\" \"(redacted)\"\r\n")
        );
        assert!(
            text(
                &[b"hello", b"3", b"AUTH", b"u", b"p", b"SETNAME", b"n"],
                peer
            )
            .ends_with(
                "\"hello\" \"3\" \"AUTH\" \"(redacted)\" \"(redacted)\" \"SETNAME\" \"n\"\r\n"
            )
        );
        assert!(text(&[b"hello", b"3"], peer).ends_with("\"hello\" \"3\"\r\n"));
    }

    #[test]
    fn administrative_commands_are_hidden() {
        for hidden in [
            &[&b"CONFIG"[..], b"SET", b"x", b"y"][..],
            &[b"client", b"kill", b"id", b"1"],
            &[b"monitor"],
            &[b"slowlog", b"get"],
        ] {
            assert!(is_hidden(hidden), "{hidden:?}");
        }
        for shown in [
            &[&b"get"[..], b"k"][..],
            &[b"client", b"setname", b"n"],
            &[b"config", b"help"],
            &[b"multi"],
            &[b"exec"],
            &[b"auth", b"pw"],
            &[b"eval", b"return 1", b"0"],
        ] {
            assert!(!is_hidden(shown), "{shown:?}");
        }
    }
}
