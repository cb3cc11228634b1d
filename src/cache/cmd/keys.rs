//! Generic key commands: existence, deletion, TTLs, renaming, iteration, databases, and DUMP
//! and RESTORE (whose payload format lives in `rdb.rs`).

use bytes::Bytes;

use super::{SYNTAX, arg, glob_match, int, int_arg, is, name, scan_options, tri};
use crate::cache::keyspace::Ctx;
use crate::cache::rdb;
use crate::cache::resp::frame::{Frame, decimal, parse_i64};
use crate::cache::shard::lfu_minutes;
use crate::cache::{DATABASES, EventKind, EvictionPolicy, Inner, SHARDS, notify};

pub(crate) fn del(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let mut n = 0;
    for key in args.iter().skip(1) {
        if ctx.delete(key) {
            ctx.touched(key, EventKind::Del);
            ctx.notify(notify::GENERIC, "del", key);
            n += 1;
        }
    }
    int(n)
}

pub(crate) fn exists(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    int(args.iter().skip(1).filter(|k| ctx.exists(k)).count())
}

pub(crate) fn touch(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let stamp = ctx.access_stamp();
    let mut n = 0;
    for key in args.iter().skip(1) {
        if let Some(mut e) = ctx.entry(key) {
            e.set_access(stamp);
            n += 1;
        }
    }
    int(n)
}

pub(crate) fn type_(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    Frame::simple(
        ctx.entry_notouch(arg(args, 1))
            .map_or("none", |e| e.type_name()),
    )
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME.
pub(crate) fn ttl(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let now = ctx.now_ms;
    let cmd = name(args);
    let Some(e) = ctx.entry_notouch(arg(args, 1)) else {
        return Frame::Integer(-2);
    };
    if e.expire_at_ms() == 0 {
        return Frame::Integer(-1);
    }
    let d = i64::try_from(e.expire_at_ms()).unwrap_or(i64::MAX);
    let left = d
        .saturating_sub(i64::try_from(now).unwrap_or(i64::MAX))
        .max(0);
    Frame::Integer(match cmd.as_str() {
        "ttl" => (left + 500) / 1000,
        "pttl" => left,
        // Rounded to the nearest second, as Redis does.
        "expiretime" => d.saturating_add(500) / 1000,
        _ => d,
    })
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT with NX/XX/GT/LT.
pub(crate) fn expire(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let cmd = name(args);
    let unit: i64 = if cmd.starts_with('p') { 1 } else { 1000 };
    let absolute = cmd.ends_with("at");
    let key = arg(args, 1);
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in args.iter().skip(3) {
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if is(opt, "gt") {
            gt = true;
        } else if is(opt, "lt") {
            lt = true;
        } else {
            // Redis formats the option as a C string: it ends at a NUL byte.
            let shown = opt.split(|&c| c == 0).next().unwrap_or_default();
            return Frame::error(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(shown)
            ));
        }
    }
    if nx && (xx || gt || lt) {
        return Frame::error("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return Frame::error("ERR GT and LT options at the same time are not compatible");
    }
    // The flags are checked before the time is read, as `expireGenericCommand` does.
    let v = tri!(int_arg(args, 2));
    if unit == 1000 && !(i64::MIN / 1000..=i64::MAX / 1000).contains(&v) {
        return Frame::error(format!("ERR invalid expire time in '{cmd}' command"));
    }
    let when = tri!(super::strings::deadline(
        ctx.now_ms, v, unit, absolute, &cmd
    ));
    let now = i64::try_from(ctx.now_ms).unwrap_or(i64::MAX);
    let Some(e) = ctx.entry(key) else {
        return Frame::Integer(0);
    };
    let current = e.expire_at_ms();
    if (nx && current != 0) || (xx && current == 0) {
        return Frame::Integer(0);
    }
    let cur = if current == 0 {
        i64::MAX
    } else {
        i64::try_from(current).unwrap_or(i64::MAX)
    };
    if (gt && (current == 0 || when <= cur)) || (lt && when >= cur) {
        return Frame::Integer(0);
    }
    if when <= now {
        ctx.delete(key);
        ctx.touched(key, EventKind::Del);
        ctx.notify(notify::GENERIC, "del", key);
        return Frame::Integer(1);
    }
    ctx.set_expire(key, u64::try_from(when).unwrap_or(u64::MAX));
    ctx.touched(key, EventKind::Expire);
    ctx.notify(notify::GENERIC, "expire", key);
    Frame::Integer(1)
}

pub(crate) fn persist(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    match ctx.entry(key) {
        Some(e) if e.expire_at_ms() != 0 => {
            ctx.set_expire(key, 0);
            ctx.touched(key, EventKind::Persist);
            ctx.notify(notify::GENERIC, "persist", key);
            Frame::Integer(1)
        }
        _ => Frame::Integer(0),
    }
}

/// RENAME and RENAMENX.
pub(crate) fn rename(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let nx = is(arg(args, 0), "renamenx");
    let (src, dst) = (arg(args, 1), arg(args, 2));
    if !ctx.exists(src) {
        return Frame::error("ERR no such key");
    }
    if src == dst {
        return if nx { Frame::Integer(0) } else { Frame::ok() };
    }
    if nx && ctx.exists(dst) {
        return Frame::Integer(0);
    }
    let Some(entry) = ctx.remove(src) else {
        return Frame::error("ERR no such key");
    };
    let db = ctx.db;
    ctx.delete(dst);
    ctx.put_in(db, dst, entry);
    ctx.touched(src, EventKind::Del);
    ctx.touched(dst, EventKind::Set);
    ctx.notify(notify::GENERIC, "rename_from", src);
    ctx.notify(notify::GENERIC, "rename_to", dst);
    if nx { Frame::Integer(1) } else { Frame::ok() }
}

/// Every live key of the selected database, sorted (KEYS answers in a stable order).
fn live_keys(ctx: &mut Ctx<'_>) -> Vec<Bytes> {
    let now = ctx.now_ms;
    let db = ctx.db;
    let mut keys = Vec::new();
    for pos in ctx.all_shards(db) {
        if let Some(shard) = ctx.shard_at(pos) {
            keys.extend(
                shard
                    .iter()
                    .filter(|(_, e)| !e.is_expired(now))
                    .map(|(k, _)| Bytes::copy_from_slice(k)),
            );
        }
    }
    keys.sort_unstable();
    keys
}

pub(crate) fn keys(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let pattern = arg(args, 1);
    let all = pattern == b"*";
    Frame::Array(
        live_keys(ctx)
            .into_iter()
            .filter(|k| all || glob_match(pattern, k, false))
            .map(Frame::Bulk)
            .collect(),
    )
}

/// HSCAN and SSCAN: the cursor is a hash of the collection's own hasher (fixed for the
/// collection's life); a call returns the `count` items with the smallest hashes at or above
/// it (and any that tie with the last), and the next cursor is one past the last hash, so a
/// deleted item moves nothing and every item present throughout is returned. Costs one pass
/// over the collection, with no sort.
pub(crate) fn page_by_hash<T>(
    items: impl Iterator<Item = (u64, T)>,
    cursor: u64,
    count: usize,
) -> (u64, Vec<T>) {
    let mut left: Vec<(u64, T)> = items.filter(|(h, _)| *h >= cursor).collect();
    if left.len() <= count {
        return (0, left.into_iter().map(|(_, t)| t).collect());
    }
    let (_, nth, _) = left.select_nth_unstable_by_key(count.saturating_sub(1), |(h, _)| *h);
    let last = nth.0;
    let mut more = false;
    let page = left
        .into_iter()
        .filter_map(|(h, t)| {
            more |= h > last;
            (h <= last).then_some(t)
        })
        .collect();
    // `more` means some hash exceeds `last`, so `last + 1` does not wrap.
    (if more { last.wrapping_add(1) } else { 0 }, page)
}

/// Home buckets one SCAN call visits at most per unit of COUNT (Redis visits up to ten empty
/// buckets per key it was asked for before it answers with what it has).
const SCAN_BUCKETS_PER_COUNT: usize = 10;

/// SCAN's cursor is `bucket_cursor * SHARDS + shard`: the shards of the database are scanned
/// one after the other, each with its own reverse-binary cursor ([`Shard::scan`]), so a call
/// costs about COUNT entries and nothing is sorted or copied beyond what it returns.
pub(crate) fn scan(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let (cursor, pattern, count, kind) = tri!(scan_options(args, 1, true));
    let now = ctx.now_ms;
    let db = ctx.db;
    let shards = SHARDS as u64;
    let mut shard = (cursor % shards) as usize;
    let mut v = cursor / shards;
    let mut buckets_left = count.saturating_mul(SCAN_BUCKETS_PER_COUNT);
    let mut visited = 0usize;
    let mut out = Vec::new();
    let positions = ctx.all_shards(db);
    let next = loop {
        let Some(s) = positions.get(shard).and_then(|&pos| ctx.shard_at(pos)) else {
            break 0;
        };
        v = s.scan(v, count, &mut visited, &mut buckets_left, |k, e| {
            if e.is_expired(now)
                || pattern.as_ref().is_some_and(|p| !glob_match(p, k, false))
                || kind
                    .as_ref()
                    .is_some_and(|t| !t.eq_ignore_ascii_case(e.type_name().as_bytes()))
            {
                return;
            }
            out.push(Frame::bulk(k));
        });
        if v == 0 {
            shard += 1;
            if shard >= SHARDS {
                break 0;
            }
        }
        if visited >= count || buckets_left == 0 {
            break v.saturating_mul(shards).saturating_add(shard as u64);
        }
    };
    let mut digits = [0u8; 20];
    Frame::Array(vec![
        Frame::bulk(decimal(next, false, &mut digits)),
        Frame::Array(out),
    ])
}

/// Picks tried before RANDOMKEY falls back to a pass over the database (picks can land on
/// expired keys not yet collected).
const RANDOMKEY_PICKS_MAX: usize = 100;

pub(crate) fn randomkey(ctx: &mut Ctx<'_>, _: &Inner, _: &[&[u8]]) -> Frame {
    let now = ctx.now_ms;
    let db = ctx.db;
    let positions = ctx.all_shards(db);
    let lens: Vec<usize> = positions
        .iter()
        .map(|&pos| ctx.shard_at(pos).map_or(0, |s| s.len()))
        .collect();
    let total: usize = lens.iter().sum();
    if total == 0 {
        return Frame::Null;
    }
    for _ in 0..RANDOMKEY_PICKS_MAX {
        // A shard in proportion to its entries, then a random slot in it.
        let mut r = ctx.random_below(total);
        let seed = ctx.random();
        let Some(i) = lens.iter().position(|&n| {
            if r < n {
                true
            } else {
                r -= n;
                false
            }
        }) else {
            break;
        };
        let picked = positions
            .get(i)
            .and_then(|&pos| ctx.shard_at(pos))
            .and_then(|s| s.random_entry(seed))
            .filter(|(_, e)| !e.is_expired(now))
            .map(|(k, _)| Frame::bulk(k));
        if let Some(key) = picked {
            return key;
        }
    }
    // Mostly expired keys: the first live one, in table order.
    for pos in positions {
        if let Some(key) = ctx
            .shard_at(pos)
            .and_then(|s| s.iter().find(|(_, e)| !e.is_expired(now)))
            .map(|(k, _)| Frame::bulk(k))
        {
            return key;
        }
    }
    Frame::Null
}

/// Number of keys in database `db` (including expired ones not yet collected, as Redis).
pub(crate) fn db_len(ctx: &mut Ctx<'_>, db: usize) -> (usize, usize) {
    let mut n = 0;
    let mut volatile = 0;
    for pos in ctx.all_shards(db) {
        if let Some(s) = ctx.shard_at(pos) {
            n += s.len();
            volatile += s.volatile_len();
        }
    }
    (n, volatile)
}

pub(crate) fn dbsize(ctx: &mut Ctx<'_>, _: &Inner, _: &[&[u8]]) -> Frame {
    let db = ctx.db;
    int(db_len(ctx, db).0)
}

/// Records the watched keys of `dbs` that hold a value (expired or not) in any of `dbs`, before
/// a flush or swap changes them: those WATCHes fail at EXEC, the others' do not (Redis's
/// `touchAllWatchedKeysInDb`).
fn touch_watched(ctx: &mut Ctx<'_>, inner: &Inner, dbs: &[usize]) {
    for (db, key) in inner.watched_in(dbs) {
        let present = dbs.iter().any(|&d| {
            ctx.shard_in(d, &key)
                .is_some_and(|s| s.peek(&key).is_some())
        });
        if present {
            ctx.watch_touched.push((db, key));
        }
    }
}

fn flush_db(ctx: &mut Ctx<'_>, inner: &Inner, db: usize) {
    touch_watched(ctx, inner, &[db]);
    for pos in ctx.all_shards(db) {
        if let Some(s) = ctx.shard_at(pos) {
            s.clear();
        }
    }
    ctx.flushed = true;
}

pub(crate) fn flushdb(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    if args.len() > 2
        || args
            .get(1)
            .is_some_and(|a| !is(a, "async") && !is(a, "sync"))
    {
        return Frame::error(SYNTAX);
    }
    let db = ctx.db;
    flush_db(ctx, inner, db);
    Frame::ok()
}

pub(crate) fn flushall(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    if args.len() > 2
        || args
            .get(1)
            .is_some_and(|a| !is(a, "async") && !is(a, "sync"))
    {
        return Frame::error(SYNTAX);
    }
    for db in 0..DATABASES {
        flush_db(ctx, inner, db);
    }
    Frame::ok()
}

/// Parses a database index argument.
pub(crate) fn db_index(a: &[u8]) -> Result<usize, Frame> {
    let n =
        crate::cache::resp::frame::parse_i64(a).ok_or_else(|| Frame::error(super::NOT_INTEGER))?;
    usize::try_from(n)
        .ok()
        .filter(|n| *n < DATABASES)
        .ok_or_else(|| Frame::error("ERR DB index is out of range"))
}

pub(crate) fn swapdb(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    // Both are read as C ints first, then checked against the number of databases (Redis's
    // `swapdbCommand` and `dbSwapDatabases`).
    let as_int =
        |a: &[u8]| crate::cache::resp::frame::parse_i64(a).filter(|n| i32::try_from(*n).is_ok());
    let Some(a) = as_int(arg(args, 1)) else {
        return Frame::error("ERR invalid first DB index");
    };
    let Some(b) = as_int(arg(args, 2)) else {
        return Frame::error("ERR invalid second DB index");
    };
    let index = |n: i64| usize::try_from(n).ok().filter(|n| *n < DATABASES);
    let (Some(a), Some(b)) = (index(a), index(b)) else {
        return Frame::error("ERR DB index is out of range");
    };
    if a == b {
        return Frame::ok();
    }
    touch_watched(ctx, inner, &[a, b]);
    let pa = ctx.all_shards(a);
    let pb = ctx.all_shards(b);
    for (x, y) in pa.into_iter().zip(pb) {
        let taken = ctx.shard_at(x).map(std::mem::take).unwrap_or_default();
        let other = ctx
            .shard_at(y)
            .map(|s| std::mem::replace(s, taken))
            .unwrap_or_default();
        if let Some(s) = ctx.shard_at(x) {
            *s = other;
        }
    }
    ctx.flushed = true;
    Frame::ok()
}

pub(crate) fn move_(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let to = tri!(db_index(arg(args, 2)));
    if to == ctx.db {
        return Frame::error("ERR source and destination objects are the same");
    }
    if !ctx.exists(key) || ctx.entry_db(to, key).is_some() {
        return Frame::Integer(0);
    }
    let Some(entry) = ctx.remove(key) else {
        return Frame::Integer(0);
    };
    ctx.put_in(to, key, entry);
    ctx.touched(key, EventKind::Del);
    ctx.touched_in(to, key, EventKind::Set);
    ctx.notify(notify::GENERIC, "move_from", key);
    ctx.notify_in(to, notify::GENERIC, "move_to", key);
    Frame::Integer(1)
}

pub(crate) fn copy(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let (src, dst) = (arg(args, 1), arg(args, 2));
    let mut to = ctx.db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if is(arg(args, i), "replace") {
            replace = true;
        } else if is(arg(args, i), "db") && i + 1 < args.len() {
            to = tri!(db_index(arg(args, i + 1)));
            i += 1;
        } else {
            return Frame::error(SYNTAX);
        }
        i += 1;
    }
    if src == dst && to == ctx.db {
        return Frame::error("ERR source and destination objects are the same");
    }
    // The source is read as Redis's `lookupKeyRead` reads it; the destination is not counted.
    let Some(entry) = ctx.reading(|ctx| ctx.entry(src).map(|e| e.to_entry())) else {
        return Frame::Integer(0);
    };
    if ctx.entry_db(to, dst).is_some() {
        if !replace {
            return Frame::Integer(0);
        }
        ctx.delete_in(to, dst);
    }
    ctx.put_in(to, dst, entry);
    ctx.touched_in(to, dst, EventKind::Set);
    ctx.notify_in(to, notify::GENERIC, "copy_to", dst);
    Frame::Integer(1)
}

/// DUMP: the key's value in Redis's RDB payload format, nil when missing (a read lookup, as
/// Redis's `lookupKeyRead`).
pub(crate) fn dump(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    match ctx.entry(arg(args, 1)) {
        Some(e) => Frame::Bulk(Bytes::from(rdb::encode_dump(e.into_stored()))),
        None => Frame::Null,
    }
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency], as
/// Redis 7.0.15's `restoreCommand`: options first, then the existing key, the TTL, the
/// payload's footer and its object, each with Redis's error; an ABSTTL already past (or a
/// relative one that lands there) stores nothing and, with REPLACE, deletes the old key.
pub(crate) fn restore(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let (mut replace, mut absttl) = (false, false);
    let (mut idle_s, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut i = 4;
    while i < args.len() {
        let opt = arg(args, i);
        let more = i + 1 < args.len();
        if is(opt, "replace") {
            replace = true;
        } else if is(opt, "absttl") {
            absttl = true;
        } else if is(opt, "idletime") && more && freq.is_none() {
            let v = tri!(int_arg(args, i + 1));
            if v < 0 {
                return Frame::error("ERR Invalid IDLETIME value, must be >= 0");
            }
            idle_s = Some(v);
            i += 1;
        } else if is(opt, "freq") && more && idle_s.is_none() {
            let v = tri!(int_arg(args, i + 1));
            if !(0..=255).contains(&v) {
                return Frame::error("ERR Invalid FREQ value, must be >= 0 and <= 255");
            }
            freq = Some(v);
            i += 1;
        } else {
            return Frame::error(SYNTAX);
        }
        i += 1;
    }
    if !replace && ctx.exists(key) {
        return Frame::error("BUSYKEY Target key name already exists.");
    }
    let ttl = tri!(int_arg(args, 2));
    if ttl < 0 {
        return Frame::error("ERR Invalid TTL value, must be >= 0");
    }
    let payload = arg(args, 3);
    if rdb::check_footer(payload).is_err() {
        return Frame::error("ERR DUMP payload version or checksum are wrong");
    }
    let Ok(value) = rdb::decode_dump(
        payload,
        inner.zset_listpack(),
        inner.compact(),
        rdb::DumpLimits::default(),
    ) else {
        return Frame::error("ERR Bad data format");
    };
    let deleted = replace && ctx.delete(key);
    let now = i64::try_from(ctx.now_ms).unwrap_or(i64::MAX);
    let deadline = if ttl != 0 && !absttl {
        ttl.saturating_add(now)
    } else {
        ttl
    };
    if deadline != 0 && deadline <= now {
        if deleted {
            ctx.touched(key, EventKind::Del);
            ctx.notify(notify::GENERIC, "del", key);
        }
        return Frame::ok();
    }
    ctx.put(key, value, u64::try_from(deadline).unwrap_or(0));
    let lfu_policy = inner.policy().is_lfu();
    let (stamp, minutes) = (ctx.access_stamp(), lfu_minutes(ctx.now_ms));
    if let Some(mut e) = ctx.entry_nonotify(key) {
        // Redis's `objectSetLRUOrLFU`: FREQ under an LFU policy, IDLETIME under any other (an
        // idle time past the stamp's 49 days is held at its oldest).
        match (lfu_policy, freq, idle_s) {
            (true, Some(f), _) => e.set_lfu(u8::try_from(f).unwrap_or(u8::MAX), minutes),
            (false, _, Some(s)) => {
                let idle_ms = u64::try_from(s)
                    .unwrap_or(0)
                    .saturating_mul(1000)
                    .min(u64::from(u32::MAX));
                e.set_access(stamp.wrapping_sub(u32::try_from(idle_ms).unwrap_or(u32::MAX)));
            }
            _ => {}
        }
    }
    ctx.touched(key, EventKind::Set);
    ctx.notify(notify::GENERIC, "restore", key);
    Frame::ok()
}

pub(crate) fn object(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let sub = arg(args, 1);
    if is(sub, "help") {
        return super::help_reply(
            "OBJECT",
            &[
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
            ],
        );
    }
    // The dispatcher checked the arity of the known subcommands; an unknown one is named
    // before any key is looked up.
    if !["encoding", "refcount", "idletime", "freq"]
        .iter()
        .any(|name| is(sub, name))
    {
        return Frame::error(format!(
            "ERR unknown subcommand '{}'. Try OBJECT HELP.",
            String::from_utf8_lossy(sub)
        ));
    }
    let now_s = ctx.access_stamp();
    let (now_ms, lfu) = (ctx.now_ms, ctx.lfu);
    let lfu_policy = inner.policy().is_lfu();
    // Redis's `MAXMEMORY_FLAG_NO_SHARED_INTEGERS`: values are not shared when maxmemory is set
    // under an LRU or LFU policy (their objects carry the access data). This reads the
    // settings now, where Redis read them when it stored the value.
    let shares_integers = inner.maxmemory.load(std::sync::atomic::Ordering::Relaxed) == 0
        || !matches!(
            inner.policy(),
            EvictionPolicy::AllkeysLru
                | EvictionPolicy::VolatileLru
                | EvictionPolicy::AllkeysLfu
                | EvictionPolicy::VolatileLfu
        );
    let Some(e) = ctx.entry_nonotify(arg(args, 2)) else {
        return Frame::Null;
    };
    if is(sub, "encoding") {
        Frame::bulk(e.encoding().as_bytes())
    } else if is(sub, "refcount") {
        // An `int` string from 0 to 9999 is one of Redis's shared integers
        // (`OBJ_SHARED_INTEGERS`), whose count is `OBJ_SHARED_REFCOUNT` (`INT_MAX`).
        let shared = shares_integers
            && e.encoding() == "int"
            && e.str()
                .and_then(parse_i64)
                .is_some_and(|n| (0..OBJ_SHARED_INTEGERS).contains(&n));
        Frame::Integer(if shared { OBJ_SHARED_REFCOUNT } else { 1 })
    } else if is(sub, "idletime") {
        if lfu_policy {
            return Frame::error(
                "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            );
        }
        Frame::Integer(i64::from(now_s.wrapping_sub(e.access()) / 1000))
    } else {
        if !lfu_policy {
            return Frame::error(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            );
        }
        Frame::Integer(i64::from(e.lfu_counter(now_ms, lfu)))
    }
}

/// Redis's `OBJ_SHARED_INTEGERS`: the integers below it are shared objects.
const OBJ_SHARED_INTEGERS: i64 = 10_000;
/// Redis's `OBJ_SHARED_REFCOUNT`, the count OBJECT REFCOUNT gives a shared object.
const OBJ_SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// MEMORY USAGE, PURGE, MALLOC-STATS and HELP, as Redis 7.0's `memoryCommand` (DOCTOR and
/// STATS describe an allocator this server does not have).
pub(crate) fn memory(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let sub = arg(args, 1);
    match args.len() {
        2 if is(sub, "help") => {
            return super::help_reply(
                "MEMORY",
                &[
                    "MALLOC-STATS",
                    "    Return internal statistics report from the memory allocator.",
                    "PURGE",
                    "    Attempt to purge dirty pages for reclamation by the allocator.",
                    "USAGE <key> [SAMPLES <count>]",
                    "    Return memory in bytes used by <key> and its value. Nested values are",
                    "    sampled up to <count> times (default: 5, 0 means sample all).",
                ],
            );
        }
        // Freed memory goes back to Rust's allocator at once: nothing is left to purge.
        2 if is(sub, "purge") => return Frame::ok(),
        // Redis's answer when it is not built with jemalloc.
        2 if is(sub, "malloc-stats") => {
            return Frame::bulk(b"Stats not supported for the current allocator");
        }
        n if n >= 3 && is(sub, "usage") => {}
        _ => {
            return Frame::error(format!(
                "ERR unknown subcommand '{}'. Try MEMORY HELP.",
                String::from_utf8_lossy(sub)
            ));
        }
    }
    // SAMPLES is checked as Redis checks it, before the key is looked up; every element is
    // counted whatever it says.
    let mut j = 3;
    while j < args.len() {
        if !is(arg(args, j), "samples") || j + 1 >= args.len() {
            return Frame::error(SYNTAX);
        }
        if tri!(int_arg(args, j + 1)) < 0 {
            return Frame::error(SYNTAX);
        }
        j += 2;
    }
    match ctx.peek(arg(args, 2)) {
        Some(e) => Frame::Integer(i64::from(e.mem())),
        None => Frame::Null,
    }
}
