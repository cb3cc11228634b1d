//! Stream commands as Redis 7.0.15's `t_stream.c`: XADD (trimming by MAXLEN or MINID, exact
//! or `~`, LIMIT, NOMKSTREAM), XLEN, XRANGE/XREVRANGE, XDEL, XTRIM, XSETID, XREAD (BLOCK is
//! the RESP server's retry of this non-blocking attempt) and XINFO STREAM/HELP, with Redis's
//! argument checks in Redis's order and its error texts.

use bytes::Bytes;

use super::{NOT_INTEGER, SYNTAX, WRONGTYPE, arg, int, is, tri};
use crate::cache::keyspace::Ctx;
use crate::cache::resp::frame::{Frame, parse_i64};
use crate::cache::stream::{Fields, StreamId, StreamValue};
use crate::cache::value::Value;
use crate::cache::{Inner, XREAD_KEYS_MAX, notify};

/// Longest ID text Redis parses (its 128-byte buffer with the terminator).
const ID_TEXT_MAX: usize = 127;
/// Entries an approximate trim removes at most without LIMIT when the node size gives none
/// (Redis: 100 nodes' worth, 10 000 for a node size of 0, at most 1 000 000).
const APPROX_LIMIT_FALLBACK: i64 = 10_000;
/// The most an approximate trim's default LIMIT may be.
const APPROX_LIMIT_CEILING: i64 = 1_000_000;
/// Entries XINFO STREAM FULL lists without COUNT.
const XINFO_FULL_COUNT_DEFAULT: usize = 10;

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

fn get_stream<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c mut StreamValue>, Frame> {
    match ctx.entry(key) {
        None => Ok(None),
        Some(e) => match e.into_boxed() {
            Some(Value::Stream(s)) => Ok(Some(s)),
            _ => Err(Frame::error(WRONGTYPE)),
        },
    }
}

/// A decimal `u64` as Redis's `string2ull` reads it: a strict integer (`string2ll`) that is
/// not negative, or else what C's `strtoull` takes whole — leading white space, a sign (`-`
/// negating modulo 2^64, as C does), at least one digit, no overflow.
fn parse_u64(text: &[u8]) -> Option<u64> {
    if let Some(n) = parse_i64(text) {
        return u64::try_from(n).ok();
    }
    let start = text.iter().position(|&c| !super::zset::is_c_space(c))?;
    let text = text.get(start..)?;
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if negative { n.wrapping_neg() } else { n })
}

/// Parses an ID as `streamGenericParseIDOrReply`: `-` and `+` (unless `strict`), `<ms>`
/// (sequence `missing_seq`), `<ms>-<seq>` and, when `star` is allowed, `<ms>-*`. Returns the
/// ID and whether the sequence was given.
fn parse_id(
    text: &[u8],
    missing_seq: u64,
    strict: bool,
    star: bool,
) -> Result<(StreamId, bool), Frame> {
    let bad = || Frame::error(INVALID_ID);
    if text.len() > ID_TEXT_MAX {
        return Err(bad());
    }
    match text {
        b"-" | b"+" if strict => Err(bad()),
        b"-" => Ok((StreamId::MIN, true)),
        b"+" => Ok((StreamId::MAX, true)),
        _ => {
            let (ms_text, seq_text) = match text.iter().position(|&c| c == b'-') {
                Some(p) => (text.get(..p).unwrap_or_default(), text.get(p + 1..)),
                None => (text, None),
            };
            let ms = parse_u64(ms_text).ok_or_else(bad)?;
            match seq_text {
                Some(b"*") if star => Ok((StreamId::new(ms, 0), false)),
                Some(s) => Ok((StreamId::new(ms, parse_u64(s).ok_or_else(bad)?), true)),
                None => Ok((StreamId::new(ms, missing_seq), true)),
            }
        }
    }
}

/// A strict ID (no `-`/`+`, no `*`), the sequence 0 when missing.
fn strict_id(text: &[u8]) -> Result<StreamId, Frame> {
    parse_id(text, 0, true, false).map(|(id, _)| id)
}

/// An interval bound (`streamParseIntervalIDOrReply`): `(` makes it exclusive.
fn interval_id(text: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Frame> {
    if text.len() > 1
        && let Some(rest) = text.strip_prefix(b"(")
    {
        return Ok((parse_id(rest, missing_seq, true, false)?.0, true));
    }
    Ok((parse_id(text, missing_seq, false, false)?.0, false))
}

fn entry_frame(id: StreamId, fields: &Fields) -> Frame {
    Frame::Array(vec![
        Frame::Bulk(id.to_bytes()),
        Frame::Array(fields.iter().cloned().map(Frame::Bulk).collect()),
    ])
}

fn entries_frame(entries: Vec<(StreamId, &Fields)>) -> Frame {
    Frame::Array(
        entries
            .into_iter()
            .map(|(id, f)| entry_frame(id, f))
            .collect(),
    )
}

fn count_arg(text: &[u8]) -> Result<i64, Frame> {
    parse_i64(text).ok_or_else(|| Frame::error(NOT_INTEGER))
}

/// Parsed XADD/XTRIM options (`streamParseAddOrTrimArgsOrReply`).
#[derive(Debug, Default)]
struct Trim {
    maxlen: Option<usize>,
    minid: Option<StreamId>,
    approx: bool,
    limit: usize,
    nomkstream: bool,
    /// XADD's explicit ID and whether its sequence was given.
    id: Option<(StreamId, bool)>,
    /// XADD's ID position.
    idpos: usize,
}

fn parse_trim(args: &[&[u8]], xadd: bool, node_max: usize) -> Result<Trim, Frame> {
    let mut t = Trim::default();
    let mut limit: i64 = 0;
    let mut limit_given = false;
    let both = || {
        Frame::error(
            "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
        )
    };
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = arg(args, i);
        if xadd && opt == b"*" {
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if t.maxlen.is_some() || t.minid.is_some() {
                return Err(both());
            }
            // MAXLEN|MINID [=|~] threshold: the operator only when a threshold follows.
            let next = arg(args, i + 1);
            t.approx = more >= 2 && next == b"~";
            if more >= 2 && (next == b"~" || next == b"=") {
                i += 1;
            }
            let threshold = arg(args, i + 1);
            if is(opt, "maxlen") {
                let n = count_arg(threshold)?;
                if n < 0 {
                    return Err(Frame::error("ERR The MAXLEN argument must be >= 0."));
                }
                t.maxlen = Some(usize::try_from(n).unwrap_or(usize::MAX));
            } else {
                t.minid = Some(strict_id(threshold)?);
            }
            i += 1;
        } else if is(opt, "limit") && more > 0 {
            limit = count_arg(arg(args, i + 1))?;
            if limit < 0 {
                return Err(Frame::error("ERR The LIMIT argument must be >= 0."));
            }
            limit_given = true;
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            t.nomkstream = true;
        } else if xadd {
            t.id = Some(parse_id(opt, 0, true, true)?);
            break;
        } else {
            return Err(Frame::error(SYNTAX));
        }
        i += 1;
    }
    t.idpos = i;
    let strategy = t.maxlen.is_some() || t.minid.is_some();
    if limit != 0 && !strategy {
        return Err(Frame::error(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && !strategy {
        return Err(Frame::error(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit_given {
        if !t.approx {
            return Err(Frame::error(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else if t.approx {
        limit = i64::try_from(node_max)
            .unwrap_or(i64::MAX)
            .saturating_mul(100);
        if limit <= 0 {
            limit = APPROX_LIMIT_FALLBACK;
        }
        limit = limit.min(APPROX_LIMIT_CEILING);
    }
    t.limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Ok(t)
}

/// Trims by the parsed strategy; returns how many entries went.
fn apply_trim(s: &mut StreamValue, t: &Trim) -> usize {
    s.trim(t.maxlen, t.minid, t.approx, t.limit)
}

/// The ID the next auto-generated entry gets (`streamNextID`) at `now_ms`.
fn next_id(last: StreamId, now_ms: u64) -> Option<StreamId> {
    if last.ms < now_ms {
        Some(StreamId::new(now_ms, 0))
    } else {
        last.incr()
    }
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...
pub(crate) fn xadd(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let node_max = inner.stream_node_max_entries();
    let t = tri!(parse_trim(args, true, node_max));
    let field_pos = t.idpos + 1;
    let nfields = args.len().saturating_sub(field_pos);
    if field_pos > args.len() || nfields < 2 || nfields % 2 == 1 {
        return Frame::error("ERR wrong number of arguments for 'xadd' command");
    }
    if let Some((id, true)) = t.id
        && id == StreamId::MIN
    {
        return Frame::error("ERR The ID specified in XADD must be greater than 0-0");
    }
    let now_ms = ctx.now_ms;
    if tri!(get_stream(ctx, key)).is_none() {
        if t.nomkstream {
            return Frame::Null;
        }
        ctx.put(key, Value::Stream(Box::default()), 0);
    }
    let Some(s) = tri!(get_stream(ctx, key)) else {
        return Frame::Null;
    };
    if s.last_id == StreamId::MAX {
        return Frame::error(
            "ERR The stream has exhausted the last possible ID, unable to add more items",
        );
    }
    let smaller = || {
        Frame::error(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        )
    };
    let id = match t.id {
        Some((id, true)) => id,
        Some((id, false)) if id.ms == s.last_id.ms => match s.last_id.incr() {
            Some(next) if next.ms == id.ms => next,
            _ => return smaller(),
        },
        Some((id, false)) => id,
        None => match next_id(s.last_id, now_ms) {
            Some(id) => id,
            None => return smaller(),
        },
    };
    if id <= s.last_id {
        return smaller();
    }
    let fields: Fields = args
        .get(field_pos..)
        .unwrap_or_default()
        .iter()
        .map(|f| Bytes::copy_from_slice(f))
        .collect();
    s.append(id, fields, node_max);
    let trimmed = apply_trim(s, &t);
    super::changed(ctx, key, notify::STREAM, "xadd");
    if trimmed > 0 {
        ctx.notify(notify::STREAM, "xtrim", key);
    }
    ctx.list_pushed = true;
    Frame::Bulk(id.to_bytes())
}

pub(crate) fn xlen(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    match tri!(get_stream(ctx, arg(args, 1))) {
        Some(s) => int(s.len()),
        None => Frame::Integer(0),
    }
}

/// XRANGE key start end [COUNT n] and XREVRANGE key end start [COUNT n].
pub(crate) fn xrange(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let rev = is(arg(args, 0), "xrevrange");
    let (start_arg, end_arg) = if rev { (3, 2) } else { (2, 3) };
    let (mut start, start_ex) = tri!(interval_id(arg(args, start_arg), 0));
    if start_ex {
        match start.incr() {
            Some(s) => start = s,
            None => return Frame::error("ERR invalid start ID for the interval"),
        }
    }
    let (mut end, end_ex) = tri!(interval_id(arg(args, end_arg), u64::MAX));
    if end_ex {
        match end.decr() {
            Some(e) => end = e,
            None => return Frame::error("ERR invalid end ID for the interval"),
        }
    }
    let mut count: Option<i64> = None;
    let mut j = 4;
    while j < args.len() {
        if is(arg(args, j), "count") && j + 1 < args.len() {
            count = Some(tri!(count_arg(arg(args, j + 1))).max(0));
            j += 2;
        } else {
            return Frame::error(SYNTAX);
        }
    }
    let Some(s) = tri!(get_stream(ctx, arg(args, 1))) else {
        return Frame::Array(Vec::new());
    };
    match count {
        Some(0) => Frame::NullArray,
        c => {
            let n = c.map_or(0, |c| usize::try_from(c).unwrap_or(usize::MAX));
            entries_frame(s.range(start, end, n, rev))
        }
    }
}

/// XDEL key id [id ...].
pub(crate) fn xdel(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    if tri!(get_stream(ctx, key)).is_none() {
        return Frame::Integer(0);
    }
    let mut ids = Vec::with_capacity(args.len().saturating_sub(2));
    for a in args.get(2..).unwrap_or_default() {
        ids.push(tri!(strict_id(a)));
    }
    let Some(s) = tri!(get_stream(ctx, key)) else {
        return Frame::Integer(0);
    };
    let deleted = ids.into_iter().filter(|id| s.delete(*id)).count();
    if deleted > 0 {
        super::changed(ctx, key, notify::STREAM, "xdel");
    }
    int(deleted)
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count].
pub(crate) fn xtrim(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let t = tri!(parse_trim(args, false, inner.stream_node_max_entries()));
    let Some(s) = tri!(get_stream(ctx, key)) else {
        return Frame::Integer(0);
    };
    let trimmed = apply_trim(s, &t);
    if trimmed > 0 {
        super::changed(ctx, key, notify::STREAM, "xtrim");
    }
    int(trimmed)
}

/// XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id].
pub(crate) fn xsetid(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let id = tri!(strict_id(arg(args, 2)));
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        let opt = arg(args, i);
        if is(opt, "entriesadded") && more {
            let n = tri!(count_arg(arg(args, i + 1)));
            if n < 0 {
                return Frame::error("ERR entries_added must be positive");
            }
            entries_added = Some(n.unsigned_abs());
        } else if is(opt, "maxdeletedid") && more {
            max_deleted = tri!(strict_id(arg(args, i + 1)));
            if id < max_deleted {
                return Frame::error(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                );
            }
        } else {
            return Frame::error(SYNTAX);
        }
        i += 2;
    }
    let Some(s) = tri!(get_stream(ctx, key)) else {
        return Frame::error("ERR no such key");
    };
    if !s.is_empty() {
        if id < s.last_entry_id() {
            return Frame::error(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            );
        }
        if let Some(n) = entries_added
            && (s.len() as u64) > n
        {
            return Frame::error(
                "ERR The entries_added specified in XSETID is smaller than the target stream length",
            );
        }
    }
    s.last_id = id;
    if let Some(n) = entries_added {
        s.entries_added = n;
    }
    if max_deleted != StreamId::MIN {
        s.max_deleted = max_deleted;
    }
    super::changed(ctx, key, notify::STREAM, "xsetid");
    Frame::ok()
}

/// XREAD's parsed options.
#[derive(Debug)]
struct Read {
    block_ms: Option<u64>,
    count: usize,
    /// Index of the first key.
    streams: usize,
    /// Number of keys.
    n: usize,
    /// XREADGROUP's GROUP group consumer.
    group: Option<(Bytes, Bytes)>,
    noack: bool,
}

/// Parses XREAD's (or, with `xreadgroup`, XREADGROUP's) options as `xreadCommand`.
fn parse_read(args: &[&[u8]]) -> Result<Read, Frame> {
    let xreadgroup = is(arg(args, 0), "xreadgroup");
    let mut r = Read {
        block_ms: None,
        count: 0,
        streams: 0,
        n: 0,
        group: None,
        noack: false,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let o = arg(args, i);
        if is(o, "block") && more > 0 {
            i += 1;
            let t = parse_i64(arg(args, i))
                .ok_or_else(|| Frame::error("ERR timeout is not an integer or out of range"))?;
            if t < 0 {
                return Err(Frame::error("ERR timeout is negative"));
            }
            r.block_ms = Some(t.unsigned_abs());
        } else if is(o, "count") && more > 0 {
            i += 1;
            r.count = usize::try_from(count_arg(arg(args, i))?.max(0)).unwrap_or(usize::MAX);
        } else if is(o, "streams") && more > 0 {
            r.streams = i + 1;
            let rest = args.len() - r.streams;
            if !rest.is_multiple_of(2) {
                return Err(Frame::error(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            r.n = rest / 2;
            break;
        } else if is(o, "group") && more >= 2 {
            if !xreadgroup {
                return Err(Frame::error(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.group = Some((
                Bytes::copy_from_slice(arg(args, i + 1)),
                Bytes::copy_from_slice(arg(args, i + 2)),
            ));
            i += 2;
        } else if is(o, "noack") {
            if !xreadgroup {
                return Err(Frame::error(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.noack = true;
        } else {
            return Err(Frame::error(SYNTAX));
        }
        i += 1;
    }
    if r.streams == 0 {
        return Err(Frame::error(SYNTAX));
    }
    if xreadgroup && r.group.is_none() {
        return Err(Frame::error("ERR Missing GROUP option for XREADGROUP"));
    }
    if r.n > XREAD_KEYS_MAX {
        return Err(Frame::error(format!(
            "ERR {} names {} streams, at most {XREAD_KEYS_MAX} are allowed",
            if xreadgroup { "XREADGROUP" } else { "XREAD" },
            r.n
        )));
    }
    Ok(r)
}

/// The stream keys XREAD or XREADGROUP names (none when its arguments do not parse).
pub(crate) fn stream_keys<'a>(args: &[&'a [u8]]) -> Vec<&'a [u8]> {
    match parse_read(args) {
        Ok(r) => (0..r.n).map(|k| arg(args, r.streams + k)).collect(),
        Err(_) => Vec::new(),
    }
}

/// XREAD's or XREADGROUP's BLOCK in milliseconds (`None` without BLOCK), or its argument
/// error.
pub(crate) fn xread_block_ms(args: &[&[u8]]) -> Result<Option<u64>, Frame> {
    parse_read(args).map(|r| r.block_ms)
}

/// XREAD's arguments with each `$` replaced by its stream's last ID now (0-0 for a missing
/// key), so that a retried attempt reads only what arrives after the client blocked.
pub(crate) fn resolve_dollars(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Vec<Bytes> {
    let argv: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
    let Ok(r) = parse_read(&argv) else {
        return args.to_vec();
    };
    if r.group.is_some() {
        // XREADGROUP refuses `$` itself.
        return args.to_vec();
    }
    let mut out = args.to_vec();
    for k in 0..r.n {
        let id_at = r.streams + r.n + k;
        if argv.get(id_at).copied() != Some(b"$".as_slice()) {
            continue;
        }
        let last = match get_stream(ctx, arg(&argv, r.streams + k)) {
            Ok(Some(s)) => s.last_id,
            _ => StreamId::MIN,
        };
        if let Some(slot) = out.get_mut(id_at) {
            *slot = last.to_bytes();
        }
    }
    out
}

/// XREAD [COUNT n] [BLOCK ms] STREAMS key ... id ...: one non-blocking attempt (a null array
/// when no stream has an entry above its ID; the RESP server then blocks if BLOCK was given).
pub(crate) fn xread(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let r = tri!(parse_read(args));
    let mut ids = Vec::with_capacity(r.n);
    for k in 0..r.n {
        let key = arg(args, r.streams + k);
        let s = tri!(get_stream(ctx, key));
        let text = arg(args, r.streams + r.n + k);
        if text == b"$" {
            ids.push(s.map_or(StreamId::MIN, |s| s.last_id));
        } else if text == b">" {
            return Frame::error(
                "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
            );
        } else {
            ids.push(tri!(strict_id(text)));
        }
    }
    let resp3 = ctx.resp3;
    let mut found = Vec::new();
    for (k, gt) in ids.into_iter().enumerate() {
        let key = arg(args, r.streams + k);
        let Some(s) = tri!(get_stream(ctx, key)) else {
            continue;
        };
        if s.is_empty() || s.last_entry_id() <= gt {
            continue;
        }
        let Some(start) = gt.incr() else { continue };
        let entries = entries_frame(s.range(start, StreamId::MAX, r.count, false));
        found.push((Frame::Bulk(Bytes::copy_from_slice(key)), entries));
    }
    read_reply(found, resp3)
}

/// XREAD's reply: a null array when nothing was read; else the keys with their entries (a map
/// in RESP3).
fn read_reply(found: Vec<(Frame, Frame)>, resp3: bool) -> Frame {
    if found.is_empty() {
        Frame::NullArray
    } else if resp3 {
        Frame::Map(found)
    } else {
        Frame::Array(
            found
                .into_iter()
                .map(|(k, e)| Frame::Array(vec![k, e]))
                .collect(),
        )
    }
}

// ---- Consumer groups ------------------------------------------------------------------------

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Records a consumer group change on `key` (WATCH, memory) with Redis's `event`.
fn group_changed(ctx: &mut Ctx<'_>, key: &[u8], event: &'static str) {
    super::changed(ctx, key, notify::STREAM, event);
}

/// XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key ... id ...: one
/// attempt (a null array when `>` finds nothing new; the RESP server then blocks if BLOCK was
/// given).
pub(crate) fn xreadgroup(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let r = tri!(parse_read(args));
    let Some((gname, cname)) = r.group.clone() else {
        return Frame::error("ERR Missing GROUP option for XREADGROUP");
    };
    let mut ids = Vec::with_capacity(r.n);
    for k in 0..r.n {
        let key = arg(args, r.streams + k);
        // Read as Redis's `lookupKeyRead` reads it, though XREADGROUP writes.
        let exists = tri!(ctx.reading(|ctx| {
            get_stream(ctx, key).map(|s| s.is_some_and(|s| s.groups().contains_key(&gname)))
        }));
        if !exists {
            return Frame::error(format!(
                "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                lossy(key),
                lossy(&gname)
            ));
        }
        let text = arg(args, r.streams + r.n + k);
        if text == b"$" {
            return Frame::error(
                "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
            );
        } else if text == b">" {
            ids.push(None);
        } else {
            ids.push(Some(tri!(strict_id(text))));
        }
    }
    let (resp3, now_ms) = (ctx.resp3, ctx.now_ms);
    let mut found = Vec::new();
    for (k, id) in ids.into_iter().enumerate() {
        let key = arg(args, r.streams + k);
        let Some(s) = tri!(get_stream(ctx, key)) else {
            continue;
        };
        let Some(mut g) = s.take_group(&gname) else {
            continue;
        };
        let had_consumer = g.consumers.contains_key(&cname);
        let entries = match id {
            // Entries above the ID, as for new ones (`streamIncrID` of the given ID).
            Some(after) => Some(match after.incr() {
                Some(start) => history(s, &mut g, &cname, start, r.count, now_ms),
                None => Frame::Array(Vec::new()),
            }),
            None if !s.is_empty() && s.last_entry_id() > g.last_id => {
                let start = g.last_id.incr().unwrap_or(StreamId::MAX);
                let batch: Vec<(StreamId, Fields)> = s
                    .range(start, StreamId::MAX, r.count, false)
                    .into_iter()
                    .map(|(id, f)| (id, f.clone()))
                    .collect();
                g.consumer_mut(&cname, now_ms).seen_time_ms = now_ms;
                let mut out = Vec::with_capacity(batch.len());
                for (id, f) in batch {
                    s.advance_group(&mut g, id);
                    if !r.noack {
                        g.deliver(id, &cname, now_ms);
                    }
                    out.push(entry_frame(id, &f));
                }
                Some(Frame::Array(out))
            }
            None => None,
        };
        s.put_group(gname.clone(), g);
        if let Some(e) = entries {
            found.push((Frame::Bulk(Bytes::copy_from_slice(key)), e));
            if !had_consumer {
                ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
            }
            ctx.settle(key);
            ctx.touched(key, crate::cache::EventKind::Set);
        }
    }
    read_reply(found, resp3)
}

/// A consumer's pending entries from `start` (`streamReplyWithRangeFromConsumerPEL`): each
/// still in the stream is redelivered (time and count updated), a deleted one answers its ID
/// with a null array.
fn history(
    s: &StreamValue,
    g: &mut crate::cache::stream::Group,
    cname: &Bytes,
    start: StreamId,
    count: usize,
    now_ms: u64,
) -> Frame {
    let c = g.consumer_mut(cname, now_ms);
    c.seen_time_ms = now_ms;
    let take = if count == 0 { usize::MAX } else { count };
    let ids: Vec<StreamId> = c.pel.range(start..).take(take).copied().collect();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match s.get(&id) {
            Some(f) => {
                out.push(entry_frame(id, f));
                if let Some(p) = g.pel.get_mut(&id) {
                    p.delivery_time_ms = now_ms;
                    p.delivery_count = p.delivery_count.saturating_add(1);
                }
            }
            None => out.push(Frame::Array(vec![id_frame(id), Frame::NullArray])),
        }
    }
    Frame::Array(out)
}

/// XGROUP CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER|HELP.
pub(crate) fn xgroup(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let sub = arg(args, 1);
    if is(sub, "help") {
        return Frame::Array(
            [
                "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CREATE <key> <groupname> <id|$> [option]",
                "    Create a new consumer group. Options are:",
                "    * MKSTREAM",
                "      Create the empty stream if it does not exist.",
                "    * ENTRIESREAD entries_read",
                "      Set the group's entries_read counter (internal use).",
                "CREATECONSUMER <key> <groupname> <consumer>",
                "    Create a new consumer in the specified group.",
                "DELCONSUMER <key> <groupname> <consumer>",
                "    Remove the specified consumer.",
                "DESTROY <key> <groupname>",
                "    Remove the specified group.",
                "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
                "    Set the current group ID and entries_read counter.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|s| Frame::simple(s))
            .collect(),
        );
    }
    let known = [
        "create",
        "setid",
        "destroy",
        "createconsumer",
        "delconsumer",
    ];
    if !known.iter().any(|n| is(sub, n)) {
        return Frame::error(format!(
            "ERR unknown subcommand '{}'. Try XGROUP HELP.",
            lossy(sub)
        ));
    }
    let syntax = || {
        Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try XGROUP HELP.",
            lossy(sub)
        ))
    };
    let (create, setid) = (is(sub, "create"), is(sub, "setid"));
    let (key, gname) = (arg(args, 2), Bytes::copy_from_slice(arg(args, 3)));
    let mut mkstream = false;
    let mut entries_read = crate::cache::stream::ENTRIES_READ_UNKNOWN;
    let mut i = 5;
    while i < args.len() {
        let opt = arg(args, i);
        if create && is(opt, "mkstream") {
            mkstream = true;
            i += 1;
        } else if (create || setid) && is(opt, "entriesread") && i + 1 < args.len() {
            entries_read = tri!(count_arg(arg(args, i + 1)));
            if entries_read < 0 && entries_read != crate::cache::stream::ENTRIES_READ_UNKNOWN {
                return Frame::error("ERR value for ENTRIESREAD must be positive or -1");
            }
            i += 2;
        } else {
            return syntax();
        }
    }
    let exists = tri!(get_stream(ctx, key)).is_some();
    if !mkstream && !exists {
        return Frame::error(
            "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
        );
    }
    let now_ms = ctx.now_ms;
    if exists && !create && !is(sub, "destroy") {
        let has = tri!(get_stream(ctx, key)).is_some_and(|s| s.groups().contains_key(&gname));
        if !has {
            return Frame::error(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                lossy(&gname),
                lossy(key)
            ));
        }
    }
    if create && args.len() <= 8 {
        let id_text = arg(args, 4);
        let id = if id_text == b"$" {
            tri!(get_stream(ctx, key)).map_or(StreamId::MIN, |s| s.last_id)
        } else {
            tri!(strict_id(id_text))
        };
        if !exists {
            ctx.put(key, Value::Stream(Box::default()), 0);
        }
        let Some(s) = tri!(get_stream(ctx, key)) else {
            return Frame::Null;
        };
        if s.groups().contains_key(&gname) {
            return Frame::error("BUSYGROUP Consumer Group name already exists");
        }
        s.put_group(gname, crate::cache::stream::Group::new(id, entries_read));
        group_changed(ctx, key, "xgroup-create");
        Frame::ok()
    } else if setid && (args.len() == 5 || args.len() == 7) {
        let id_text = arg(args, 4);
        let Some(s) = tri!(get_stream(ctx, key)) else {
            return Frame::Null;
        };
        let id = if id_text == b"$" {
            s.last_id
        } else {
            tri!(parse_id(id_text, 0, false, false)).0
        };
        if let Some(mut g) = s.group_mut(&gname) {
            g.last_id = id;
            g.entries_read = entries_read;
        }
        group_changed(ctx, key, "xgroup-setid");
        Frame::ok()
    } else if is(sub, "destroy") && args.len() == 4 {
        let Some(s) = tri!(get_stream(ctx, key)) else {
            return Frame::Integer(0);
        };
        if s.take_group(&gname).is_none() {
            return Frame::Integer(0);
        }
        group_changed(ctx, key, "xgroup-destroy");
        ctx.list_pushed = true;
        Frame::Integer(1)
    } else if is(sub, "createconsumer") && args.len() == 5 {
        let cname = Bytes::copy_from_slice(arg(args, 4));
        let Some(mut g) = tri!(get_stream(ctx, key)).and_then(|s| s.group_mut(&gname)) else {
            return Frame::Integer(0);
        };
        if g.consumers.contains_key(&cname) {
            return Frame::Integer(0);
        }
        g.consumer_mut(&cname, now_ms);
        drop(g);
        group_changed(ctx, key, "xgroup-createconsumer");
        Frame::Integer(1)
    } else if is(sub, "delconsumer") && args.len() == 5 {
        let Some(mut g) = tri!(get_stream(ctx, key)).and_then(|s| s.group_mut(&gname)) else {
            return Frame::Integer(0);
        };
        let deleted = g.delete_consumer(arg(args, 4));
        drop(g);
        match deleted {
            Some(pending) => {
                group_changed(ctx, key, "xgroup-delconsumer");
                int(pending)
            }
            None => Frame::Integer(0),
        }
    } else {
        syntax()
    }
}

/// XACK key group id [id ...].
pub(crate) fn xack(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let gname = arg(args, 2);
    let has = tri!(get_stream(ctx, key)).is_some_and(|s| s.groups().contains_key(gname));
    if !has {
        return Frame::Integer(0);
    }
    let mut ids = Vec::with_capacity(args.len().saturating_sub(3));
    for a in args.get(3..).unwrap_or_default() {
        ids.push(tri!(strict_id(a)));
    }
    let Some(mut g) = tri!(get_stream(ctx, key)).and_then(|s| s.group_mut(gname)) else {
        return Frame::Integer(0);
    };
    let acked = ids.into_iter().filter(|id| g.ack(*id)).count();
    drop(g);
    if acked > 0 {
        ctx.settle(key);
        ctx.touched(key, crate::cache::EventKind::Set);
    }
    int(acked)
}

fn nogroup(key: &[u8], gname: &[u8]) -> Frame {
    Frame::error(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        lossy(key),
        lossy(gname)
    ))
}

/// XPENDING key group [[IDLE min-idle] start end count [consumer]].
pub(crate) fn xpending(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let (key, gname) = (arg(args, 1), arg(args, 2));
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Frame::error(SYNTAX);
    }
    let mut range = None;
    if argc >= 6 {
        let mut at = 3;
        let mut minidle = 0i64;
        if is(arg(args, 3), "idle") {
            minidle = tri!(count_arg(arg(args, 4)));
            if argc < 8 {
                return Frame::error(SYNTAX);
            }
            at += 2;
        }
        let count = tri!(count_arg(arg(args, at + 2))).max(0);
        let (mut start, start_ex) = tri!(interval_id(arg(args, at), 0));
        if start_ex {
            match start.incr() {
                Some(s) => start = s,
                None => return Frame::error("ERR invalid start ID for the interval"),
            }
        }
        let (mut end, end_ex) = tri!(interval_id(arg(args, at + 1), u64::MAX));
        if end_ex {
            match end.decr() {
                Some(e) => end = e,
                None => return Frame::error("ERR invalid end ID for the interval"),
            }
        }
        let consumer = args.get(at + 3).map(|c| Bytes::copy_from_slice(c));
        range = Some((minidle, start, end, count, consumer));
    }
    let now_ms = ctx.now_ms;
    let Some(g) = tri!(get_stream(ctx, key)).and_then(|s| s.groups().get(gname)) else {
        return nogroup(key, gname);
    };
    let Some((minidle, start, end, count, consumer)) = range else {
        if g.pel.is_empty() {
            return Frame::Array(vec![
                Frame::Integer(0),
                Frame::Null,
                Frame::Null,
                Frame::NullArray,
            ]);
        }
        let first = g.pel.keys().next().copied().unwrap_or_default();
        let last = g.pel.keys().next_back().copied().unwrap_or_default();
        let owners = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .map(|(n, c)| {
                Frame::Array(vec![
                    Frame::Bulk(n.clone()),
                    Frame::Bulk(Bytes::from(c.pel.len().to_string())),
                ])
            })
            .collect();
        return Frame::Array(vec![
            int(g.pel.len()),
            id_frame(first),
            id_frame(last),
            Frame::Array(owners),
        ]);
    };
    if start > end {
        return Frame::Array(Vec::new());
    }
    let ids: Vec<StreamId> = match &consumer {
        Some(c) => match g.consumers.get(c) {
            Some(c) => c.pel.range(start..=end).copied().collect(),
            None => return Frame::Array(Vec::new()),
        },
        None => g.pel.range(start..=end).map(|(id, _)| *id).collect(),
    };
    let mut left = usize::try_from(count).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for id in ids {
        if left == 0 {
            break;
        }
        let Some(p) = g.pel.get(&id) else { continue };
        let idle = i64::try_from(now_ms.saturating_sub(p.delivery_time_ms)).unwrap_or(i64::MAX);
        if minidle != 0 && idle < minidle {
            continue;
        }
        left -= 1;
        out.push(Frame::Array(vec![
            id_frame(id),
            Frame::Bulk(p.consumer.clone()),
            Frame::Integer(idle),
            Frame::Integer(i64::try_from(p.delivery_count).unwrap_or(i64::MAX)),
        ]));
    }
    Frame::Array(out)
}

fn int_or(text: &[u8], what: &str) -> Result<i64, Frame> {
    parse_i64(text).ok_or_else(|| Frame::error(format!("ERR {what}")))
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms] [RETRYCOUNT n]
/// [FORCE] [JUSTID] [LASTID id].
pub(crate) fn xclaim(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let (key, gname) = (arg(args, 1), arg(args, 2));
    let cname = Bytes::copy_from_slice(arg(args, 3));
    let has = tri!(get_stream(ctx, key)).is_some_and(|s| s.groups().contains_key(gname));
    if !has {
        return nogroup(key, gname);
    }
    let minidle = tri!(int_or(
        arg(args, 4),
        "Invalid min-idle-time argument for XCLAIM"
    ))
    .max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match strict_id(arg(args, j)) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let now = i64::try_from(ctx.now_ms).unwrap_or(i64::MAX);
    let (mut force, mut justid) = (false, false);
    let mut retrycount: Option<i64> = None;
    let mut deliverytime: Option<i64> = None;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = arg(args, j);
        if is(opt, "force") {
            force = true;
        } else if is(opt, "justid") {
            justid = true;
        } else if is(opt, "idle") && more {
            j += 1;
            let v = tri!(int_or(
                arg(args, j),
                "Invalid IDLE option argument for XCLAIM"
            ));
            deliverytime = Some(now.saturating_sub(v));
        } else if is(opt, "time") && more {
            j += 1;
            deliverytime = Some(tri!(int_or(
                arg(args, j),
                "Invalid TIME option argument for XCLAIM"
            )));
        } else if is(opt, "retrycount") && more {
            j += 1;
            retrycount = Some(tri!(int_or(
                arg(args, j),
                "Invalid RETRYCOUNT option argument for XCLAIM"
            )));
        } else if is(opt, "lastid") && more {
            j += 1;
            last_id = tri!(strict_id(arg(args, j)));
        } else {
            return Frame::error(format!("ERR Unrecognized XCLAIM option '{}'", lossy(opt)));
        }
        j += 1;
    }
    let delivery = match deliverytime {
        Some(t) if t >= 0 && t <= now => t,
        _ => now,
    };
    let delivery = u64::try_from(delivery).unwrap_or(0);
    let now_ms = ctx.now_ms;
    let Some(s) = tri!(get_stream(ctx, key)) else {
        return Frame::Array(Vec::new());
    };
    let Some(mut g) = s.take_group(gname) else {
        return Frame::Array(Vec::new());
    };
    if last_id > g.last_id {
        g.last_id = last_id;
    }
    let had_consumer = g.consumers.contains_key(&cname);
    let mut out = Vec::new();
    for id in ids {
        let Some(f) = s.get(&id) else {
            g.ack(id);
            continue;
        };
        if force && !g.pel.contains_key(&id) {
            g.pel.insert(
                id,
                crate::cache::stream::Pending {
                    consumer: Bytes::new(),
                    delivery_time_ms: delivery,
                    delivery_count: 0,
                },
            );
        }
        let count = retrycount.filter(|n| *n >= 0).map(i64::unsigned_abs);
        if !claim_idle(
            &mut g, id, &cname, now_ms, minidle, delivery, count, !justid,
        ) {
            continue;
        }
        out.push(if justid {
            id_frame(id)
        } else {
            entry_frame(id, f)
        });
    }
    let created = !had_consumer && g.consumers.contains_key(&cname);
    s.put_group(Bytes::copy_from_slice(gname), g);
    claimed_by(ctx, key, created);
    Frame::Array(out)
}

/// Claims pending `id` for `cname` (seen now) when it has been idle at least `minidle` ms (0:
/// any; an entry nobody owns yet, as XCLAIM FORCE makes, always), delivered at `delivery`:
/// `count` sets its delivery count, else `bump` adds one. Returns whether it was claimed.
#[expect(
    clippy::too_many_arguments,
    reason = "XCLAIM's and XAUTOCLAIM's options, passed as given"
)]
fn claim_idle(
    g: &mut crate::cache::stream::Group,
    id: StreamId,
    cname: &Bytes,
    now_ms: u64,
    minidle: i64,
    delivery: u64,
    count: Option<u64>,
    bump: bool,
) -> bool {
    let Some(p) = g.pel.get(&id) else {
        return false;
    };
    if !p.consumer.is_empty() && minidle != 0 {
        let idle = i64::try_from(now_ms.saturating_sub(p.delivery_time_ms)).unwrap_or(i64::MAX);
        if idle < minidle {
            return false;
        }
    }
    g.claim(id, cname, now_ms);
    g.consumer_mut(cname, now_ms).seen_time_ms = now_ms;
    if let Some(p) = g.pel.get_mut(&id) {
        p.delivery_time_ms = delivery;
        match count {
            Some(n) => p.delivery_count = n,
            None if bump => p.delivery_count = p.delivery_count.saturating_add(1),
            None => {}
        }
    }
    true
}

/// Records an XCLAIM or XAUTOCLAIM on `key`, with `xgroup-createconsumer` when it created
/// the claiming consumer.
fn claimed_by(ctx: &mut Ctx<'_>, key: &[u8], created: bool) {
    if created {
        ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    ctx.settle(key);
    ctx.touched(key, crate::cache::EventKind::Set);
}

/// Most entries one XAUTOCLAIM may claim (Redis's `LONG_MAX / 16` bound on COUNT).
const XAUTOCLAIM_COUNT_MAX: i64 = i64::MAX / 16;
/// PEL entries XAUTOCLAIM looks at per entry it may claim.
const XAUTOCLAIM_ATTEMPTS_FACTOR: usize = 10;

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT n] [JUSTID].
pub(crate) fn xautoclaim(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let (key, gname) = (arg(args, 1), arg(args, 2));
    let cname = Bytes::copy_from_slice(arg(args, 3));
    let minidle = tri!(int_or(
        arg(args, 4),
        "Invalid min-idle-time argument for XAUTOCLAIM"
    ))
    .max(0);
    let (mut start, start_ex) = tri!(interval_id(arg(args, 5), 0));
    if start_ex {
        match start.incr() {
            Some(s) => start = s,
            None => return Frame::error("ERR invalid start ID for the interval"),
        }
    }
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = arg(args, j);
        if is(opt, "count") && more {
            count = match parse_i64(arg(args, j + 1)) {
                Some(n) if (1..=XAUTOCLAIM_COUNT_MAX).contains(&n) => n,
                _ => return Frame::error("ERR COUNT must be > 0"),
            };
            j += 1;
        } else if is(opt, "justid") {
            justid = true;
        } else {
            return Frame::error(SYNTAX);
        }
        j += 1;
    }
    let now_ms = ctx.now_ms;
    let Some(s) = tri!(get_stream(ctx, key)) else {
        return nogroup(key, gname);
    };
    let Some(mut g) = s.take_group(gname) else {
        return nogroup(key, gname);
    };
    let had_consumer = g.consumers.contains_key(&cname);
    let mut left = usize::try_from(count).unwrap_or(usize::MAX);
    let mut attempts = left.saturating_mul(XAUTOCLAIM_ATTEMPTS_FACTOR);
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut cursor = Some(start);
    while attempts > 0 && left > 0 {
        let Some(from) = cursor else { break };
        let Some(id) = g.pel.range(from..).next().map(|(id, _)| *id) else {
            cursor = None;
            break;
        };
        attempts -= 1;
        cursor = id.incr();
        let Some(f) = s.get(&id) else {
            g.ack(id);
            deleted.push(id_frame(id));
            left -= 1;
            continue;
        };
        if !claim_idle(&mut g, id, &cname, now_ms, minidle, now_ms, None, !justid) {
            continue;
        }
        claimed.push(if justid {
            id_frame(id)
        } else {
            entry_frame(id, f)
        });
        left -= 1;
    }
    let next = cursor
        .and_then(|from| g.pel.range(from..).next().map(|(id, _)| *id))
        .unwrap_or(StreamId::MIN);
    let created = !had_consumer && g.consumers.contains_key(&cname);
    s.put_group(Bytes::copy_from_slice(gname), g);
    claimed_by(ctx, key, created);
    Frame::Array(vec![
        id_frame(next),
        Frame::Array(claimed),
        Frame::Array(deleted),
    ])
}

fn id_frame(id: StreamId) -> Frame {
    Frame::Bulk(id.to_bytes())
}

fn entries_read_frame(n: i64) -> Frame {
    if n == crate::cache::stream::ENTRIES_READ_UNKNOWN {
        Frame::Null
    } else {
        Frame::Integer(n)
    }
}

fn idle_frame(now_ms: u64, since_ms: u64) -> Frame {
    Frame::Integer(i64::try_from(now_ms.saturating_sub(since_ms)).unwrap_or(i64::MAX))
}

fn ms_frame(ms: u64) -> Frame {
    Frame::Integer(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// XINFO STREAM FULL's groups: each with its PEL and consumers, at most `count` pending
/// entries listed per group and per consumer (0: all).
fn full_groups(s: &StreamValue, count: usize) -> Frame {
    let take = if count == 0 { usize::MAX } else { count };
    Frame::Array(
        s.groups()
            .iter()
            .map(|(name, g)| {
                let pel = g
                    .pel
                    .iter()
                    .take(take)
                    .map(|(id, p)| {
                        Frame::Array(vec![
                            id_frame(*id),
                            Frame::Bulk(p.consumer.clone()),
                            ms_frame(p.delivery_time_ms),
                            ms_frame(p.delivery_count),
                        ])
                    })
                    .collect();
                let consumers = g
                    .consumers
                    .iter()
                    .map(|(cname, c)| {
                        let cpel = c
                            .pel
                            .iter()
                            .take(take)
                            .filter_map(|id| g.pel.get(id).map(|p| (id, p)))
                            .map(|(id, p)| {
                                Frame::Array(vec![
                                    id_frame(*id),
                                    ms_frame(p.delivery_time_ms),
                                    ms_frame(p.delivery_count),
                                ])
                            })
                            .collect();
                        Frame::Map(vec![
                            (Frame::bulk(b"name"), Frame::Bulk(cname.clone())),
                            (Frame::bulk(b"seen-time"), ms_frame(c.seen_time_ms)),
                            (Frame::bulk(b"pel-count"), int(c.pel.len())),
                            (Frame::bulk(b"pending"), Frame::Array(cpel)),
                        ])
                    })
                    .collect();
                Frame::Map(vec![
                    (Frame::bulk(b"name"), Frame::Bulk(name.clone())),
                    (Frame::bulk(b"last-delivered-id"), id_frame(g.last_id)),
                    (
                        Frame::bulk(b"entries-read"),
                        entries_read_frame(g.entries_read),
                    ),
                    (
                        Frame::bulk(b"lag"),
                        s.lag(g).map_or(Frame::Null, Frame::Integer),
                    ),
                    (Frame::bulk(b"pel-count"), int(g.pel.len())),
                    (Frame::bulk(b"pending"), Frame::Array(pel)),
                    (Frame::bulk(b"consumers"), Frame::Array(consumers)),
                ])
            })
            .collect(),
    )
}

fn subcommand_syntax(args: &[&[u8]]) -> Frame {
    Frame::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try XINFO HELP.",
        String::from_utf8_lossy(arg(args, 1))
    ))
}

/// XINFO STREAM key [FULL [COUNT n]], XINFO GROUPS key, XINFO CONSUMERS key group, XINFO HELP.
pub(crate) fn xinfo(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let sub = arg(args, 1);
    if is(sub, "help") {
        return Frame::Array(
            [
                "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CONSUMERS <key> <groupname>",
                "    Show consumers of <groupname>.",
                "GROUPS <key>",
                "    Show the stream consumer groups.",
                "STREAM <key> [FULL [COUNT <count>]",
                "    Show information about the stream.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|s| Frame::simple(s))
            .collect(),
        );
    }
    if !["stream", "groups", "consumers"].iter().any(|n| is(sub, n)) {
        return Frame::error(format!(
            "ERR unknown subcommand '{}'. Try XINFO HELP.",
            String::from_utf8_lossy(sub)
        ));
    }
    let key = arg(args, 2);
    let now_ms = ctx.now_ms;
    let Some(s) = tri!(get_stream(ctx, key)) else {
        return Frame::error("ERR no such key");
    };
    if is(sub, "groups") {
        return Frame::Array(
            s.groups()
                .iter()
                .map(|(name, g)| {
                    Frame::Map(vec![
                        (Frame::bulk(b"name"), Frame::Bulk(name.clone())),
                        (Frame::bulk(b"consumers"), int(g.consumers.len())),
                        (Frame::bulk(b"pending"), int(g.pel.len())),
                        (Frame::bulk(b"last-delivered-id"), id_frame(g.last_id)),
                        (
                            Frame::bulk(b"entries-read"),
                            entries_read_frame(g.entries_read),
                        ),
                        (
                            Frame::bulk(b"lag"),
                            s.lag(g).map_or(Frame::Null, Frame::Integer),
                        ),
                    ])
                })
                .collect(),
        );
    }
    if is(sub, "consumers") {
        let gname = arg(args, 3);
        let Some(g) = s.groups().get(gname) else {
            return Frame::error(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                lossy(gname),
                lossy(key)
            ));
        };
        return Frame::Array(
            g.consumers
                .iter()
                .map(|(name, c)| {
                    Frame::Map(vec![
                        (Frame::bulk(b"name"), Frame::Bulk(name.clone())),
                        (Frame::bulk(b"pending"), int(c.pel.len())),
                        (Frame::bulk(b"idle"), idle_frame(now_ms, c.seen_time_ms)),
                    ])
                })
                .collect(),
        );
    }
    let opts = args.get(3..).unwrap_or_default();
    let full = match opts.len() {
        0 => None,
        1 | 3 => {
            if !is(arg(opts, 0), "full") || (opts.len() == 3 && !is(arg(opts, 1), "count")) {
                return subcommand_syntax(args);
            }
            let count = if opts.len() == 3 {
                let c = tri!(count_arg(arg(opts, 2)));
                if c < 0 {
                    XINFO_FULL_COUNT_DEFAULT
                } else {
                    usize::try_from(c).unwrap_or(usize::MAX)
                }
            } else {
                XINFO_FULL_COUNT_DEFAULT
            };
            Some(count)
        }
        _ => return subcommand_syntax(args),
    };
    let nodes = s.node_count();
    let mut m = vec![
        (Frame::bulk(b"length"), int(s.len())),
        (Frame::bulk(b"radix-tree-keys"), int(nodes)),
        (
            Frame::bulk(b"radix-tree-nodes"),
            int(nodes.saturating_add(1)),
        ),
        (Frame::bulk(b"last-generated-id"), id_frame(s.last_id)),
        (
            Frame::bulk(b"max-deleted-entry-id"),
            id_frame(s.max_deleted),
        ),
        (
            Frame::bulk(b"entries-added"),
            Frame::Integer(i64::try_from(s.entries_added).unwrap_or(i64::MAX)),
        ),
        (
            Frame::bulk(b"recorded-first-entry-id"),
            id_frame(s.first_id),
        ),
    ];
    match full {
        None => {
            let edge = |rev: bool| {
                s.range(StreamId::MIN, StreamId::MAX, 1, rev)
                    .into_iter()
                    .next()
                    .map_or(Frame::Null, |(id, f)| entry_frame(id, f))
            };
            m.push((Frame::bulk(b"groups"), int(s.groups().len())));
            m.push((Frame::bulk(b"first-entry"), edge(false)));
            m.push((Frame::bulk(b"last-entry"), edge(true)));
        }
        Some(count) => {
            m.push((
                Frame::bulk(b"entries"),
                entries_frame(s.range(StreamId::MIN, StreamId::MAX, count, false)),
            ));
            m.push((Frame::bulk(b"groups"), full_groups(s, count)));
        }
    }
    Frame::Map(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_redis() {
        assert_eq!(
            parse_id(b"5", 7, false, false).unwrap(),
            (StreamId::new(5, 7), true)
        );
        assert_eq!(
            parse_id(b"5-*", 0, true, true).unwrap(),
            (StreamId::new(5, 0), false)
        );
        assert!(parse_id(b"5-*", 0, true, false).is_err());
        assert!(parse_id(b"-", 0, true, false).is_err());
        assert_eq!(parse_id(b"+", 0, false, false).unwrap().0, StreamId::MAX);
        assert!(parse_id(b"1-2-3", 0, false, false).is_err());
        assert!(parse_id(b"18446744073709551616", 0, false, false).is_err());
        assert!(parse_id(b"", 0, false, false).is_err());
        assert_eq!(
            interval_id(b"(1-1", 0).unwrap(),
            (StreamId::new(1, 1), true)
        );
        assert!(interval_id(b"(-", 0).is_err());
    }
}
