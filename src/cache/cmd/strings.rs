//! String commands: GET/SET and friends, ranges, bits and integer/float arithmetic.

use super::{
    NAN_OR_INFINITY, NOT_INTEGER, SYNTAX, WRONGTYPE, arg, int, int_arg, is, long_double, name, tri,
};
use crate::cache::keyspace::Ctx;
use crate::cache::longdouble::{LongDouble, Parsed};
use crate::cache::resp::frame::{Frame, decimal, parse_i64};
use crate::cache::value::Value;
use crate::cache::{EventKind, Inner, VALUE_BYTES_MAX, notify};

/// The string under `key`, writable (an embedded string moves to the shard's slab), `None` if
/// absent, or the WRONGTYPE reply.
pub(crate) fn get_str<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> Result<Option<&'c mut Vec<u8>>, Frame> {
    match ctx.entry(key) {
        None => Ok(None),
        Some(e) if e.type_name() != "string" => Err(Frame::error(WRONGTYPE)),
        Some(e) => match e.into_value_mut() {
            Some(Value::Str(s)) => Ok(Some(s)),
            _ => Err(Frame::error(WRONGTYPE)),
        },
    }
}

/// Stores `bytes` under `key` (no TTL) as a string built in place, which Redis creates `raw`
/// whatever its size (SETRANGE's and BITOP's new strings): it goes to the shard's slab as
/// [`get_str`] moves a string there.
pub(crate) fn put_raw(ctx: &mut Ctx<'_>, key: &[u8], bytes: &[u8]) {
    ctx.put_str(key, bytes, 0);
    if let Some(e) = ctx.entry(key) {
        let _ = e.into_value_mut();
    }
}

/// The bytes of the string under `key`, `None` if absent, or the WRONGTYPE reply.
pub(crate) fn get_bytes<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c [u8]>, Frame> {
    match ctx.entry(key) {
        None => Ok(None),
        Some(e) => e
            .into_str()
            .map(Some)
            .ok_or_else(|| Frame::error(WRONGTYPE)),
    }
}

/// The string under `key` as a bulk reply, looked up as GET looks it up (counted, `keymiss`),
/// for the write commands that read it first (GETDEL, GETEX, GETSET, SET … GET).
fn read_bytes(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Frame>, Frame> {
    ctx.reading(|ctx| get_bytes(ctx, key).map(|v| v.map(Frame::bulk)))
}

/// Converts a relative or absolute expire argument into a wall-clock deadline in ms.
/// `unit_ms` is 1000 for seconds and 1 for milliseconds.
pub(crate) fn deadline(
    now_ms: u64,
    value: i64,
    unit_ms: i64,
    absolute: bool,
    cmd: &str,
) -> Result<i64, Frame> {
    let invalid = || Frame::error(format!("ERR invalid expire time in '{cmd}' command"));
    let ms = value.checked_mul(unit_ms).ok_or_else(invalid)?;
    if absolute {
        Ok(ms)
    } else {
        ms.checked_add(i64::try_from(now_ms).unwrap_or(i64::MAX))
            .ok_or_else(invalid)
    }
}

pub(crate) fn check_len(len: usize) -> Result<(), Frame> {
    if len > VALUE_BYTES_MAX {
        return Err(Frame::error(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        ));
    }
    Ok(())
}

pub(crate) fn get(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    match tri!(get_bytes(ctx, arg(args, 1))) {
        Some(s) => Frame::bulk(s),
        None => Frame::Null,
    }
}

/// Stores a plain string, replacing whatever was there.
pub(crate) fn store(ctx: &mut Ctx<'_>, key: &[u8], value: &[u8], deadline_ms: u64) {
    ctx.put_str(key, value, deadline_ms);
    ctx.touched(key, EventKind::Set);
    ctx.notify(notify::STRING, "set", key);
}

/// The unit of an `EX`/`PX`/`EXAT`/`PXAT` option of SET and GETEX: (milliseconds per unit,
/// whether the value is an absolute time), or `None` for any other word.
fn expire_option(opt: &[u8]) -> Option<(i64, bool)> {
    if is(opt, "ex") {
        Some((1000, false))
    } else if is(opt, "px") {
        Some((1, false))
    } else if is(opt, "exat") {
        Some((1000, true))
    } else if is(opt, "pxat") {
        Some((1, true))
    } else {
        None
    }
}

/// The deadline of an `EX|PX|EXAT|PXAT <time>` option of `cmd`, read once every other option
/// has parsed (Redis checks the syntax first): `found` is (unit in ms, absolute, position of
/// the time argument), `None` without the option.
fn expire_deadline(
    now_ms: u64,
    args: &[&[u8]],
    found: Option<(i64, bool, usize)>,
    cmd: &str,
) -> Result<Option<i64>, Frame> {
    let Some((unit_ms, absolute, at)) = found else {
        return Ok(None);
    };
    let v = int_arg(args, at)?;
    if v <= 0 {
        return Err(Frame::error(format!(
            "ERR invalid expire time in '{cmd}' command"
        )));
    }
    deadline(now_ms, v, unit_ms, absolute, cmd).map(Some)
}

pub(crate) fn set(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let value = arg(args, 2);
    let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
    // (unit in ms, absolute, position of the time argument): the time is read only once every
    // option has parsed, as Redis's `setCommand` checks the syntax first.
    let mut expire_arg: Option<(i64, bool, usize)> = None;
    let mut i = 3;
    while i < args.len() {
        let opt = arg(args, i);
        if let Some((unit_ms, absolute)) = expire_option(opt) {
            if expire_arg.is_some() || keepttl || i + 1 >= args.len() {
                return Frame::error(SYNTAX);
            }
            expire_arg = Some((unit_ms, absolute, i + 1));
            i += 2;
            continue;
        }
        if is(opt, "nx") && !xx {
            nx = true;
        } else if is(opt, "xx") && !nx {
            xx = true;
        } else if is(opt, "get") {
            get = true;
        } else if is(opt, "keepttl") && expire_arg.is_none() {
            keepttl = true;
        } else {
            return Frame::error(SYNTAX);
        }
        i += 1;
    }
    let expire = tri!(expire_deadline(ctx.now_ms, args, expire_arg, "set"));
    // With GET, Redis reads the key as GET does first (`getGenericCommand`).
    if get {
        tri!(read_bytes(ctx, key));
    }
    let (old, old_ttl) = match ctx.entry(key) {
        None => (None, 0),
        Some(e) => {
            let ttl = e.expire_at_ms();
            match e.into_str() {
                Some(s) if get => (Some(Frame::bulk(s)), ttl),
                Some(_) => (Some(Frame::Null), ttl),
                None if get => return Frame::error(WRONGTYPE),
                None => (Some(Frame::Null), ttl),
            }
        }
    };
    let exists = old.is_some();
    let reply_skip = if get {
        old.clone().unwrap_or(Frame::Null)
    } else {
        Frame::Null
    };
    if (nx && exists) || (xx && !exists) {
        return reply_skip;
    }
    let deadline_ms = match expire {
        Some(d) if d <= i64::try_from(ctx.now_ms).unwrap_or(i64::MAX) => {
            // An absolute time in the past: the key is set and at once expired, i.e. deleted.
            // Redis 7.0 stores it with its past deadline and removes it at the next lookup or
            // expiry cycle, so it publishes `set`, `expire`, then `expired`.
            ctx.notify_new_in(ctx.db, key);
            if ctx.delete(key) {
                ctx.touched(key, EventKind::Del);
            }
            ctx.notify(notify::STRING, "set", key);
            ctx.notify(notify::GENERIC, "expire", key);
            ctx.notify(notify::EXPIRED, "expired", key);
            return if get {
                old.unwrap_or(Frame::Null)
            } else {
                Frame::ok()
            };
        }
        Some(d) => u64::try_from(d).unwrap_or(0),
        None if keepttl => old_ttl,
        None => 0,
    };
    store(ctx, key, value, deadline_ms);
    if expire.is_some() {
        ctx.notify(notify::GENERIC, "expire", key);
    }
    if get {
        old.unwrap_or(Frame::Null)
    } else {
        Frame::ok()
    }
}

pub(crate) fn setnx(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    if ctx.exists(arg(args, 1)) {
        return Frame::Integer(0);
    }
    store(ctx, arg(args, 1), arg(args, 2), 0);
    Frame::Integer(1)
}

pub(crate) fn setex(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let unit = if is(arg(args, 0), "psetex") { 1 } else { 1000 };
    let v = tri!(int_arg(args, 2));
    let cmd = name(args);
    if v <= 0 {
        return Frame::error(format!("ERR invalid expire time in '{cmd}' command"));
    }
    let d = tri!(deadline(ctx.now_ms, v, unit, false, &cmd));
    store(
        ctx,
        arg(args, 1),
        arg(args, 3),
        u64::try_from(d).unwrap_or(0),
    );
    ctx.notify(notify::GENERIC, "expire", arg(args, 1));
    Frame::ok()
}

/// As Redis's `getexCommand`: the options' syntax is checked first, then the key is looked up
/// (nil when missing, WRONGTYPE), and only then is the expire time read.
pub(crate) fn getex(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    // (unit in ms, absolute, position of the time argument)
    let mut expire: Option<(i64, bool, usize)> = None;
    let mut persist = false;
    let mut i = 2;
    while i < args.len() {
        let opt = arg(args, i);
        if let Some((unit_ms, absolute)) = expire_option(opt) {
            if expire.is_some() || persist || i + 1 >= args.len() {
                return Frame::error(SYNTAX);
            }
            expire = Some((unit_ms, absolute, i + 1));
            i += 2;
        } else if is(opt, "persist") && expire.is_none() {
            persist = true;
            i += 1;
        } else {
            return Frame::error(SYNTAX);
        }
    }
    let Some(value) = tri!(read_bytes(ctx, key)) else {
        return Frame::Null;
    };
    let new_deadline = tri!(expire_deadline(ctx.now_ms, args, expire, "getex"));
    if let Some(d) = new_deadline {
        if d <= i64::try_from(ctx.now_ms).unwrap_or(i64::MAX) {
            ctx.delete(key);
            ctx.touched(key, EventKind::Del);
            ctx.notify(notify::GENERIC, "del", key);
        } else {
            ctx.set_expire(key, u64::try_from(d).unwrap_or(0));
            ctx.touched(key, EventKind::Expire);
            ctx.notify(notify::GENERIC, "expire", key);
        }
    } else if persist && ctx.entry(key).is_some_and(|e| e.expire_at_ms() != 0) {
        ctx.set_expire(key, 0);
        ctx.touched(key, EventKind::Persist);
        ctx.notify(notify::GENERIC, "persist", key);
    }
    value
}

pub(crate) fn getdel(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let Some(value) = tri!(read_bytes(ctx, key)) else {
        return Frame::Null;
    };
    ctx.delete(key);
    ctx.touched(key, EventKind::Del);
    ctx.notify(notify::GENERIC, "del", key);
    value
}

pub(crate) fn getset(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let old = tri!(read_bytes(ctx, key)).unwrap_or(Frame::Null);
    store(ctx, key, arg(args, 2), 0);
    old
}

pub(crate) fn mget(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let mut out = Vec::with_capacity(args.len().saturating_sub(1));
    for key in args.iter().skip(1) {
        out.push(match ctx.entry(key) {
            Some(e) => e.into_str().map_or(Frame::Null, Frame::bulk),
            None => Frame::Null,
        });
    }
    Frame::Array(out)
}

pub(crate) fn mset(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    if args.len().is_multiple_of(2) {
        return Frame::error(format!(
            "ERR wrong number of arguments for '{}' command",
            name(args)
        ));
    }
    let nx = is(arg(args, 0), "msetnx");
    if nx && args.iter().skip(1).step_by(2).any(|k| ctx.exists(k)) {
        return Frame::Integer(0);
    }
    for pair in args.get(1..).unwrap_or_default().chunks(2) {
        if let [k, v] = pair {
            store(ctx, k, v, 0);
        }
    }
    if nx { Frame::Integer(1) } else { Frame::ok() }
}

pub(crate) fn append(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let extra = arg(args, 2);
    let len = match tri!(get_str(ctx, key)) {
        Some(s) => {
            tri!(check_len(s.len().saturating_add(extra.len())));
            s.extend_from_slice(extra);
            s.len()
        }
        None => {
            ctx.put(key, Value::Str(extra.to_vec()), 0);
            extra.len()
        }
    };
    ctx.settle(key);
    ctx.touched(key, EventKind::Set);
    ctx.notify(notify::STRING, "append", key);
    int(len)
}

pub(crate) fn strlen(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    int(tri!(get_bytes(ctx, arg(args, 1))).map_or(0, |s| s.len()))
}

pub(crate) fn getrange(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let start = tri!(int_arg(args, 2));
    let end = tri!(int_arg(args, 3));
    let Some(s) = tri!(get_bytes(ctx, arg(args, 1))) else {
        return Frame::bulk(b"");
    };
    if start < 0 && end < 0 && start > end {
        return Frame::bulk(b"");
    }
    // Unlike LRANGE, Redis clamps a negative end that reaches before the start to 0, so
    // `GETRANGE hello 0 -10` is "h".
    let end = if end < 0 {
        i64::try_from(s.len())
            .unwrap_or(i64::MAX)
            .saturating_add(end)
            .max(0)
    } else {
        end
    };
    match super::range(start, end, s.len()) {
        Some((a, b)) => Frame::bulk(s.get(a..=b).unwrap_or_default()),
        None => Frame::bulk(b""),
    }
}

pub(crate) fn setrange(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let offset = tri!(int_arg(args, 2));
    let value = arg(args, 3);
    if offset < 0 {
        return Frame::error("ERR offset is out of range");
    }
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    // Setting nothing reads the length without changing the string in place (so it keeps its
    // encoding, as Redis answers before `dbUnshareStringValue`).
    if value.is_empty()
        && let Some(s) = tri!(get_bytes(ctx, key))
    {
        return int(s.len());
    }
    match tri!(get_str(ctx, key)) {
        Some(s) => {
            let end = offset.saturating_add(value.len());
            tri!(check_len(end));
            if s.len() < end {
                s.resize(end, 0);
            }
            if let Some(dst) = s.get_mut(offset..end) {
                dst.copy_from_slice(value);
            }
            let len = s.len();
            ctx.settle(key);
            ctx.touched(key, EventKind::Set);
            ctx.notify(notify::STRING, "setrange", key);
            int(len)
        }
        None => {
            if value.is_empty() {
                return Frame::Integer(0);
            }
            let end = offset.saturating_add(value.len());
            tri!(check_len(end));
            let mut s = vec![0u8; end];
            if let Some(dst) = s.get_mut(offset..end) {
                dst.copy_from_slice(value);
            }
            put_raw(ctx, key, &s);
            ctx.touched(key, EventKind::Set);
            ctx.notify(notify::STRING, "setrange", key);
            int(end)
        }
    }
}

/// INCR, INCRBY, DECR, DECRBY.
pub(crate) fn incr(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let cmd = arg(args, 0);
    let by = if is(cmd, "incr") {
        1
    } else if is(cmd, "decr") {
        -1
    } else if is(cmd, "incrby") {
        tri!(int_arg(args, 2))
    } else {
        let v = tri!(int_arg(args, 2));
        if v == i64::MIN {
            return Frame::error("ERR decrement would overflow");
        }
        -v
    };
    let key = arg(args, 1);
    let mut digits = [0u8; 20];
    // One lookup: a stored string is rewritten through the entry found.
    let next = match ctx.entry(key) {
        Some(entry) => {
            let Some(current) = entry.str() else {
                return Frame::error(WRONGTYPE);
            };
            let current = tri!(parse_i64(current).ok_or_else(|| Frame::error(NOT_INTEGER)));
            let Some(next) = current.checked_add(by) else {
                return Frame::error("ERR increment or decrement would overflow");
            };
            entry.replace_str(decimal(next.unsigned_abs(), next < 0, &mut digits));
            next
        }
        None => {
            ctx.put_str(key, decimal(by.unsigned_abs(), by < 0, &mut digits), 0);
            by
        }
    };
    ctx.touched(key, EventKind::Set);
    ctx.notify(notify::STRING, "incrby", key);
    Frame::Integer(next)
}

pub(crate) fn incrbyfloat(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    // Redis parses the stored value first, then the increment; both fail with one text.
    let current = match tri!(get_bytes(ctx, key)) {
        Some(s) => tri!(long_double(s)),
        None => Parsed::Finite(LongDouble::default()),
    };
    let by = tri!(long_double(arg(args, 2)));
    let (Parsed::Finite(current), Parsed::Finite(by)) = (current, by) else {
        return Frame::error(NAN_OR_INFINITY);
    };
    let Some(next) = current.add(by) else {
        return Frame::error(NAN_OR_INFINITY);
    };
    let text = next.to_human().into_bytes();
    let reply = Frame::bulk(&text);
    if !ctx.replace_str(key, &text) {
        ctx.put(key, Value::Str(text), 0);
    }
    ctx.touched(key, EventKind::Set);
    ctx.notify(notify::STRING, "incrbyfloat", key);
    reply
}

fn bit_offset(args: &[&[u8]], i: usize) -> Result<usize, Frame> {
    let v = parse_i64(arg(args, i)).filter(|v| *v >= 0 && *v < 4 * 1024 * 1024 * 1024);
    v.and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| Frame::error("ERR bit offset is not an integer or out of range"))
}

pub(crate) fn setbit(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let offset = tri!(bit_offset(args, 2));
    let on = match arg(args, 3) {
        b"1" => true,
        b"0" => false,
        _ => return Frame::error("ERR bit is not an integer or out of range"),
    };
    let byte = offset / 8;
    tri!(check_len(byte + 1));
    let mask = 0x80u8 >> (offset % 8);
    // As Redis: a key created or grown, or a bit that changes, is a write (WATCH, keyspace
    // events); setting a bit to what it is is not.
    let mut changed = false;
    if tri!(get_bytes(ctx, key)).is_none() {
        ctx.put(key, Value::Str(Vec::new()), 0);
        changed = true;
    }
    let Some(s) = tri!(get_str(ctx, key)) else {
        return Frame::Integer(0);
    };
    if s.len() <= byte {
        s.resize(byte + 1, 0);
        changed = true;
    }
    let old = s.get(byte).is_some_and(|b| b & mask != 0);
    if let Some(b) = s.get_mut(byte) {
        if on { *b |= mask } else { *b &= !mask }
    }
    ctx.settle(key);
    if changed || old != on {
        ctx.touched(key, EventKind::Set);
        ctx.notify(notify::STRING, "setbit", key);
    }
    Frame::Integer(i64::from(old))
}

pub(crate) fn getbit(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let offset = tri!(bit_offset(args, 2));
    let Some(s) = tri!(get_bytes(ctx, arg(args, 1))) else {
        return Frame::Integer(0);
    };
    let mask = 0x80u8 >> (offset % 8);
    Frame::Integer(i64::from(s.get(offset / 8).is_some_and(|b| b & mask != 0)))
}

pub(crate) fn lcs(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    // Redis's `lcsCommand` answers a key of another type with its own text, not WRONGTYPE.
    let strings = |ctx: &mut Ctx<'_>, key| {
        get_bytes(ctx, key)
            .map(|v| v.map(<[u8]>::to_vec).unwrap_or_default())
            .map_err(|_| Frame::error("ERR The specified keys must contain string values"))
    };
    let a = tri!(strings(ctx, arg(args, 1)));
    let b = tri!(strings(ctx, arg(args, 2)));
    let (mut want_len, mut want_idx, mut with_len) = (false, false, false);
    let mut min_len = 0i64;
    let mut i = 3;
    while i < args.len() {
        let opt = arg(args, i);
        if is(opt, "len") {
            want_len = true;
        } else if is(opt, "idx") {
            want_idx = true;
        } else if is(opt, "withmatchlen") {
            with_len = true;
        } else if is(opt, "minmatchlen") && i + 1 < args.len() {
            min_len = tri!(int_arg(args, i + 1)).max(0);
            i += 1;
        } else {
            return Frame::error(SYNTAX);
        }
        i += 1;
    }
    if want_len && want_idx {
        return Frame::error("ERR If you want both the length and indexes, please just use IDX.");
    }
    let (n, m) = (a.len(), b.len());
    let w = m + 1;
    // The (n + 1) × (m + 1) table of u32 may not pass proto-max-bulk-len, as Redis 7.2 checks
    // it; with an empty string there is nothing to compare and no table.
    let cells = if n == 0 || m == 0 {
        0
    } else {
        let bytes_max = inner
            .bulk_bytes_max
            .load(std::sync::atomic::Ordering::Relaxed);
        let Some(cells) = (n + 1)
            .checked_mul(w)
            .filter(|c| c.checked_mul(4).is_some_and(|bytes| bytes <= bytes_max))
        else {
            return Frame::error(
                "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
            );
        };
        cells
    };
    let mut dp = vec![0u32; cells];
    for i in 1..=n {
        for j in 1..=m {
            let v = if a.get(i - 1) == b.get(j - 1) {
                dp.get((i - 1) * w + j - 1).copied().unwrap_or(0) + 1
            } else {
                dp.get((i - 1) * w + j)
                    .copied()
                    .unwrap_or(0)
                    .max(dp.get(i * w + j - 1).copied().unwrap_or(0))
            };
            if let Some(c) = dp.get_mut(i * w + j) {
                *c = v;
            }
        }
    }
    let total = dp.get(n * w + m).copied().unwrap_or(0) as usize;
    if want_len {
        return int(total);
    }
    let mut seq = vec![0u8; total];
    let mut k = total;
    let (mut i, mut j) = (n, m);
    let mut matches: Vec<Frame> = Vec::new();
    let mut range: Option<(usize, usize, usize, usize)> = None; // a_start a_end b_start b_end
    let push_range = |range: &mut Option<(usize, usize, usize, usize)>,
                      matches: &mut Vec<Frame>| {
        if let Some((as_, ae, bs, be)) = range.take() {
            let len = ae - as_ + 1;
            if i64::try_from(len).unwrap_or(i64::MAX) >= min_len {
                let mut item = vec![
                    Frame::Array(vec![int(as_), int(ae)]),
                    Frame::Array(vec![int(bs), int(be)]),
                ];
                if with_len {
                    item.push(int(len));
                }
                matches.push(Frame::Array(item));
            }
        }
    };
    while i > 0 && j > 0 {
        if a.get(i - 1) == b.get(j - 1) {
            k -= 1;
            if let Some(c) = seq.get_mut(k) {
                *c = a.get(i - 1).copied().unwrap_or(0);
            }
            let (ai, bi) = (i - 1, j - 1);
            range = match range {
                Some((as_, ae, bs, be)) if as_ == ai + 1 && bs == bi + 1 => Some((ai, ae, bi, be)),
                other => {
                    let mut r = other;
                    push_range(&mut r, &mut matches);
                    Some((ai, ai, bi, bi))
                }
            };
            i -= 1;
            j -= 1;
        } else if dp.get((i - 1) * w + j).copied().unwrap_or(0)
            > dp.get(i * w + j - 1).copied().unwrap_or(0)
        {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    push_range(&mut range, &mut matches);
    if want_idx {
        return Frame::Map(vec![
            (Frame::bulk(b"matches"), Frame::Array(matches)),
            (Frame::bulk(b"len"), int(total)),
        ]);
    }
    Frame::bulk(&seq)
}
