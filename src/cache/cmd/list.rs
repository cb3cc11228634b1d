//! List commands, including the non-blocking attempt behind each blocking pop (the RESP server
//! retries it when a list gains elements, until its timeout).

use bytes::Bytes;

use super::{NOT_INTEGER, SYNTAX, WRONGTYPE, arg, int, int_arg, is, name, tri};
use crate::cache::keyspace::Ctx;
use crate::cache::resp::frame::{Frame, parse_i64};
use crate::cache::value::{ListValue, Value};
use crate::cache::{EventKind, Inner, notify};

type List = ListValue;

fn get_list<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c mut List>, Frame> {
    match ctx.entry(key) {
        None => Ok(None),
        Some(e) => match e.into_boxed() {
            Some(Value::List(l)) => Ok(Some(l)),
            _ => Err(Frame::error(WRONGTYPE)),
        },
    }
}

/// Settles `key` after a change and records it with Redis's list notification `event`.
fn done(ctx: &mut Ctx<'_>, key: &[u8], event: &'static str) {
    super::changed(ctx, key, notify::LIST, event);
}

/// Redis's event name of a pop from the head (`left`) or tail.
fn pop_event(left: bool) -> &'static str {
    if left { "lpop" } else { "rpop" }
}

/// Redis's event name of a push at the head (`left`) or tail.
fn push_event(left: bool) -> &'static str {
    if left { "lpush" } else { "rpush" }
}

/// LPUSH, RPUSH, LPUSHX, RPUSHX.
pub(crate) fn push(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let cmd = arg(args, 0);
    let left = cmd.first().is_some_and(|c| c.eq_ignore_ascii_case(&b'l'));
    let only_existing = cmd.last().is_some_and(|c| c.eq_ignore_ascii_case(&b'x'));
    let key = arg(args, 1);
    let elements = args.get(2..).unwrap_or_default();
    // One lookup when the list exists (the common case), its charge settled in place; a new
    // list is created and looked up again.
    let push = |v: &mut Value| match v {
        Value::List(l) => Some(push_all(l, elements, left)),
        _ => None,
    };
    let pushed = match ctx.entry(key) {
        Some(e) => e.grow_boxed(push),
        None if only_existing => return Frame::Integer(0),
        None => {
            ctx.put(key, Value::List(Box::default()), 0);
            ctx.entry(key).and_then(|e| e.grow_boxed(push))
        }
    };
    // `None`: an embedded string, or a boxed value that is not a list.
    let Some(Some(len)) = pushed else {
        return Frame::error(WRONGTYPE);
    };
    ctx.list_pushed = true;
    // Pushed, so not empty: the key stays and its charge is settled.
    ctx.touched(key, EventKind::Set);
    ctx.notify(notify::LIST, push_event(left), key);
    int(len)
}

/// Pushes copies of `elements` at the head (`left`) or tail; returns the new length.
fn push_all(l: &mut List, elements: &[&[u8]], left: bool) -> usize {
    for v in elements {
        l.push(v, left);
    }
    l.len()
}

fn pop_one(l: &mut List, left: bool) -> Option<Bytes> {
    l.pop(left)
}

/// LPOP and RPOP with an optional count.
pub(crate) fn pop(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let left = is(arg(args, 0), "lpop");
    let key = arg(args, 1);
    if args.len() > 3 {
        return Frame::error(format!(
            "ERR wrong number of arguments for '{}' command",
            name(args)
        ));
    }
    let count = match args.get(2) {
        Some(c) => Some(tri!(super::positive(c))),
        None => None,
    };
    let Some(l) = tri!(get_list(ctx, key)) else {
        return if count.is_some() {
            Frame::NullArray
        } else {
            Frame::Null
        };
    };
    let reply = match count {
        None => pop_one(l, left).map_or(Frame::Null, Frame::Bulk),
        Some(n) => Frame::Array(
            (0..n)
                .map_while(|_| pop_one(l, left))
                .map(Frame::Bulk)
                .collect(),
        ),
    };
    if matches!(&reply, Frame::Array(items) if items.is_empty()) {
        ctx.settle(key);
    } else {
        done(ctx, key, pop_event(left));
    }
    reply
}

pub(crate) fn llen(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    int(tri!(get_list(ctx, arg(args, 1))).map_or(0, |l| l.len()))
}

pub(crate) fn lrange(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let start = tri!(int_arg(args, 2));
    let stop = tri!(int_arg(args, 3));
    let Some(l) = tri!(get_list(ctx, arg(args, 1))) else {
        return Frame::Array(Vec::new());
    };
    match super::range(start, stop, l.len()) {
        Some((a, b)) => Frame::Array(l.range(a, b).map(|v| Frame::Bulk(v.to_bytes())).collect()),
        None => Frame::Array(Vec::new()),
    }
}

fn index(i: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if i < 0 { len + i } else { i };
    if i < 0 || i >= len {
        None
    } else {
        usize::try_from(i).ok()
    }
}

/// The key is looked up before the index is read, as Redis's `lindexCommand`: a missing key
/// answers nil and a wrong type WRONGTYPE whatever the index.
pub(crate) fn lindex(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let Some(l) = tri!(get_list(ctx, arg(args, 1))) else {
        return Frame::Null;
    };
    let i = tri!(int_arg(args, 2));
    index(i, l.len())
        .and_then(|i| l.get(i))
        .map_or(Frame::Null, |v| Frame::Bulk(v.to_bytes()))
}

/// As [`lindex`], the key before the index (`lsetCommand`).
pub(crate) fn lset(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let Some(l) = tri!(get_list(ctx, key)) else {
        return Frame::error("ERR no such key");
    };
    let i = tri!(int_arg(args, 2));
    let Some(i) = index(i, l.len()) else {
        return Frame::error("ERR index out of range");
    };
    l.set(i, arg(args, 3));
    done(ctx, key, "lset");
    Frame::ok()
}

pub(crate) fn linsert(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let after = match arg(args, 2) {
        w if is(w, "after") => true,
        w if is(w, "before") => false,
        _ => return Frame::error(SYNTAX),
    };
    let Some(l) = tri!(get_list(ctx, key)) else {
        return Frame::Integer(0);
    };
    let Some(pos) = l.iter().position(|v| v == arg(args, 3)) else {
        return Frame::Integer(-1);
    };
    l.insert(if after { pos + 1 } else { pos }, arg(args, 4));
    let len = l.len();
    ctx.list_pushed = true;
    done(ctx, key, "linsert");
    int(len)
}

pub(crate) fn lrem(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let count = tri!(int_arg(args, 2));
    let target = arg(args, 3);
    let Some(l) = tri!(get_list(ctx, key)) else {
        return Frame::Integer(0);
    };
    let limit = if count == 0 {
        usize::MAX
    } else {
        usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
    };
    let removed = l.remove_equal(target, limit, count < 0);
    if removed > 0 {
        done(ctx, key, "lrem");
    }
    int(removed)
}

pub(crate) fn ltrim(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let start = tri!(int_arg(args, 2));
    let stop = tri!(int_arg(args, 3));
    let Some(l) = tri!(get_list(ctx, key)) else {
        return Frame::ok();
    };
    l.trim(super::range(start, stop, l.len()));
    done(ctx, key, "ltrim");
    Frame::ok()
}

pub(crate) fn lpos(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let mut rank: i64 = 1;
    let mut count: Option<usize> = None;
    let mut maxlen: usize = 0;
    let mut i = 3;
    // As `lposCommand`: an unknown option (or one without its value) is a syntax error before
    // any value is read; COUNT and MAXLEN answer a value that is not a number with their own
    // "can't be negative" text.
    while i < args.len() {
        let opt = arg(args, i);
        if i + 1 >= args.len() || !["rank", "count", "maxlen"].iter().any(|o| is(opt, o)) {
            return Frame::error(SYNTAX);
        }
        let value = arg(args, i + 1);
        if is(opt, "rank") {
            let Some(v) = parse_i64(value) else {
                return Frame::error(NOT_INTEGER);
            };
            if v == 0 {
                return Frame::error(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                );
            }
            if v == i64::MIN {
                return Frame::error(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                );
            }
            rank = v;
        } else if is(opt, "count") {
            count = Some(tri!(super::positive_or(
                value,
                "ERR COUNT can't be negative"
            )));
        } else {
            maxlen = tri!(super::positive_or(value, "ERR MAXLEN can't be negative"));
        }
        i += 2;
    }
    let target = arg(args, 2);
    let Some(l) = tri!(get_list(ctx, arg(args, 1))) else {
        return if count.is_some() {
            Frame::Array(Vec::new())
        } else {
            Frame::Null
        };
    };
    let want = match count {
        Some(0) => usize::MAX,
        Some(n) => n,
        None => 1,
    };
    let len = l.len();
    let scan = if maxlen == 0 { len } else { maxlen.min(len) };
    let mut skip = usize::try_from(rank.unsigned_abs()).unwrap_or(usize::MAX) - 1;
    let mut found = Vec::new();
    let indexes: Box<dyn Iterator<Item = usize>> = if rank > 0 {
        Box::new(0..scan)
    } else {
        Box::new((len - scan..len).rev())
    };
    for idx in indexes {
        if l.get(idx).is_some_and(|v| v == target) {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            found.push(int(idx));
            if found.len() >= want {
                break;
            }
        }
    }
    if count.is_some() {
        Frame::Array(found)
    } else {
        found.into_iter().next().unwrap_or(Frame::Null)
    }
}

fn side(a: &[u8]) -> Result<bool, Frame> {
    if is(a, "left") {
        Ok(true)
    } else if is(a, "right") {
        Ok(false)
    } else {
        Err(Frame::error(SYNTAX))
    }
}

/// Moves one element between lists; `Ok(None)` when the source is empty.
fn move_one(
    ctx: &mut Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
) -> Result<Option<Bytes>, Frame> {
    if get_list(ctx, src)?.is_none() {
        return Ok(None);
    }
    get_list(ctx, dst)?;
    let Some(v) = get_list(ctx, src)?.and_then(|l| pop_one(l, from_left)) else {
        return Ok(None);
    };
    // As Redis: the push on the destination is published before the pop from the source,
    // and the source (still present when it is also the destination) is removed last.
    if get_list(ctx, dst)?.is_none() {
        ctx.put(dst, Value::List(Box::default()), 0);
    }
    if let Some(l) = get_list(ctx, dst)? {
        l.push(&v, to_left);
    }
    ctx.list_pushed = true;
    done(ctx, dst, push_event(to_left));
    done(ctx, src, pop_event(from_left));
    Ok(Some(v))
}

/// LMOVE and BLMOVE's attempt.
pub(crate) fn lmove(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let from = tri!(side(arg(args, 3)));
    let to = tri!(side(arg(args, 4)));
    tri!(move_one(ctx, arg(args, 1), arg(args, 2), from, to)).map_or(Frame::Null, Frame::Bulk)
}

/// RPOPLPUSH and BRPOPLPUSH's attempt.
pub(crate) fn rpoplpush(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    tri!(move_one(ctx, arg(args, 1), arg(args, 2), false, true)).map_or(Frame::Null, Frame::Bulk)
}

/// BLPOP/BRPOP attempt: the first non-empty list among `args[1..len-1]`.
pub(crate) fn bpop_try(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let left = is(arg(args, 0), "blpop");
    let keys = args
        .get(1..args.len().saturating_sub(1))
        .unwrap_or_default();
    for key in keys {
        if let Some(l) = tri!(get_list(ctx, key))
            && let Some(v) = pop_one(l, left)
        {
            done(ctx, key, pop_event(left));
            return Frame::Array(vec![Frame::bulk(key), Frame::Bulk(v)]);
        }
    }
    Frame::NullArray
}

/// BLMOVE attempt (`args` as BLMOVE: src dst from to timeout).
pub(crate) fn blmove_try(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    lmove(ctx, inner, args)
}

/// BRPOPLPUSH attempt.
pub(crate) fn brpoplpush_try(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    rpoplpush(ctx, inner, args)
}

/// LMPOP (and BLMPOP's attempt with `first` = 2 to skip the timeout).
pub(crate) fn lmpop_at(ctx: &mut Ctx<'_>, args: &[&[u8]], first: usize) -> Frame {
    let numkeys = match parse_i64(arg(args, first)) {
        Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        Some(_) => return Frame::error("ERR numkeys should be greater than 0"),
        None => return Frame::error("ERR numkeys should be greater than 0"),
    };
    let keys_end = first.saturating_add(1).saturating_add(numkeys);
    if keys_end > args.len() || keys_end > args.len() {
        return Frame::error(SYNTAX);
    }
    let Some(keys) = args.get(first + 1..keys_end) else {
        return Frame::error(SYNTAX);
    };
    let left = match args.get(keys_end) {
        Some(w) => tri!(side(w)),
        None => return Frame::error(SYNTAX),
    };
    let mut count = 1usize;
    let mut i = keys_end + 1;
    let mut seen_count = false;
    while i < args.len() {
        if is(arg(args, i), "count") && i + 1 < args.len() && !seen_count {
            match parse_i64(arg(args, i + 1)) {
                Some(n) if n > 0 => count = usize::try_from(n).unwrap_or(usize::MAX),
                _ => return Frame::error("ERR count should be greater than 0"),
            }
            seen_count = true;
            i += 2;
        } else {
            return Frame::error(SYNTAX);
        }
    }
    for key in keys {
        if let Some(l) = tri!(get_list(ctx, key)) {
            let items: Vec<Frame> = (0..count)
                .map_while(|_| pop_one(l, left))
                .map(Frame::Bulk)
                .collect();
            if !items.is_empty() {
                done(ctx, key, pop_event(left));
                return Frame::Array(vec![Frame::bulk(key), Frame::Array(items)]);
            }
        }
    }
    Frame::NullArray
}

pub(crate) fn lmpop(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    lmpop_at(ctx, args, 1)
}

pub(crate) fn blmpop_try(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    lmpop_at(ctx, args, 2)
}
