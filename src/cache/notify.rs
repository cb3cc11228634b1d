//! Keyspace notifications over pub/sub (`notify-keyspace-events`), as Redis 7.0's `notify.c`:
//! a write publishes `__keyspace@<db>__:<key>` with the event name as message and
//! `__keyevent@<db>__:<event>` with the key as message, for the event classes enabled.
//!
//! Cost when disabled (the default): a command's context copies one atomic (the enabled
//! classes) when it is created, and each event site tests one bit of that copy.
//!
//! Invariant: the stored mask is 0 unless K or E is set (events with nowhere to go are not
//! recorded).

use crate::cache::pubsub::PubSub;

/// `K`: `__keyspace@<db>__:<key>` channels.
pub(crate) const KEYSPACE: u32 = 1 << 0;
/// `E`: `__keyevent@<db>__:<event>` channels.
pub(crate) const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME, …).
pub(crate) const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub(crate) const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub(crate) const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub(crate) const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub(crate) const HASH: u32 = 1 << 6;
/// `z`: sorted set commands (none exist here; accepted for compatibility).
pub(crate) const ZSET: u32 = 1 << 7;
/// `x`: key expired.
pub(crate) const EXPIRED: u32 = 1 << 8;
/// `e`: key evicted.
pub(crate) const EVICTED: u32 = 1 << 9;
/// `t`: stream commands (`xadd`, `xtrim`, `xdel`, `xsetid`, `xgroup-*`).
pub(crate) const STREAM: u32 = 1 << 10;
/// `m`: key miss (`keymiss`, a read lookup that finds nothing: a read command's, or one of a
/// key a write command reads, as Redis's `lookupKeyRead`).
pub(crate) const KEY_MISS: u32 = 1 << 11;
/// `d`: module events (none exist here).
pub(crate) const MODULE: u32 = 1 << 12;
/// `n`: key created.
pub(crate) const NEW: u32 = 1 << 13;
/// `A`: every class but `m` and `n`, as Redis's `NOTIFY_ALL`.
pub(crate) const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Redis's error text for an unknown class letter.
pub(crate) const INVALID: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmd'.";

/// Parses Redis's class letters (`keyspaceEventsStringToFlags`); `None` on an unknown letter.
pub(crate) fn parse(text: &str) -> Option<u32> {
    text.bytes().try_fold(0u32, |flags, c| {
        let bit = match c {
            b'A' => ALL,
            b'g' => GENERIC,
            b'$' => STRING,
            b'l' => LIST,
            b's' => SET,
            b'h' => HASH,
            b'z' => ZSET,
            b'x' => EXPIRED,
            b'e' => EVICTED,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b't' => STREAM,
            b'm' => KEY_MISS,
            b'd' => MODULE,
            b'n' => NEW,
            _ => return None,
        };
        Some(flags | bit)
    })
}

/// The canonical letters for `flags`, as CONFIG GET reports them
/// (`keyspaceEventsFlagsToString`).
pub(crate) fn to_letters(flags: u32) -> String {
    let mut out = String::new();
    if flags & ALL == ALL {
        out.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                out.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            out.push(c);
        }
    }
    out
}

/// The mask the hot path tests: `flags`, or 0 when neither K nor E gives events a channel.
pub(crate) fn effective(flags: u32) -> u32 {
    if flags & (KEYSPACE | KEYEVENT) == 0 {
        0
    } else {
        flags
    }
}

/// One notification a command produced, published after its locks are released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    /// Database.
    pub(crate) db: usize,
    /// Redis's event name (`set`, `lpush`, `expired`, …).
    pub(crate) event: &'static str,
    /// The key.
    pub(crate) key: bytes::Bytes,
}

/// Publishes `note` on the channels `flags` enable, at wall-clock `now_ms`.
pub(crate) fn publish(pubsub: &PubSub, flags: u32, note: &Note, now_ms: u64) {
    if flags & KEYSPACE != 0 {
        let mut channel = format!("__keyspace@{}__:", note.db).into_bytes();
        channel.extend_from_slice(&note.key);
        pubsub.publish(&channel, note.event.as_bytes(), now_ms, false);
    }
    if flags & KEYEVENT != 0 {
        let channel = format!("__keyevent@{}__:{}", note.db, note.event);
        pubsub.publish(channel.as_bytes(), &note.key, now_ms, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_parse_and_print_in_redis_order() {
        assert_eq!(parse(""), Some(0));
        assert_eq!(parse("KEA").map(to_letters).as_deref(), Some("AKE"));
        assert_eq!(parse("Eg$lshzxetd").map(to_letters).as_deref(), Some("AE"));
        assert_eq!(parse("AnmK").map(to_letters).as_deref(), Some("AKm"));
        assert_eq!(parse("nxgE").map(to_letters).as_deref(), Some("gxnE"));
        assert_eq!(parse("Kw"), None);
        assert_eq!(parse("k"), None);
        assert_eq!(effective(ALL), 0, "no K or E: nothing is recorded");
        assert_eq!(effective(ALL | KEYEVENT), ALL | KEYEVENT);
    }
}
